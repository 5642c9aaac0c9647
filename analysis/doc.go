// Package analysis decides, from metrics, whether a release is healthy: it measures a
// runbook's analyses (Measure) and keeps the tally of an analysis run (RunState, with Argo
// Rollouts' count and failureLimit), computes SLO error-budget burn rates over the
// multi-window limits of the Google SRE workbook (CheckBurn), and evaluates everything a
// stabilization window watches at once (Watch).
//
// It is pure logic over a prometheus.Querier: no Temporal, no clock of its own (times come in
// as arguments, or through Watch.Clock), and no I/O beyond the Querier and the HTTP check
// function the caller passes. Activities call it and heartbeat; workflows must not.
//
// # Burn-rate queries
//
// An SLO's errorRatio is measured over each burn-rate window. A runbook marks where the
// window goes with $window (or ${window}):
//
//	errorRatio: sum(rate(http_requests_total{code=~"5.."}[$window])) / sum(rate(http_requests_total[$window]))
//
// An errorRatio without the placeholder (as the examples write it, with [5m]) has the
// duration of every range selector replaced by the window instead, so rate(x[5m]) measured
// over 1h is rate(x[1h]); a subquery keeps its resolution ([30m:1m] becomes [1h:1m]), and
// brackets inside strings and comments are left alone. See BurnQuery.
//
// # Outcomes
//
// A measurement is failed when its failureCondition holds, successful when its
// successCondition holds, and otherwise, as in Argo Rollouts: failed when only a
// successCondition is given, successful when only a failureCondition is, inconclusive when
// both are. A query that returns no data or NaN (0/0: no traffic) is inconclusive; a query
// Prometheus refuses or cannot answer is an error.
package analysis
