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
	// Analyses are the runbook's analyses: the stage runs those its canary steps and exit
	// criteria name. Artifacts are the release's components' artifact references, which
	// argocd targets set as images. Release is what analysis conditions see. newStageInput
	// fills them.
	Analyses  []runbooks.Analysis    `json:"analyses,omitempty"`
	Artifacts []string               `json:"artifacts,omitempty"`
	Release   *activities.ReleaseVar `json:"release,omitempty"`
}

// StageResult lists the targets the stage deployed, in order.
type StageResult struct {
	Deployed []string `json:"deployed"`
}

// ErrTypeStageFailed marks a stage that stopped on a failed target, smoke test, analysis or
// exit criterion.
const ErrTypeStageFailed = "StageFailed"

// The rollout change: strategies, every target kind, drift, smoke tests and exit criteria.
// Stages started before it replay the rolling, one-command-at-a-time path unchanged.
const (
	versionRolloutID                  = "rollout"
	versionRollout   workflow.Version = 1
)

// newStageInput is the input of the child workflow of stage, for the release in: with the
// runbook's analyses, the artifacts of the release's components (or of the runbook's scope,
// for components the request gave none), and the release as conditions see it.
// newReleaseVar is the release as conditions see it (release.*), from the release's input.
func newReleaseVar(in ReleaseInput) activities.ReleaseVar {
	rv := activities.ReleaseVar{Version: in.Version, Requester: in.Requester.Name, Components: []activities.ComponentFact{}, Environment: in.Runbook.FinalEnvironment()}
	for _, c := range in.Components {
		rv.Components = append(rv.Components, activities.ComponentFact{Name: c.Name, Version: c.Version, Artifact: c.Artifact})
	}
	return rv
}

func newStageInput(in ReleaseInput, stage runbooks.Stage, previous string) StageInput {
	rel := newReleaseVar(in)
	var artifacts []string
	seen := map[string]bool{}
	for _, c := range in.Components {
		seen[c.Name] = true
		if c.Artifact != "" {
			artifacts = append(artifacts, c.Artifact)
		}
	}
	if in.Runbook.Scope != nil {
		for _, c := range in.Runbook.Scope.Components {
			if !seen[c.Name] && c.Artifact != "" {
				artifacts = append(artifacts, c.Artifact)
			}
		}
	}
	return StageInput{
		ReleaseID: in.ID, Runbook: in.Runbook.Name, Stage: stage, Version: in.Version, PreviousVersion: previous,
		Analyses: in.Runbook.Analyses, Artifacts: artifacts, Release: &rel,
	}
}

// StageWorkflow deploys one stage's targets by its strategy (rolling, canary or blue-green),
// each operation an activity on its target's task queue, and tells the parent release about
// every target as it moves, so the release knows exactly what to undo whatever happens to
// this stage.
func StageWorkflow(ctx workflow.Context, in StageInput) (StageResult, error) {
	if workflow.GetVersion(ctx, versionRolloutID, workflow.DefaultVersion, versionRollout) == workflow.DefaultVersion {
		return stageBeforeRollout(ctx, in)
	}
	return newStageRun(ctx, in).run()
}

// stageBeforeRollout is StageWorkflow as it was before versionRollout: command targets one
// after another. Stages in flight from then replay it; it must not change.
func stageBeforeRollout(ctx workflow.Context, in StageInput) (StageResult, error) {
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

// inCloud reports whether a target kind deploys from the cloud queue rather than its site.
func inCloud(kind string) bool {
	return kind == runbooks.KindArgoCD || kind == runbooks.KindSpinnaker || kind == runbooks.KindFlag
}

// targetActivityContext routes a target's operation to the worker that can do it: command and
// hardware targets to the worker inside their site, cloud targets to CloudTaskQueue.
func targetActivityContext(ctx workflow.Context, t runbooks.Target) workflow.Context {
	queue := SiteTaskQueue(t.Site)
	if inCloud(t.Kind) {
		queue = CloudTaskQueue
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue: queue,
		// The command enforces its own timeout; the margin lets it report the timeout itself.
		StartToCloseTimeout: t.TimeoutOrDefault() + time.Minute,
		HeartbeatTimeout:    t.HeartbeatOrDefault(),
		// Wait for a cancelled command to stop before the release rolls back around it.
		WaitForCancellation: true,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			// Retries cover a lost or restarted worker, or a deploy system briefly away; a
			// command that ran and failed is never run again (CommandFailed is
			// non-retryable), nor is a deploy its system refused (TargetFailed).
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
