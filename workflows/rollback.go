package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
)

// Rollback scopes (runbooks' rollback.scope).
const (
	ScopeRelease = "release"
	ScopeStage   = "stage"
	ScopeTarget  = "target"
)

// Circuit breakers are checked again after each wait, doubling from breakerRecheckMin up to
// breakerRecheckMax: a cleared breaker lets waiting releases on within minutes, and a breaker
// open for a week adds a few thousand events to a waiting release's history.
const (
	breakerRecheckMin = 10 * time.Second
	breakerRecheckMax = 5 * time.Minute
)

// undo ends a release that did not succeed: fixed forward (nothing is undone), or rolled back
// for the runbook's scope, after which the runbook's circuit breaker trips. It returns the
// phase the release ends in and why. Releases started before versionStabilization roll back
// everything, as they always did.
func (r *release) undo(ctx workflow.Context, end Phase, failure string) (Phase, string) {
	if r.stabVersion(ctx) < versionStabilization {
		if !r.rollback(ctx, failure) {
			end = PhaseFailed
		}
		return end, failure
	}
	s := r.stabState()
	if d := s.fixForward; d != nil {
		r.ending = true
		r.status.Failure = failure
		r.event(ctx, "not rolling back: %s fixes forward", d.Actor)
		r.recordIncident(ctx, end)
		r.drainBackground(ctx)
		return end, failure
	}
	if d := s.rollbackOrder; d != nil {
		if end == PhaseAborted {
			// The order stopped a stage or a wait the way an abort does; it is a rollback.
			end, failure = PhaseRolledBack, fmt.Sprintf("rollback ordered by %s: %s", d.Actor, d.Comment)
		}
		if r.status.Breach == nil || r.status.Breach.Decision != d {
			r.recordOperatorDecision(ctx, rollbackGate, d)
		}
	}
	if !r.rollback(ctx, failure) {
		end = PhaseFailed
	}
	if r.status.Rollback != nil && (end == PhaseRolledBack || end == PhaseFailed) {
		r.tripBreakers(ctx)
	}
	if r.status.Breach != nil || (r.status.Rollback != nil && (end == PhaseRolledBack || end == PhaseFailed)) {
		r.recordIncident(ctx, end)
	}
	r.drainBackground(ctx)
	return end, failure
}

// rollback undoes what the release deployed, last deployed first, and reports whether every
// undo succeeded. It goes on past a failed undo so one broken target does not leave the
// others deployed.
func (r *release) rollback(ctx workflow.Context, why string) bool {
	if r.stabVersion(ctx) < versionStabilization {
		return r.rollbackEverything(ctx, why)
	}
	r.ending = true
	if why != "" {
		r.status.Failure = why
	}
	plan, scope := r.undoPlan()
	if len(plan) == 0 {
		return true
	}
	budget := runbooks.Duration(0)
	if rb := r.in.Runbook.Rollback; rb != nil {
		budget = rb.Budget
	}
	started := workflow.Now(ctx)
	rs := &RollbackStatus{Scope: scope, Reason: why, StartedAt: started, Budget: budget, OrderedBy: r.stabState().rollbackOrder}
	r.status.Rollback = rs
	r.event(ctx, "rolling back %d target(s), scope %s", len(plan), scope)
	// Rollback must run even when the release's context was cancelled.
	rctx, _ := workflow.NewDisconnectedContext(ctx)

	done := false
	if budget > 0 {
		workflow.Go(rctx, func(gctx workflow.Context) {
			finished, err := workflow.AwaitWithTimeout(gctx, budget.D(), func() bool { return done })
			if err == nil && !finished {
				r.budgetExceeded(gctx, budget)
			}
		})
	}
	// The first undo starts before anything else is waited for: markers and the phase's
	// record run alongside it.
	ok := true
	stage, stageOK := -1, true
	endStage := func() {
		if stage >= 0 {
			r.marker(rctx, store.MarkerRollback, stage, true, outcomeOf(stageOK))
		}
	}
	phaseSet := false
	for _, p := range plan {
		si, ti := p[0], p[1]
		st := r.in.Runbook.Stages[si]
		target := st.Targets[ti]
		if si != stage {
			endStage()
			stage, stageOK = si, true
			r.marker(rctx, store.MarkerRollback, si, false, "")
		}
		ts := &r.status.Stages[si].Targets[ti]
		ts.State = StateRollingBack
		rs.Steps = append(rs.Steps, RollbackStep{Stage: st.Name, Target: target.Name, State: StateRollingBack, StartedAt: workflow.Now(ctx)})
		step := &rs.Steps[len(rs.Steps)-1]
		r.event(ctx, "rolling back %s", target.Name)
		// Undo is what the target's deploy left for its rollback (a cloud target's previous
		// revision, a flag's previous rollout, a fleet's flashed devices, a blue-green side).
		req := activities.TargetRequest{
			ReleaseID: r.in.ID, Runbook: r.in.Runbook.Name, Stage: st.Name, Environment: st.Environment,
			Target: target, Version: r.in.Version, PreviousVersion: r.status.PreviousVersion, Undo: ts.Undo,
		}
		if st.Strategy != nil {
			req.Strategy = st.Strategy.Type
		}
		fut := workflow.ExecuteActivity(targetActivityContext(rctx, target), acts.RollbackTarget, req)
		if !phaseSet {
			r.setPhase(ctx, PhaseRollingBack)
			phaseSet = true
		}
		var out activities.TargetResult
		err := fut.Get(rctx, &out)
		now := workflow.Now(ctx)
		step.EndedAt = &now
		if err != nil {
			ok, stageOK = false, false
			ts.State, ts.Error = StateRollbackErr, errorMessage(err)
			step.State, step.Error = StateRollbackErr, ts.Error
			var fail activities.CommandFailure
			var appErr *temporal.ApplicationError
			if errors.As(err, &appErr) && appErr.HasDetails() && appErr.Details(&fail) == nil {
				step.Output = fail.Output
			}
			r.event(ctx, "rollback of %s failed: %s", target.Name, ts.Error)
			continue
		}
		ts.State = StateRolledBack
		step.State, step.Output = StateRolledBack, out.Output
		r.event(ctx, "%s rolled back", target.Name)
	}
	endStage()
	now := workflow.Now(ctx)
	rs.EndedAt = &now
	done = true
	took := roundDuration(now.Sub(started))
	switch {
	case rs.BudgetExceededAt != nil:
		r.event(ctx, "rollback finished after %s, over its budget of %s", took, budget)
	case budget > 0:
		r.event(ctx, "rollback finished after %s, within its budget of %s", took, budget)
	default:
		r.event(ctx, "rollback finished after %s", took)
	}
	if !ok {
		r.status.Failure = joinNonEmpty(r.status.Failure, "rollback incomplete: some targets could not be rolled back, see their errors")
	}
	return ok
}

// rollbackEverything is the rollback of releases started before versionStabilization: every
// deployed target, last first. Its commands must stay exactly as they were.
func (r *release) rollbackEverything(ctx workflow.Context, why string) bool {
	r.ending = true
	if why != "" {
		r.status.Failure = why
	}
	if len(r.deployed) == 0 {
		return true
	}
	r.event(ctx, "rolling back %d target(s)", len(r.deployed))
	r.setPhase(ctx, PhaseRollingBack)
	// Rollback must run even when the release's context was cancelled.
	rctx, _ := workflow.NewDisconnectedContext(ctx)
	ok := true
	for i := len(r.deployed) - 1; i >= 0; i-- {
		si, ti := r.deployed[i][0], r.deployed[i][1]
		stage := r.in.Runbook.Stages[si]
		target := stage.Targets[ti]
		ts := &r.status.Stages[si].Targets[ti]
		ts.State = StateRollingBack
		r.event(ctx, "rolling back %s", target.Name)
		req := activities.TargetRequest{
			ReleaseID: r.in.ID, Runbook: r.in.Runbook.Name, Stage: stage.Name, Environment: stage.Environment,
			Target: target, Version: r.in.Version, PreviousVersion: r.status.PreviousVersion,
		}
		var out activities.TargetResult
		if err := workflow.ExecuteActivity(targetActivityContext(rctx, target), acts.RollbackTarget, req).Get(rctx, &out); err != nil {
			ok = false
			ts.State, ts.Error = StateRollbackErr, errorMessage(err)
			r.event(ctx, "rollback of %s failed: %s", target.Name, ts.Error)
			continue
		}
		ts.State, ts.Output = StateRolledBack, out.Output
		r.event(ctx, "%s rolled back", target.Name)
	}
	if !ok {
		r.status.Failure = joinNonEmpty(r.status.Failure, "rollback incomplete: some targets could not be rolled back, see their errors")
	}
	return ok
}

// undoPlan is what a rollback undoes, in order, and the scope that chose it:
//   - release: every deployed target, last deployed first;
//   - stage: the deployed targets of the stage that failed or was stopped, or (after the
//     last stage: a breach, a rollback order) of the stage deployed last;
//   - target: the target that failed (its rollback runs although its deploy did not finish:
//     a half-done deploy is what there is to undo), or else the one deployed last.
func (r *release) undoPlan() ([][2]int, string) {
	scope := ScopeRelease
	if rb := r.in.Runbook.Rollback; rb != nil && rb.Scope != "" {
		scope = rb.Scope
	}
	rev := make([][2]int, 0, len(r.deployed))
	for i := len(r.deployed) - 1; i >= 0; i-- {
		rev = append(rev, r.deployed[i])
	}
	switch scope {
	case ScopeStage:
		focus := r.focusStage()
		var out [][2]int
		for _, p := range rev {
			if p[0] == focus {
				out = append(out, p)
			}
		}
		return out, scope
	case ScopeTarget:
		for si, s := range r.status.Stages {
			for ti, t := range s.Targets {
				if t.State == StateFailed {
					return [][2]int{{si, ti}}, scope
				}
			}
		}
		if len(rev) > 0 {
			return rev[:1], scope
		}
		return nil, scope
	}
	return rev, ScopeRelease
}

// focusStage is the stage a stage-scoped rollback undoes: the one that failed or was
// stopped, else the one the release was in, else the one deployed last.
func (r *release) focusStage() int {
	for i, s := range r.status.Stages {
		if s.State == StateFailed || s.State == StateCancelled || s.State == StateRunning {
			return i
		}
	}
	if r.status.CurrentStage != "" {
		for i, s := range r.status.Stages {
			if s.Name == r.status.CurrentStage {
				return i
			}
		}
	}
	if n := len(r.deployed); n > 0 {
		return r.deployed[n-1][0]
	}
	return -1
}

// budgetExceeded tells the rollback authority, the status and the audit trail (through
// Notify) that the rollback runs over its budget.
func (r *release) budgetExceeded(ctx workflow.Context, budget runbooks.Duration) {
	now := workflow.Now(ctx)
	r.status.Rollback.BudgetExceededAt = &now
	roles := r.in.Runbook.RollbackAuthority
	r.event(ctx, "rollback still running after its budget of %s: escalated to %s", budget, joinRoles(roles))
	pending := []string{}
	for _, s := range r.status.Rollback.Steps {
		if s.EndedAt == nil {
			pending = append(pending, s.Target)
		}
	}
	r.notify(ctx, activities.NotifyRollbackBudget, roles, fmt.Sprintf(
		"The rollback of release %s (%s %s) is still running after its budget of %s (started %s; running: %s). Reason: %s",
		r.in.ID, r.in.Runbook.Name, r.in.Version, budget, r.status.Rollback.StartedAt.Format(time.RFC3339),
		strings.Join(pending, ", "), r.status.Rollback.Reason))
}

// tripBreakers opens the runbook's circuit breaker after a rollback, so further releases of
// the runbook (or into the environments rolled back) wait until someone clears it.
func (r *release) tripBreakers(ctx workflow.Context) {
	rb := r.in.Runbook.Rollback
	if rb == nil || rb.CircuitBreaker == nil {
		return
	}
	req := activities.TripRequest{
		ReleaseID: r.in.ID, Scope: rb.CircuitBreaker.Scope, Reason: r.status.Failure,
		Roles: r.in.Runbook.RollbackAuthority, At: workflow.Now(ctx),
	}
	if req.Scope == store.BreakerEnvironment {
		for _, step := range r.status.Rollback.Steps {
			if env := r.stageEnvironment(step.Stage); env != "" && !slices.Contains(req.Names, env) {
				req.Names = append(req.Names, env)
			}
		}
	} else {
		req.Scope, req.Names = store.BreakerRunbook, []string{r.in.Runbook.Name}
	}
	if len(req.Names) == 0 {
		return
	}
	var tripped []store.CircuitBreaker
	rctx, _ := workflow.NewDisconnectedContext(ctx)
	if err := workflow.ExecuteActivity(recordContext(rctx), acts.TripCircuitBreakers, req).Get(rctx, &tripped); err != nil {
		r.event(ctx, "circuit breaker not tripped: %s", errorMessage(err))
		return
	}
	for _, b := range tripped {
		name := b.Scope + "/" + b.Name
		r.status.Rollback.CircuitBreakers = append(r.status.Rollback.CircuitBreakers, name)
		held := "releases of runbook " + b.Name
		if b.Scope == store.BreakerEnvironment {
			held = "releases into " + b.Name
		}
		r.event(ctx, "circuit breaker %s tripped: further %s wait until someone with role %s clears it (POST /api/v1/circuit-breakers/%s/clear)",
			name, held, joinRoles(b.Roles), name)
	}
}

func (r *release) stageEnvironment(stage string) string {
	for _, s := range r.in.Runbook.Stages {
		if s.Name == stage {
			return s.Environment
		}
	}
	return ""
}

// awaitCircuitBreakers holds a release before it starts while an open circuit breaker holds
// its runbook or one of its environments, checking again with growing pauses. It returns ""
// when the release may start, or how it ends (aborted while it waited).
func (r *release) awaitCircuitBreakers(ctx workflow.Context) (Phase, string) {
	if r.stabVersion(ctx) < versionStabilization {
		return "", ""
	}
	q := activities.BreakerQuery{Runbook: r.in.Runbook.Name}
	for _, s := range r.in.Runbook.Stages {
		if s.Environment != "" && !slices.Contains(q.Environments, s.Environment) {
			q.Environments = append(q.Environments, s.Environment)
		}
	}
	wait := breakerRecheckMin
	held := false
	for {
		var open []store.CircuitBreaker
		if err := workflow.ExecuteActivity(recordContext(ctx), acts.OpenCircuitBreakers, q).Get(ctx, &open); err != nil {
			return PhaseFailed, "check circuit breakers: " + errorMessage(err)
		}
		if len(open) == 0 {
			if held {
				r.status.CircuitBreakers = nil
				r.event(ctx, "circuit breakers cleared: the release goes on")
			}
			return "", ""
		}
		now := make([]BreakerStatus, 0, len(open))
		for _, b := range open {
			now = append(now, BreakerStatus{Scope: b.Scope, Name: b.Name, TrippedBy: b.ReleaseID, Reason: b.Reason, TrippedAt: b.TrippedAt, Roles: b.Roles})
		}
		if !sameBreakers(r.status.CircuitBreakers, now) {
			for _, b := range now {
				r.event(ctx, "held by circuit breaker %s/%s, tripped by release %s at %s (%s): someone with role %s must clear it (POST /api/v1/circuit-breakers/%s/%s/clear)",
					b.Scope, b.Name, b.TrippedBy, b.TrippedAt.Format(time.RFC3339), b.Reason, joinRoles(b.Roles), b.Scope, b.Name)
			}
		}
		r.status.CircuitBreakers = now
		if !held {
			held = true
			r.setPhase(ctx, PhaseBlocked)
		}
		aborted, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return r.abort != nil })
		if err != nil {
			return PhaseFailed, fmt.Sprintf("waiting for circuit breakers: %v", err)
		}
		if aborted {
			return PhaseAborted, r.abortReason()
		}
		wait = min(2*wait, breakerRecheckMax)
	}
}

func sameBreakers(a, b []BreakerStatus) bool {
	return slices.EqualFunc(a, b, func(x, y BreakerStatus) bool {
		return x.Scope == y.Scope && x.Name == y.Name && x.TrippedBy == y.TrippedBy
	})
}

// beforeStage runs before stage i starts deploying: baselines before production, and the
// deploy's start marker.
func (r *release) beforeStage(ctx workflow.Context, i int) {
	r.captureBaselines(ctx, i)
	if r.stabVersion(ctx) >= versionStabilization {
		r.marker(ctx, store.MarkerDeploy, i, false, "")
	}
}

// afterStage records the end of stage i's deploy: err is the stage's result.
func (r *release) afterStage(ctx workflow.Context, i int, err error) {
	if r.stabVersion(ctx) < versionStabilization {
		return
	}
	outcome := StateSucceeded
	switch {
	case r.abort != nil:
		outcome = StateCancelled
	case err != nil:
		outcome = StateFailed
	}
	r.marker(ctx, store.MarkerDeploy, i, true, outcome)
}

// marker records the start or end of stage i's deploy or rollback alongside the release.
func (r *release) marker(ctx workflow.Context, action string, i int, end bool, outcome string) {
	st := r.in.Runbook.Stages[i]
	req := activities.MarkerRequest{
		ReleaseID: r.in.ID, Runbook: r.in.Runbook.Name, Version: r.in.Version, Environment: st.Environment,
		Stage: st.Name, Action: action, End: end, Outcome: outcome, At: workflow.Now(ctx),
	}
	r.background(ctx, workflow.ExecuteActivity(sideContext(ctx), acts.RecordMarker, req))
}

func outcomeOf(ok bool) string {
	if ok {
		return StateSucceeded
	}
	return StateFailed
}

// recordOperatorDecision stores a decision taken through an Update with the approvals.
func (r *release) recordOperatorDecision(ctx workflow.Context, gate string, d *Decision) {
	rec := store.DecisionRecord{ReleaseID: r.in.ID, Gate: gate, Actor: d.Actor, Decision: d.Decision, Comment: d.Comment, DecidedAt: d.At}
	r.background(ctx, workflow.ExecuteActivity(sideContext(ctx), acts.RecordDecision, rec))
}

// registerRollbackHandlers installs the rollback and fix-forward Updates. Their validators
// refuse, before anything enters history, whoever lacks the rollback authority, and a request
// the release's state makes meaningless.
func (r *release) registerRollbackHandlers(ctx workflow.Context) error {
	s := r.stabState()
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRollback,
		func(ctx workflow.Context, req OperatorRequest) (OperatorResult, error) {
			d := &Decision{Actor: req.Actor.Name, Roles: req.Actor.Roles, Decision: DecisionRollback, Comment: req.Reason, At: workflow.Now(ctx)}
			s.rollbackOrder = d
			if r.status.Breach != nil && r.status.Phase == PhaseBreached {
				r.status.Breach.Decision = d
			}
			// The order stops whatever the release waits for, the way an abort does.
			r.abort = &AbortRequest{Actor: req.Actor, Reason: "rollback ordered: " + req.Reason}
			r.event(ctx, "%s ordered a rollback: %s", req.Actor.Name, req.Reason)
			return OperatorResult{Phase: r.status.Phase}, nil
		},
		workflow.UpdateHandlerOptions{Validator: r.validateRollback}); err != nil {
		return fmt.Errorf("register rollback update: %w", err)
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateFixForward,
		func(ctx workflow.Context, req OperatorRequest) (OperatorResult, error) {
			d := &Decision{Actor: req.Actor.Name, Roles: req.Actor.Roles, Decision: DecisionFixForward, Comment: req.Reason, At: workflow.Now(ctx)}
			s.fixForward = d
			r.status.Breach.Decision = d
			r.event(ctx, "%s chose to fix forward: %s", req.Actor.Name, req.Reason)
			return OperatorResult{Phase: r.status.Phase}, nil
		},
		workflow.UpdateHandlerOptions{Validator: r.validateFixForward}); err != nil {
		return fmt.Errorf("register fix-forward update: %w", err)
	}
	return nil
}

func (r *release) validateRollback(_ workflow.Context, req OperatorRequest) error {
	if err := r.validateAuthority("order a rollback of", req); err != nil {
		return err
	}
	s := r.stabState()
	switch {
	case r.status.Phase.Terminal():
		return refuse(ErrTypeConflict, "release %s has already ended (%s): a rollback is possible until its stabilization window ends", r.in.ID, r.status.Phase)
	case s.rollbackOrder != nil:
		return refuse(ErrTypeConflict, "%s already ordered the rollback of release %s", s.rollbackOrder.Actor, r.in.ID)
	case s.fixForward != nil:
		return refuse(ErrTypeConflict, "%s chose to fix release %s forward; it is not rolled back", s.fixForward.Actor, r.in.ID)
	case r.abort != nil || r.ending:
		return refuse(ErrTypeConflict, "release %s is already ending or rolling back", r.in.ID)
	case len(r.deployed) == 0 && r.status.Phase != PhaseDeploying:
		return refuse(ErrTypeConflict, "release %s has deployed nothing yet (it is %s): abort it instead", r.in.ID, r.status.Phase)
	}
	return nil
}

func (r *release) validateFixForward(_ workflow.Context, req OperatorRequest) error {
	if err := r.validateAuthority("fix forward", req); err != nil {
		return err
	}
	if rb := r.in.Runbook.Rollback; rb == nil || !rb.ForwardFix {
		return refuse(ErrTypeForbidden, "runbook %s does not allow fixing forward (rollback.forwardFix is off): roll back instead", r.in.Runbook.Name)
	}
	s := r.stabState()
	switch {
	case s.fixForward != nil || s.rollbackOrder != nil:
		d := s.fixForward
		if d == nil {
			d = s.rollbackOrder
		}
		return refuse(ErrTypeConflict, "%s already decided the breach of release %s (%s)", d.Actor, r.in.ID, d.Decision)
	case r.status.Phase != PhaseBreached || r.status.Breach == nil:
		return refuse(ErrTypeConflict, "release %s has no breach awaiting a decision (it is %s): fixing forward is a decision on a breached stabilization window", r.in.ID, r.status.Phase)
	}
	return nil
}

// validateAuthority checks what both decisions need: a named actor with one of the rollback
// authority's roles, and a reason.
func (r *release) validateAuthority(what string, req OperatorRequest) error {
	switch {
	case req.Actor.Name == "":
		return refuse(ErrTypeInvalid, "the request carries no actor")
	case strings.TrimSpace(req.Reason) == "":
		return refuse(ErrTypeInvalid, "a reason is required: say why, for the incident report")
	case len(r.in.Runbook.RollbackAuthority) == 0:
		return refuse(ErrTypeForbidden, "%s cannot %s release %s: runbook %s names no rollbackAuthority", req.Actor.Name, what, r.in.ID, r.in.Runbook.Name)
	case !req.Actor.HasAnyRole(r.in.Runbook.RollbackAuthority):
		return refuse(ErrTypeForbidden, "%s cannot %s release %s: it needs one of the roles %s (rollbackAuthority)", req.Actor.Name, what, r.in.ID, joinRoles(r.in.Runbook.RollbackAuthority))
	}
	return nil
}

// roundDuration keeps a duration readable: milliseconds under a second, else seconds.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}
