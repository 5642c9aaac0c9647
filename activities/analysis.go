package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/trainyard/trainyard/analysis"
	"github.com/trainyard/trainyard/runbooks"
)

// AnalysisRequest runs one of the runbook's analyses: a canary step's, or a stage's exit
// criterion.
type AnalysisRequest struct {
	ReleaseID string            `json:"releaseId"`
	Analysis  runbooks.Analysis `json:"analysis"`
	// Baseline is the measurement taken before the release touched the stage, for analyses
	// with baseline: true.
	Baseline *float64 `json:"baseline,omitempty"`
	// Release and Stage are what the analysis's conditions see.
	Release ReleaseVar `json:"release"`
	Stage   StageVar   `json:"stage"`
}

// AnalysisResult is a finished analysis run.
type AnalysisResult struct {
	// Verdict is successful, failed or inconclusive.
	Verdict analysis.Outcome  `json:"verdict"`
	Summary string            `json:"summary"`
	State   analysis.RunState `json:"state"`
}

// DefaultAnalysisInterval is the time between measurements of an analysis that names none.
const DefaultAnalysisInterval = time.Minute

// RunAnalysis measures an analysis Count times (once when it gives no count), Interval apart,
// and returns the run's verdict. It heartbeats the run's tally after each measurement and,
// after a retry, carries on from it.
func (a *Activities) RunAnalysis(ctx context.Context, req AnalysisRequest) (AnalysisResult, error) {
	if a.Metrics == nil {
		return AnalysisResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("analysis %s queries Prometheus, which is not configured on this worker: set prometheus.url (TRAINYARD_PROMETHEUS_URL)", req.Analysis.Name),
			ErrTypeMisconfigured, nil)
	}
	an := req.Analysis
	state := analysis.NewRunState(an)
	if activity.HasHeartbeatDetails(ctx) {
		var prev analysis.RunState
		if activity.GetHeartbeatDetails(ctx, &prev) == nil && prev.Analysis == an.Name {
			state = prev
		}
	}
	state.Count = max(1, state.Count)
	interval := an.Interval.D()
	if interval <= 0 {
		interval = DefaultAnalysisInterval
	}
	vars := map[string]any{"release": req.Release, "stage": req.Stage}
	for !state.Done() {
		m := analysis.MeasureWith(ctx, a.Metrics, an, vars, req.Baseline, time.Time{})
		if ctx.Err() != nil {
			return AnalysisResult{}, fmt.Errorf("analysis %s: %w", an.Name, ctx.Err())
		}
		state.Add(m)
		activity.RecordHeartbeat(ctx, state)
		a.logger().Info("analysis measured", "release", req.ReleaseID, "stage", req.Stage.Name, "analysis", an.Name,
			"outcome", m.Outcome, "value", m.Value, "message", m.Message)
		if state.Done() {
			break
		}
		if err := a.waitHeartbeating(ctx, interval, state); err != nil {
			return AnalysisResult{}, fmt.Errorf("analysis %s: %w", an.Name, err)
		}
	}
	return AnalysisResult{Verdict: state.Verdict(), Summary: state.Summary(), State: state}, nil
}

// waitHeartbeating waits d, heartbeating details meanwhile.
func (a *Activities) waitHeartbeating(ctx context.Context, d time.Duration, details any) error {
	stop := a.heartbeat(ctx, func() any { return details })
	defer stop()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
