package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/runbooks"
)

// StageInput is what a stage child workflow needs: its slice of the runbook snapshot.
type StageInput struct {
	ReleaseID       string         `json:"releaseId"`
	Runbook         string         `json:"runbook"`
	Stage           runbooks.Stage `json:"stage"`
	Version         string         `json:"version"`
	PreviousVersion string         `json:"previousVersion,omitempty"`
}

// StageResult lists the targets the stage deployed, in order.
type StageResult struct {
	Deployed []string `json:"deployed"`
}

// ErrTypeStageFailed marks a stage that stopped on a failed target.
const ErrTypeStageFailed = "StageFailed"

// StageWorkflow deploys one stage's targets one after another (rolling), each as an activity
// on its site's task queue, and tells the parent release about every target as it moves, so
// the release knows exactly what to undo whatever happens to this stage.
func StageWorkflow(ctx workflow.Context, in StageInput) (StageResult, error) {
	log := workflow.GetLogger(ctx)
	parent := workflow.GetInfo(ctx).ParentWorkflowExecution
	var res StageResult

	tell := func(p TargetProgress) {
		if parent == nil {
			return
		}
		p.Stage = in.Stage.Name
		p.At = workflow.Now(ctx)
		// Disconnected: the parent must hear about a target even while this stage is being
		// cancelled, or it would not roll that target back.
		sctx, _ := workflow.NewDisconnectedContext(ctx)
		if err := workflow.SignalExternalWorkflow(sctx, parent.ID, parent.RunID, SignalTargetProgress, p).Get(sctx, nil); err != nil {
			log.Error("tell release about target", "target", p.Target, "error", err)
		}
	}

	for _, t := range in.Stage.Targets {
		tell(TargetProgress{Target: t.Name, State: StateRunning})
		req := activities.TargetRequest{
			ReleaseID: in.ReleaseID, Runbook: in.Runbook, Stage: in.Stage.Name, Environment: in.Stage.Environment,
			Target: t, Version: in.Version, PreviousVersion: in.PreviousVersion,
		}
		var out activities.TargetResult
		err := workflow.ExecuteActivity(targetActivityContext(ctx, t), acts.DeployTarget, req).Get(ctx, &out)
		if err != nil {
			p := TargetProgress{Target: t.Name, State: StateFailed, Error: errorMessage(err)}
			var fail activities.CommandFailure
			var appErr *temporal.ApplicationError
			if errors.As(err, &appErr) && appErr.HasDetails() && appErr.Details(&fail) == nil {
				p.Output, p.Attempts = fail.Output, fail.Attempt
			}
			if temporal.IsCanceledError(err) {
				p.State, p.Error = StateCancelled, "cancelled: the release was aborted while this target deployed"
			}
			tell(p)
			if temporal.IsCanceledError(err) {
				return res, err
			}
			return res, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("stage %s, target %s: %s", in.Stage.Name, t.Name, p.Error), ErrTypeStageFailed, nil, res)
		}
		res.Deployed = append(res.Deployed, t.Name)
		tell(TargetProgress{Target: t.Name, State: StateDeployed, Output: out.Output, Attempts: out.Attempt})
	}
	return res, nil
}

// acts is only a method table: workflows name activities through it and never call it.
var acts *activities.Activities

// targetActivityContext routes a target's command to the worker inside its site.
func targetActivityContext(ctx workflow.Context, t runbooks.Target) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue: SiteTaskQueue(t.Site),
		// The command enforces its own timeout; the margin lets it report the timeout itself.
		StartToCloseTimeout: t.TimeoutOrDefault() + time.Minute,
		HeartbeatTimeout:    t.HeartbeatOrDefault(),
		// Wait for a cancelled command to stop before the release rolls back around it.
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			// Retries cover a lost or restarted site worker; a command that ran and failed is
			// never run again (CommandFailed is non-retryable).
			MaximumAttempts:        5,
			NonRetryableErrorTypes: []string{activities.ErrTypeCommandFailed},
		},
	})
}

// errorMessage is the innermost message of an activity or child error, without the SDK's
// wrapping ("activity error (type: ..., scheduledEventID: ...)").
func errorMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		return "timed out (" + timeoutErr.TimeoutType().String() + ")"
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
