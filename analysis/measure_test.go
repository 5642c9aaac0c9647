package analysis

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/integrations/prometheus"
	"github.com/trainyard/trainyard/runbooks"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const errQuery = `sum(rate(http_requests_total{code=~"5.."}[2m])) / sum(rate(http_requests_total[2m]))`

// errorRate is the example runbook's analysis: pass under 1% and within 10% of the
// baseline, fail from 5%.
func errorRate() runbooks.Analysis {
	return runbooks.Analysis{
		Name: "error-rate", Provider: "prometheus", Query: errQuery,
		SuccessCondition: "result.value < 0.01 && result.value <= result.baseline * 1.1",
		FailureCondition: "result.value >= 0.05",
		Count:            5, FailureLimit: 1, Baseline: true,
	}
}

func ptr(f float64) *float64 { return &f }

func TestMeasure_Outcomes(t *testing.T) {
	t.Parallel()
	onlySuccess := runbooks.Analysis{Name: "p99", Query: "p99", SuccessCondition: "result.value < 0.5"}
	onlyFailure := runbooks.Analysis{Name: "p99", Query: "p99", FailureCondition: "result.value > 0.5"}
	withStage := runbooks.Analysis{Name: "p99", Query: "p99", FailureCondition: `stage.environment == "production" && result.value > 0.5`}
	tests := []struct {
		name     string
		a        runbooks.Analysis
		baseline *float64
		vars     map[string]any
		answer   prometheus.FakeResult
		want     Outcome
		message  string
	}{
		{"failure condition holds", errorRate(), ptr(0.01), nil, prometheus.FakeResult{Value: 0.2}, OutcomeFailed,
			`failureCondition "result.value >= 0.05" holds for value 0.2 (baseline 0.01)`},
		{"success condition holds", errorRate(), ptr(0.005), nil, prometheus.FakeResult{Value: 0.004}, OutcomeSuccessful,
			`successCondition "result.value < 0.01 && result.value <= result.baseline * 1.1" holds`},
		{"neither holds: worse than the baseline", errorRate(), ptr(0.001), nil, prometheus.FakeResult{Value: 0.004}, OutcomeInconclusive,
			"neither condition holds for value 0.004 (baseline 0.001)"},
		{"neither holds: between the limits", errorRate(), ptr(0.03), nil, prometheus.FakeResult{Value: 0.02}, OutcomeInconclusive, "neither"},
		{"only a success condition, not met", onlySuccess, nil, nil, prometheus.FakeResult{Value: 0.7}, OutcomeFailed,
			`successCondition "result.value < 0.5" does not hold for value 0.7`},
		{"only a success condition, met", onlySuccess, nil, nil, prometheus.FakeResult{Value: 0.1}, OutcomeSuccessful, "holds"},
		{"only a failure condition, not met", onlyFailure, nil, nil, prometheus.FakeResult{Value: 0.1}, OutcomeSuccessful,
			`failureCondition "result.value > 0.5" does not hold`},
		{"only a failure condition, met", onlyFailure, nil, nil, prometheus.FakeResult{Value: 0.7}, OutcomeFailed, "holds"},
		{"+Inf is a value like any other", onlyFailure, nil, nil, prometheus.FakeResult{Value: math.Inf(1)}, OutcomeFailed, "+Inf"},
		{"no data", errorRate(), ptr(0.01), nil, prometheus.FakeResult{Err: prometheus.ErrNoData}, OutcomeInconclusive, "no data"},
		{"NaN", errorRate(), ptr(0.01), nil, prometheus.FakeResult{Value: math.NaN()}, OutcomeInconclusive, "NaN"},
		{"query refused", errorRate(), ptr(0.01), nil,
			prometheus.FakeResult{Err: &prometheus.Error{Endpoint: "/api/v1/query", StatusCode: 400, Type: "bad_data", Message: "parse error: unexpected end of input"}},
			OutcomeError, "bad_data: parse error: unexpected end of input"},
		{"many series", errorRate(), ptr(0.01), nil, prometheus.FakeResult{Err: prometheus.ErrManySeries}, OutcomeError, "several series"},
		{"baseline missing", errorRate(), nil, nil, prometheus.FakeResult{Value: 0.001}, OutcomeError, "none was measured"},
		{"stage variable not given", withStage, nil, nil, prometheus.FakeResult{Value: 0.7}, OutcomeError, "variable stage is not given"},
		{"stage variable given", withStage, nil, map[string]any{"stage": map[string]any{"name": "prod", "environment": "production"}},
			prometheus.FakeResult{Value: 0.7}, OutcomeFailed, "holds"},
		{"uncompilable condition", runbooks.Analysis{Name: "x", Query: "x", FailureCondition: "result.valu > 1"}, nil, nil,
			prometheus.FakeResult{Value: 1}, OutcomeError, "unknown field valu"},
		{"no condition", runbooks.Analysis{Name: "x", Query: "x"}, nil, nil, prometheus.FakeResult{Value: 1}, OutcomeError, "neither a successCondition nor a failureCondition"},
		{"other provider", runbooks.Analysis{Name: "x", Provider: "datadog", Query: "x", FailureCondition: "result.value > 1"}, nil, nil,
			prometheus.FakeResult{Value: 1}, OutcomeError, `provider "datadog" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := &prometheus.Fake{}
			q.Answer(tt.a.Query, tt.answer)
			m := MeasureWith(context.Background(), q, tt.a, tt.vars, tt.baseline, t0)
			require.Equal(t, tt.want, m.Outcome, m.Message)
			require.Contains(t, m.Message, tt.message)
			require.Equal(t, tt.a.Name, m.Analysis)
			require.Equal(t, t0, m.At)
			require.Equal(t, tt.baseline, m.Baseline)
		})
	}
}

func TestMeasure_TakesTheEvaluationTimeFromPrometheus(t *testing.T) {
	t.Parallel()
	q := &prometheus.Fake{QueryFunc: func(context.Context, string, time.Time) (prometheus.Sample, error) {
		return prometheus.Sample{Value: 0.1, At: t0.Add(time.Second)}, nil
	}}
	a := runbooks.Analysis{Name: "x", Query: "x", FailureCondition: "result.value > 1"}
	m := Measure(context.Background(), q, a, nil, time.Time{})
	require.Equal(t, OutcomeSuccessful, m.Outcome)
	require.Equal(t, t0.Add(time.Second), m.At)
}

func TestMeasureBaseline_RefusesWhatIsNotANumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		answer  prometheus.FakeResult
		want    float64
		message string
	}{
		{"value", prometheus.FakeResult{Value: 0.002}, 0.002, ""},
		{"no data", prometheus.FakeResult{Err: prometheus.ErrNoData}, 0, "no data"},
		{"NaN", prometheus.FakeResult{Value: math.NaN()}, 0, "NaN, not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := &prometheus.Fake{}
			q.Answer(errQuery, tt.answer)
			got, err := MeasureBaseline(context.Background(), q, errorRate(), t0)
			if tt.message == "" {
				require.NoError(t, err)
				require.Equal(t, tt.want, got)
				return
			}
			require.ErrorContains(t, err, `baseline of analysis "error-rate"`)
			require.ErrorContains(t, err, tt.message)
		})
	}
}

func TestMeasurement_JSONKeepsNaNAndInfinities(t *testing.T) {
	t.Parallel()
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0.25} {
		m := Measurement{Analysis: "x", Value: v, Baseline: ptr(math.Inf(-1)), Outcome: OutcomeInconclusive, Message: "m", At: t0}
		b, err := json.Marshal(m)
		require.NoError(t, err)
		var back Measurement
		require.NoError(t, json.Unmarshal(b, &back), string(b))
		require.Equal(t, math.IsNaN(v), math.IsNaN(back.Value), string(b))
		if !math.IsNaN(v) {
			require.Equal(t, v, back.Value)
		}
		require.True(t, math.IsInf(*back.Baseline, -1))
		require.Equal(t, m.At, back.At)
		require.Equal(t, m.Outcome, back.Outcome)
	}
	var m Measurement
	require.ErrorContains(t, json.Unmarshal([]byte(`{"value":"lots"}`), &m), `got "lots"`)
}
