package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
)

// acquireLock takes the environment's lock before a stage deploys, waiting in line (phase
// queued, the holder and the place in the status) while another release holds it. A newer
// release of the same runbook may supersede this one while it waits.
func (r *release) acquireLock(ctx workflow.Context, env string) (Phase, string) {
	if env == "" || r.version < versionLocks {
		return "", ""
	}
	if r.acquiring[env] {
		// Another stage of this release asks for the same environment: wait for its answer.
		if err := workflow.Await(ctx, func() bool { return !r.acquiring[env] || r.abort != nil }); err != nil {
			return PhaseFailed, fmt.Sprintf("waiting for the lock of %s: %v", env, err)
		}
		if r.abort != nil {
			return PhaseAborted, r.abortReason()
		}
	}
	if slices.Contains(r.held, env) {
		return "", ""
	}
	if r.lockRequests == nil {
		r.lockRequests, r.acquiring = map[string]int{}, map[string]bool{}
	}
	r.acquiring[env] = true
	defer delete(r.acquiring, env)
	r.lockRequests[env]++
	req := activities.LockRequest{
		Environment: env, ReleaseID: r.in.ID, Runbook: r.in.Runbook.Name, Version: r.in.Version,
		RequestedAt: r.in.RequestedAt, Attempt: r.lockRequests[env],
	}
	var g activities.LockGrant
	if err := workflow.ExecuteActivity(lockContext(ctx), acts.RequestLock, req).Get(ctx, &g); err != nil {
		return PhaseFailed, fmt.Sprintf("ask for the lock of %s: %s", env, errorMessage(err))
	}
	if !g.Granted {
		before := r.status.Phase
		r.status.Lock = &LockStatus{Environment: env, Holder: g.Holder, Position: g.Position}
		r.event(ctx, "environment %s is in use by %s; waiting in line (%d)", env, g.Holder, g.Position)
		r.setPhase(ctx, PhaseQueued)
		for granted := false; !granted; {
			if err := workflow.Await(ctx, func() bool { return r.lockUpdates.Len() > 0 || r.abort != nil }); err != nil {
				return PhaseFailed, fmt.Sprintf("waiting for the lock of %s: %v", env, err)
			}
			if r.abort != nil {
				r.giveBack(ctx, env)
				r.status.Lock = nil
				return PhaseAborted, r.abortReason()
			}
			var u LockUpdate
			r.lockUpdates.ReceiveAsync(&u)
			if u.Environment != env {
				continue
			}
			switch u.State {
			case LockGranted:
				granted = true
			case LockQueued:
				r.status.Lock.Holder, r.status.Lock.Position = u.Holder, u.Position
			case LockSuperseded:
				r.status.Lock = nil
				return PhaseSuperseded, fmt.Sprintf("superseded by %s, a newer release of %s, while waiting for %s", u.By, r.in.Runbook.Name, env)
			}
		}
		r.status.Lock = nil
		r.setPhase(ctx, before)
	}
	r.held = append(r.held, env)
	r.event(ctx, "holds the lock of %s", env)
	return "", ""
}

// releaseFinishedLocks gives back the locks of environments no stage still needs. The last
// stage's environment stays locked through stabilization and rollback: the release is not
// done with it until it ends.
func (r *release) releaseFinishedLocks(ctx workflow.Context) {
	stages := r.in.Runbook.Stages
	final := r.in.Runbook.FinalEnvironment()
	for _, env := range slices.Clone(r.held) {
		if env == final {
			continue
		}
		needed := false
		for i, s := range stages {
			if s.Environment == env && r.status.Stages[i].State != StateSucceeded {
				needed = true
			}
		}
		if !needed {
			r.giveBack(ctx, env)
		}
	}
}

// releaseLocks gives back every lock the release holds; it runs as the release ends.
func (r *release) releaseLocks(ctx workflow.Context) {
	for _, env := range slices.Clone(r.held) {
		r.giveBack(ctx, env)
	}
}

// giveBack tells an environment's lock that this release leaves it (or its queue). Sent on a
// disconnected context, so an aborted release still frees the environment.
func (r *release) giveBack(ctx workflow.Context, env string) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	err := workflow.SignalExternalWorkflow(dctx, LockWorkflowID(env), "", SignalLockRelease, activities.LockRelease{ReleaseID: r.in.ID}).Get(dctx, nil)
	if err != nil {
		// The lock workflow checks its holder's liveness, so a lost release heals itself.
		workflow.GetLogger(ctx).Warn("give back the lock", "environment", env, "error", err)
	}
	r.held = slices.DeleteFunc(r.held, func(e string) bool { return e == env })
}

// lockContext is for lock requests: retried while Temporal is briefly unreachable.
func lockContext(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           TaskQueue,
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			NonRetryableErrorTypes: []string{"Misconfigured"},
		},
	})
}

// awaitReservation holds the release before a stage while another holder's reservation of
// the stage's environment is active, asking again at its end (or every 15 minutes, so a
// cancelled reservation frees the release soon).
func (r *release) awaitReservation(ctx workflow.Context, stage runbooks.Stage) (Phase, string) {
	if r.version < versionEnvironments || stage.Environment == "" {
		return "", ""
	}
	waited := false
	for {
		var w store.ReservationWait
		req := activities.ReservationRequest{Environment: stage.Environment, Runbook: r.in.Runbook.Name, ReleaseID: r.in.ID}
		if err := workflow.ExecuteActivity(recordContext(ctx), acts.ReservationStatus, req).Get(ctx, &w); err != nil {
			return PhaseFailed, "reservation check before stage " + stage.Name + ": " + errorMessage(err)
		}
		if !w.Blocked {
			if waited {
				r.status.Reservation = nil
				r.event(ctx, "environment %s is free of reservations", stage.Environment)
			}
			return "", ""
		}
		if !waited {
			r.event(ctx, "environment %s is reserved for %s until %s (%s); waiting", stage.Environment, w.Holder, w.Until.Format(time.RFC3339), w.Reason)
			waited = true
		}
		until := w.Until
		r.status.Reservation = &ReservationStatus{Environment: stage.Environment, Holder: w.Holder, Until: &until, Reason: w.Reason}
		r.setPhase(ctx, PhaseQueued)
		wait := max(min(until.Sub(workflow.Now(ctx)), freezeRecheck), time.Second)
		aborted, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return r.abort != nil })
		if err != nil {
			return PhaseFailed, fmt.Sprintf("waiting out a reservation: %v", err)
		}
		if aborted {
			r.status.Reservation = nil
			return PhaseAborted, r.abortReason()
		}
	}
}

// recordPromotions stores the components, by artifact, that the stage promoted: promotion
// moves the same digests through every stage, and the store shows it.
func (r *release) recordPromotions(ctx workflow.Context, stage runbooks.Stage) {
	if r.version < versionEnvironments || len(r.in.Components) == 0 {
		return
	}
	now := workflow.Now(ctx)
	ps := make([]store.Promotion, 0, len(r.in.Components))
	for _, c := range r.in.Components {
		ps = append(ps, store.Promotion{
			ReleaseID: r.in.ID, Stage: stage.Name, Environment: stage.Environment,
			Component: c.Name, Version: c.Version, Artifact: c.Artifact, PromotedAt: now,
		})
	}
	if err := workflow.ExecuteActivity(recordContext(ctx), acts.RecordPromotions, ps).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("record promotions", "stage", stage.Name, "error", err)
	}
}
