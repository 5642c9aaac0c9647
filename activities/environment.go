package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/trainyard/trainyard/store"
)

// ReservationRequest asks whether a reservation keeps a release out of an environment now.
type ReservationRequest struct {
	Environment string `json:"environment"`
	Runbook     string `json:"runbook"`
	ReleaseID   string `json:"releaseId"`
}

// ReservationStatus answers whether another holder's reservation of the environment is
// active now, and until when.
func (a *Activities) ReservationStatus(ctx context.Context, req ReservationRequest) (store.ReservationWait, error) {
	if a.Store == nil {
		return store.ReservationWait{}, temporal.NewNonRetryableApplicationError(errNoStore.Error(), "Misconfigured", nil)
	}
	w, err := a.Store.ReservationStatus(ctx, req.Environment, req.Runbook, req.ReleaseID, time.Now())
	if err != nil {
		return w, fmt.Errorf("reservation status of %s: %w", req.Environment, err)
	}
	return w, nil
}

// RecordPromotions stores the components (by artifact digest) a stage promoted.
func (a *Activities) RecordPromotions(ctx context.Context, ps []store.Promotion) error {
	if a.Store == nil {
		return temporal.NewNonRetryableApplicationError(errNoStore.Error(), "Misconfigured", nil)
	}
	return a.Store.RecordPromotions(ctx, ps)
}
