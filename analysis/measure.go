package analysis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"time"

	"github.com/trainyard/trainyard/integrations/prometheus"
	"github.com/trainyard/trainyard/runbooks"
)

// Outcome is how one measurement, burn-rate check or analysis run came out.
type Outcome string

// Outcomes.
const (
	OutcomeSuccessful   Outcome = "successful"
	OutcomeFailed       Outcome = "failed"
	OutcomeInconclusive Outcome = "inconclusive"
	// OutcomeError: the query could not be answered (Prometheus unreachable, a refused
	// query, a condition that cannot be evaluated).
	OutcomeError Outcome = "error"
	// OutcomeRunning: an analysis run that needs more measurements (RunState.Verdict only).
	OutcomeRunning Outcome = "running"
)

// Measurement is one evaluation of an analysis.
type Measurement struct {
	Analysis string  `json:"analysis"`
	Value    float64 `json:"value"`
	// Baseline is what the conditions saw as result.baseline; nil without one.
	Baseline *float64 `json:"baseline,omitempty"`
	Outcome  Outcome  `json:"outcome"`
	// Message says why, for the release timeline and a person reading it.
	Message string `json:"message"`
	// At is when the query was evaluated.
	At time.Time `json:"at"`
}

// Measure evaluates a at at (Prometheus' now when zero) against baseline (nil when the
// analysis has none). See MeasureWith for conditions that use release or stage.
func Measure(ctx context.Context, q prometheus.Querier, a runbooks.Analysis, baseline *float64, at time.Time) Measurement {
	return MeasureWith(ctx, q, a, nil, baseline, at)
}

// MeasureWith is Measure for conditions that also use the release and stage variables:
// vars holds them by name ("release", "stage"), as runbooks.Condition.Eval takes them. A
// condition using a variable vars lacks gives an Error measurement naming it.
func MeasureWith(ctx context.Context, q prometheus.Querier, a runbooks.Analysis, vars map[string]any, baseline *float64, at time.Time) Measurement {
	m := Measurement{Analysis: a.Name, Baseline: baseline, At: at}
	out := func(o Outcome, format string, args ...any) Measurement {
		m.Outcome, m.Message = o, fmt.Sprintf(format, args...)
		return m
	}
	if a.Provider != "" && a.Provider != "prometheus" {
		return out(OutcomeError, "analysis %q: provider %q is not supported (only prometheus)", a.Name, a.Provider)
	}
	success, failure, err := compile(a)
	if err != nil {
		return out(OutcomeError, "%v", err)
	}
	if a.Baseline && baseline == nil {
		return out(OutcomeError, "analysis %q compares with a baseline (baseline: true), but none was measured before the release", a.Name)
	}

	s, err := q.Query(ctx, a.Query, at)
	switch {
	case errors.Is(err, prometheus.ErrNoData):
		return out(OutcomeInconclusive, "no data: the query matched no series (no traffic yet, or a misnamed metric)")
	case err != nil:
		return out(OutcomeError, "%v", err)
	}
	m.Value = s.Value
	if !s.At.IsZero() {
		m.At = s.At
	}
	if math.IsNaN(s.Value) {
		return out(OutcomeInconclusive, "the query gave NaN (0/0: no traffic in its range?)")
	}

	env := make(map[string]any, len(vars)+1)
	maps.Copy(env, vars)
	b := 0.0
	if baseline != nil {
		b = *baseline
	}
	env["result"] = map[string]any{"value": s.Value, "baseline": b}
	seen := describeValue(s.Value, baseline)

	if failure != nil {
		hit, err := failure.Eval(env)
		if err != nil {
			return out(OutcomeError, "failureCondition: %v", err)
		}
		if hit {
			return out(OutcomeFailed, "failureCondition %q holds for %s", failure.Expr, seen)
		}
	}
	if success != nil {
		hit, err := success.Eval(env)
		if err != nil {
			return out(OutcomeError, "successCondition: %v", err)
		}
		if hit {
			return out(OutcomeSuccessful, "successCondition %q holds for %s", success.Expr, seen)
		}
	}
	switch {
	case success != nil && failure != nil:
		return out(OutcomeInconclusive, "neither condition holds for %s", seen)
	case success != nil:
		return out(OutcomeFailed, "successCondition %q does not hold for %s", success.Expr, seen)
	default:
		return out(OutcomeSuccessful, "failureCondition %q does not hold for %s", failure.Expr, seen)
	}
}

// MeasureBaseline measures a before the release touches production, for result.baseline.
// No data and NaN are errors here: a baseline that is not a number compares with nothing.
func MeasureBaseline(ctx context.Context, q prometheus.Querier, a runbooks.Analysis, at time.Time) (float64, error) {
	s, err := q.Query(ctx, a.Query, at)
	if err != nil {
		return 0, fmt.Errorf("measure baseline of analysis %q: %w", a.Name, err)
	}
	if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
		return 0, fmt.Errorf("measure baseline of analysis %q: the query gave %v, not a number to compare with", a.Name, s.Value)
	}
	return s.Value, nil
}

// compile compiles a's conditions (nil when absent). The runbook was validated when it
// loaded, so an error here means it was not.
func compile(a runbooks.Analysis) (success, failure *runbooks.Condition, err error) {
	if a.SuccessCondition == "" && a.FailureCondition == "" {
		return nil, nil, fmt.Errorf("analysis %q has neither a successCondition nor a failureCondition", a.Name)
	}
	if a.SuccessCondition != "" {
		if success, err = runbooks.CompileCondition(a.SuccessCondition, runbooks.AnalysisCondition); err != nil {
			return nil, nil, fmt.Errorf("analysis %q: successCondition: %w", a.Name, err)
		}
	}
	if a.FailureCondition != "" {
		if failure, err = runbooks.CompileCondition(a.FailureCondition, runbooks.AnalysisCondition); err != nil {
			return nil, nil, fmt.Errorf("analysis %q: failureCondition: %w", a.Name, err)
		}
	}
	return success, failure, nil
}

func describeValue(v float64, baseline *float64) string {
	if baseline == nil {
		return fmt.Sprintf("value %g", v)
	}
	return fmt.Sprintf("value %g (baseline %g)", v, *baseline)
}
