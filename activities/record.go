package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/trainyard/trainyard/store"
)

var errNoStore = errors.New("this worker has no store: record activities run on the main worker")

// RecordRelease writes the release's current phase to the store.
func (a *Activities) RecordRelease(ctx context.Context, r store.ReleaseRecord) error {
	if a.Store == nil {
		return temporal.NewNonRetryableApplicationError(errNoStore.Error(), "Misconfigured", nil)
	}
	if err := a.Store.UpsertRelease(ctx, r); err != nil {
		return fmt.Errorf("record release %s phase %s: %w", r.ID, r.Phase, err)
	}
	return nil
}

// RecordDecision writes one approval decision to the store.
func (a *Activities) RecordDecision(ctx context.Context, d store.DecisionRecord) error {
	if a.Store == nil {
		return temporal.NewNonRetryableApplicationError(errNoStore.Error(), "Misconfigured", nil)
	}
	if err := a.Store.RecordDecision(ctx, d); err != nil {
		return fmt.Errorf("record %s of %s by %s: %w", d.Decision, d.ReleaseID, d.Actor, err)
	}
	return nil
}

// PreviousVersionRequest names the release asking what ran before it.
type PreviousVersionRequest struct {
	Runbook   string `json:"runbook"`
	ReleaseID string `json:"releaseId"`
}

// PreviousVersion is the version of the runbook's last succeeded release, which a rollback
// returns to ("" for a first release).
func (a *Activities) PreviousVersion(ctx context.Context, req PreviousVersionRequest) (string, error) {
	if a.Store == nil {
		return "", temporal.NewNonRetryableApplicationError(errNoStore.Error(), "Misconfigured", nil)
	}
	v, err := a.Store.LastSucceededVersion(ctx, req.Runbook, req.ReleaseID)
	if err != nil {
		return "", fmt.Errorf("previous version of %s: %w", req.Runbook, err)
	}
	return v, nil
}
