package activities

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/analysis"
	"github.com/trainyard/trainyard/integrations/prometheus"
	"github.com/trainyard/trainyard/runbooks"
)

const errorRateQuery = `sum(rate(http_requests_total{code="500"}[1m])) / sum(rate(http_requests_total[1m]))`

func errorRate() runbooks.Analysis {
	return runbooks.Analysis{Name: "error-rate", Provider: "prometheus", Query: errorRateQuery, FailureCondition: "result.value > 0.05"}
}

func watchRequest(until, slice time.Duration) WatchRequest {
	now := time.Now()
	return WatchRequest{
		ReleaseID: "release-shop-1.2.3", Analyses: []runbooks.Analysis{errorRate()}, Interval: 10 * time.Millisecond,
		Until: now.Add(until), SliceUntil: now.Add(slice),
		Release: ReleaseVar{Version: "1.2.3", Components: []ComponentFact{}}, Stage: StageVar{Name: "production"},
	}
}

func runWatch(t *testing.T, acts *Activities, req WatchRequest, heartbeat *WatchResult) WatchResult {
	t.Helper()
	env := newActivityEnv(t, acts)
	if heartbeat != nil {
		env.SetHeartbeatDetails(*heartbeat)
	}
	v, err := env.ExecuteActivity(acts.WatchStabilization, req)
	require.NoError(t, err)
	var res WatchResult
	require.NoError(t, v.Get(&res))
	return res
}

func TestWatchStabilization_ReturnsAtTheFirstBreach(t *testing.T) {
	t.Parallel()
	prom := &prometheus.Fake{}
	prom.Answer(errorRateQuery, prometheus.FakeResult{Value: 0.01}, prometheus.FakeResult{Value: 0.01}, prometheus.FakeResult{Value: 0.4})
	acts := &Activities{Metrics: prom}

	res := runWatch(t, acts, watchRequest(time.Hour, time.Hour), nil)

	require.NotNil(t, res.Breach)
	require.Equal(t, "error-rate", res.Breach.Check)
	require.Equal(t, analysis.KindAnalysis, res.Breach.Kind)
	require.Contains(t, res.Breach.Message, "result.value > 0.05")
	require.Equal(t, 3, res.Evaluations)
	require.False(t, res.Done)
	require.NotNil(t, res.Last)
	require.Equal(t, 0.4, res.Last.Checks[0].Value)
	require.Equal(t, 1, res.State.Runs["error-rate"].Failures)
}

func TestWatchStabilization_EndsTheSliceAndCarriesItsStateOn(t *testing.T) {
	t.Parallel()
	prom := &prometheus.Fake{}
	prom.Answer(errorRateQuery, prometheus.FakeResult{Value: 0.01})
	acts := &Activities{Metrics: prom}
	req := watchRequest(time.Hour, 60*time.Millisecond)

	res := runWatch(t, acts, req, nil)

	require.Nil(t, res.Breach)
	require.False(t, res.Done, "the window goes on after the slice")
	require.GreaterOrEqual(t, res.Evaluations, 2)
	require.True(t, res.Next.After(req.SliceUntil), "the next evaluation belongs to the next slice")
	require.Equal(t, res.Evaluations, res.State.Runs["error-rate"].Successes)
	require.True(t, res.Last.Checks[0].OK)

	// The next slice carries on: its evaluations add to the same run.
	next := req
	next.SliceUntil, next.Next, next.State = time.Now().Add(30*time.Millisecond), res.Next, res.State
	more := runWatch(t, acts, next, nil)
	require.Equal(t, res.Evaluations+more.Evaluations, more.State.Runs["error-rate"].Successes)
}

func TestWatchStabilization_IsDoneAtTheEndOfTheWindow(t *testing.T) {
	t.Parallel()
	prom := &prometheus.Fake{}
	prom.Answer(errorRateQuery, prometheus.FakeResult{Value: 0.01})
	res := runWatch(t, &Activities{Metrics: prom}, watchRequest(40*time.Millisecond, time.Hour), nil)
	require.True(t, res.Done)
	require.Nil(t, res.Breach)
	require.False(t, res.Last.At.Before(res.Next), "the last evaluation is at the end of the window")
}

func TestWatchStabilization_ResumesFromItsHeartbeat(t *testing.T) {
	t.Parallel()
	prom := &prometheus.Fake{}
	prom.Answer(errorRateQuery, prometheus.FakeResult{Value: 0.5})
	an := errorRate()
	an.FailureLimit = 1
	req := watchRequest(time.Hour, time.Hour)
	req.Analyses = []runbooks.Analysis{an}
	// The attempt before had measured one failure (the limit) before its worker was lost.
	prev := WatchResult{State: analysis.WatchState{Runs: map[string]analysis.RunState{
		"error-rate": {Analysis: "error-rate", FailureLimit: 1, Failures: 1},
	}}}

	res := runWatch(t, &Activities{Metrics: prom}, req, &prev)

	require.NotNil(t, res.Breach, "the failure before the restart counts")
	require.Equal(t, 1, res.Evaluations)
	require.Equal(t, 2, res.State.Runs["error-rate"].Failures)
}

func TestWatchStabilization_AnAnswerFoundBeforeARestartIsReturned(t *testing.T) {
	t.Parallel()
	prom := &prometheus.Fake{}
	prev := WatchResult{Breach: &analysis.Breach{Check: "error-rate", Kind: analysis.KindAnalysis, Message: "failed"}}
	res := runWatch(t, &Activities{Metrics: prom}, watchRequest(time.Hour, time.Hour), &prev)
	require.Equal(t, "error-rate", res.Breach.Check)
	require.Empty(t, prom.Queries(), "nothing is measured again")
}

func TestWatchStabilization_WithoutPrometheusIsABreach(t *testing.T) {
	t.Parallel()
	res := runWatch(t, &Activities{}, watchRequest(time.Hour, time.Hour), nil)
	require.NotNil(t, res.Breach)
	require.Equal(t, analysis.KindWatch, res.Breach.Kind)
	require.Contains(t, res.Breach.Message, "prometheus.url")
	require.Equal(t, "watch", res.Last.Checks[0].Name)
}

func TestWatchStabilization_HTTPCheckBreachesAfterFailuresInARow(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	req := watchRequest(time.Hour, time.Hour)
	req.Analyses = nil
	req.Checks = []runbooks.HTTPCheck{{Name: "checkout", URL: srv.URL + "/health", ExpectStatus: 200}}

	res := runWatch(t, &Activities{HTTP: srv.Client()}, req, nil)

	require.NotNil(t, res.Breach)
	require.Equal(t, "checkout", res.Breach.Check)
	require.Equal(t, analysis.DefaultHTTPFailureLimit+1, res.Evaluations, "a failure or two in a row is tolerated")
	require.Contains(t, res.Breach.Message, "503")
}

func TestCaptureBaselines_MeasuresEachAnalysisOnce(t *testing.T) {
	t.Parallel()
	noData := runbooks.Analysis{Name: "checkout", Query: "sum(rate(checkout_total[5m]))", Baseline: true, FailureCondition: "result.value < result.baseline"}
	prom := &prometheus.Fake{}
	prom.Answer(errorRateQuery, prometheus.FakeResult{Value: 0.002})
	prom.Answer(noData.Query, prometheus.FakeResult{Err: prometheus.ErrNoData})
	acts := &Activities{Metrics: prom}

	v, err := newActivityEnv(t, acts).ExecuteActivity(acts.CaptureBaselines, BaselineRequest{ReleaseID: "r", Analyses: []runbooks.Analysis{errorRate(), noData}})
	require.NoError(t, err)
	var res BaselineResult
	require.NoError(t, v.Get(&res))
	require.Len(t, res.Baselines, 2)
	require.Equal(t, 0.002, res.Baselines[0].Value)
	require.Empty(t, res.Baselines[0].Error)
	require.Contains(t, res.Baselines[1].Error, "no data")
	require.Equal(t, res.Baselines[0].At, res.Baselines[1].At, "measured at one moment")
}

func TestCaptureBaselines_UnreachablePrometheusIsRetried(t *testing.T) {
	t.Parallel()
	prom := &prometheus.Fake{QueryFunc: func(context.Context, string, time.Time) (prometheus.Sample, error) {
		return prometheus.Sample{}, errors.New("dial tcp 127.0.0.1:9090: connection refused")
	}}
	acts := &Activities{Metrics: prom}
	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.CaptureBaselines, BaselineRequest{ReleaseID: "r", Analyses: []runbooks.Analysis{errorRate()}})
	require.ErrorContains(t, err, "connection refused")

	v, err := newActivityEnv(t, &Activities{}).ExecuteActivity((&Activities{}).CaptureBaselines, BaselineRequest{ReleaseID: "r", Analyses: []runbooks.Analysis{errorRate()}})
	require.NoError(t, err, "without Prometheus there is nothing to retry")
	var res BaselineResult
	require.NoError(t, v.Get(&res))
	require.Contains(t, res.Baselines[0].Error, "prometheus.url")
}
