// Package prometheus reads metrics from Prometheus through its HTTP API (/api/v1/query and
// /api/v1/query_range). It holds the Querier interface analyses use, Client (the real
// client, net/http only) and Fake (a Querier answering from a table, for callers' tests).
//
// It turns a query into one number (Query) or one series (QueryRange) and says precisely why
// when it cannot: Prometheus' own error text (*Error), no data (ErrNoData, which analyses
// count as inconclusive rather than failed), or a query that returns several series
// (ErrManySeries). It knows nothing of runbooks, releases or Temporal, and must never log or
// return the bearer token.
package prometheus
