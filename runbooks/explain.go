package runbooks

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// Plan is the resolved plan a release of a runbook follows: every default applied, stages in
// the order they run (in waves of stages that run at once), approvals in the order they are
// met, and what makes the release roll back. `trainyard runbook explain` prints it as text
// (Text) or as JSON; it survives a JSON round trip.
type Plan struct {
	Runbook     string       `json:"runbook"`
	Description string       `json:"description,omitempty"`
	Metadata    PlanMetadata `json:"metadata"`
	// Extends is the base runbook whose approvals and readiness gates are mandatory here;
	// Exceptions are the ones dropped, each with its waiver.
	Extends    string         `json:"extends,omitempty"`
	Exceptions []Exception    `json:"exceptions,omitempty"`
	Scope      *PlanScope     `json:"scope,omitempty"`
	Readiness  *PlanReadiness `json:"readiness,omitempty"`
	Governance PlanGovernance `json:"governance"`
	Analyses   []PlanAnalysis `json:"analyses,omitempty"`
	// Waves are the stages in execution order: the stages of one wave run at once, and a
	// wave starts when the stages it waits for are done.
	Waves         []PlanWave         `json:"waves"`
	Stabilization *PlanStabilization `json:"stabilization,omitempty"`
	Rollback      PlanRollback       `json:"rollback"`
	// NotYetEnforced lists, as "path: what", the parts of the runbook the running version of
	// Trainyard cannot enforce (it refuses to start a release of such a runbook). Explain
	// leaves it empty because it depends on the version, not on the runbook: the CLI and the
	// API fill it from Unsupported, and Text marks those parts.
	NotYetEnforced []string `json:"notYetEnforced,omitempty"`
}

// PlanMetadata describes who owns what the runbook releases and how critical it is.
type PlanMetadata struct {
	Owners             []string `json:"owners,omitempty"`
	Tier               int      `json:"tier,omitempty"`
	DataClassification string   `json:"dataClassification,omitempty"`
	Capabilities       []string `json:"capabilities,omitempty"`
	Channel            string   `json:"channel,omitempty"`
}

// PlanScope is what ships together.
type PlanScope struct {
	Components []PlanComponent `json:"components,omitempty"`
	Groups     []VersionGroup  `json:"groups,omitempty"`
	// Infrastructure is separate (the default) or bundled.
	Infrastructure string `json:"infrastructure"`
}

// PlanComponent is one artifact of the release with its defaults resolved.
type PlanComponent struct {
	Name     string `json:"name"`
	Artifact string `json:"artifact"`
	// Pinned is true when the artifact is referenced by digest (repo@sha256:...).
	Pinned   bool `json:"pinned"`
	AllowTag bool `json:"allowTag,omitempty"`
	Stateful bool `json:"stateful,omitempty"`
	// SchemaChange is none, expand, contract or migrate.
	SchemaChange string    `json:"schemaChange"`
	Groups       []string  `json:"groups,omitempty"`
	Libraries    []Library `json:"libraries,omitempty"`
}

// PlanReadiness is what is checked, in parallel, before the release touches production.
type PlanReadiness struct {
	Gates []ReadinessGate `json:"gates,omitempty"`
	Risk  *PlanRisk       `json:"risk,omitempty"`
}

// PlanRisk is the risk model with every factor's weight resolved.
type PlanRisk struct {
	Weights []RiskWeight `json:"weights"`
	Medium  int          `json:"medium,omitempty"`
	High    int          `json:"high,omitempty"`
}

// RiskWeight is one factor of the risk score and its weight (1 when the runbook is silent).
type RiskWeight struct {
	Factor string  `json:"factor"`
	Weight float64 `json:"weight"`
}

// PlanGovernance is who must agree, and when nothing may ship.
type PlanGovernance struct {
	// Approvals are in the order the release meets them: by the position of the stage they
	// hold, then as declared.
	Approvals []PlanApproval `json:"approvals,omitempty"`
	Freezes   []string       `json:"freezes,omitempty"`
	// OnFreeze is wait or fail; set when freezes are named.
	OnFreeze          string         `json:"onFreeze,omitempty"`
	CAB               *CAB           `json:"cab,omitempty"`
	ChangeRequest     *ChangeRequest `json:"changeRequest,omitempty"`
	RollbackAuthority []string       `json:"rollbackAuthority,omitempty"`
}

// PlanApproval is an approval gate with its defaults resolved.
type PlanApproval struct {
	Name string `json:"name"`
	// Path is where the gate is declared, e.g. approvals[1].
	Path   string   `json:"path"`
	Before string   `json:"before"`
	Roles  []string `json:"roles"`
	// Count is how many distinct people must approve.
	Count          int      `json:"count"`
	DistinctRoles  []string `json:"distinctRoles,omitempty"`
	AllowRequester bool     `json:"allowRequester"`
	Timeout        Duration `json:"timeout"`
	// OnTimeout is reject or wait.
	OnTimeout  string      `json:"onTimeout"`
	Escalation *Escalation `json:"escalation,omitempty"`
	When       string      `json:"when,omitempty"`
}

// PlanAnalysis is a named analysis and the places that run it.
type PlanAnalysis struct {
	Analysis
	UsedBy []string `json:"usedBy,omitempty"`
}

// PlanWave is a set of stages that run at the same time.
type PlanWave struct {
	Wave   int         `json:"wave"`
	Stages []PlanStage `json:"stages"`
}

// PlanStage is one stage with its defaults resolved.
type PlanStage struct {
	Name string `json:"name"`
	// Path is where the stage is declared, e.g. stages[2].
	Path        string `json:"path"`
	Environment string `json:"environment,omitempty"`
	Region      string `json:"region,omitempty"`
	Residency   string `json:"residency,omitempty"`
	// After is what the stage waits for: the stages it names, or else the stage declared
	// before it.
	After []string `json:"after,omitempty"`
	// Approvals are the gates that hold the stage until they are met.
	Approvals []string `json:"approvals,omitempty"`
	Requires  []string `json:"requires,omitempty"`
	// NotExercisedBefore lists what the stage requires that no stage before it has: the
	// first time the release meets it.
	NotExercisedBefore []string      `json:"notExercisedBefore,omitempty"`
	Strategy           PlanStrategy  `json:"strategy"`
	Smoke              []HTTPCheck   `json:"smoke,omitempty"`
	ExitCriteria       *ExitCriteria `json:"exitCriteria,omitempty"`
	Targets            []PlanTarget  `json:"targets"`
}

// PlanStrategy is how a stage moves to the new version.
type PlanStrategy struct {
	// Type is rolling (the default), canary or blueGreen.
	Type string `json:"type"`
	// MaxParallel is how many targets a rolling stage deploys at once.
	MaxParallel    int          `json:"maxParallel,omitempty"`
	Steps          []CanaryStep `json:"steps,omitempty"`
	RollbackWindow Duration     `json:"rollbackWindow,omitempty"`
}

// PlanTarget is one target with its defaults resolved.
type PlanTarget struct {
	Name string `json:"name"`
	// Path is where the target is declared, e.g. stages[0].targets[1].
	Path    string   `json:"path"`
	Kind    string   `json:"kind"`
	Site    string   `json:"site,omitempty"`
	Timeout Duration `json:"timeout"`
	// Heartbeat applies to targets run by a site worker (command, hardware).
	Heartbeat Duration         `json:"heartbeat,omitempty"`
	Deploy    string           `json:"deploy,omitempty"`
	Rollback  string           `json:"rollback,omitempty"`
	ArgoCD    *ArgoCDTarget    `json:"argocd,omitempty"`
	Spinnaker *SpinnakerTarget `json:"spinnaker,omitempty"`
	Hardware  *HardwareTarget  `json:"hardware,omitempty"`
	Flag      *FlagTarget      `json:"flag,omitempty"`
}

// PlanStabilization is the watch after the last stage.
type PlanStabilization struct {
	Window   Duration    `json:"window,omitempty"`
	Analyses []string    `json:"analyses,omitempty"`
	SLO      *SLO        `json:"slo,omitempty"`
	Checks   []HTTPCheck `json:"checks,omitempty"`
	// OnBreach is rollback or page; set when something is watched.
	OnBreach string `json:"onBreach,omitempty"`
}

// PlanRollback is what makes the release roll back, and how.
type PlanRollback struct {
	// Triggers are the events that roll the release back, in the order they can happen.
	Triggers []string `json:"triggers"`
	// Scope is release (the default), stage or target.
	Scope          string          `json:"scope"`
	Budget         Duration        `json:"budget,omitempty"`
	ForwardFix     bool            `json:"forwardFix"`
	CircuitBreaker *CircuitBreaker `json:"circuitBreaker,omitempty"`
}

// Explain resolves the runbook into the plan a release of it follows. It works on any
// runbook, valid or not (unknown stage names are ignored, a cycle of stages ends up in a
// last wave), so it can explain what the validator complains about.
func Explain(rb Runbook) Plan {
	p := Plan{
		Runbook:     rb.Name,
		Description: rb.Description,
		Metadata: PlanMetadata{
			Owners:             planList(rb.Owners),
			Tier:               rb.Tier,
			DataClassification: rb.DataClassification,
			Capabilities:       planList(rb.Capabilities),
			Channel:            rb.Channel,
		},
		Extends:    rb.Extends,
		Exceptions: planList(rb.Exceptions),
		Scope:      planScope(rb.Scope),
		Readiness:  planReadiness(rb.Readiness),
	}

	deps, waves := planStageWaves(rb.Stages)
	order := map[string]int{} // stage name -> position in execution order
	for _, w := range waves {
		for _, i := range w {
			if _, seen := order[rb.Stages[i].Name]; !seen {
				order[rb.Stages[i].Name] = len(order)
			}
		}
	}

	p.Governance = PlanGovernance{
		Approvals:         planApprovals(rb.Approvals, order),
		Freezes:           planList(rb.Freezes),
		CAB:               rb.CAB,
		ChangeRequest:     rb.ChangeRequest,
		RollbackAuthority: planList(rb.RollbackAuthority),
	}
	if len(rb.Freezes) > 0 {
		p.Governance.OnFreeze = planDefault(rb.OnFreeze, "wait")
	}

	ancestors := planStageAncestors(deps)
	for n, w := range waves {
		pw := PlanWave{Wave: n + 1}
		for _, i := range w {
			pw.Stages = append(pw.Stages, planStage(rb, i, deps[i], ancestors[i]))
		}
		p.Waves = append(p.Waves, pw)
	}
	p.Analyses = planAnalyses(rb, waves)
	if !rb.Stabilization.IsZero() {
		s := rb.Stabilization
		p.Stabilization = &PlanStabilization{
			Window:   s.Window,
			Analyses: planList(s.Analyses),
			SLO:      s.SLO,
			Checks:   planList(s.Checks),
			OnBreach: s.OnBreach,
		}
		if s.OnBreach == "" && (len(s.Analyses) > 0 || s.SLO != nil || len(s.Checks) > 0) {
			p.Stabilization.OnBreach = "rollback"
		}
	}
	p.Rollback = planRollback(rb, p)
	return p
}

func planScope(s *Scope) *PlanScope {
	if s == nil {
		return nil
	}
	ps := &PlanScope{Groups: planList(s.Groups), Infrastructure: planDefault(s.Infrastructure, "separate")}
	for _, c := range s.Components {
		pc := PlanComponent{
			Name:         c.Name,
			Artifact:     c.Artifact,
			Pinned:       strings.Contains(c.Artifact, "@sha256:"),
			AllowTag:     c.AllowTag,
			Stateful:     c.Stateful,
			SchemaChange: planDefault(c.SchemaChange, "none"),
			Libraries:    planList(c.Libraries),
		}
		for _, g := range s.Groups {
			for _, name := range g.Components {
				if name == c.Name {
					pc.Groups = append(pc.Groups, g.Name)
					break
				}
			}
		}
		ps.Components = append(ps.Components, pc)
	}
	return ps
}

func planReadiness(r *Readiness) *PlanReadiness {
	if r == nil || (len(r.Gates) == 0 && r.Risk == nil) {
		return nil
	}
	pr := &PlanReadiness{Gates: planList(r.Gates)}
	if r.Risk != nil {
		risk := &PlanRisk{Medium: r.Risk.Medium, High: r.Risk.High}
		for _, f := range RiskFactors {
			w, ok := r.Risk.Weights[f]
			if !ok {
				w = 1
			}
			risk.Weights = append(risk.Weights, RiskWeight{Factor: f, Weight: w})
		}
		var unknown []string
		for f := range r.Risk.Weights {
			if !slices.Contains(RiskFactors, f) {
				unknown = append(unknown, f)
			}
		}
		sort.Strings(unknown)
		for _, f := range unknown {
			risk.Weights = append(risk.Weights, RiskWeight{Factor: f, Weight: r.Risk.Weights[f]})
		}
		pr.Risk = risk
	}
	return pr
}

// planApprovals orders the gates by the execution position of the stage they hold, then
// by declaration; gates holding an unknown stage come last.
func planApprovals(gates []ApprovalGate, order map[string]int) []PlanApproval {
	var out []PlanApproval
	idx := make([]int, len(gates))
	for i := range gates {
		idx[i] = i
	}
	pos := func(g ApprovalGate) int {
		if p, ok := order[g.Before]; ok {
			return p
		}
		return len(order)
	}
	sort.SliceStable(idx, func(a, b int) bool { return pos(gates[idx[a]]) < pos(gates[idx[b]]) })
	for _, i := range idx {
		g := gates[i]
		out = append(out, PlanApproval{
			Name:           g.Name,
			Path:           fmt.Sprintf("approvals[%d]", i),
			Before:         g.Before,
			Roles:          planList(g.Roles),
			Count:          g.RequiredCount(),
			DistinctRoles:  planList(g.DistinctRoles),
			AllowRequester: g.AllowRequester,
			Timeout:        Duration(g.TimeoutOrDefault()),
			OnTimeout:      planDefault(g.OnTimeout, "reject"),
			Escalation:     g.Escalation,
			When:           g.When,
		})
	}
	return out
}

// planStageDeps returns, for each stage, the indexes of the stages it waits for: those named in
// After, or else the stage declared before it. Unknown names and self references are
// ignored (the validator reports them).
func planStageDeps(stages []Stage) [][]int {
	index := map[string]int{}
	for i, s := range stages {
		if _, dup := index[s.Name]; !dup {
			index[s.Name] = i
		}
	}
	deps := make([][]int, len(stages))
	for i, s := range stages {
		if len(s.After) == 0 {
			if i > 0 {
				deps[i] = []int{i - 1}
			}
			continue
		}
		for _, name := range s.After {
			j, ok := index[name]
			if ok && j != i && !slices.Contains(deps[i], j) {
				deps[i] = append(deps[i], j)
			}
		}
	}
	return deps
}

// planStageWaves orders the stages with Kahn's algorithm, level by level: a wave holds every
// stage whose predecessors are all in earlier waves, in declaration order. Stages caught in a
// cycle (which the validator rejects) form one last wave, so nothing is dropped.
func planStageWaves(stages []Stage) (deps [][]int, waves [][]int) {
	deps = planStageDeps(stages)
	indegree := make([]int, len(stages))
	next := make([][]int, len(stages))
	for i, ds := range deps {
		indegree[i] = len(ds)
		for _, d := range ds {
			next[d] = append(next[d], i)
		}
	}
	placed := make([]bool, len(stages))
	var ready []int
	for i := range stages {
		if indegree[i] == 0 {
			ready = append(ready, i)
		}
	}
	done := 0
	for len(ready) > 0 {
		sort.Ints(ready)
		wave := ready
		ready = nil
		for _, i := range wave {
			placed[i] = true
			done++
			for _, n := range next[i] {
				indegree[n]--
				if indegree[n] == 0 {
					ready = append(ready, n)
				}
			}
		}
		waves = append(waves, wave)
	}
	if done < len(stages) {
		var rest []int
		for i := range stages {
			if !placed[i] {
				rest = append(rest, i)
			}
		}
		waves = append(waves, rest)
	}
	return deps, waves
}

// planStageAncestors returns, for each stage, every stage that has finished before it starts.
func planStageAncestors(deps [][]int) [][]int {
	out := make([][]int, len(deps))
	for i := range deps {
		seen := map[int]bool{i: true}
		stack := append([]int(nil), deps[i]...)
		for len(stack) > 0 {
			j := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[j] {
				continue
			}
			seen[j] = true
			out[i] = append(out[i], j)
			stack = append(stack, deps[j]...)
		}
		sort.Ints(out[i])
	}
	return out
}

func planStage(rb Runbook, i int, deps, ancestors []int) PlanStage {
	s := rb.Stages[i]
	ps := PlanStage{
		Name:         s.Name,
		Path:         fmt.Sprintf("stages[%d]", i),
		Environment:  s.Environment,
		Region:       s.Region,
		Residency:    s.Residency,
		Requires:     planList(s.Requires),
		Strategy:     PlanStrategy{Type: StrategyRolling, MaxParallel: 1},
		Smoke:        planList(s.Smoke),
		ExitCriteria: s.ExitCriteria,
	}
	for _, d := range deps {
		ps.After = append(ps.After, rb.Stages[d].Name)
	}
	for _, g := range rb.GateBefore(s.Name) {
		ps.Approvals = append(ps.Approvals, g.Name)
	}
	ps.NotExercisedBefore = rb.NotExercisedBefore(i)
	if st := s.Strategy; st != nil {
		ps.Strategy = PlanStrategy{Type: planDefault(st.Type, StrategyRolling)}
		switch ps.Strategy.Type {
		case StrategyRolling:
			ps.Strategy.MaxParallel = max(st.MaxParallel, 1)
		case StrategyCanary:
			ps.Strategy.Steps = planList(st.Steps)
		case StrategyBlueGreen:
			if st.BlueGreen != nil {
				ps.Strategy.RollbackWindow = st.BlueGreen.RollbackWindow
			}
		}
	}
	for j, t := range s.Targets {
		pt := PlanTarget{
			Name:      t.Name,
			Path:      fmt.Sprintf("stages[%d].targets[%d]", i, j),
			Kind:      t.Kind,
			Site:      t.Site,
			Timeout:   Duration(t.TimeoutOrDefault()),
			Deploy:    t.Deploy,
			Rollback:  t.Rollback,
			ArgoCD:    t.ArgoCD,
			Spinnaker: t.Spinnaker,
			Hardware:  t.Hardware,
			Flag:      t.Flag,
		}
		if t.Kind == KindCommand || t.Kind == KindHardware {
			pt.Heartbeat = Duration(t.HeartbeatOrDefault())
		}
		ps.Targets = append(ps.Targets, pt)
	}
	return ps
}

// planAnalyses lists the runbook's analyses with where each one runs, in execution order.
func planAnalyses(rb Runbook, waves [][]int) []PlanAnalysis {
	if len(rb.Analyses) == 0 {
		return nil
	}
	uses := map[string][]string{}
	use := func(name, where string) {
		if !slices.Contains(uses[name], where) {
			uses[name] = append(uses[name], where)
		}
	}
	for _, w := range waves {
		for _, i := range w {
			s := rb.Stages[i]
			if s.Strategy != nil && s.Strategy.Type == StrategyCanary {
				for _, step := range s.Strategy.Steps {
					if step.Analysis != "" {
						use(step.Analysis, fmt.Sprintf("stage %s canary at %d%%", s.Name, step.Weight))
					}
				}
			}
			if s.ExitCriteria != nil {
				for _, a := range s.ExitCriteria.Analyses {
					use(a, fmt.Sprintf("stage %s exit criteria", s.Name))
				}
			}
		}
	}
	for _, a := range rb.Stabilization.Analyses {
		use(a, "stabilization")
	}
	out := make([]PlanAnalysis, 0, len(rb.Analyses))
	for _, a := range rb.Analyses {
		out = append(out, PlanAnalysis{Analysis: a, UsedBy: uses[a.Name]})
	}
	return out
}

// planRollback lists what rolls the release back, in the order it can happen.
func planRollback(rb Runbook, p Plan) PlanRollback {
	pr := PlanRollback{Scope: "release"}
	if r := rb.Rollback; r != nil {
		pr.Scope = planDefault(r.Scope, "release")
		pr.Budget = r.Budget
		pr.ForwardFix = r.ForwardFix
		pr.CircuitBreaker = r.CircuitBreaker
	}
	add := func(format string, args ...any) { pr.Triggers = append(pr.Triggers, fmt.Sprintf(format, args...)) }

	for _, a := range p.Governance.Approvals {
		if a.OnTimeout == "reject" {
			add("approval %s is rejected, or not decided within %s", a.Name, planDuration(a.Timeout))
		} else {
			add("approval %s is rejected", a.Name)
		}
	}
	if p.Governance.OnFreeze == "fail" {
		add("a stage meets a freeze (onFreeze: fail)")
	}
	add("a target fails to deploy (its deploy fails or outlives its timeout)")
	for _, w := range p.Waves {
		for _, s := range w.Stages {
			for _, t := range s.Targets {
				if t.Hardware != nil && t.Hardware.MaxFailureRatio > 0 {
					add("target %s: more than %s of a wave of devices fails", t.Name, planPercent(t.Hardware.MaxFailureRatio))
				}
			}
			var analyses []string
			for _, step := range s.Strategy.Steps {
				if step.Analysis != "" && !slices.Contains(analyses, step.Analysis) {
					analyses = append(analyses, step.Analysis)
				}
			}
			if len(analyses) > 0 {
				add("stage %s: canary analysis %s fails", s.Name, strings.Join(analyses, ", "))
			}
			if len(s.Smoke) > 0 {
				add("stage %s: a smoke check fails", s.Name)
			}
			if ec := s.ExitCriteria; ec != nil && (len(ec.Analyses) > 0 || len(ec.Checks) > 0) {
				add("stage %s: exit criteria not met", s.Name)
			}
		}
	}
	if st := p.Stabilization; st != nil {
		var watched []string
		if st.SLO != nil {
			watched = append(watched, "SLO burn rate")
		}
		for _, a := range st.Analyses {
			watched = append(watched, "analysis "+a)
		}
		if len(st.Checks) > 0 {
			watched = append(watched, "checks")
		}
		if len(watched) > 0 {
			if st.OnBreach == "page" {
				add("stabilization breach (%s): the rollback authority is paged and decides", strings.Join(watched, ", "))
			} else {
				add("stabilization breach (%s)", strings.Join(watched, ", "))
			}
		}
	}
	who := "the requester"
	if len(p.Governance.RollbackAuthority) > 0 {
		who += " or " + strings.Join(p.Governance.RollbackAuthority, ", ")
	}
	add("abort by %s", who)
	return pr
}

func planPercent(ratio float64) string {
	return fmt.Sprintf("%g%%", ratio*100)
}

// planDuration writes 24h and 1h30m rather than 24h0m0s and 1h30m0s.
func planDuration(d Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func planDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// planList returns nil for an empty slice, so a Plan compares equal after a JSON round trip.
func planList[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// The text form: sections in the order a release meets them, every value starting at the
// same column, no color and no trailing spaces.

// planTextColumn is where values start in the text form.
const planTextColumn = 19

// Text writes the plan for a person to read. Parts listed in NotYetEnforced are marked
// "[not yet enforced]" where they appear, and listed again at the end.
func (p Plan) Text(w io.Writer) error {
	t := &planText{plan: p}
	t.render()
	_, err := io.WriteString(w, t.b.String())
	return err
}

type planText struct {
	plan Plan
	b    strings.Builder
}

func (t *planText) line(indent int, s string) {
	t.b.WriteString(strings.TrimRight(strings.Repeat(" ", indent)+s, " "))
	t.b.WriteByte('\n')
}

// kv writes key at indent and the values one per line, starting at planTextColumn.
func (t *planText) kv(indent int, key string, values ...string) {
	pad := planTextColumn - indent - len(key)
	if pad < 2 {
		pad = 2
	}
	if len(values) == 0 {
		values = []string{""}
	}
	t.line(indent, key+strings.Repeat(" ", pad)+values[0])
	for _, v := range values[1:] {
		t.line(indent+len(key)+pad, v)
	}
}

// planColumns pads each row's cells to the widest of their column.
func planColumns(rows [][]string) []string {
	var width []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(width) {
				width = append(width, 0)
			}
			width[i] = max(width[i], len(c))
		}
	}
	out := make([]string, len(rows))
	for n, r := range rows {
		var b strings.Builder
		for i, c := range r {
			if c == "" {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("  ")
			}
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", width[i]-len(c)))
			}
		}
		out[n] = strings.TrimRight(b.String(), " ")
	}
	return out
}

// mark is " [not yet enforced]" when NotYetEnforced names path or something under it.
func (t *planText) mark(path string) string {
	for _, e := range t.plan.NotYetEnforced {
		ep, _, _ := strings.Cut(e, ": ")
		if ep == path || strings.HasPrefix(ep, path+".") || strings.HasPrefix(ep, path+"[") {
			return "  [not yet enforced]"
		}
	}
	return ""
}

func (t *planText) render() {
	p := t.plan
	t.header()
	if p.Scope != nil {
		t.scope()
	}
	if p.Readiness != nil {
		t.readiness()
	}
	t.governance()
	if len(p.Analyses) > 0 {
		t.analyses()
	}
	t.stages()
	if p.Stabilization != nil {
		t.stabilization()
	}
	t.rollback()
	if len(p.NotYetEnforced) > 0 {
		t.line(0, "")
		t.kv(0, "NOT YET ENFORCED", "this version of Trainyard refuses to start releases of this runbook until it enforces these")
		rows := make([][]string, len(p.NotYetEnforced))
		for i, e := range p.NotYetEnforced {
			path, what, _ := strings.Cut(e, ": ")
			rows[i] = []string{path, what}
		}
		for _, r := range planColumns(rows) {
			t.line(2, r)
		}
	}
}

func (t *planText) header() {
	p, m := t.plan, t.plan.Metadata
	t.kv(0, "Runbook", p.Runbook)
	if p.Description != "" {
		t.kv(0, "Description", planOneLine(p.Description))
	}
	if len(m.Owners) > 0 {
		t.kv(0, "Owners", strings.Join(m.Owners, ", "))
	}
	if m.Tier > 0 {
		tier := fmt.Sprintf("%d", m.Tier)
		if m.Tier == 1 {
			tier += " (most critical)"
		}
		t.kv(0, "Tier", tier)
	}
	if m.DataClassification != "" {
		t.kv(0, "Classification", m.DataClassification)
	}
	if len(m.Capabilities) > 0 {
		t.kv(0, "Capabilities", strings.Join(m.Capabilities, ", "))
	}
	if m.Channel != "" {
		t.kv(0, "Channel", m.Channel)
	}
	if p.Extends != "" {
		t.kv(0, "Extends", p.Extends+" (its approvals and readiness gates are mandatory)")
	}
	if len(p.Exceptions) > 0 {
		var vs []string
		for _, e := range p.Exceptions {
			vs = append(vs, fmt.Sprintf("drops %s, waiver %s: %s", e.Remove, e.Waiver, e.Reason))
		}
		t.kv(0, "Exceptions", vs...)
	}
}

func (t *planText) scope() {
	s := t.plan.Scope
	t.line(0, "")
	t.line(0, "SCOPE")
	if len(s.Components) > 0 {
		rows := make([][]string, len(s.Components))
		var schema []string
		for i, c := range s.Components {
			var facts []string
			switch {
			case c.Pinned:
				facts = append(facts, "pinned by digest")
			case c.AllowTag:
				facts = append(facts, "tag allowed")
			default:
				facts = append(facts, "NOT pinned by digest")
			}
			if c.Stateful {
				facts = append(facts, "stateful")
			}
			if c.SchemaChange != "none" {
				facts = append(facts, "schema "+c.SchemaChange)
				schema = append(schema, c.Name+": "+c.SchemaChange)
			}
			for _, l := range c.Libraries {
				facts = append(facts, "uses "+l.Name+" "+l.Version)
			}
			rows[i] = []string{c.Name, planArtifact(c.Artifact), strings.Join(facts, ", ")}
		}
		t.kv(2, "Components", planColumns(rows)...)
		if len(schema) > 0 {
			t.kv(2, "Schema changes", schema...)
		}
	}
	if len(s.Groups) > 0 {
		var vs []string
		for _, g := range s.Groups {
			vs = append(vs, g.Name+": "+strings.Join(g.Components, ", ")+" ship together")
		}
		t.kv(2, "Groups", vs...)
	}
	infra := "released on its own"
	if s.Infrastructure == "bundled" {
		infra = "rides in this release"
	}
	t.kv(2, "Infrastructure", s.Infrastructure+" ("+infra+")")
}

// planArtifact cuts a digest to 12 hex digits: the text is for reading, the JSON is whole.
func planArtifact(a string) string {
	repo, digest, ok := strings.Cut(a, "@sha256:")
	if !ok || len(digest) <= 12 {
		return a
	}
	return repo + "@sha256:" + digest[:12] + "..."
}

func (t *planText) readiness() {
	r := t.plan.Readiness
	t.line(0, "")
	t.kv(0, "READINESS", "checked before the release touches production; a failed gate stops it there")
	if len(r.Gates) > 0 {
		rows := make([][]string, len(r.Gates))
		for i, g := range r.Gates {
			extra := planGateFacts(g)
			if g.Timeout > 0 {
				extra += ", timeout " + planDuration(g.Timeout)
			}
			if g.When != "" {
				extra += ", when " + planOneLine(g.When)
			}
			rows[i] = []string{g.Name, g.Type, extra}
		}
		vs := planColumns(rows)
		vs[0] += t.mark("readiness.gates")
		t.kv(2, "Gates", vs...)
	}
	if k := r.Risk; k != nil {
		var th []string
		if k.Medium > 0 {
			th = append(th, fmt.Sprintf("medium from %d", k.Medium))
		}
		if k.High > 0 {
			th = append(th, fmt.Sprintf("high from %d", k.High))
		}
		first := "score 0-100"
		if len(th) > 0 {
			first += ": " + strings.Join(th, ", ")
		}
		var ws []string
		for _, w := range k.Weights {
			ws = append(ws, fmt.Sprintf("%s %g", w.Factor, w.Weight))
		}
		t.kv(2, "Risk", first+t.mark("readiness.risk"), "weights "+strings.Join(ws, ", "))
	}
}

func planGateFacts(g ReadinessGate) string {
	var f []string
	switch g.Type {
	case GateScanReport:
		f = append(f, "scan report from CI")
		if g.MaxSeverity != "" {
			f = append(f, "fails at "+g.MaxSeverity+" severity or above")
		}
	case GateSynthetic, GateThirdParty:
		if g.URL != "" {
			f = append(f, "probes "+g.URL)
		}
		if g.ExpectStatus > 0 {
			f = append(f, fmt.Sprintf("expects %d", g.ExpectStatus))
		}
		if g.LatencyP95 > 0 {
			f = append(f, "p95 under "+planDuration(g.LatencyP95))
		}
		if g.Requests > 0 {
			f = append(f, fmt.Sprintf("%d requests", g.Requests))
		}
	case GateCoverage:
		f = append(f, fmt.Sprintf("line coverage at least %g%%", g.MinCoverage))
	case GatePerformance:
		f = append(f, fmt.Sprintf("%s regresses at most %g", planOneLine(g.Query), g.MaxRegression))
	case GateDR:
		if g.MaxDrillAge > 0 {
			f = append(f, "restore drill at most "+planDuration(g.MaxDrillAge)+" old")
		}
	}
	if g.Run != "" {
		run := "runs " + planFirstLine(g.Run)
		if g.Site != "" {
			run += " on site " + g.Site
		}
		f = append(f, run)
	}
	return strings.Join(f, ", ")
}

// planOneLine folds a multi-line query or condition onto one line.
func planOneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func planFirstLine(s string) string {
	s = strings.TrimSpace(s)
	if first, _, cut := strings.Cut(s, "\n"); cut {
		return first + " ..."
	}
	return s
}

func (t *planText) governance() {
	g := t.plan.Governance
	t.line(0, "")
	t.line(0, "GOVERNANCE")
	if len(g.Approvals) == 0 {
		t.kv(2, "Approvals", "none")
	} else {
		t.kv(2, "Approvals", "in the order they are met")
	}
	for i, a := range g.Approvals {
		t.line(4, fmt.Sprintf("%d. %s, before stage %s", i+1, a.Name, a.Before))
		who := fmt.Sprintf("%d %s with %s", a.Count, planPlural(a.Count, "person", "people"), planRoles(a.Roles))
		if a.Count > 1 {
			who = fmt.Sprintf("%d distinct people, each with %s", a.Count, planRoles(a.Roles))
		}
		if len(a.DistinctRoles) > 0 {
			who += "; together covering " + strings.Join(a.DistinctRoles, " and ")
		}
		t.kv(6, "approvers", who+t.mark(a.Path+".distinctRoles"))
		if a.AllowRequester {
			t.kv(6, "requester", "may approve, and so may the authors of the change")
		} else {
			t.kv(6, "requester", "may not approve, nor may the authors of the change")
		}
		timeout := planDuration(a.Timeout) + ", then the release is rejected and rolled back"
		if a.OnTimeout == "wait" {
			timeout = planDuration(a.Timeout) + ", then it keeps waiting"
		}
		t.kv(6, "timeout", timeout+t.mark(a.Path+".onTimeout"))
		if e := a.Escalation; e != nil {
			t.kv(6, "escalation", "after "+planDuration(e.After)+", to "+strings.Join(e.Roles, ", ")+t.mark(a.Path+".escalation"))
		}
		if a.When != "" {
			t.kv(6, "when", planOneLine(a.When)+t.mark(a.Path+".when"))
		}
	}
	if len(g.Freezes) > 0 {
		on := "a stage that meets a freeze waits for its end"
		if g.OnFreeze == "fail" {
			on = "a stage that meets a freeze fails the release"
		}
		t.kv(2, "Freezes", strings.Join(g.Freezes, ", ")+"; "+on+t.mark("freezes"))
	}
	if c := g.CAB; c != nil {
		t.kv(2, "CAB", "approval by "+planRoles(c.Roles)+" when "+planOneLine(c.When)+t.mark("cab"))
	}
	if c := g.ChangeRequest; c != nil {
		v := "opened in " + c.Provider
		if c.AssignmentGroup != "" {
			v += ", assigned to " + c.AssignmentGroup
		}
		if c.Template != "" {
			v += ", template " + c.Template
		}
		if c.When != "" {
			v += ", when " + planOneLine(c.When)
		}
		t.kv(2, "Change request", v+t.mark("changeRequest"))
	}
	by := "the requester"
	if len(g.RollbackAuthority) > 0 {
		by += ", or anyone with " + planRoles(g.RollbackAuthority) + " (who may also order a rollback)"
	}
	t.kv(2, "Abort by", by)
}

func planPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func planRoles(roles []string) string {
	switch len(roles) {
	case 0:
		return "no role named"
	case 1:
		return "role " + roles[0]
	}
	return "one of the roles " + strings.Join(roles, ", ")
}

func (t *planText) analyses() {
	t.line(0, "")
	t.kv(0, "ANALYSES", "metric checks, used where named"+t.mark("analyses"))
	for _, a := range t.plan.Analyses {
		var head []string
		head = append(head, a.Provider)
		if a.Count > 0 || a.Interval > 0 {
			m := fmt.Sprintf("%d %s", max(a.Count, 1), planPlural(max(a.Count, 1), "measurement", "measurements"))
			if a.Interval > 0 {
				m += " every " + planDuration(a.Interval)
			}
			head = append(head, m)
		}
		if a.FailureLimit > 0 {
			head = append(head, fmt.Sprintf("up to %d may fail", a.FailureLimit))
		}
		if a.Baseline {
			head = append(head, "baseline taken before production")
		}
		t.line(2, a.Name+"  "+strings.Join(head, ", "))
		sub := [][]string{{"query", planOneLine(a.Query)}}
		if a.SuccessCondition != "" {
			sub = append(sub, []string{"success", planOneLine(a.SuccessCondition)})
		}
		if a.FailureCondition != "" {
			sub = append(sub, []string{"failure", planOneLine(a.FailureCondition)})
		}
		if len(a.UsedBy) > 0 {
			sub = append(sub, []string{"used by", strings.Join(a.UsedBy, "; ")})
		} else {
			sub = append(sub, []string{"used by", "nothing"})
		}
		for _, r := range sub {
			t.kv(4, r[0], r[1])
		}
	}
}

func (t *planText) stages() {
	t.line(0, "")
	t.kv(0, "STAGES", "in execution order; the stages of one wave run at once")
	for _, w := range t.plan.Waves {
		t.line(2, fmt.Sprintf("Wave %d", w.Wave))
		for _, s := range w.Stages {
			t.stage(s)
		}
	}
}

func (t *planText) stage(s PlanStage) {
	var where []string
	if s.Environment != "" {
		where = append(where, "environment "+s.Environment)
	}
	if s.Region != "" {
		where = append(where, "region "+s.Region)
	}
	if s.Residency != "" {
		where = append(where, "residency "+s.Residency)
	}
	head := strings.Join(where, ", ")
	if len(s.After) > 0 {
		if head != "" {
			head += "; "
		}
		head += "after " + strings.Join(s.After, ", ") + t.mark(s.Path+".after")
	}
	t.line(4, strings.TrimSpace(s.Name+"  "+head))
	if len(s.Approvals) > 0 {
		t.kv(6, "approvals", strings.Join(s.Approvals, ", ")+" must be met first")
	}
	if len(s.Requires) > 0 {
		vs := []string{"requires " + strings.Join(s.Requires, ", ") + t.mark(s.Path+".requires")}
		if len(s.NotExercisedBefore) > 0 {
			vs = append(vs, "not exercised before this stage: "+strings.Join(s.NotExercisedBefore, ", "))
		}
		t.kv(6, "parity", vs...)
	}
	t.kv(6, "strategy", planStrategyText(s.Strategy, t.mark(s.Path+".strategy"))...)
	if len(s.Smoke) > 0 {
		t.kv(6, "smoke", planChecks(s.Smoke, t.mark(s.Path+".smoke"))...)
	}
	if ec := s.ExitCriteria; ec != nil {
		var vs []string
		if len(ec.Analyses) > 0 {
			vs = append(vs, "analysis "+strings.Join(ec.Analyses, ", ")+" passes")
		}
		vs = append(vs, planChecks(ec.Checks, "")...)
		if len(vs) == 0 {
			vs = []string{"none"}
		}
		vs[0] += t.mark(s.Path + ".exitCriteria")
		t.kv(6, "exit when", vs...)
	}
	rows := make([][]string, len(s.Targets))
	for i, tg := range s.Targets {
		rows[i] = []string{tg.Name, tg.Kind, strings.Join(planTargetFacts(tg), ", ") + t.mark(tg.Path)}
	}
	t.kv(6, "targets", planColumns(rows)...)
}

func planStrategyText(s PlanStrategy, mark string) []string {
	switch s.Type {
	case StrategyRolling:
		if s.MaxParallel <= 1 {
			return []string{"rolling, one target at a time" + mark}
		}
		return []string{fmt.Sprintf("rolling, %d targets at a time", s.MaxParallel) + mark}
	case StrategyCanary:
		out := []string{fmt.Sprintf("canary, %d %s", len(s.Steps), planPlural(len(s.Steps), "step", "steps")) + mark}
		for i, st := range s.Steps {
			v := fmt.Sprintf("%d. %d%% of traffic", i+1, st.Weight)
			if st.Pause > 0 {
				v += ", pause " + planDuration(st.Pause)
			}
			if st.Analysis != "" {
				v += ", analysis " + st.Analysis
			}
			out = append(out, "  "+v)
		}
		return out
	case StrategyBlueGreen:
		v := "blue-green: deploy the idle side, smoke-test it, switch traffic"
		if s.RollbackWindow > 0 {
			v += "; the old side is kept " + planDuration(s.RollbackWindow) + " to switch back"
		}
		return []string{v + mark}
	}
	return []string{s.Type + mark}
}

func planChecks(checks []HTTPCheck, mark string) []string {
	var out []string
	for _, c := range checks {
		v := "GET " + c.URL
		if c.Name != "" {
			v = c.Name + ": " + v
		}
		if c.ExpectStatus > 0 {
			v += fmt.Sprintf(" expects %d", c.ExpectStatus)
		}
		if c.Timeout > 0 {
			v += " within " + planDuration(c.Timeout)
		}
		out = append(out, v)
	}
	if len(out) > 0 {
		out[0] += mark
	}
	return out
}

func planTargetFacts(t PlanTarget) []string {
	var f []string
	if t.Site != "" {
		f = append(f, "site "+t.Site)
	}
	switch {
	case t.ArgoCD != nil:
		a := t.ArgoCD
		f = append(f, "app "+a.App)
		if a.Server != "" {
			f = append(f, "server "+a.Server)
		}
		if a.Revision != "" {
			f = append(f, "revision "+a.Revision)
		}
		if a.Image != "" {
			f = append(f, "image "+a.Image)
		}
	case t.Spinnaker != nil:
		s := t.Spinnaker
		f = append(f, "application "+s.Application, "pipeline "+s.Pipeline)
		keys := make([]string, 0, len(s.Parameters))
		for k := range s.Parameters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f = append(f, k+"="+s.Parameters[k])
		}
	case t.Hardware != nil:
		h := t.Hardware
		var waves []string
		for _, w := range h.Waves {
			switch {
			case w.Rest:
				waves = append(waves, "the rest")
			case w.Percent > 0:
				waves = append(waves, fmt.Sprintf("%d%%", w.Percent))
			default:
				waves = append(waves, fmt.Sprintf("%d %s", w.Count, planPlural(w.Count, "device", "devices")))
			}
		}
		f = append(f, "waves "+strings.Join(waves, " / "))
		if h.MaxFailureRatio > 0 {
			f = append(f, "halts above "+planPercent(h.MaxFailureRatio)+" failed")
		}
		f = append(f, "inventory "+h.Inventory)
	case t.Flag != nil:
		fl := t.Flag
		v := "flag " + fl.Flag
		if fl.Project != "" {
			v += " (project " + fl.Project + ")"
		}
		f = append(f, v, "environment "+fl.Environment)
		if fl.Percent > 0 {
			f = append(f, fmt.Sprintf("on for %d%%", fl.Percent))
		} else {
			f = append(f, "on")
		}
		f = append(f, "rollback turns it off")
	}
	f = append(f, "timeout "+planDuration(t.Timeout))
	if t.Heartbeat > 0 {
		f = append(f, "heartbeat "+planDuration(t.Heartbeat))
	}
	return f
}

func (t *planText) stabilization() {
	s := t.plan.Stabilization
	t.line(0, "")
	t.kv(0, "STABILIZATION", "after the last stage"+t.mark("stabilization"))
	if s.Window > 0 {
		t.kv(2, "Window", planDuration(s.Window)+" (an abort during it rolls everything back)")
	}
	if o := s.SLO; o != nil {
		vs := []string{fmt.Sprintf("%g%% of requests succeed; error ratio %s", o.Objective, planOneLine(o.ErrorRatio))}
		for _, b := range o.BurnRates {
			vs = append(vs, fmt.Sprintf("breach when the error budget burns %gx too fast over %s and %s", b.Factor, planDuration(b.Long), planDuration(b.Short)))
		}
		t.kv(2, "SLO", vs...)
	}
	if len(s.Analyses) > 0 {
		t.kv(2, "Analyses", strings.Join(s.Analyses, ", "))
	}
	if len(s.Checks) > 0 {
		t.kv(2, "Checks", planChecks(s.Checks, "")...)
	}
	switch s.OnBreach {
	case "rollback":
		t.kv(2, "On breach", "roll back at once")
	case "page":
		t.kv(2, "On breach", "page the rollback authority, who decide")
	}
}

func (t *planText) rollback() {
	r := t.plan.Rollback
	t.line(0, "")
	t.kv(0, "ROLLBACK", "undo in reverse order, last deployed first"+t.mark("rollback"))
	t.kv(2, "Triggers", r.Triggers...)
	scope := map[string]string{
		"release": "release: every target deployed so far",
		"stage":   "stage: the targets of the failing stage",
		"target":  "target: only the failed target",
	}[r.Scope]
	if scope == "" {
		scope = r.Scope
	}
	t.kv(2, "Scope", scope)
	if r.Budget > 0 {
		t.kv(2, "Budget", planDuration(r.Budget)+", then it escalates to the rollback authority")
	}
	if r.ForwardFix {
		t.kv(2, "Forward fix", "allowed: the rollback authority may end a breached release without rolling back")
	}
	if cb := r.CircuitBreaker; cb != nil {
		what := "further releases of this runbook"
		if cb.Scope == "environment" {
			what = "further releases to the same environments"
		}
		t.kv(2, "Circuit breaker", "after a rollback, "+what+" are blocked until the rollback authority clears it")
	}
}
