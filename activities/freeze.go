package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.temporal.io/sdk/temporal"

	"github.com/trainyard/trainyard/store"
)

// ErrTypeFreezeUnknown: a runbook names a freeze calendar that cannot be evaluated. The
// release must stop, never pass a freeze nobody can check, so it is not retried.
const ErrTypeFreezeUnknown = "FreezeCalendarUnusable"

// FreezeStatus asks whether the release may enter a stage now.
func (a *Activities) FreezeStatus(ctx context.Context, q store.FreezeQuery) (store.FreezeDecision, error) {
	if a.Store == nil {
		return store.FreezeDecision{}, temporal.NewNonRetryableApplicationError(errNoStore.Error(), "Misconfigured", nil)
	}
	if q.Environment == "production" || q.Environment == "prod" {
		for _, name := range a.BusinessCalendars {
			if !slices.Contains(q.Calendars, name) {
				q.Calendars = append(q.Calendars, name)
			}
		}
	}
	d, err := a.Store.FreezeStatus(ctx, a.Calendars, q)
	switch {
	case errors.Is(err, store.ErrUnknownCalendar), errors.Is(err, store.ErrInvalidCalendar):
		return d, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeFreezeUnknown, err)
	case err != nil:
		return d, fmt.Errorf("freeze status of %s in %s: %w", q.ReleaseID, q.Environment, err)
	}
	return d, nil
}
