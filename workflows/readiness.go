package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/risk"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
)

// Workflow versions (workflow.GetVersion). A release started before a change replays the
// path it took; never reorder or remove these.
const (
	// versionGovernance adds the assessment (risk, conditions, CAB), readiness gates,
	// policies, and a freeze check before every stage (business calendars apply to all).
	versionGovernance = 1
	// versionPublish renders the release to Slack (publish) at each phase change and at each
	// decision on a gate, which wakes the gate's wait without ending it.
	versionPublish = 2
	// versionLocks takes the environment's lock (EnvironmentLockWorkflow) before each stage
	// deploys, and gives it back when the release leaves the environment.
	versionLocks = 3
	// versionEnvironments waits out other holders' reservations of an environment before a
	// stage, and records what each stage promoted (component digests).
	versionEnvironments = 4
	// versionLatest is what new releases follow.
	versionLatest = versionEnvironments
)

// assess scores the release's risk and decides which of the runbook's conditional gates,
// approvals, CAB and change request apply.
func (r *release) assess(ctx workflow.Context) (Phase, string) {
	comps := newReleaseVar(r.in).Components
	var a activities.Assessment
	err := workflow.ExecuteActivity(recordContext(ctx), acts.Assess, activities.AssessRequest{
		ReleaseID: r.in.ID, Runbook: r.in.Runbook, Version: r.in.Version, PreviousVersion: r.status.PreviousVersion,
		Requester: r.in.Requester.Name, Components: comps, Impact: r.in.Impact, At: workflow.Now(ctx),
		Change: activities.ChangeVar{
			Commit: r.in.Change.Commit, Authors: r.in.Change.Authors, Churn: r.in.Change.Churn,
			Coverage: r.in.Change.Coverage, SchemaChange: r.in.Change.SchemaChange,
		},
	}).Get(ctx, &a)
	if err != nil {
		return PhaseFailed, "assess the release: " + errorMessage(err)
	}
	r.assessment = &a
	r.status.Risk = &a.Risk
	r.status.Impact = r.in.Impact
	r.event(ctx, "risk %d (%s): %s", a.Risk.Score, a.Risk.Level, topFactors(a))
	if err := workflow.UpsertTypedSearchAttributes(ctx, temporal.NewSearchAttributeKeyInt64(AttrRisk).ValueSet(int64(a.Risk.Score))); err != nil {
		workflow.GetLogger(ctx).Warn("update risk search attribute", "error", err)
	}

	// Approvals whose when does not hold are skipped; the CAB gate is added when required.
	r.gates = r.gates[:0]
	for i, g := range r.in.Runbook.Approvals {
		ap := a.Approvals[i]
		gs := r.gate(g.Name)
		if !ap.Applies {
			gs.State, gs.Why = GateSkipped, ap.Why
			r.event(ctx, "approval %s not needed: %s", g.Name, ap.Why)
			continue
		}
		if g.When != "" {
			gs.Why = "required " + ap.Why
		}
		r.gates = append(r.gates, g)
	}
	if a.CAB != nil {
		g := a.CAB.Gate
		r.gates = append(r.gates, g)
		r.status.Approvals = append(r.status.Approvals, ApprovalStatus{
			Gate: g.Name, Before: g.Before, Roles: g.Roles, Required: g.RequiredCount(), State: GatePending, Why: a.CAB.Why,
		})
		r.event(ctx, "%s; gate %s added before stage %s", a.CAB.Why, g.Name, g.Before)
	}
	if r.in.Runbook.ChangeRequest != nil && !a.ChangeRequest {
		r.event(ctx, "no change request: %s does not hold", r.in.Runbook.ChangeRequest.When)
	}
	return "", ""
}

// topFactors names the factors that contributed most to the score, for the timeline.
func topFactors(a activities.Assessment) string {
	fs := slices.Clone(a.Risk.Factors)
	slices.SortStableFunc(fs, func(x, y risk.Factor) int {
		switch {
		case x.Points > y.Points:
			return -1
		case x.Points < y.Points:
			return 1
		}
		return 0
	})
	var parts []string
	for _, f := range fs {
		if f.Points <= 0 || len(parts) == 3 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s +%.1f (%s)", f.Name, f.Points, f.Why))
	}
	if len(parts) == 0 {
		return "no factor adds risk"
	}
	return strings.Join(parts, ", ")
}

// readiness runs the gates that apply, all at once: the phase takes as long as the slowest.
// A gate that fails or errs stops the release unless a waiver names it.
func (r *release) readiness(ctx workflow.Context) (Phase, string) {
	rd := r.in.Runbook.Readiness
	if rd == nil || len(rd.Gates) == 0 {
		return "", ""
	}
	var storage []string
	if r.in.Runbook.Scope != nil {
		for _, c := range r.in.Runbook.Scope.Components {
			if c.ChangesStorage() {
				storage = append(storage, c.Name)
			}
		}
	}
	env := r.productionEnvironment()
	r.status.Gates = make([]GateStatus, len(rd.Gates))
	run := 0
	for i, g := range rd.Gates {
		r.status.Gates[i] = GateStatus{Name: g.Name, Type: g.Type, State: ReadinessPending}
		if ap := r.assessment.Gates[i]; !ap.Applies {
			r.status.Gates[i].State, r.status.Gates[i].Summary = ReadinessSkipped, ap.Why
			continue
		}
		run++
	}
	if run == 0 {
		r.event(ctx, "no readiness gate applies")
		return "", ""
	}
	r.event(ctx, "checking readiness: %d gate(s) at once", run)
	r.setPhase(ctx, PhaseChecking)

	wg := workflow.NewWaitGroup(ctx)
	for i, g := range rd.Gates {
		if r.status.Gates[i].State == ReadinessSkipped {
			continue
		}
		gs := &r.status.Gates[i]
		req := activities.GateRequest{
			ReleaseID: r.in.ID, Runbook: r.in.Runbook.Name, Environment: env, Version: r.in.Version,
			PreviousVersion: r.status.PreviousVersion, Gate: g, Storage: storage, Coverage: r.in.Change.Coverage,
		}
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			started := workflow.Now(ctx)
			gs.State, gs.StartedAt = ReadinessRunning, &started
			out := r.runGate(ctx, req)
			finished := workflow.Now(ctx)
			gs.State, gs.Summary, gs.FinishedAt = out.Outcome, out.Summary, &finished
			if out.Outcome == ReadinessFailed || out.Outcome == ReadinessError {
				var waiver string
				if err := workflow.ExecuteActivity(recordContext(ctx), acts.FindWaiver, activities.WaiverRequest{
					ReleaseID: r.in.ID, Runbook: r.in.Runbook.Name, Environment: env, Kind: store.WaiverKindGate, Target: g.Name,
				}).Get(ctx, &waiver); err != nil {
					workflow.GetLogger(ctx).Error("look up gate waiver", "gate", g.Name, "error", err)
				}
				if waiver != "" {
					gs.State, gs.Waiver = ReadinessWaived, waiver
					out.Outcome, out.Waiver = ReadinessWaived, waiver
				}
			}
			rec := store.GateResult{
				ReleaseID: r.in.ID, Gate: g.Name, Type: g.Type, Outcome: out.Outcome, Summary: out.Summary,
				Evidence: out.Evidence, Waiver: out.Waiver, StartedAt: started, FinishedAt: finished,
			}
			if err := workflow.ExecuteActivity(recordContext(ctx), acts.RecordGateResult, rec).Get(ctx, nil); err != nil {
				workflow.GetLogger(ctx).Error("record gate result", "gate", g.Name, "error", err)
			}
		})
	}
	wg.Wait(ctx)

	var failed []string
	for _, gs := range r.status.Gates {
		switch gs.State {
		case ReadinessPassed:
			r.event(ctx, "gate %s passed: %s", gs.Name, gs.Summary)
		case ReadinessWaived:
			r.waived(gs.Waiver)
			r.event(ctx, "gate %s %s: %s; waived by %s", gs.Name, "did not pass", gs.Summary, gs.Waiver)
		case ReadinessFailed, ReadinessError:
			r.event(ctx, "gate %s %s: %s", gs.Name, gs.State, gs.Summary)
			failed = append(failed, fmt.Sprintf("%s %s: %s", gs.Name, gs.State, gs.Summary))
		}
	}
	if len(failed) > 0 {
		return PhaseFailed, "not ready: " + strings.Join(failed, "; ")
	}
	return "", ""
}

// runGate runs one gate's activities: the site command, the check on the main worker, or
// both (a drValidation gate with a command and a drill age). A gate that cannot run in its
// time is an error, not a pass.
func (r *release) runGate(ctx workflow.Context, req activities.GateRequest) activities.GateOutcome {
	g := req.Gate
	timeout := g.TimeoutOrDefault()
	deadline := workflow.Now(ctx).Add(timeout)
	var out activities.GateOutcome
	if g.OnSite() {
		sctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue:              SiteTaskQueue(g.Site),
			ScheduleToCloseTimeout: timeout,
			HeartbeatTimeout:       runbooks.DefaultHeartbeat,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
				NonRetryableErrorTypes: []string{"Misconfigured"},
			},
		})
		if err := workflow.ExecuteActivity(sctx, acts.RunGateCommand, req).Get(ctx, &out); err != nil {
			return activities.GateOutcome{Outcome: ReadinessError, Summary: "the gate's command did not complete: " + errorMessage(err)}
		}
		if out.Outcome != ReadinessPassed || g.Type != runbooks.GateDR || g.MaxDrillAge <= 0 {
			return out
		}
	}
	left := deadline.Sub(workflow.Now(ctx))
	if left <= 0 {
		return activities.GateOutcome{Outcome: ReadinessError, Summary: fmt.Sprintf("timed out after %s", timeout)}
	}
	opts := workflow.ActivityOptions{
		TaskQueue:              TaskQueue,
		ScheduleToCloseTimeout: left,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			NonRetryableErrorTypes: []string{"InvalidGate", "Misconfigured"},
		},
	}
	if g.Type == runbooks.GateScanReport {
		// It polls for the report and heartbeats while it waits.
		opts.HeartbeatTimeout = runbooks.DefaultHeartbeat
	}
	var main activities.GateOutcome
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), acts.RunGate, req).Get(ctx, &main); err != nil {
		why := errorMessage(err)
		if temporal.IsTimeoutError(err) {
			why = fmt.Sprintf("timed out after %s", timeout)
		}
		return activities.GateOutcome{Outcome: ReadinessError, Summary: why}
	}
	if out.Summary != "" {
		main.Summary = out.Summary + "; " + main.Summary
	}
	return main
}

// checkPolicies stops the release when it breaks an organisation policy at point (start, or
// before stage) that no waiver names.
func (r *release) checkPolicies(ctx workflow.Context, point string, stage *runbooks.Stage) (Phase, string) {
	req := activities.PolicyRequest{
		ReleaseID: r.in.ID, Runbook: r.in.Runbook.Name, Environment: r.productionEnvironment(), Point: point,
		Facts: r.assessment.Facts,
		Governance: activities.GovernanceVar{
			ChangeRequest: r.change != nil, ReadinessGates: r.passedGateTypes(),
		},
	}
	where := "at start"
	if stage != nil {
		where = "before stage " + stage.Name
		req.Environment = stage.Environment
		req.Stage = &activities.StageVar{Name: stage.Name, Environment: stage.Environment, Region: stage.Region}
		for _, g := range r.gates {
			if g.Before == stage.Name {
				req.Governance.ApprovalsRequired += g.RequiredCount()
				for _, role := range g.Roles {
					if !slices.Contains(req.Governance.ApprovalRoles, role) {
						req.Governance.ApprovalRoles = append(req.Governance.ApprovalRoles, role)
					}
				}
			}
		}
	}
	var verdicts []activities.PolicyVerdict
	if err := workflow.ExecuteActivity(recordContext(ctx), acts.CheckPolicies, req).Get(ctx, &verdicts); err != nil {
		return PhaseFailed, "check policies " + where + ": " + errorMessage(err)
	}
	var broken []string
	for _, v := range verdicts {
		if v.Waiver != "" {
			r.waived(v.Waiver)
			r.event(ctx, "policy %s waived %s by %s: %s", v.Policy, where, v.Waiver, v.Message)
			continue
		}
		r.event(ctx, "policy %s violated %s: %s", v.Policy, where, v.Message)
		broken = append(broken, fmt.Sprintf("policy %s: %s", v.Policy, v.Message))
	}
	if len(broken) > 0 {
		return PhaseRejected, strings.Join(broken, "; ") + " (a waiver of kind policy naming it lets the release through)"
	}
	return "", ""
}

func (r *release) passedGateTypes() []string {
	var out []string
	for _, g := range r.status.Gates {
		if (g.State == ReadinessPassed || g.State == ReadinessWaived) && !slices.Contains(out, g.Type) {
			out = append(out, g.Type)
		}
	}
	return out
}

func (r *release) waived(id string) {
	if id != "" && !slices.Contains(r.status.Waivers, id) {
		r.status.Waivers = append(r.status.Waivers, id)
	}
}

// productionEnvironment is the environment the release ends in, which waivers of the whole
// release (gates, start policies) are scoped by.
func (r *release) productionEnvironment() string {
	return r.in.Runbook.FinalEnvironment()
}
