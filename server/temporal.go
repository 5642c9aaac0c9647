package server

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/trainyard/trainyard/workflows"
)

// releaseWorkflowName is the registered name of the release workflow. It is spelt here rather
// than taken from the workflow function so the HTTP server does not link workflow code.
const releaseWorkflowName = "ReleaseWorkflow"

// TemporalEngine is the Engine backed by a Temporal client.
type TemporalEngine struct {
	Client client.Client
}

var _ Engine = TemporalEngine{}

// Start starts the release workflow, or finds the one with the same id.
func (e TemporalEngine) Start(ctx context.Context, in workflows.ReleaseInput) (bool, error) {
	opts := client.StartWorkflowOptions{
		ID:        in.ID,
		TaskQueue: workflows.TaskQueue,
		// Rejecting duplicates even after the first run ended is what makes a release id
		// mean one release: re-sending a start for a finished release returns it, it does
		// not ship again.
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword(workflows.AttrRunbook).ValueSet(in.Runbook.Name),
			temporal.NewSearchAttributeKeyKeyword(workflows.AttrVersion).ValueSet(in.Version),
			temporal.NewSearchAttributeKeyKeyword(workflows.AttrPhase).ValueSet(string(workflows.PhasePending)),
		),
	}
	_, err := e.Client.ExecuteWorkflow(ctx, opts, releaseWorkflowName, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("start workflow %q: %w", in.ID, err)
	}
	return true, nil
}

// Status runs the status query.
func (e TemporalEngine) Status(ctx context.Context, id string) (workflows.ReleaseStatus, error) {
	var st workflows.ReleaseStatus
	v, err := e.Client.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
	if err != nil {
		if isNotFound(err) {
			return st, ErrReleaseNotFound
		}
		return st, fmt.Errorf("query status of %q: %w", id, err)
	}
	if err := v.Get(&st); err != nil {
		return st, fmt.Errorf("decode status of %q: %w", id, err)
	}
	return st, nil
}

// Approve sends the approve Update and waits for its result.
func (e TemporalEngine) Approve(ctx context.Context, id, updateID string, req workflows.ApprovalRequest) (workflows.ApprovalResult, error) {
	var res workflows.ApprovalResult
	err := e.update(ctx, id, updateID, workflows.UpdateApprove, req, &res)
	return res, err
}

// Reject sends the reject Update and waits for its result.
func (e TemporalEngine) Reject(ctx context.Context, id, updateID string, req workflows.ApprovalRequest) (workflows.ApprovalResult, error) {
	var res workflows.ApprovalResult
	err := e.update(ctx, id, updateID, workflows.UpdateReject, req, &res)
	return res, err
}

// Abort sends the abort Update and waits for its result.
func (e TemporalEngine) Abort(ctx context.Context, id, updateID string, req workflows.AbortRequest) (workflows.AbortResult, error) {
	var res workflows.AbortResult
	err := e.update(ctx, id, updateID, workflows.UpdateAbort, req, &res)
	return res, err
}

// Ping checks that the Temporal frontend answers.
// Operate sends an operator Update (pause, resume, rollback, fix-forward) and waits for its
// result.
func (e TemporalEngine) Operate(ctx context.Context, id, updateID, update string, req workflows.OperatorRequest) (workflows.OperatorResult, error) {
	var res workflows.OperatorResult
	err := e.update(ctx, id, updateID, update, req, &res)
	return res, err
}

func (e TemporalEngine) Ping(ctx context.Context) error {
	if _, err := e.Client.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		return fmt.Errorf("temporal health check: %w", err)
	}
	return nil
}

func (e TemporalEngine) update(ctx context.Context, id, updateID, name string, arg, result any) error {
	h, err := e.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   id,
		UpdateID:     updateID,
		UpdateName:   name,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, result)
	}
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return &RefusedError{Type: appErr.Type(), Message: appErr.Message()}
	}
	if isNotFound(err) {
		return e.notFound(ctx, id, err)
	}
	return fmt.Errorf("%s update on %q: %w", name, id, err)
}

// notFound tells an unknown release from an ended one: the server answers an Update on a
// closed workflow with the same NotFound ("workflow execution already completed") as an
// unknown id, and only the first is the caller's mistake.
func (e TemporalEngine) notFound(ctx context.Context, id string, updateErr error) error {
	desc, err := e.Client.DescribeWorkflow(ctx, id, "")
	switch {
	case isNotFound(err):
		return ErrReleaseNotFound
	case err != nil:
		return fmt.Errorf("update on %q: %w (and describe failed: %v)", id, updateErr, err)
	case desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return &RefusedError{Type: workflows.ErrTypeConflict, Message: "release has ended"}
	}
	return fmt.Errorf("update on %q: %w", id, updateErr)
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}
