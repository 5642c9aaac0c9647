package runbooks

import (
	"encoding/json"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Runbook declares how one kind of release goes. A release carries a copy of its runbook in
// the workflow input, so editing the file never changes a release in flight; every field
// must therefore survive a JSON round trip, and a field once shipped keeps its JSON name and
// shape (histories in flight decode it on replay).
//
// The sections: metadata (name ... channel), extends/exceptions, scope, readiness,
// governance (approvals ... rollbackAuthority), analyses, stages, stabilization, rollback.
// docs/runbooks.md is the reference.
type Runbook struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Owners are the teams accountable for what this runbook releases.
	Owners []string `yaml:"owners,omitempty" json:"owners,omitempty"`
	// Tier is the criticality: 1 (most critical) to 4.
	Tier int `yaml:"tier,omitempty" json:"tier,omitempty"`
	// DataClassification is the most sensitive data the released services touch: public,
	// internal, pii, pci or phi.
	DataClassification string   `yaml:"dataClassification,omitempty" json:"dataClassification,omitempty"`
	Capabilities       []string `yaml:"capabilities,omitempty" json:"capabilities,omitempty"`
	// Channel is the Slack channel the release is announced in.
	Channel string `yaml:"channel,omitempty" json:"channel,omitempty"`

	// Extends names a base runbook file (relative to this one) whose approvals and readiness
	// gates are mandatory here; Exceptions are the only way to drop one, each backed by a waiver.
	Extends    string      `yaml:"extends,omitempty" json:"extends,omitempty"`
	Exceptions []Exception `yaml:"exceptions,omitempty" json:"exceptions,omitempty"`

	Scope     *Scope     `yaml:"scope,omitempty" json:"scope,omitempty"`
	Readiness *Readiness `yaml:"readiness,omitempty" json:"readiness,omitempty"`

	Approvals []ApprovalGate `yaml:"approvals,omitempty" json:"approvals,omitempty"`
	// Freezes names the freeze calendars (managed through the API or files) that apply.
	Freezes []string `yaml:"freezes,omitempty" json:"freezes,omitempty"`
	// OnFreeze is what a release does at a frozen stage: wait (default) or fail.
	OnFreeze      string         `yaml:"onFreeze,omitempty" json:"onFreeze,omitempty"`
	CAB           *CAB           `yaml:"cab,omitempty" json:"cab,omitempty"`
	ChangeRequest *ChangeRequest `yaml:"changeRequest,omitempty" json:"changeRequest,omitempty"`
	// PreMortem lists the ways this release is expected to fail and what mitigates each;
	// approvers see them and acknowledge them with their approval.
	PreMortem []FailureMode `yaml:"preMortem,omitempty" json:"preMortem,omitempty"`
	// RollbackAuthority names the roles that may abort a release or order a rollback (the
	// requester always may abort).
	RollbackAuthority []string `yaml:"rollbackAuthority,omitempty" json:"rollbackAuthority,omitempty"`

	// Analyses are named metric checks that canary steps, exit criteria and stabilization use.
	Analyses []Analysis `yaml:"analyses,omitempty" json:"analyses,omitempty"`
	Stages   []Stage    `yaml:"stages" json:"stages"`
	// Stabilization is how long production must stay healthy after the last stage, and what
	// is watched meanwhile. Written as a duration ("30m") or as a block.
	Stabilization Stabilization `yaml:"stabilization,omitempty" json:"stabilization,omitempty"`
	Rollback      *Rollback     `yaml:"rollback,omitempty" json:"rollback,omitempty"`

	// Extensions holds top-level keys starting with "x-", a place for YAML anchors that
	// several targets share (as in Compose files). Any other unknown key is an error.
	Extensions map[string]any `yaml:",inline" json:"-"`
}

// ApprovalGate holds the release before a stage until enough people with the named roles
// approve it.
type ApprovalGate struct {
	Name   string   `yaml:"name" json:"name"`
	Before string   `yaml:"before" json:"before"`
	Roles  []string `yaml:"roles" json:"roles"`
	// Count is how many distinct people must approve; 1 when unset.
	Count int `yaml:"count,omitempty" json:"count,omitempty"`
	// DistinctRoles requires the approvers to cover each of these roles (one release manager
	// and one service owner), on top of Count.
	DistinctRoles []string `yaml:"distinctRoles,omitempty" json:"distinctRoles,omitempty"`
	// AllowRequester lets the person who started the release, or an author of its commits,
	// approve it. Off by default: separation of duties is the safe default.
	AllowRequester bool `yaml:"allowRequester,omitempty" json:"allowRequester,omitempty"`
	// Timeout is how long the gate waits for a decision.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// OnTimeout is reject (default) or wait (keep waiting after escalating).
	OnTimeout  string      `yaml:"onTimeout,omitempty" json:"onTimeout,omitempty"`
	Escalation *Escalation `yaml:"escalation,omitempty" json:"escalation,omitempty"`
	// When is a condition (CEL) choosing whether the gate applies to a release.
	When string `yaml:"when,omitempty" json:"when,omitempty"`
}

// Escalation notifies more people when a gate has waited too long.
type Escalation struct {
	After Duration `yaml:"after" json:"after"`
	Roles []string `yaml:"roles" json:"roles"`
}

// Stage is one environment the release rolls through: in order, or after the stages it
// names in After (a DAG: independent stages run at once).
type Stage struct {
	Name        string   `yaml:"name" json:"name"`
	Environment string   `yaml:"environment,omitempty" json:"environment,omitempty"`
	After       []string `yaml:"after,omitempty" json:"after,omitempty"`
	Region      string   `yaml:"region,omitempty" json:"region,omitempty"`
	// Residency is the data-residency zone (eu, us, ...) the stage's targets are in.
	Residency string `yaml:"residency,omitempty" json:"residency,omitempty"`
	// Requires lists hardware or capabilities this stage has that earlier stages may lack
	// (environment parity): the release is told what was never exercised before it.
	Requires     []string      `yaml:"requires,omitempty" json:"requires,omitempty"`
	Strategy     *Strategy     `yaml:"strategy,omitempty" json:"strategy,omitempty"`
	Smoke        []HTTPCheck   `yaml:"smoke,omitempty" json:"smoke,omitempty"`
	ExitCriteria *ExitCriteria `yaml:"exitCriteria,omitempty" json:"exitCriteria,omitempty"`
	Targets      []Target      `yaml:"targets" json:"targets"`
}

// Target kinds.
const (
	KindCommand   = "command"
	KindArgoCD    = "argocd"
	KindSpinnaker = "spinnaker"
	KindHardware  = "hardware"
	KindFlag      = "flag"
)

// TargetKinds lists every kind, in the order documentation shows them.
var TargetKinds = []string{KindCommand, KindArgoCD, KindSpinnaker, KindHardware, KindFlag}

// Target is one thing a stage deploys to. Kind says which of the kind-specific fields apply:
// command (site, deploy, rollback), argocd, spinnaker, hardware, flag.
type Target struct {
	Name string `yaml:"name" json:"name"`
	Kind string `yaml:"kind" json:"kind"`
	// Site is the site worker that runs command and hardware targets.
	Site     string   `yaml:"site,omitempty" json:"site,omitempty"`
	Deploy   string   `yaml:"deploy,omitempty" json:"deploy,omitempty"`
	Rollback string   `yaml:"rollback,omitempty" json:"rollback,omitempty"`
	Timeout  Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Heartbeat is how long the site worker may stay silent before Temporal treats the
	// command as lost and retries it elsewhere (or on the restarted worker).
	Heartbeat Duration `yaml:"heartbeat,omitempty" json:"heartbeat,omitempty"`
	// Drift (command targets) is a shell command the site worker runs before deploying, to
	// compare the target with what the last release left: exit 0 when it matches, 1 when it
	// drifted (its last line says how), anything else when it could not tell.
	Drift string `yaml:"drift,omitempty" json:"drift,omitempty"`
	// OnDrift is what a deploy does about drift (argocd: the app is OutOfSync; command: the
	// drift command exits 1): warn (the default), fail, or resync. See DriftActions.
	OnDrift string `yaml:"onDrift,omitempty" json:"onDrift,omitempty"`

	ArgoCD    *ArgoCDTarget    `yaml:"argocd,omitempty" json:"argocd,omitempty"`
	Spinnaker *SpinnakerTarget `yaml:"spinnaker,omitempty" json:"spinnaker,omitempty"`
	Hardware  *HardwareTarget  `yaml:"hardware,omitempty" json:"hardware,omitempty"`
	Flag      *FlagTarget      `yaml:"flag,omitempty" json:"flag,omitempty"`
}

// Defaults applied where a runbook leaves a duration unset.
const (
	DefaultTargetTimeout    = 10 * time.Minute
	DefaultHeartbeat        = 30 * time.Second
	DefaultApprovalTimeout  = 24 * time.Hour
	DefaultApprovalCount    = 1
	DefaultStabilizationDur = 0
)

// Sites lists the distinct sites whose workers the runbook needs (targets and readiness gates
// that run commands), in order of first use.
func (r Runbook) Sites() []string {
	var sites []string
	seen := map[string]bool{}
	use := func(site string) {
		if site != "" && !seen[site] {
			seen[site] = true
			sites = append(sites, site)
		}
	}
	if r.Readiness != nil {
		for _, g := range r.Readiness.Gates {
			use(g.Site)
		}
	}
	for _, s := range r.Stages {
		for _, t := range s.Targets {
			use(t.Site)
		}
	}
	return sites
}

// GateBefore returns the approval gates that hold the named stage.
func (r Runbook) GateBefore(stage string) []ApprovalGate {
	var gates []ApprovalGate
	for _, g := range r.Approvals {
		if g.Before == stage {
			gates = append(gates, g)
		}
	}
	return gates
}

// Gate returns the approval gate with the given name.
func (r Runbook) Gate(name string) (ApprovalGate, bool) {
	for _, g := range r.Approvals {
		if g.Name == name {
			return g, true
		}
	}
	return ApprovalGate{}, false
}

// RequiredCount is how many distinct approvals the gate needs.
func (g ApprovalGate) RequiredCount() int {
	if g.Count <= 0 {
		return DefaultApprovalCount
	}
	return g.Count
}

// TimeoutOrDefault is the gate's decision deadline.
func (g ApprovalGate) TimeoutOrDefault() time.Duration {
	if g.Timeout <= 0 {
		return DefaultApprovalTimeout
	}
	return g.Timeout.D()
}

// TimeoutOrDefault is the longest one deploy or rollback command may run.
func (t Target) TimeoutOrDefault() time.Duration {
	if t.Timeout <= 0 {
		return DefaultTargetTimeout
	}
	return t.Timeout.D()
}

// HeartbeatOrDefault is the heartbeat timeout of the target's commands.
func (t Target) HeartbeatOrDefault() time.Duration {
	if t.Heartbeat <= 0 {
		return DefaultHeartbeat
	}
	return t.Heartbeat.D()
}

// Duration is a time.Duration written as "90s" or "24h" in YAML and JSON, so runbooks and
// workflow histories stay readable.
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML accepts Go duration strings ("30s", "1h30m").
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as 30s or 2h", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (write it like 30s, 5m or 2h)", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// DefaultGateTimeout bounds a readiness gate that names no timeout.
const DefaultGateTimeout = 10 * time.Minute

// TimeoutOrDefault is how long the gate may take.
func (g ReadinessGate) TimeoutOrDefault() time.Duration {
	if g.Timeout <= 0 {
		return DefaultGateTimeout
	}
	return g.Timeout.D()
}

// OnSite reports whether the gate runs a command on a site worker.
func (g ReadinessGate) OnSite() bool { return g.Run != "" }

// HasDAG reports whether any stage names the stages it runs after; otherwise stages run in
// declaration order.
func (r Runbook) HasDAG() bool {
	for _, s := range r.Stages {
		if len(s.After) > 0 {
			return true
		}
	}
	return false
}

// StageDeps lists, for each stage, the indexes of the stages it waits for: those its after
// names, or the stage above when after is empty. Validation guarantees after names only
// stages above, so the graph has no cycle.
func (r Runbook) StageDeps() [][]int {
	idx := map[string]int{}
	for i, s := range r.Stages {
		idx[s.Name] = i
	}
	deps := make([][]int, len(r.Stages))
	for i, s := range r.Stages {
		switch {
		case len(s.After) > 0:
			for _, a := range s.After {
				if j, ok := idx[a]; ok {
					deps[i] = append(deps[i], j)
				}
			}
		case i > 0:
			deps[i] = []int{i - 1}
		}
	}
	return deps
}

// NotExercisedBefore lists what stage i requires (environment parity) that no stage it runs
// after requires too: hardware or capabilities this release meets there for the first time.
func (r Runbook) NotExercisedBefore(i int) []string {
	if i < 0 || i >= len(r.Stages) || len(r.Stages[i].Requires) == 0 {
		return nil
	}
	ancestors := planStageAncestors(planStageDeps(r.Stages))[i]
	exercised := map[string]bool{}
	for _, a := range ancestors {
		for _, req := range r.Stages[a].Requires {
			exercised[req] = true
		}
	}
	var out []string
	for _, req := range r.Stages[i].Requires {
		if !exercised[req] {
			out = append(out, req)
		}
	}
	return out
}

// FinalEnvironment is the environment the release ends in (its last stage's): what whole-
// release waivers and conditions' release.environment name, and the lock kept through
// stabilization.
func (r Runbook) FinalEnvironment() string {
	if n := len(r.Stages); n > 0 {
		return r.Stages[n-1].Environment
	}
	return ""
}
