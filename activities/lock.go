package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// LockRequest asks for an environment's lock for a release.
type LockRequest struct {
	Environment string    `json:"environment"`
	ReleaseID   string    `json:"releaseId"`
	Runbook     string    `json:"runbook"`
	Version     string    `json:"version"`
	RequestedAt time.Time `json:"requestedAt"`
	// Attempt counts the release's requests for this environment, so asking again after
	// giving the lock back is a new request, not a retry of the first.
	Attempt int `json:"attempt"`
}

// LockGrant is the lock's answer: granted, or the holder and the place in the queue.
type LockGrant struct {
	Granted  bool   `json:"granted"`
	Holder   string `json:"holder,omitempty"`
	Position int    `json:"position,omitempty"`
}

// LockRelease gives a lock back (or leaves its queue).
type LockRelease struct {
	ReleaseID string `json:"releaseId"`
}

// Names the lock activity uses to reach the lock workflow; they match workflows' constants
// (activities cannot import workflows).
const (
	lockWorkflowName  = "EnvironmentLockWorkflow"
	lockUpdateAcquire = "acquire"
	lockTaskQueue     = "trainyard"
)

// RequestLock asks the environment's lock workflow for the lock, starting it when no
// release holds or waits for it (update-with-start), and returns its answer.
func (a *Activities) RequestLock(ctx context.Context, req LockRequest) (LockGrant, error) {
	if a.Temporal == nil {
		return LockGrant{}, temporal.NewNonRetryableApplicationError("this worker has no Temporal client for environment locks: locks are served by the main worker", "Misconfigured", nil)
	}
	start := a.Temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       "lock-" + req.Environment,
		TaskQueue:                lockTaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, lockWorkflowName, struct {
		Environment string `json:"environment"`
	}{req.Environment})
	h, err := a.Temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			// One id per (release, request): a retried activity gets the first answer.
			UpdateID:     fmt.Sprintf("acquire/%s/%d", req.ReleaseID, req.Attempt),
			UpdateName:   lockUpdateAcquire,
			Args:         []any{req},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return LockGrant{}, fmt.Errorf("ask for the lock of %s: %w", req.Environment, err)
	}
	var g LockGrant
	if err := h.Get(ctx, &g); err != nil {
		return LockGrant{}, fmt.Errorf("ask for the lock of %s: %w", req.Environment, err)
	}
	return g, nil
}

// ReleaseOpen reports whether a release's workflow still runs (a lock asks about its holder).
func (a *Activities) ReleaseOpen(ctx context.Context, releaseID string) (bool, error) {
	if a.Temporal == nil {
		return true, temporal.NewNonRetryableApplicationError("this worker has no Temporal client", "Misconfigured", nil)
	}
	d, err := a.Temporal.DescribeWorkflow(ctx, releaseID, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("describe release %s: %w", releaseID, err)
	}
	return d.RawResponse.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}
