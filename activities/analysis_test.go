package activities

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/analysis"
	"github.com/trainyard/trainyard/integrations/prometheus"
	"github.com/trainyard/trainyard/runbooks"
)

func errorRateAnalysis(count, failureLimit int) runbooks.Analysis {
	return runbooks.Analysis{Name: "error-rate", Provider: "prometheus", Query: "errors",
		SuccessCondition: "result.value < 0.01 && stage.name == 'production'", FailureCondition: "result.value >= 0.05",
		Interval: runbooks.Duration(time.Millisecond), Count: count, FailureLimit: failureLimit}
}

func analysisRequest(a runbooks.Analysis) AnalysisRequest {
	return AnalysisRequest{ReleaseID: "r", Analysis: a, Release: ReleaseVar{Version: "1.2.3", Components: []ComponentFact{}},
		Stage: StageVar{Name: "production", Environment: "production"}}
}

func TestRunAnalysis_MeasuresCountTimesAndJudgesTheRun(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		answers []float64
		limit   int
		verdict analysis.Outcome
		queries int
	}{
		{"all good", []float64{0.001, 0.002, 0.001}, 0, analysis.OutcomeSuccessful, 3},
		{"one bad within the limit", []float64{0.001, 0.09, 0.001}, 1, analysis.OutcomeSuccessful, 3},
		{"too many bad stops early", []float64{0.09, 0.09, 0.001}, 1, analysis.OutcomeFailed, 2},
		{"neither condition holds", []float64{0.02, 0.02, 0.02}, 0, analysis.OutcomeInconclusive, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := &prometheus.Fake{}
			for _, v := range tc.answers {
				q.Answer("errors", prometheus.FakeResult{Value: v})
			}
			acts := &Activities{Metrics: q}

			val, err := newActivityEnv(t, acts).ExecuteActivity(acts.RunAnalysis, analysisRequest(errorRateAnalysis(3, tc.limit)))

			require.NoError(t, err)
			var res AnalysisResult
			require.NoError(t, val.Get(&res))
			require.Equal(t, tc.verdict, res.Verdict, res.Summary)
			require.Len(t, q.Queries(), tc.queries)
			require.Contains(t, res.Summary, "analysis error-rate "+string(tc.verdict))
		})
	}
}

func TestRunAnalysis_ResumesItsTallyAfterARetry(t *testing.T) {
	t.Parallel()
	q := &prometheus.Fake{}
	q.Answer("errors", prometheus.FakeResult{Value: 0.001})
	acts := &Activities{Metrics: q}
	env := newActivityEnv(t, acts)
	an := errorRateAnalysis(3, 0)
	earlier := analysis.NewRunState(an)
	earlier.Successes = 2
	env.SetHeartbeatDetails(earlier)

	val, err := env.ExecuteActivity(acts.RunAnalysis, analysisRequest(an))

	require.NoError(t, err)
	var res AnalysisResult
	require.NoError(t, val.Get(&res))
	require.Equal(t, analysis.OutcomeSuccessful, res.Verdict)
	require.Len(t, q.Queries(), 1, "two of three were measured before the retry")
}

func TestRunAnalysis_NeedsPrometheus(t *testing.T) {
	t.Parallel()
	acts := &Activities{}
	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.RunAnalysis, analysisRequest(errorRateAnalysis(1, 0)))
	appErr := requireApplicationError(t, err)
	require.Equal(t, ErrTypeMisconfigured, appErr.Type())
	require.Contains(t, appErr.Message(), "set prometheus.url (TRAINYARD_PROMETHEUS_URL)")
}
