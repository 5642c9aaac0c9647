package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/policy"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
)

// ErrTypeRolledBack is the failure type of a release that failed and was rolled back, so the
// Temporal UI shows it red while rejected and aborted releases (human decisions) complete.
const ErrTypeRolledBack = "ReleaseRolledBack"

// release is the state of one ReleaseWorkflow. Only the workflow's own code touches it; the
// Update handlers change it and the main loop reacts through workflow.Await.
type release struct {
	in     ReleaseInput
	status ReleaseStatus
	seq    int64
	abort  *AbortRequest
	// ending is set once rollback or the end has begun: an abort can no longer change anything.
	ending bool
	// change is the ITSM change request opened for the release, when the runbook files one.
	change *activities.ChangeRef
	// deployed lists (stage, target) indexes in the order their deploys finished: rollback
	// walks it backwards.
	deployed [][2]int
	// gates are the approval gates this release waits at: the runbook's whose when holds,
	// and the CAB's when it is required.
	gates []runbooks.ApprovalGate
	// assessment is the release's risk and the conditions' verdicts (versionGovernance on).
	assessment *activities.Assessment
	// version is the workflow version this run follows (see versionGovernance).
	version workflow.Version
	slack   *slackRefs // where the release's Slack messages are (publish.go)
	// held lists the environments whose locks the release holds, in the order taken;
	// lockRequests counts its requests per environment; lockUpdates is where locks answer.
	held         []string
	lockRequests map[string]int
	lockUpdates  workflow.ReceiveChannel
	// acquiring marks the environments whose lock a coroutine is asking for: parallel
	// stages in one environment share one request, so a grant is never taken by the wrong
	// waiter.
	acquiring map[string]bool
	// evidenceSeq numbers the incident's status writes (nextEvidence).
	evidenceSeq int64
	// paused holds the release before its next stage; pausedBy says who and why.
	paused   bool
	pausedBy *OperatorRequest
	// stab is the stabilization and rollback phase's state (stabilize.go, rollback.go).
	stab *stabilization
}

// ReleaseWorkflow runs one release from request to done or rolled back: approvals before the
// stages that need them, one StageWorkflow child per stage, a stabilization window, and
// compensation in reverse order on failure, rejection or abort.
func ReleaseWorkflow(ctx workflow.Context, in ReleaseInput) (ReleaseStatus, error) {
	r := newRelease(ctx, in)
	if err := r.registerHandlers(ctx); err != nil {
		return r.status, err
	}
	progress := workflow.GetSignalChannel(ctx, SignalTargetProgress)
	r.lockUpdates = workflow.GetSignalChannel(ctx, SignalLockUpdate)

	r.event(ctx, "release requested by %s", in.Requester.Name)
	r.setPhase(ctx, PhasePending)

	var prev string
	if err := workflow.ExecuteActivity(recordContext(ctx), acts.PreviousVersion,
		activities.PreviousVersionRequest{Runbook: in.Runbook.Name, ReleaseID: in.ID}).Get(ctx, &prev); err != nil {
		return r.status, fmt.Errorf("look up previous version: %w", err)
	}
	r.status.PreviousVersion = prev

	r.version = workflow.GetVersion(ctx, "governance", workflow.DefaultVersion, versionLatest)
	end, failure := r.awaitCircuitBreakers(ctx)
	if end == "" && r.version >= versionGovernance {
		end, failure = r.assess(ctx)
		if end == "" {
			end, failure = r.readiness(ctx)
		}
		if end == "" {
			end, failure = r.checkPolicies(ctx, policy.AtStart, nil)
		}
	}
	if end == "" {
		end, failure = r.openChange(ctx)
	}
	if end == "" {
		end, failure = r.runStages(ctx, progress)
	}
	if end == PhaseSucceeded {
		end, failure = r.stabilize(ctx)
	}
	switch end {
	case PhaseSucceeded:
	case PhaseSuperseded:
		// The newer release that took this one's place has deployed over what this one
		// deployed: rolling back would undo the newer release's work.
		r.status.Failure = failure
	default:
		end, failure = r.undo(ctx, end, failure)
	}
	return r.finish(ctx, end, failure)
}

func newRelease(ctx workflow.Context, in ReleaseInput) *release {
	st := ReleaseStatus{
		ID: in.ID, Runbook: in.Runbook.Name, RunbookHash: in.RunbookHash, Version: in.Version, Requester: in.Requester,
		Components: in.Components, Phase: PhasePending, StartedAt: workflow.Now(ctx), PreMortem: in.Runbook.PreMortem,
		Labels: in.Labels,
	}
	for i, s := range in.Runbook.Stages {
		ss := StageStatus{Name: s.Name, Environment: s.Environment, State: StatePending, NotExercisedBefore: in.Runbook.NotExercisedBefore(i)}
		for _, t := range s.Targets {
			ss.Targets = append(ss.Targets, TargetStatus{Name: t.Name, Kind: t.Kind, Site: t.Site, State: StatePending})
		}
		st.Stages = append(st.Stages, ss)
	}
	for _, g := range in.Runbook.Approvals {
		st.Approvals = append(st.Approvals, ApprovalStatus{
			Gate: g.Name, Before: g.Before, Roles: g.Roles, Required: g.RequiredCount(), DistinctRoles: g.DistinctRoles, State: GatePending,
		})
	}
	return &release{in: in, status: st, gates: slices.Clone(in.Runbook.Approvals)}
}

// runStages deploys stage after stage. It returns PhaseSucceeded when all are deployed, or the
// phase the release ends in and why.
func (r *release) runStages(ctx workflow.Context, progress workflow.ReceiveChannel) (Phase, string) {
	if r.in.Runbook.HasDAG() {
		return r.runStageGraph(ctx, progress)
	}
	for i := range r.in.Runbook.Stages {
		if end, why := r.enterStage(ctx, i); end != "" {
			return end, why
		}
		child := r.startStage(ctx, i)
		cancelled := false
		for !child.future.IsReady() {
			_ = workflow.Await(ctx, func() bool {
				return child.future.IsReady() || progress.Len() > 0 || (r.abort != nil && !cancelled)
			})
			r.drainProgress(ctx, progress)
			if r.abort != nil && !cancelled {
				r.event(ctx, "abort requested by %s: stopping stage %s", r.abort.Actor.Name, child.name)
				child.cancel()
				cancelled = true
			}
		}
		err := child.future.Get(ctx, nil)
		r.drainProgress(ctx, progress)
		if end, why := r.stageEnded(ctx, i, err); end != "" {
			return end, why
		}
	}
	return PhaseSucceeded, ""
}

// enterStage does what must happen before a stage deploys: a pause holds it, policies,
// approvals and freezes are checked, and the environment's lock is taken. It returns "" when
// the stage may start.
func (r *release) enterStage(ctx workflow.Context, i int) (Phase, string) {
	stage := r.in.Runbook.Stages[i]
	// The stage and environment the release works on, or waits to enter: a search on
	// TrainyardEnvironment finds releases held at a gate before production too.
	r.status.CurrentStage = stage.Name
	r.status.Environment = stage.Environment
	if missing := r.status.Stages[i].NotExercisedBefore; len(missing) > 0 {
		r.event(ctx, "stage %s is the first to have %s: no stage before it exercised them", stage.Name, strings.Join(missing, ", "))
	}
	if end, why := r.holdWhilePaused(ctx, stage.Name); end != "" {
		return end, why
	}
	if r.version >= versionGovernance {
		if end, why := r.checkPolicies(ctx, policy.AtStage, &stage); end != "" {
			return end, why
		}
	}
	for _, gate := range r.gates {
		if gate.Before != stage.Name {
			continue
		}
		if end, why := r.awaitApproval(ctx, gate); end != "" {
			return end, why
		}
	}
	if r.abort != nil {
		return PhaseAborted, r.abortReason()
	}
	// Since versionGovernance every stage asks: business calendars (peak seasons) apply
	// to releases whose runbook names no freeze.
	if len(r.in.Runbook.Freezes) > 0 || r.version >= versionGovernance {
		if end, why := r.awaitFreeze(ctx, stage); end != "" {
			return end, why
		}
	}
	if end, why := r.awaitReservation(ctx, stage); end != "" {
		return end, why
	}
	// A pause that came while the stage waited for approval or a freeze holds it here.
	if end, why := r.holdWhilePaused(ctx, stage.Name); end != "" {
		return end, why
	}
	return r.acquireLock(ctx, stage.Environment)
}

// stageChild is a running StageWorkflow.
type stageChild struct {
	name   string
	future workflow.ChildWorkflowFuture
	cancel workflow.CancelFunc
}

// startStage starts a stage's child workflow.
func (r *release) startStage(ctx workflow.Context, i int) stageChild {
	stage := r.in.Runbook.Stages[i]
	r.beforeStage(ctx, i)
	r.status.Stages[i].State = StateRunning
	r.event(ctx, "stage %s started", stage.Name)
	r.setPhase(ctx, PhaseDeploying)

	childCtx, cancelChild := workflow.WithCancel(ctx)
	childCtx = workflow.WithChildOptions(childCtx, workflow.ChildWorkflowOptions{
		WorkflowID:          r.in.ID + "-" + stage.Name,
		TaskQueue:           TaskQueue,
		WaitForCancellation: true,
	})
	child := workflow.ExecuteChildWorkflow(childCtx, StageWorkflow, newStageInput(r.in, stage, r.status.PreviousVersion))
	return stageChild{name: stage.Name, future: child, cancel: cancelChild}
}

// stageEnded records how a stage's child ended; it returns "" when the release goes on.
func (r *release) stageEnded(ctx workflow.Context, i int, err error) (Phase, string) {
	stage := r.in.Runbook.Stages[i]
	r.afterStage(ctx, i, err)
	switch {
	case err == nil && r.abort == nil:
		r.status.Stages[i].State = StateSucceeded
		r.event(ctx, "stage %s deployed", stage.Name)
		r.recordPromotions(ctx, stage)
		r.releaseFinishedLocks(ctx)
		r.noteChange(ctx, fmt.Sprintf("Stage %s (%s) deployed.", stage.Name, stage.Environment))
		return "", ""
	case r.abort != nil:
		r.status.Stages[i].State = StateCancelled
		return PhaseAborted, r.abortReason()
	default:
		r.status.Stages[i].State = StateFailed
		r.event(ctx, "stage %s failed", stage.Name)
		return PhaseRolledBack, errorMessage(err)
	}
}

// drainProgress applies every target event the stage children have sent. It runs in the main
// loop, never in a goroutine, so no event can be taken but not yet applied when rollback
// decides what to undo.
func (r *release) drainProgress(ctx workflow.Context, ch workflow.ReceiveChannel) {
	var p TargetProgress
	for ch.ReceiveAsync(&p) {
		si, ti, ok := r.findTarget(p.Stage, p.Target)
		if !ok {
			workflow.GetLogger(ctx).Warn("progress for an unknown target", "stage", p.Stage, "target", p.Target)
			continue
		}
		t := &r.status.Stages[si].Targets[ti]
		before := *t
		t.applyRollout(p)
		// A target that deployed, or changed something on the way (a canary's first weight,
		// a wave, an idle side), is undone on rollback: once, in the order it first did.
		if p.needsRollback() && !slices.Contains(r.deployed, [2]int{si, ti}) {
			r.deployed = append(r.deployed, [2]int{si, ti})
		}
		t.State, t.Error = p.State, p.Error
		if p.Output != "" {
			t.Output = p.Output
		}
		if p.Attempts > 0 {
			t.Attempts = p.Attempts
		}
		switch p.State {
		case StateRunning:
			if before.State != StateRunning {
				r.event(ctx, "deploying %s", p.Target)
			} else if e := progressEvent(p, before); e != "" {
				r.event(ctx, "%s", e)
			}
		case StateDeployed:
			at := p.At
			t.DeployedAt = &at
			r.event(ctx, "%s deployed", p.Target)
		case StateFailed:
			r.event(ctx, "%s failed: %s", p.Target, p.Error)
		case StateCancelled:
			r.event(ctx, "%s cancelled", p.Target)
		}
		p = TargetProgress{}
	}
}

func (r *release) findTarget(stage, target string) (int, int, bool) {
	for si, s := range r.status.Stages {
		if s.Name != stage {
			continue
		}
		for ti, t := range s.Targets {
			if t.Name == target {
				return si, ti, true
			}
		}
	}
	return 0, 0, false
}

// awaitApproval holds the release at a gate until it is approved, rejected, times out, or the
// release is aborted. It returns "" when the release may go on.
func (r *release) awaitApproval(ctx workflow.Context, gate runbooks.ApprovalGate) (Phase, string) {
	gs := r.gate(gate.Name)
	timeout := gate.TimeoutOrDefault()
	deadline := workflow.Now(ctx).Add(timeout)
	gs.State, gs.Deadline = GateWaiting, &deadline
	why := ""
	if gs.Why != "" {
		why = " (" + gs.Why + ")"
	}
	r.event(ctx, "waiting for approval %s before stage %s: %d approval(s) from %s, until %s%s",
		gate.Name, gate.Before, gs.Required, joinRoles(gate.Roles), deadline.Format(time.RFC3339), why)
	r.setPhase(ctx, PhaseAwaitingApproval)

	waiting := func() bool { return gs.State != GateWaiting || r.abort != nil }
	decided := false
	var err error
	if esc := gate.Escalation; esc != nil && esc.After.D() < timeout {
		decided, err = workflow.AwaitWithTimeout(ctx, esc.After.D(), waiting)
		if err == nil && !decided {
			r.escalate(ctx, gate, fmt.Sprintf("approval %s of release %s has waited %s; it needs %d approval(s) from %s by %s",
				gate.Name, r.in.ID, esc.After, gs.Required, joinRoles(gate.Roles), deadline.Format(time.RFC3339)))
		}
	}
	if err == nil && !decided {
		if r.version >= versionPublish {
			// Wake at each decision so the approval message shows the quorum's progress.
			for err == nil && !decided {
				seen := len(gs.Decisions)
				var woke bool
				woke, err = workflow.AwaitWithTimeout(ctx, deadline.Sub(workflow.Now(ctx)), func() bool {
					return waiting() || len(gs.Decisions) != seen
				})
				decided = err == nil && waiting()
				if err == nil && woke && !decided {
					r.publish(ctx)
					continue
				}
				break
			}
		} else {
			decided, err = workflow.AwaitWithTimeout(ctx, deadline.Sub(workflow.Now(ctx)), waiting)
		}
	}
	if err == nil && !decided && gate.OnTimeout == "wait" {
		gs.Overdue = true
		r.event(ctx, "approval %s passed its deadline; still waiting, as the runbook says", gate.Name)
		if gate.Escalation != nil && gs.EscalatedAt == nil {
			r.escalate(ctx, gate, fmt.Sprintf("approval %s of release %s is overdue: it needed %d approval(s) from %s by %s",
				gate.Name, r.in.ID, gs.Required, joinRoles(gate.Roles), deadline.Format(time.RFC3339)))
		}
		err = workflow.Await(ctx, waiting)
		decided = err == nil
	}
	if err != nil {
		return PhaseFailed, fmt.Sprintf("waiting for approval %s: %v", gate.Name, err)
	}
	if !decided {
		gs.State = GateTimedOut
		r.event(ctx, "approval %s timed out after %s", gate.Name, timeout)
	}
	r.recordDecisions(ctx, gs)
	switch {
	case gs.State == GateApproved:
		r.event(ctx, "approval %s granted", gate.Name)
		return "", ""
	case gs.State == GateRejected:
		last := gs.Decisions[len(gs.Decisions)-1]
		return PhaseRejected, fmt.Sprintf("rejected at %s by %s: %s", gate.Name, last.Actor, last.Comment)
	case gs.State == GateTimedOut:
		return PhaseRejected, fmt.Sprintf("approval %s was not given within %s", gate.Name, timeout)
	default:
		return PhaseAborted, r.abortReason()
	}
}

// escalate tells the gate's escalation roles that it waits too long. A notification that
// cannot be sent is logged: the gate goes on waiting either way.
func (r *release) escalate(ctx workflow.Context, gate runbooks.ApprovalGate, text string) {
	gs := r.gate(gate.Name)
	now := workflow.Now(ctx)
	gs.EscalatedAt = &now
	r.event(ctx, "escalated approval %s to %s", gate.Name, joinRoles(gate.Escalation.Roles))
	req := activities.NotifyRequest{
		ReleaseID: r.in.ID, Channel: r.in.Runbook.Channel, Roles: gate.Escalation.Roles, Kind: activities.NotifyEscalation, Text: text,
	}
	if err := workflow.ExecuteActivity(recordContext(ctx), acts.Notify, req).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("escalate approval", "gate", gate.Name, "error", err)
	}
}

func (r *release) recordDecisions(ctx workflow.Context, gs *ApprovalStatus) {
	for _, d := range gs.Decisions {
		rec := store.DecisionRecord{
			ReleaseID: r.in.ID, Gate: gs.Gate, Actor: d.Actor, Decision: d.Decision, Comment: d.Comment, DecidedAt: d.At,
		}
		if err := workflow.ExecuteActivity(recordContext(ctx), acts.RecordDecision, rec).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("record decision", "gate", gs.Gate, "actor", d.Actor, "error", err)
		}
	}
}

// freezeRecheck bounds how long a frozen release waits before asking again: a waiver granted
// meanwhile applies within it, and a two-week freeze adds some 700 events to the history.
const freezeRecheck = 15 * time.Minute

// awaitFreeze holds the release before a stage while the runbook's freeze calendars freeze
// it, then lets it on; with onFreeze: fail, a freeze rejects the release instead. A waiver that
// lets it through is named in the timeline (and audited by the store).
func (r *release) awaitFreeze(ctx workflow.Context, stage runbooks.Stage) (Phase, string) {
	for {
		var d store.FreezeDecision
		q := store.FreezeQuery{
			Environment: stage.Environment, Runbook: r.in.Runbook.Name, ReleaseID: r.in.ID,
			Tier: r.in.Runbook.Tier, Calendars: r.in.Runbook.Freezes,
		}
		if err := workflow.ExecuteActivity(recordContext(ctx), acts.FreezeStatus, q).Get(ctx, &d); err != nil {
			return PhaseRejected, "freeze check before stage " + stage.Name + ": " + errorMessage(err)
		}
		if d.Waiver != "" {
			r.event(ctx, "freeze %s waived for stage %s by waiver %s", d.Calendar, stage.Name, d.Waiver)
		}
		if !d.Frozen {
			r.status.FreezeReason, r.status.FrozenUntil = "", nil
			return "", ""
		}
		if r.in.Runbook.OnFreeze == "fail" {
			r.event(ctx, "stage %s is frozen: %s", stage.Name, d.Reason)
			return PhaseRejected, d.Reason
		}
		until := d.Until
		r.status.FreezeReason, r.status.FrozenUntil = d.Reason, &until
		r.event(ctx, "stage %s is frozen: %s; waiting", stage.Name, d.Reason)
		r.setPhase(ctx, PhaseFrozen)
		// Asked again at the end, or sooner for a long freeze, so a waiver granted meanwhile
		// takes effect: another window may follow, or a waiver may be granted or revoked.
		wait := min(until.Sub(workflow.Now(ctx)), freezeRecheck)
		if wait < time.Second {
			wait = time.Second
		}
		aborted, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return r.abort != nil })
		if err != nil {
			return PhaseFailed, fmt.Sprintf("waiting out a freeze: %v", err)
		}
		if aborted {
			return PhaseAborted, r.abortReason()
		}
	}
}

// openChange files the runbook's ITSM change request as the release enters governance. A
// release that needs one does not go on without it.
func (r *release) openChange(ctx workflow.Context) (Phase, string) {
	cr := r.in.Runbook.ChangeRequest
	if cr == nil || (r.assessment != nil && !r.assessment.ChangeRequest) {
		return "", ""
	}
	comps := make([]string, 0, len(r.in.Components))
	for _, c := range r.in.Components {
		comps = append(comps, c.Name+" "+c.Version)
	}
	var ref activities.ChangeRef
	err := workflow.ExecuteActivity(changeContext(ctx), acts.OpenChange, activities.OpenChangeRequest{
		ReleaseID: r.in.ID, Runbook: r.in.Runbook.Name, Version: r.in.Version, Requester: r.in.Requester.Name,
		AssignmentGroup: cr.AssignmentGroup, Template: cr.Template, Components: comps,
		Summary: fmt.Sprintf("Release %s %s", r.in.Runbook.Name, r.in.Version),
	}).Get(ctx, &ref)
	if err != nil {
		return PhaseRejected, "open the change request: " + errorMessage(err)
	}
	r.change = &ref
	r.status.ChangeRequest = ref.Number
	r.event(ctx, "change request %s opened", ref.Number)
	return "", ""
}

// noteChange adds a work note to the change request; a failed note is logged, not fatal.
func (r *release) noteChange(ctx workflow.Context, text string) {
	if r.change == nil {
		return
	}
	req := activities.NoteChangeRequest{SysID: r.change.SysID, Text: text}
	if err := workflow.ExecuteActivity(changeContext(ctx), acts.NoteChange, req).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("note change request", "error", err)
	}
}

// closeChange closes the change request with the release's outcome.
func (r *release) closeChange(ctx workflow.Context, end Phase) {
	if r.change == nil {
		return
	}
	outcome := string(end)
	if end == PhaseSucceeded {
		outcome = activities.ChangeSucceeded
	}
	req := activities.CloseChangeRequest{SysID: r.change.SysID, Outcome: outcome, Notes: r.status.Failure}
	// Closed even when the release was cancelled: the change record must not stay open.
	cctx, _ := workflow.NewDisconnectedContext(ctx)
	if err := workflow.ExecuteActivity(changeContext(cctx), acts.CloseChange, req).Get(cctx, nil); err != nil {
		r.event(ctx, "change request %s could not be closed: %s", r.change.Number, errorMessage(err))
		return
	}
	r.event(ctx, "change request %s closed (%s)", r.change.Number, outcome)
}

// changeContext is for ITSM calls: retried while ServiceNow is unavailable (it says how long
// to wait), not when it refused the request.
func changeContext(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           TaskQueue,
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        2 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        5 * time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeChangeRequestFailed, "Misconfigured"},
		},
	})
}

func (r *release) finish(ctx workflow.Context, end Phase, failure string) (ReleaseStatus, error) {
	r.ending = true
	if failure != "" && r.status.Failure == "" {
		r.status.Failure = failure
	}
	now := workflow.Now(ctx)
	r.status.EndedAt = &now
	r.status.CurrentStage = ""
	r.event(ctx, "release %s", end)
	r.releaseLocks(ctx)
	r.closeChange(ctx, end)
	r.setPhase(ctx, end)
	if end == PhaseRolledBack || end == PhaseFailed {
		return r.status, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("release %s: %s", end, r.status.Failure), ErrTypeRolledBack, nil, r.status)
	}
	return r.status, nil
}

// setPhase moves the release to a phase. The store is written first and the phase shown by
// the status query after, so whoever sees a phase in the status also finds it in the store.
func (r *release) setPhase(ctx workflow.Context, p Phase) {
	r.seq++
	rec := store.ReleaseRecord{
		ID: r.in.ID, Runbook: r.in.Runbook.Name, Version: r.in.Version, Requester: r.in.Requester.Name,
		Phase: string(p), Environment: r.status.Environment, Failure: r.status.Failure, Seq: r.seq,
		StartedAt: r.status.StartedAt, UpdatedAt: workflow.Now(ctx), EndedAt: r.status.EndedAt,
	}
	if err := workflow.ExecuteActivity(recordContext(ctx), acts.RecordRelease, rec).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Error("record release phase", "phase", p, "error", err)
	}
	attrs := []temporal.SearchAttributeUpdate{temporal.NewSearchAttributeKeyKeyword(AttrPhase).ValueSet(string(p))}
	if r.status.Environment != "" {
		attrs = append(attrs, temporal.NewSearchAttributeKeyKeyword(AttrEnvironment).ValueSet(r.status.Environment))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, attrs...); err != nil {
		workflow.GetLogger(ctx).Warn("update search attributes", "error", err)
	}
	r.status.Phase = p
	r.publish(ctx)
}

func (r *release) event(ctx workflow.Context, format string, args ...any) {
	r.status.Timeline = append(r.status.Timeline, Event{At: workflow.Now(ctx), Message: fmt.Sprintf(format, args...)})
}

func (r *release) gate(name string) *ApprovalStatus {
	for i := range r.status.Approvals {
		if r.status.Approvals[i].Gate == name {
			return &r.status.Approvals[i]
		}
	}
	return nil
}

func (r *release) abortReason() string {
	if r.abort == nil {
		return ""
	}
	return fmt.Sprintf("aborted by %s: %s", r.abort.Actor.Name, r.abort.Reason)
}

// recordContext is for store writes on the main queue: retried until the store is back, since
// losing a phase change or a decision is worse than waiting for the database.
func recordContext(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           TaskQueue,
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
		},
	})
}

// registerHandlers installs the status query and the approve, reject and abort Updates. Each
// validator refuses a request before it enters history, with an error type the API maps to
// an HTTP status.
func (r *release) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (ReleaseStatus, error) {
		return r.status, nil
	}); err != nil {
		return fmt.Errorf("register status query: %w", err)
	}
	decide := func(decision string) func(workflow.Context, ApprovalRequest) (ApprovalResult, error) {
		return func(ctx workflow.Context, req ApprovalRequest) (ApprovalResult, error) {
			gs := r.gate(req.Gate)
			gs.Decisions = append(gs.Decisions, Decision{
				Actor: req.Actor.Name, Roles: req.Actor.Roles, Decision: decision, Comment: req.Comment, At: workflow.Now(ctx),
				AcknowledgedPreMortem: decision == GateApproved && req.AcknowledgePreMortem,
			})
			if decision == GateRejected {
				gs.State = GateRejected
				r.event(ctx, "%s rejected %s: %s", req.Actor.Name, req.Gate, req.Comment)
			} else {
				n := countApprovals(gs)
				r.event(ctx, "%s approved %s (%d of %d)", req.Actor.Name, req.Gate, n, gs.Required)
				if n >= gs.Required && coversDistinctRoles(gs) {
					gs.State = GateApproved
				}
			}
			return ApprovalResult{Gate: gs.Gate, State: gs.State, Approvals: countApprovals(gs), Required: gs.Required}, nil
		}
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateApprove, decide(GateApproved),
		workflow.UpdateHandlerOptions{Validator: r.validateDecision(false)}); err != nil {
		return fmt.Errorf("register approve update: %w", err)
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateReject, decide(GateRejected),
		workflow.UpdateHandlerOptions{Validator: r.validateDecision(true)}); err != nil {
		return fmt.Errorf("register reject update: %w", err)
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateAbort,
		func(ctx workflow.Context, req AbortRequest) (AbortResult, error) {
			r.abort = &req
			r.event(ctx, "%s aborted the release: %s", req.Actor.Name, req.Reason)
			return AbortResult{Phase: r.status.Phase}, nil
		},
		workflow.UpdateHandlerOptions{Validator: r.validateAbort}); err != nil {
		return fmt.Errorf("register abort update: %w", err)
	}
	for _, op := range []struct {
		name  string
		pause bool
	}{{UpdatePause, true}, {UpdateResume, false}} {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, op.name,
			func(ctx workflow.Context, req OperatorRequest) (OperatorResult, error) {
				r.paused = op.pause
				if op.pause {
					r.pausedBy = &req
					r.event(ctx, "%s paused the release: %s", req.Actor.Name, req.Reason)
				} else {
					r.pausedBy = nil
					r.event(ctx, "%s resumed the release", req.Actor.Name)
				}
				return OperatorResult{Phase: r.status.Phase, Paused: r.paused}, nil
			},
			workflow.UpdateHandlerOptions{Validator: r.validatePause(op.pause)}); err != nil {
			return fmt.Errorf("register %s update: %w", op.name, err)
		}
	}
	return r.registerRollbackHandlers(ctx)
}

// validatePause lets the requester or the rollback authority pause a running release, or
// resume a paused one.
func (r *release) validatePause(pause bool) func(workflow.Context, OperatorRequest) error {
	return func(_ workflow.Context, req OperatorRequest) error {
		switch {
		case req.Actor.Name == "":
			return refuse(ErrTypeInvalid, "the request carries no actor")
		case r.status.Phase.Terminal() || r.ending:
			return refuse(ErrTypeConflict, "release %s is ending or has ended (%s)", r.in.ID, r.status.Phase)
		case pause && r.paused:
			return refuse(ErrTypeConflict, "release %s is already paused by %s", r.in.ID, r.pausedBy.Actor.Name)
		case !pause && !r.paused:
			return refuse(ErrTypeConflict, "release %s is not paused", r.in.ID)
		case pause && strings.TrimSpace(req.Reason) == "":
			return refuse(ErrTypeInvalid, "a pause needs a reason, so others know why the release waits")
		case req.Actor.Name != r.in.Requester.Name && !req.Actor.HasAnyRole(r.in.Runbook.RollbackAuthority):
			verb := "resume"
			if pause {
				verb = "pause"
			}
			return refuse(ErrTypeForbidden, "%s cannot %s this release: only its requester or the roles %s may", req.Actor.Name, verb, joinRoles(r.in.Runbook.RollbackAuthority))
		}
		return nil
	}
}

// holdWhilePaused keeps a paused release before the stage until it is resumed or aborted.
func (r *release) holdWhilePaused(ctx workflow.Context, stage string) (Phase, string) {
	if !r.paused {
		return "", ""
	}
	before := r.status.Phase
	r.status.PausedBy = r.pausedBy.Actor.Name
	r.status.PauseReason = r.pausedBy.Reason
	r.event(ctx, "paused before stage %s", stage)
	r.setPhase(ctx, PhasePaused)
	if err := workflow.Await(ctx, func() bool { return !r.paused || r.abort != nil }); err != nil {
		return PhaseFailed, fmt.Sprintf("paused: %v", err)
	}
	r.status.PausedBy, r.status.PauseReason = "", ""
	if r.abort != nil {
		return PhaseAborted, r.abortReason()
	}
	r.setPhase(ctx, before)
	return "", ""
}

func (r *release) validateDecision(reject bool) func(workflow.Context, ApprovalRequest) error {
	return func(_ workflow.Context, req ApprovalRequest) error {
		gate, ok := r.gateDef(req.Gate)
		if !ok {
			if gs := r.gate(req.Gate); gs != nil && gs.State == GateSkipped {
				return refuse(ErrTypeConflict, "approval %s does not apply to release %s (%s)", req.Gate, r.in.ID, gs.Why)
			}
			return refuse(ErrTypeNotFound, "release %s has no approval gate %q (gates: %s)", r.in.ID, req.Gate, joinRoles(r.gateNames()))
		}
		if req.Actor.Name == "" {
			return refuse(ErrTypeInvalid, "the decision carries no actor")
		}
		if reject && req.Comment == "" {
			return refuse(ErrTypeInvalid, "a rejection needs a reason")
		}
		gs := r.gate(req.Gate)
		if gs.State != GateWaiting {
			return refuse(ErrTypeConflict, "approval %s is not awaiting a decision (it is %s)", req.Gate, gs.State)
		}
		if !req.Actor.HasAnyRole(gate.Roles) {
			return refuse(ErrTypeForbidden, "%s cannot decide %s: it needs one of the roles %s", req.Actor.Name, req.Gate, joinRoles(gate.Roles))
		}
		if !reject && !gate.AllowRequester {
			if req.Actor.Name == r.in.Requester.Name {
				return refuse(ErrTypeForbidden, "%s requested this release and cannot approve it (separation of duties)", req.Actor.Name)
			}
			if slices.Contains(r.in.Change.Authors, req.Actor.Name) {
				return refuse(ErrTypeForbidden, "%s authored a change in this release and cannot approve it (separation of duties)", req.Actor.Name)
			}
		}
		for _, d := range gs.Decisions {
			if d.Actor == req.Actor.Name {
				return refuse(ErrTypeConflict, "%s already decided %s", req.Actor.Name, req.Gate)
			}
		}
		if !reject && len(r.in.Runbook.PreMortem) > 0 && !req.AcknowledgePreMortem {
			return refuse(ErrTypeInvalid, "release %s lists %d expected failure mode(s) with their mitigations (preMortem in its status); read them and approve again acknowledging them (acknowledgePreMortem: true, or --acknowledge-pre-mortem)", r.in.ID, len(r.in.Runbook.PreMortem))
		}
		return nil
	}
}

func (r *release) validateAbort(_ workflow.Context, req AbortRequest) error {
	if req.Reason == "" {
		return refuse(ErrTypeInvalid, "an abort needs a reason")
	}
	if r.status.Phase.Terminal() {
		return refuse(ErrTypeConflict, "release %s has already ended (%s)", r.in.ID, r.status.Phase)
	}
	if r.abort != nil || r.ending {
		return refuse(ErrTypeConflict, "release %s is already ending or rolling back", r.in.ID)
	}
	if req.Actor.Name != r.in.Requester.Name && !req.Actor.HasAnyRole(r.in.Runbook.RollbackAuthority) {
		return refuse(ErrTypeForbidden, "%s cannot abort this release: only its requester or the roles %s may", req.Actor.Name, joinRoles(r.in.Runbook.RollbackAuthority))
	}
	return nil
}

func refuse(kind, format string, args ...any) error {
	return temporal.NewApplicationError(fmt.Sprintf(format, args...), kind)
}

func countApprovals(gs *ApprovalStatus) int {
	n := 0
	for _, d := range gs.Decisions {
		if d.Decision == GateApproved {
			n++
		}
	}
	return n
}

// coversDistinctRoles reports whether the approvals so far can give each of the gate's distinct
// roles to a different approver: one person holding two of them fills only one seat. Gates
// are small, so a backtracking match is enough.
func coversDistinctRoles(gs *ApprovalStatus) bool {
	var approvers []Decision
	for _, d := range gs.Decisions {
		if d.Decision == GateApproved {
			approvers = append(approvers, d)
		}
	}
	used := make([]bool, len(approvers))
	var seat func(i int) bool
	seat = func(i int) bool {
		if i == len(gs.DistinctRoles) {
			return true
		}
		for j, a := range approvers {
			if !used[j] && slices.Contains(a.Roles, gs.DistinctRoles[i]) {
				used[j] = true
				if seat(i + 1) {
					return true
				}
				used[j] = false
			}
		}
		return false
	}
	return seat(0)
}

// gateDef is the definition of an approval gate this release waits at.
func (r *release) gateDef(name string) (runbooks.ApprovalGate, bool) {
	for _, g := range r.gates {
		if g.Name == name {
			return g, true
		}
	}
	return runbooks.ApprovalGate{}, false
}

func (r *release) gateNames() []string {
	names := make([]string, len(r.gates))
	for i, g := range r.gates {
		names[i] = g.Name
	}
	return names
}

func joinRoles(roles []string) string {
	if len(roles) == 0 {
		return "(none)"
	}
	out := roles[0]
	for _, r := range roles[1:] {
		out += ", " + r
	}
	return out
}

func joinNonEmpty(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
