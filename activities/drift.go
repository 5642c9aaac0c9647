package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"

	"github.com/trainyard/trainyard/integrations/command"
	"github.com/trainyard/trainyard/runbooks"
)

// DriftResult says whether a target's live state still is what the last release left.
type DriftResult struct {
	Drifted bool `json:"drifted"`
	// Detail says what differs (or that nothing does), for the timeline and status.
	Detail string `json:"detail,omitempty"`
}

// driftExitCode is what a drift command exits with when the target drifted, as diff(1) does
// when files differ; 0 is "matches" and anything else "could not tell".
const driftExitCode = 1

// CheckDrift compares a target's live state with what the last release left: an argocd app's
// sync status, or a command target's drift command (TRAINYARD_OPERATION=drift, with the
// previous version). Kinds without a drift check never drift.
func (a *Activities) CheckDrift(ctx context.Context, req TargetRequest) (DriftResult, error) {
	switch req.Target.Kind {
	case runbooks.KindArgoCD:
		return a.driftArgoCD(ctx, req)
	case runbooks.KindCommand, "":
		if req.Target.Drift == "" {
			return DriftResult{}, nil
		}
	default:
		return DriftResult{}, nil
	}
	res, err := a.runCommand(ctx, OpDrift, req.Target.Drift, req.Version, req, nil)
	if err == nil {
		return DriftResult{Detail: "the drift command found nothing: " + orDash(command.LastLine(res.Output))}, nil
	}
	var appErr *temporal.ApplicationError
	var fail CommandFailure
	if errors.As(err, &appErr) && appErr.Type() == ErrTypeCommandFailed && appErr.HasDetails() && appErr.Details(&fail) == nil &&
		!fail.TimedOut && fail.ExitCode == driftExitCode {
		return DriftResult{Drifted: true, Detail: "the drift command says: " + orDash(command.LastLine(fail.Output))}, nil
	}
	if appErr != nil && appErr.Type() == ErrTypeCommandFailed {
		return DriftResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("drift check of %s could not tell (%s; exit 1 means drifted, 0 in sync)", req.Target.Name, appErr.Message()),
			ErrTypeCommandFailed, err, fail)
	}
	return DriftResult{}, err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
