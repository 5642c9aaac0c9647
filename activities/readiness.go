package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/trainyard/trainyard/integrations/command"
	"github.com/trainyard/trainyard/integrations/probe"
	"github.com/trainyard/trainyard/integrations/scanreport"
	"github.com/trainyard/trainyard/risk"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
)

// historyWindow is how many finished releases the change failure rate looks back over.
const historyWindow = 20

// AssessRequest asks for a release's risk and for which of its runbook's conditional parts
// apply to it.
type AssessRequest struct {
	ReleaseID       string           `json:"releaseId"`
	Runbook         runbooks.Runbook `json:"runbook"`
	Version         string           `json:"version"`
	PreviousVersion string           `json:"previousVersion,omitempty"`
	Requester       string           `json:"requester"`
	Components      []ComponentFact  `json:"components,omitempty"`
	Change          ChangeVar        `json:"change"`
	Impact          *risk.Impact     `json:"impact,omitempty"`
	// At is when the release is assessed; its timing risk is judged in the business's zone.
	At time.Time `json:"at"`
}

// Applicability says whether a conditional part of the runbook applies, and why.
type Applicability struct {
	Name    string `json:"name"`
	Applies bool   `json:"applies"`
	Why     string `json:"why,omitempty"`
}

// CABRequirement is the CAB gate a release needs, and why.
type CABRequirement struct {
	Gate runbooks.ApprovalGate `json:"gate"`
	Why  string                `json:"why"`
}

// Assessment is the release's risk and what of the runbook applies to it.
type Assessment struct {
	Risk      risk.Assessment `json:"risk"`
	Facts     ConditionFacts  `json:"facts"`
	Gates     []Applicability `json:"gates,omitempty"`
	Approvals []Applicability `json:"approvals,omitempty"`
	CAB       *CABRequirement `json:"cab,omitempty"`
	// ChangeRequest says whether the runbook's change request is filed for this release.
	ChangeRequest bool `json:"changeRequest"`
}

// ErrTypeConditionFailed: a condition could not be evaluated. The runbook was checked when it
// loaded, so this is a bug or a runbook changed under a release; retrying will not help.
const ErrTypeConditionFailed = "ConditionFailed"

// Assess scores the release's risk, stores it with the release, and evaluates the runbook's
// conditions (readiness gates, approvals, CAB, change request) against it.
func (a *Activities) Assess(ctx context.Context, req AssessRequest) (Assessment, error) {
	if a.Store == nil {
		return Assessment{}, temporal.NewNonRetryableApplicationError(errNoStore.Error(), "Misconfigured", nil)
	}
	rb := req.Runbook
	names := make([]string, 0, len(req.Components))
	for _, c := range req.Components {
		names = append(names, c.Name)
	}
	own, comps, err := a.Store.ReleaseOutcomes(ctx, rb.Name, names, req.ReleaseID, historyWindow)
	if err != nil {
		return Assessment{}, fmt.Errorf("assess %s: %w", req.ReleaseID, err)
	}
	var schema []string
	if rb.Scope != nil {
		for _, c := range rb.Scope.Components {
			if c.ChangesStorage() {
				schema = append(schema, c.Name)
			}
		}
	}
	change := req.Change
	change.SchemaChange = change.SchemaChange || len(schema) > 0
	change.Major = majorBump(req.Version, req.PreviousVersion)
	change.Components = len(req.Components)
	change.Authors = nonNil(change.Authors)
	if change.SchemaChange && len(schema) == 0 {
		schema = []string{"(reported by CI)"}
	}
	var dependents int
	if req.Impact != nil {
		dependents = len(req.Impact.Dependents)
	}
	var model *runbooks.RiskModel
	if rb.Readiness != nil {
		model = rb.Readiness.Risk
	}
	assessed := risk.Score(model, risk.Facts{
		History: risk.Outcomes(own), ComponentHistory: risk.Outcomes(comps),
		Churn: change.Churn, Coverage: change.Coverage, SchemaChanges: schema,
		Components: max(len(req.Components), 1), Dependents: dependents, At: req.At.In(a.location()),
	})
	doc, err := json.Marshal(struct {
		Risk   risk.Assessment `json:"risk"`
		Impact *risk.Impact    `json:"impact,omitempty"`
	}{assessed, req.Impact})
	if err != nil {
		return Assessment{}, fmt.Errorf("assess %s: %w", req.ReleaseID, err)
	}
	if err := a.Store.RecordAssessment(ctx, req.ReleaseID, assessed.Score, doc, names); err != nil {
		return Assessment{}, fmt.Errorf("assess %s: %w", req.ReleaseID, err)
	}

	env := rb.FinalEnvironment()
	comps2 := req.Components
	if comps2 == nil {
		comps2 = []ComponentFact{}
	}
	out := Assessment{Risk: assessed, Facts: ConditionFacts{
		Release: ReleaseVar{Version: req.Version, Requester: req.Requester, Components: comps2, Environment: env},
		Runbook: runbookVar(rb), Risk: riskVar(assessed), Impact: impactVar(req.Impact), Change: change,
	}}
	eval := func(what, expr string, stage *StageVar) (Applicability, error) {
		ap := Applicability{Name: what, Applies: true}
		if strings.TrimSpace(expr) == "" {
			return ap, nil
		}
		kind := runbooks.WhenCondition
		if stage != nil {
			kind = runbooks.ApprovalCondition
		}
		cond, err := runbooks.CompileCondition(expr, kind)
		if err == nil {
			ap.Applies, err = cond.Eval(out.Facts.vars(stage, nil))
		}
		if err != nil {
			return ap, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v", what, err), ErrTypeConditionFailed, err)
		}
		if ap.Applies {
			ap.Why = "when " + expr + " holds"
		} else {
			ap.Why = "skipped: " + expr + " does not hold"
		}
		return ap, nil
	}
	if rb.Readiness != nil {
		for _, g := range rb.Readiness.Gates {
			ap, err := eval(g.Name, g.When, nil)
			if err != nil {
				return out, err
			}
			out.Gates = append(out.Gates, ap)
		}
	}
	for _, g := range rb.Approvals {
		var stage *StageVar
		for _, s := range rb.Stages {
			if s.Name == g.Before {
				stage = &StageVar{Name: s.Name, Environment: s.Environment, Region: s.Region}
			}
		}
		if stage == nil {
			stage = &StageVar{Name: g.Before}
		}
		ap, err := eval(g.Name, g.When, stage)
		if err != nil {
			return out, err
		}
		out.Approvals = append(out.Approvals, ap)
	}
	if c := rb.CAB; c != nil {
		var why []string
		if c.Threshold > 0 && req.Impact != nil && req.Impact.Score >= c.Threshold {
			why = append(why, fmt.Sprintf("impact score %d is at or above the CAB threshold %d (%d dependents; capabilities %s)",
				req.Impact.Score, c.Threshold, len(req.Impact.Dependents), strings.Join(req.Impact.Capabilities, ", ")))
		}
		if c.When != "" {
			ap, err := eval("cab", c.When, nil)
			if err != nil {
				return out, err
			}
			if ap.Applies {
				why = append(why, fmt.Sprintf("%s (risk %d, %s)", c.When, assessed.Score, assessed.Level))
			}
		}
		if len(why) > 0 {
			out.CAB = &CABRequirement{Gate: c.Gate(rb.CABStage()), Why: "CAB approval required: " + strings.Join(why, "; and ")}
		}
	}
	if cr := rb.ChangeRequest; cr != nil {
		ap, err := eval("changeRequest", cr.When, nil)
		if err != nil {
			return out, err
		}
		out.ChangeRequest = ap.Applies
	}
	activity.GetLogger(ctx).Info("release assessed", "release", req.ReleaseID, "risk", assessed.Score, "level", assessed.Level)
	return out, nil
}

// Gate outcomes.
const (
	GatePassed  = "passed"
	GateFailed  = "failed"
	GateError   = "error"
	GateWaived  = "waived"
	GateSkipped = "skipped"
)

// GateRequest runs one readiness gate.
type GateRequest struct {
	ReleaseID       string                 `json:"releaseId"`
	Runbook         string                 `json:"runbook"`
	Environment     string                 `json:"environment,omitempty"`
	Version         string                 `json:"version"`
	PreviousVersion string                 `json:"previousVersion,omitempty"`
	Gate            runbooks.ReadinessGate `json:"gate"`
	// Storage lists the components whose schema or stored data the release changes, which a
	// drValidation gate needs a recent restore drill of.
	Storage  []string `json:"storage,omitempty"`
	Coverage float64  `json:"coverage,omitempty"`
}

// GateOutcome is a gate's verdict with what it was judged on.
type GateOutcome struct {
	Outcome  string          `json:"outcome"`
	Summary  string          `json:"summary"`
	Evidence json.RawMessage `json:"evidence,omitempty"`
	Waiver   string          `json:"waiver,omitempty"`
}

// reportPoll is how often a scan report gate looks for the report CI has not attached yet.
const reportPoll = 2 * time.Second

// RunGate runs a readiness gate that needs no site: scan report, synthetic probe, third
// party status, coverage, performance, and the restore drill check of drValidation.
func (a *Activities) RunGate(ctx context.Context, req GateRequest) (GateOutcome, error) {
	g := req.Gate
	switch g.Type {
	case runbooks.GateScanReport:
		return a.scanGate(ctx, req)
	case runbooks.GateSynthetic:
		check := probe.Check{URL: g.URL, ExpectStatus: g.ExpectStatus, Requests: g.Requests, MaxLatency: g.LatencyP95.D()}
		res, err := (&probe.Prober{Client: a.HTTP}).Run(ctx, check)
		switch {
		case errors.Is(err, probe.ErrInvalidCheck):
			return GateOutcome{}, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidGate", err)
		case err != nil:
			return GateOutcome{}, fmt.Errorf("gate %s: %w", g.Name, err)
		}
		return verdict(res.Passed, res.Reason, fmt.Sprintf("%d requests to %s, p95 %s", res.Requests, g.URL, res.Latency), res), nil
	case runbooks.GateThirdParty:
		st, err := probe.StatusPage(ctx, a.HTTP, g.URL)
		if err != nil {
			// Retried until the gate's timeout: a status page may blip.
			return GateOutcome{}, fmt.Errorf("status of %s: %w", g.URL, err)
		}
		why := st.Description
		if len(st.Degraded) > 0 {
			why += ": " + strings.Join(st.Degraded, ", ")
		}
		return verdict(st.Operational, why, fmt.Sprintf("%s reports %s", g.URL, st.Description), st), nil
	case runbooks.GateCoverage:
		ok := req.Coverage >= g.MinCoverage
		if req.Coverage == 0 {
			return verdict(false, "CI reported no coverage: send change.coverage with the release", "", nil), nil
		}
		return verdict(ok, fmt.Sprintf("coverage %.1f%% is below the required %.1f%%", req.Coverage, g.MinCoverage),
			fmt.Sprintf("coverage %.1f%% (at least %.1f%% required)", req.Coverage, g.MinCoverage), map[string]float64{"coverage": req.Coverage, "min": g.MinCoverage}), nil
	case runbooks.GatePerformance:
		return a.performanceGate(ctx, req)
	case runbooks.GateDR:
		return a.drillGate(ctx, req)
	}
	return GateOutcome{}, temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("gate %s: type %s runs on a site worker, not here", g.Name, g.Type), "InvalidGate", nil)
}

// RunGateCommand runs a gate's command on the site worker: exit 0 passes. A command that ran
// and failed is a failed gate, never retried.
func (a *Activities) RunGateCommand(ctx context.Context, req GateRequest) (GateOutcome, error) {
	g := req.Gate
	if a.Runner == nil {
		return GateOutcome{}, temporal.NewNonRetryableApplicationError("this worker has no command runner: run `trainyard worker --site "+g.Site+"`", "Misconfigured", nil)
	}
	spec := command.Spec{
		Script: g.Run, Dir: filepath.Join(a.WorkDir, g.Site), Timeout: g.TimeoutOrDefault(),
		Env: []string{
			"TRAINYARD_RELEASE=" + req.ReleaseID, "TRAINYARD_RUNBOOK=" + req.Runbook, "TRAINYARD_GATE=" + g.Name,
			"TRAINYARD_VERSION=" + req.Version, "TRAINYARD_PREVIOUS_VERSION=" + req.PreviousVersion,
			"TRAINYARD_ENVIRONMENT=" + req.Environment, "TRAINYARD_OPERATION=gate",
		},
	}
	res, err := a.Runner.Run(ctx, spec, func(line string) { activity.RecordHeartbeat(ctx, line) })
	var exitErr *command.ExitError
	switch {
	case errors.As(err, &exitErr):
		why := exitErr.Error()
		if line := command.LastLine(res.Output); line != "" {
			why += ": " + line
		}
		return verdict(false, why, "", map[string]any{"exitCode": exitErr.ExitCode, "output": res.Output}), nil
	case err != nil:
		return GateOutcome{}, fmt.Errorf("gate %s command: %w", g.Name, err)
	}
	return verdict(true, "", "exit 0: "+command.LastLine(res.Output), map[string]any{"exitCode": 0, "output": res.Output}), nil
}

func (a *Activities) scanGate(ctx context.Context, req GateRequest) (GateOutcome, error) {
	if a.Store == nil {
		return GateOutcome{}, temporal.NewNonRetryableApplicationError(errNoStore.Error(), "Misconfigured", nil)
	}
	failAt, err := scanreport.ParseSeverity(req.Gate.MaxSeverity)
	if err != nil {
		return GateOutcome{}, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidGate", err)
	}
	// CI may attach the report after starting the release: wait for it, and fail (not
	// error) shortly before the gate's time is up, with a message saying what is missing.
	deadline := activity.GetInfo(ctx).Deadline.Add(-time.Second)
	var reports []store.ScanReport
	for {
		reports, err = a.Store.Reports(ctx, req.ReleaseID)
		if err != nil {
			return GateOutcome{}, fmt.Errorf("gate %s: %w", req.Gate.Name, err)
		}
		if len(reports) > 0 {
			break
		}
		if !time.Now().Add(reportPoll).Before(deadline) {
			return verdict(false, fmt.Sprintf("no scan report was attached within %s: CI attaches one with POST /api/v1/releases/%s/reports", req.Gate.TimeoutOrDefault(), req.ReleaseID), "", nil), nil
		}
		activity.RecordHeartbeat(ctx, "waiting for a scan report")
		select {
		case <-ctx.Done():
			return GateOutcome{}, ctx.Err()
		case <-time.After(reportPoll):
		}
	}
	type reportVerdict struct {
		Report   string               `json:"report"`
		Tool     string               `json:"tool"`
		Blocking []scanreport.Finding `json:"blocking,omitempty"`
		Waived   []scanreport.Finding `json:"waived,omitempty"`
		Counts   map[string]int       `json:"counts"`
	}
	var evidence []reportVerdict
	var failed, summaries []string
	var waivers []store.Waiver
	for _, rep := range reports {
		parsed, err := scanreport.Parse(rep.Body)
		if err != nil {
			return verdict(false, fmt.Sprintf("report %s cannot be read: %v", rep.Name, err), "", nil), nil
		}
		var waiveErr error
		v := scanreport.Evaluate(parsed, failAt, func(id string) bool {
			ws, err := a.Store.ActiveWaivers(ctx, store.WaiverMatch{
				Kind: store.WaiverKindGate, Target: req.Gate.Name + "/" + id,
				Runbook: req.Runbook, Environment: req.Environment, ReleaseID: req.ReleaseID,
			})
			if err != nil {
				waiveErr = err
				return false
			}
			if len(ws) > 0 {
				waivers = append(waivers, ws[0])
				return true
			}
			return false
		})
		if waiveErr != nil {
			return GateOutcome{}, fmt.Errorf("gate %s: look up waivers: %w", req.Gate.Name, waiveErr)
		}
		evidence = append(evidence, reportVerdict{Report: rep.Name, Tool: parsed.Tool, Blocking: v.Blocking, Waived: v.Waived, Counts: v.Counts})
		summaries = append(summaries, rep.Name+": "+v.Summary)
		if !v.Passed {
			failed = append(failed, rep.Name+": "+v.Summary)
		}
	}
	for _, w := range waivers {
		a.auditWaiverUse(ctx, req.ReleaseID, w, map[string]any{"gate": req.Gate.Name, "environment": req.Environment})
	}
	return verdict(len(failed) == 0, strings.Join(failed, "; "), strings.Join(summaries, "; "), evidence), nil
}

func (a *Activities) drillGate(ctx context.Context, req GateRequest) (GateOutcome, error) {
	g := req.Gate
	if g.MaxDrillAge <= 0 {
		return verdict(true, "", "no drill age required", nil), nil
	}
	if a.Store == nil {
		return GateOutcome{}, temporal.NewNonRetryableApplicationError(errNoStore.Error(), "Misconfigured", nil)
	}
	if len(req.Storage) == 0 {
		return verdict(true, "", "no component changes a schema or stored data", nil), nil
	}
	now := time.Now()
	var stale, fresh []string
	for _, c := range req.Storage {
		d, err := a.Store.LastPassedDrill(ctx, c)
		switch {
		case errors.Is(err, store.ErrNotFound):
			stale = append(stale, c+": no passed restore drill recorded")
		case err != nil:
			return GateOutcome{}, fmt.Errorf("gate %s: %w", g.Name, err)
		case now.Sub(d.DrilledAt) > g.MaxDrillAge.D():
			stale = append(stale, fmt.Sprintf("%s: last passed drill %s, older than %s", c, d.DrilledAt.UTC().Format(time.RFC3339), g.MaxDrillAge))
		default:
			fresh = append(fresh, fmt.Sprintf("%s drilled %s by %s", c, d.DrilledAt.UTC().Format(time.RFC3339), d.RecordedBy))
		}
	}
	why := strings.Join(stale, "; ")
	if len(stale) > 0 {
		why += " (record a drill with POST /api/v1/drills)"
	}
	return verdict(len(stale) == 0, why, strings.Join(fresh, "; "), map[string]any{"stale": stale, "fresh": fresh}), nil
}

// verdict builds a gate outcome: passed with summary, or failed with why.
func verdict(passed bool, why, summary string, evidence any) GateOutcome {
	o := GateOutcome{Outcome: GatePassed, Summary: summary}
	if !passed {
		o.Outcome, o.Summary = GateFailed, why
	}
	if evidence != nil {
		if b, err := json.Marshal(evidence); err == nil {
			o.Evidence = b
		}
	}
	return o
}

// WaiverRequest asks whether a waiver lets a release pass a failed gate or a policy.
type WaiverRequest struct {
	ReleaseID   string `json:"releaseId"`
	Runbook     string `json:"runbook"`
	Environment string `json:"environment,omitempty"`
	Kind        string `json:"kind"`
	Target      string `json:"target"`
}

// FindWaiver returns the id of an active waiver covering the request ("" when none), and
// audits its use.
func (a *Activities) FindWaiver(ctx context.Context, req WaiverRequest) (string, error) {
	if a.Store == nil {
		return "", temporal.NewNonRetryableApplicationError(errNoStore.Error(), "Misconfigured", nil)
	}
	ws, err := a.Store.ActiveWaivers(ctx, store.WaiverMatch{
		Kind: req.Kind, Target: req.Target, Runbook: req.Runbook, Environment: req.Environment, ReleaseID: req.ReleaseID,
	})
	if err != nil {
		return "", fmt.Errorf("find %s waiver for %s: %w", req.Kind, req.Target, err)
	}
	if len(ws) == 0 {
		return "", nil
	}
	a.auditWaiverUse(ctx, req.ReleaseID, ws[0], map[string]any{req.Kind: req.Target, "environment": req.Environment})
	return ws[0].ID, nil
}

func (a *Activities) auditWaiverUse(ctx context.Context, releaseID string, w store.Waiver, extra map[string]any) {
	details := map[string]any{
		"waiver": w.ID, "kind": w.Kind, "target": w.Target, "grantedBy": w.GrantedBy,
		"expiresAt": w.ExpiresAt.UTC().Format(time.RFC3339),
	}
	for k, v := range extra {
		details[k] = v
	}
	b, _ := json.Marshal(details)
	if _, err := a.Store.AppendAudit(ctx, store.AuditEvent{
		Actor: store.SystemActor, Action: store.ActionWaiverUse, ReleaseID: releaseID, Outcome: store.OutcomeAllowed, Details: b,
	}); err != nil {
		a.logger().Error("audit waiver use", "release", releaseID, "waiver", w.ID, "error", err)
	}
}

// RecordGateResult stores a gate's outcome with its evidence.
func (a *Activities) RecordGateResult(ctx context.Context, g store.GateResult) error {
	if a.Store == nil {
		return temporal.NewNonRetryableApplicationError(errNoStore.Error(), "Misconfigured", nil)
	}
	return a.Store.RecordGateResult(ctx, g)
}

// PolicyRequest asks which organisation policies a release breaks at a point.
type PolicyRequest struct {
	ReleaseID   string         `json:"releaseId"`
	Runbook     string         `json:"runbook"`
	Environment string         `json:"environment,omitempty"`
	Point       string         `json:"point"`
	Facts       ConditionFacts `json:"facts"`
	Stage       *StageVar      `json:"stage,omitempty"`
	Governance  GovernanceVar  `json:"governance"`
}

// PolicyVerdict is one broken policy; Waiver is set when a waiver lets the release past it.
type PolicyVerdict struct {
	Policy  string `json:"policy"`
	Message string `json:"message"`
	Waiver  string `json:"waiver,omitempty"`
}

// CheckPolicies evaluates the organisation's policies for a release at start or before a
// stage. Violations a waiver names come back with the waiver; the use is audited.
func (a *Activities) CheckPolicies(ctx context.Context, req PolicyRequest) ([]PolicyVerdict, error) {
	if len(a.Policies.Names()) == 0 {
		return nil, nil
	}
	if a.Store == nil {
		return nil, temporal.NewNonRetryableApplicationError(errNoStore.Error(), "Misconfigured", nil)
	}
	reports, err := a.Store.Reports(ctx, req.ReleaseID)
	if err != nil {
		return nil, fmt.Errorf("check policies: %w", err)
	}
	gov := req.Governance
	gov.ScanReports = len(reports)
	gov.ApprovalRoles, gov.ReadinessGates = nonNil(gov.ApprovalRoles), nonNil(gov.ReadinessGates)
	var out []PolicyVerdict
	for _, v := range a.Policies.Evaluate(req.Point, req.Facts.vars(req.Stage, &gov)) {
		pv := PolicyVerdict{Policy: v.Policy, Message: v.Message}
		pv.Waiver, err = a.FindWaiver(ctx, WaiverRequest{
			ReleaseID: req.ReleaseID, Runbook: req.Runbook, Environment: req.Environment, Kind: store.WaiverKindPolicy, Target: v.Policy,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, pv)
	}
	return out, nil
}

// NotifyRequest tells people about a release: an escalation, for now.
type NotifyRequest struct {
	ReleaseID string   `json:"releaseId"`
	Channel   string   `json:"channel,omitempty"`
	Roles     []string `json:"roles"`
	Kind      string   `json:"kind"`
	Text      string   `json:"text"`
}

// Notification kinds.
const NotifyEscalation = "escalation"

// Notify records a notification in the audit trail and sends it through the configured
// notifier (Slack, when it is set up).
func (a *Activities) Notify(ctx context.Context, req NotifyRequest) error {
	if a.Store == nil {
		return temporal.NewNonRetryableApplicationError(errNoStore.Error(), "Misconfigured", nil)
	}
	details, _ := json.Marshal(map[string]any{"kind": req.Kind, "roles": req.Roles, "channel": req.Channel, "text": req.Text})
	if _, err := a.Store.AppendAudit(ctx, store.AuditEvent{
		Actor: store.SystemActor, Action: "release." + req.Kind, ReleaseID: req.ReleaseID, Outcome: store.OutcomeAllowed, Details: details,
	}); err != nil {
		return fmt.Errorf("notify %s: %w", req.Kind, err)
	}
	a.logger().Warn("notification", "release", req.ReleaseID, "kind", req.Kind, "roles", req.Roles, "text", req.Text)
	if a.Notifier != nil {
		if err := a.Notifier.Notify(ctx, req); err != nil {
			return fmt.Errorf("notify %s: %w", req.Kind, err)
		}
	}
	return nil
}

// Notifier delivers notifications to people (Slack).
type Notifier interface {
	Notify(ctx context.Context, n NotifyRequest) error
}

// versionPlaceholder is replaced in a performance gate's query by the version measured.
const versionPlaceholder = "$version"

// performanceGate compares the gate's metric for the new version with the previous one: a
// latency-like metric (higher is worse) may grow by at most maxRegression percent.
func (a *Activities) performanceGate(ctx context.Context, req GateRequest) (GateOutcome, error) {
	g := req.Gate
	if a.Metrics == nil {
		return GateOutcome{Outcome: GateError, Summary: "no Prometheus is configured (prometheus.url): the performance gate cannot measure"}, nil
	}
	if req.PreviousVersion == "" {
		return verdict(true, "", "first release of this runbook: no previous version to compare with", nil), nil
	}
	at := time.Now()
	measure := func(version string) (float64, error) {
		s, err := a.Metrics.Query(ctx, strings.ReplaceAll(g.Query, versionPlaceholder, version), at)
		if err != nil {
			return 0, fmt.Errorf("gate %s: measure %s: %w", g.Name, version, err)
		}
		return s.Value, nil
	}
	cur, err := measure(req.Version)
	if err != nil {
		return GateOutcome{}, err
	}
	old, err := measure(req.PreviousVersion)
	if err != nil {
		return GateOutcome{}, err
	}
	if old <= 0 {
		return verdict(true, "", fmt.Sprintf("previous version %s measured %g: nothing to compare against", req.PreviousVersion, old), nil), nil
	}
	regression := (cur - old) / old * 100
	evidence := map[string]any{"current": cur, "previous": old, "regressionPercent": regression, "maxRegression": g.MaxRegression}
	return verdict(regression <= g.MaxRegression,
		fmt.Sprintf("%s measures %.4g against %.4g for %s: %.1f%% worse, more than the allowed %.1f%%", req.Version, cur, old, req.PreviousVersion, regression, g.MaxRegression),
		fmt.Sprintf("%s measures %.4g against %.4g for %s (%+.1f%%, at most %.1f%% allowed)", req.Version, cur, old, req.PreviousVersion, regression, g.MaxRegression),
		evidence), nil
}
