package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/activity"

	"github.com/trainyard/trainyard/integrations/flags"
)

// FlagUndo is a flag's state before the release touched it: a rollback restores it, which
// turns a flag that was off back off (the kill switch).
type FlagUndo struct {
	Project     string          `json:"project"`
	Flag        string          `json:"flag"`
	Environment string          `json:"environment"`
	Previous    flags.FlagState `json:"previous"`
}

// defaultFlagProject is Unleash's project when a target names none.
const defaultFlagProject = "default"

func (a *Activities) flagsFor(req TargetRequest) (flags.Manager, error) {
	if req.Target.Flag == nil {
		return nil, badTarget(req, "flag")
	}
	if a.Deploy.Flags == nil {
		return nil, misconfigured(req, "Unleash", "rollout.unleash.url and rollout.unleash.token (TRAINYARD_UNLEASH_URL, TRAINYARD_UNLEASH_TOKEN)")
	}
	return a.Deploy.Flags, nil
}

func flagProject(req TargetRequest) string {
	if p := req.Target.Flag.Project; p != "" {
		return p
	}
	return defaultFlagProject
}

// deployFlag records the flag's state, sets its gradual rollout (the canary step's weight, or
// the target's percent, 100 when it gives none) and switches it on.
func (a *Activities) deployFlag(ctx context.Context, req TargetRequest) (TargetResult, error) {
	m, err := a.flagsFor(req)
	if err != nil {
		return TargetResult{}, err
	}
	t := req.Target.Flag
	project := flagProject(req)
	what := fmt.Sprintf("roll out flag %s in %s", t.Flag, t.Environment)
	var undo FlagUndo
	// The state before the release is read once: a retry must not take the half-done
	// rollout of its previous attempt for it.
	if !activity.HasHeartbeatDetails(ctx) || activity.GetHeartbeatDetails(ctx, &undo) != nil || undo.Flag == "" {
		prev, err := m.State(ctx, project, t.Flag, t.Environment)
		if err != nil {
			return TargetResult{}, finalOrRetry(ctx, err, flags.IsRetryable(err), what, TargetFailure{})
		}
		undo = FlagUndo{Project: project, Flag: t.Flag, Environment: t.Environment, Previous: prev}
	}
	activity.RecordHeartbeat(ctx, undo)
	percent := req.Weight
	if percent == 0 {
		percent = t.Percent
	}
	if percent == 0 {
		percent = 100
	}
	u := &Undo{Flag: &undo}
	if err := m.SetRollout(ctx, project, t.Flag, t.Environment, percent); err != nil {
		return TargetResult{}, finalOrRetry(ctx, err, flags.IsRetryable(err), what, TargetFailure{Undo: u})
	}
	if err := m.Enable(ctx, project, t.Flag, t.Environment); err != nil {
		return TargetResult{}, finalOrRetry(ctx, err, flags.IsRetryable(err), what, TargetFailure{Undo: u})
	}
	return TargetResult{Attempt: activity.GetInfo(ctx).Attempt, Undo: u, Weight: percent,
		Output: fmt.Sprintf("flag %s on in %s for %d%% (was %s)", t.Flag, t.Environment, percent, describeFlag(undo.Previous))}, nil
}

// shiftFlag sets the flag's rollout to a canary step's weight.
func (a *Activities) shiftFlag(ctx context.Context, req TargetRequest) (TargetResult, error) {
	m, err := a.flagsFor(req)
	if err != nil {
		return TargetResult{}, err
	}
	t := req.Target.Flag
	if err := m.SetRollout(ctx, flagProject(req), t.Flag, t.Environment, req.Weight); err != nil {
		return TargetResult{}, finalOrRetry(ctx, err, flags.IsRetryable(err), fmt.Sprintf("set flag %s to %d%%", t.Flag, req.Weight), TargetFailure{Undo: req.Undo})
	}
	return TargetResult{Attempt: activity.GetInfo(ctx).Attempt, Undo: req.Undo, Weight: req.Weight,
		Output: fmt.Sprintf("flag %s in %s at %d%%", t.Flag, t.Environment, req.Weight)}, nil
}

// rollbackFlag restores the flag as the deploy found it (flags.Restore): a flag that was off
// is switched off again.
func (a *Activities) rollbackFlag(ctx context.Context, req TargetRequest) (TargetResult, error) {
	if req.Undo == nil || req.Undo.Flag == nil {
		return TargetResult{Output: "nothing to roll back: the deploy did not reach Unleash"}, nil
	}
	m, err := a.flagsFor(req)
	if err != nil {
		return TargetResult{}, err
	}
	u := req.Undo.Flag
	if err := flags.Restore(ctx, m, u.Project, u.Flag, u.Environment, u.Previous); err != nil {
		return TargetResult{}, finalOrRetry(ctx, err, flags.IsRetryable(err), fmt.Sprintf("restore flag %s in %s", u.Flag, u.Environment), TargetFailure{Undo: req.Undo})
	}
	return TargetResult{Attempt: activity.GetInfo(ctx).Attempt, Undo: req.Undo,
		Output: fmt.Sprintf("flag %s in %s restored: %s", u.Flag, u.Environment, describeFlag(u.Previous))}, nil
}

func describeFlag(s flags.FlagState) string {
	state := "off"
	if s.Enabled {
		state = "on"
	}
	if s.StrategyID != "" {
		return fmt.Sprintf("%s at %d%%", state, s.Percent)
	}
	return state
}
