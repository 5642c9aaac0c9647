package server

import (
	"context"
	"errors"

	"github.com/trainyard/trainyard/store"
	"github.com/trainyard/trainyard/workflows"
)

// Engine is what the server needs of Temporal: start a release, ask its status, and send it
// human decisions as Updates. TemporalEngine is the real one; tests pass fakes.
type Engine interface {
	// Start starts the release workflow. created is false when a release with that id
	// already exists (running or ended); that is not an error.
	Start(ctx context.Context, in workflows.ReleaseInput) (created bool, err error)
	Status(ctx context.Context, id string) (workflows.ReleaseStatus, error)
	Approve(ctx context.Context, id, updateID string, req workflows.ApprovalRequest) (workflows.ApprovalResult, error)
	Reject(ctx context.Context, id, updateID string, req workflows.ApprovalRequest) (workflows.ApprovalResult, error)
	Abort(ctx context.Context, id, updateID string, req workflows.AbortRequest) (workflows.AbortResult, error)
	// Operate sends an operator Update: workflows.UpdatePause, UpdateResume, UpdateRollback
	// or UpdateFixForward.
	Operate(ctx context.Context, id, updateID, update string, req workflows.OperatorRequest) (workflows.OperatorResult, error)
	Ping(ctx context.Context) error
}

// Store is the part of the system of record the server writes and reads.
type Store interface {
	// RecordStart records a started release (an existing row is kept) and the audit event of
	// its start, together.
	RecordStart(ctx context.Context, rec store.ReleaseRecord, ev store.AuditEvent) (int64, error)
	ListReleases(ctx context.Context, f store.ReleaseFilter) ([]store.ReleaseRecord, error)
	AppendAudit(ctx context.Context, ev store.AuditEvent) (int64, error)
	ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error)
	Ping(ctx context.Context) error
}

// ErrReleaseNotFound is returned by an Engine when no release has the given id.
var ErrReleaseNotFound = errors.New("release not found")

// RefusedError is returned by an Engine when the release refused a request (an Update
// validator said no), so the server can answer 403, 404, 409 or 400 without parsing
// messages. Type is one of the workflows.ErrType* constants; Message is meant for the caller.
type RefusedError struct {
	Type    string
	Message string
}

func (e *RefusedError) Error() string {
	if e.Type == "" {
		return "refused: " + e.Message
	}
	return "refused (" + e.Type + "): " + e.Message
}
