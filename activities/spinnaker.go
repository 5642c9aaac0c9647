package activities

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/trainyard/trainyard/integrations/spinnaker"
)

// SpinnakerUndo names the execution a spinnaker deploy ran.
type SpinnakerUndo struct {
	Application string `json:"application"`
	Pipeline    string `json:"pipeline"`
	ExecutionID string `json:"executionId"`
}

// spinnakerBeat is a spinnaker activity's heartbeat: the execution it follows, so a retry
// waits on it instead of triggering the pipeline again (Spinnaker does not deduplicate).
type spinnakerBeat struct {
	ExecutionID string `json:"executionId"`
	Stage       string `json:"stage,omitempty"`
	Status      string `json:"status,omitempty"`
}

// deploySpinnaker triggers the target's pipeline with its parameters and the release's
// facts, and follows the execution to its end.
func (a *Activities) deploySpinnaker(ctx context.Context, req TargetRequest) (TargetResult, error) {
	return a.runPipeline(ctx, req, OpDeploy, req.Version)
}

// rollbackSpinnaker runs the pipeline again with the previous version and
// trainyardOperation=rollback: Spinnaker has no undo of an execution.
func (a *Activities) rollbackSpinnaker(ctx context.Context, req TargetRequest) (TargetResult, error) {
	if req.PreviousVersion == "" {
		return TargetResult{}, finalError(fmt.Sprintf("roll back %s: this is the runbook's first release, so there is no previous version to run pipeline %s with",
			req.Target.Name, pipelineName(req)), TargetFailure{})
	}
	return a.runPipeline(ctx, req, OpRollback, req.PreviousVersion)
}

func (a *Activities) runPipeline(ctx context.Context, req TargetRequest, op, version string) (TargetResult, error) {
	t := req.Target.Spinnaker
	if t == nil {
		return TargetResult{}, badTarget(req, "spinnaker")
	}
	p := a.Deploy.Spinnaker
	if p == nil {
		return TargetResult{}, misconfigured(req, "Spinnaker", "rollout.spinnaker.url (TRAINYARD_SPINNAKER_URL), with rollout.spinnaker.token or headers when Gate needs them")
	}
	var beat spinnakerBeat
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &beat)
	}
	what := fmt.Sprintf("%s of %s through spinnaker pipeline %s", op, req.Target.Name, pipelineName(req))
	if beat.ExecutionID == "" {
		id, err := p.Trigger(ctx, t.Application, t.Pipeline, pipelineParams(req, op, version), "")
		if err != nil {
			return TargetResult{}, finalOrRetry(ctx, err, spinnaker.IsRetryable(err), what, TargetFailure{})
		}
		beat.ExecutionID = id
	}
	// Recorded before waiting: a retry must find the execution, not start another.
	activity.RecordHeartbeat(ctx, beat)
	a.logger().Info("following spinnaker execution", "release", req.ReleaseID, "target", req.Target.Name, "execution", beat.ExecutionID)

	exec, err := p.Wait(ctx, beat.ExecutionID, a.Deploy.poll(), func(e spinnaker.Execution) {
		b := spinnakerBeat{ExecutionID: beat.ExecutionID, Status: string(e.Status)}
		if s, ok := e.Current(); ok {
			b.Stage = s.Name
		}
		activity.RecordHeartbeat(ctx, b)
	})
	if err != nil && ctx.Err() != nil {
		// The release was aborted (or the activity timed out): stop the pipeline too.
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if cerr := p.Cancel(cctx, beat.ExecutionID, "trainyard release "+req.ReleaseID+" stopped"); cerr != nil {
			a.logger().Warn("cancel spinnaker execution", "execution", beat.ExecutionID, "error", cerr)
		}
	}
	undo := &Undo{Spinnaker: &SpinnakerUndo{Application: t.Application, Pipeline: t.Pipeline, ExecutionID: beat.ExecutionID}}
	if err != nil {
		var pf *spinnaker.PipelineFailedError
		if errors.As(err, &pf) {
			return TargetResult{}, finalError(what+": "+pf.Error(), TargetFailure{Attempt: activity.GetInfo(ctx).Attempt})
		}
		return TargetResult{}, finalOrRetry(ctx, err, spinnaker.IsRetryable(err), what, TargetFailure{})
	}
	return TargetResult{Attempt: activity.GetInfo(ctx).Attempt, Undo: undo,
		Output: fmt.Sprintf("spinnaker execution %s of %s ended %s", exec.ID, pipelineName(req), exec.Status)}, nil
}

// pipelineParams are the target's parameters ($TRAINYARD_VERSION and the other release
// variables expanded) and the release's facts, which a pipeline may use or ignore.
func pipelineParams(req TargetRequest, op, version string) map[string]string {
	vars := releaseVars(req, version)
	params := map[string]string{
		"trainyardRelease":         req.ReleaseID,
		"trainyardRunbook":         req.Runbook,
		"trainyardStage":           req.Stage,
		"trainyardEnvironment":     req.Environment,
		"trainyardTarget":          req.Target.Name,
		"trainyardOperation":       op,
		"trainyardVersion":         version,
		"trainyardPreviousVersion": req.PreviousVersion,
	}
	if op == OpRollback {
		params["trainyardRolledBackVersion"] = req.Version
	}
	for k, v := range maps.All(req.Target.Spinnaker.Parameters) {
		params[k] = expand(v, vars)
	}
	return params
}

func pipelineName(req TargetRequest) string {
	if t := req.Target.Spinnaker; t != nil {
		return t.Application + "/" + t.Pipeline
	}
	return "(none)"
}
