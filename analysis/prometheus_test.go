package analysis_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/analysis"
	"github.com/trainyard/trainyard/integrations/prometheus"
	"github.com/trainyard/trainyard/internal/promserver"
	"github.com/trainyard/trainyard/runbooks"
)

// Against a real Prometheus scraping a service whose error ratio the test sets: the burn
// rate breaches when a fifth of the requests fail and heals when they stop. One Prometheus
// for the whole story, since starting one takes seconds.
func TestCheckBurn_RealPrometheusBreachesAndHeals(t *testing.T) {
	t.Parallel()
	svc := promserver.NewTestService()
	t.Cleanup(svc.Close)
	srv := promserver.ForTest(t, svc.Addr())
	q := &prometheus.Client{BaseURL: srv.URL()}
	ctx := context.Background()

	slo := runbooks.SLO{
		Objective:  99,
		ErrorRatio: `sum(rate(testsvc_requests_total{code="500"}[$window])) / sum(rate(testsvc_requests_total[$window]))`,
	}
	br := runbooks.BurnRate{Long: runbooks.Duration(10 * time.Second), Short: runbooks.Duration(5 * time.Second), Factor: 10}
	errorRate := runbooks.Analysis{
		Name: "error-rate", Provider: "prometheus",
		Query:            `sum(rate(testsvc_requests_total{code="500"}[5s])) / sum(rate(testsvc_requests_total[5s]))`,
		SuccessCondition: "result.value < 0.01", FailureCondition: "result.value >= 0.05",
	}

	healthy := waitFor(t, srv, "healthy before the errors", func() (bool, string) {
		r := analysis.CheckBurn(ctx, q, slo, br, time.Now())
		return r.Outcome == analysis.OutcomeSuccessful, r.Message
	})
	require.Contains(t, healthy, "within 10x over 10s and 5s")
	m := analysis.Measure(ctx, q, errorRate, nil, time.Now())
	require.Equal(t, analysis.OutcomeSuccessful, m.Outcome, m.Message)

	svc.SetErrorRatio(0.2) // 20x the 1% budget
	breached := waitFor(t, srv, "breached while a fifth of requests fail", func() (bool, string) {
		r := analysis.CheckBurn(ctx, q, slo, br, time.Now())
		return r.Breached, r.Message
	})
	require.Contains(t, breached, "above 10x over 10s and 5s")
	m = analysis.Measure(ctx, q, errorRate, nil, time.Now())
	require.Equal(t, analysis.OutcomeFailed, m.Outcome, m.Message)

	svc.SetErrorRatio(0)
	waitFor(t, srv, "healed once the errors stop", func() (bool, string) {
		r := analysis.CheckBurn(ctx, q, slo, br, time.Now())
		return r.Outcome == analysis.OutcomeSuccessful && !r.Breached, r.Message
	})
}

// waitFor polls cond until it holds, failing with its last message and Prometheus' log
// after a generous deadline: how soon it holds depends on scrapes and a busy machine, so the
// test asserts only that it does.
func waitFor(t *testing.T, srv *promserver.Server, what string, cond func() (bool, string)) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return last
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s: not within 60s; last: %s\nprometheus log:\n%s", what, last, srv.LogTail(20))
	return ""
}
