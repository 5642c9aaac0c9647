package runbooks

import (
	"encoding/json"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// The sections of the language beyond stages and approvals. Each is declared, validated and
// explained here; the workflows enforce them as their issues land (Unsupported lists what the
// running version cannot enforce yet, and releases using it are refused rather than run
// without it).

// Data classifications, least to most sensitive.
var DataClassifications = []string{"public", "internal", "pii", "pci", "phi"}

// Exception drops one mandatory item inherited through Extends, backed by a waiver.
type Exception struct {
	// Remove names what is dropped: "approvals/<name>" or "readiness/<gate name>".
	Remove string `yaml:"remove" json:"remove"`
	// Waiver is the id of the waiver that allows it (granted through the governance API).
	Waiver string `yaml:"waiver" json:"waiver"`
	Reason string `yaml:"reason" json:"reason"`
}

// Scope is what ships together.
type Scope struct {
	Components []Component `yaml:"components,omitempty" json:"components,omitempty"`
	// Groups are components that must ship in the same release, at coordinated versions.
	Groups []VersionGroup `yaml:"groups,omitempty" json:"groups,omitempty"`
	// Infrastructure says whether infrastructure changes (manifests, Terraform) ride in this
	// release ("bundled") or are released on their own ("separate", the default).
	Infrastructure string `yaml:"infrastructure,omitempty" json:"infrastructure,omitempty"`
}

// Infrastructure modes.
var InfrastructureModes = []string{"separate", "bundled"}

// Component is one artifact of the release.
type Component struct {
	Name string `yaml:"name" json:"name"`
	// Artifact is the image or package reference. It must be pinned by digest
	// (repo@sha256:...) unless AllowTag: promotion never rebuilds or re-resolves a tag.
	Artifact string `yaml:"artifact" json:"artifact"`
	AllowTag bool   `yaml:"allowTag,omitempty" json:"allowTag,omitempty"`
	Stateful bool   `yaml:"stateful,omitempty" json:"stateful,omitempty"`
	// SchemaChange is none (default), expand, contract or migrate.
	SchemaChange string    `yaml:"schemaChange,omitempty" json:"schemaChange,omitempty"`
	Libraries    []Library `yaml:"libraries,omitempty" json:"libraries,omitempty"`
	// DependsOn names the components (of any runbook) this one calls or reads: the catalog of
	// all runbooks turns these into "what depends on X" for impact scores.
	DependsOn []string `yaml:"dependsOn,omitempty" json:"dependsOn,omitempty"`
}

// ChangesStorage reports whether shipping the component changes a schema or stored data.
func (c Component) ChangesStorage() bool {
	return c.SchemaChange != "" && c.SchemaChange != "none"
}

// Schema change kinds.
var SchemaChanges = []string{"none", "expand", "contract", "migrate"}

// Library is a shared library a component consumes, so drift across services is visible.
type Library struct {
	Name    string `yaml:"name" json:"name"`
	Version string `yaml:"version" json:"version"`
}

// VersionGroup lists components that must ship together.
type VersionGroup struct {
	Name       string   `yaml:"name" json:"name"`
	Components []string `yaml:"components" json:"components"`
}

// Readiness is what is checked before the release touches production.
type Readiness struct {
	Gates []ReadinessGate `yaml:"gates,omitempty" json:"gates,omitempty"`
	Risk  *RiskModel      `yaml:"risk,omitempty" json:"risk,omitempty"`
}

// Readiness gate types.
const (
	GateScanReport  = "scanReport"
	GateSynthetic   = "synthetic"
	GateCoverage    = "coverage"
	GatePerformance = "performance"
	GateDR          = "drValidation"
	GateThirdParty  = "thirdParty"
	GateCompliance  = "compliance"
	GateCommand     = "command"
)

// GateTypes lists every readiness gate type.
var GateTypes = []string{GateScanReport, GateSynthetic, GateCoverage, GatePerformance, GateDR, GateThirdParty, GateCompliance, GateCommand}

// ReadinessGate is one check run (in parallel with the others) before production. Type says
// which of the type-specific fields apply.
type ReadinessGate struct {
	Name    string   `yaml:"name" json:"name"`
	Type    string   `yaml:"type" json:"type"`
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// When is a condition (CEL) choosing whether the gate applies.
	When string `yaml:"when,omitempty" json:"when,omitempty"`

	// scanReport: CI attaches SARIF or Trivy JSON; fail at or above MaxSeverity
	// (low, medium, high, critical).
	MaxSeverity string `yaml:"maxSeverity,omitempty" json:"maxSeverity,omitempty"`
	// synthetic, thirdParty: the URL probed.
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// synthetic: expected status, latency bound at a percentile, number of requests.
	ExpectStatus int      `yaml:"expectStatus,omitempty" json:"expectStatus,omitempty"`
	LatencyP95   Duration `yaml:"latencyP95,omitempty" json:"latencyP95,omitempty"`
	Requests     int      `yaml:"requests,omitempty" json:"requests,omitempty"`
	// coverage: the least line coverage (percent) CI must report.
	MinCoverage float64 `yaml:"minCoverage,omitempty" json:"minCoverage,omitempty"`
	// performance: a PromQL query of the metric, compared between new and old version.
	Query         string  `yaml:"query,omitempty" json:"query,omitempty"`
	MaxRegression float64 `yaml:"maxRegression,omitempty" json:"maxRegression,omitempty"`
	// drValidation: the oldest acceptable restore drill.
	MaxDrillAge Duration `yaml:"maxDrillAge,omitempty" json:"maxDrillAge,omitempty"`
	// command, compliance, drValidation: a command run by a site worker; exit 0 passes.
	Run  string `yaml:"run,omitempty" json:"run,omitempty"`
	Site string `yaml:"site,omitempty" json:"site,omitempty"`
}

// RiskModel weighs the factors of the risk score (0-100) and names its thresholds.
type RiskModel struct {
	// Weights per factor: changeFailureRate, churn, coverage, schemaChange, components,
	// timing. Unset factors weigh 1.
	Weights map[string]float64 `yaml:"weights,omitempty" json:"weights,omitempty"`
	// Medium and High are the scores from which a release counts as that risky.
	Medium int `yaml:"medium,omitempty" json:"medium,omitempty"`
	High   int `yaml:"high,omitempty" json:"high,omitempty"`
}

// RiskFactors are the factors a risk model may weigh.
var RiskFactors = []string{"changeFailureRate", "churn", "coverage", "schemaChange", "components", "timing"}

// CAB is the change advisory board's involvement: a CAB approval gate is added to a release
// whose impact score reaches Threshold, or for which When holds.
type CAB struct {
	// When is a condition (CEL) under which the CAB must approve, e.g. "risk.score >= 70".
	When string `yaml:"when,omitempty" json:"when,omitempty"`
	// Threshold is the impact score (0-100, from the runbook catalog's dependency mapping)
	// from which the CAB must approve; 0 leaves it to When.
	Threshold int      `yaml:"threshold,omitempty" json:"threshold,omitempty"`
	Roles     []string `yaml:"roles" json:"roles"`
	// Count is how many CAB members must approve; 1 when unset.
	Count int `yaml:"count,omitempty" json:"count,omitempty"`
	// Before names the stage the CAB gate holds; by default the first production stage
	// (environment "production" or "prod"), else the last stage.
	Before string `yaml:"before,omitempty" json:"before,omitempty"`
	// Timeout is how long the CAB gate waits (default 72h); a timed-out CAB rejects.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// CABGateName is the name of the approval gate a CAB requirement adds.
const CABGateName = "cab"

// DefaultCABTimeout is how long a CAB gate waits: boards meet weekly, but a change waiting
// longer than three days needs a person's attention anyway.
const DefaultCABTimeout = 72 * time.Hour

// CABStage is the stage the CAB gate holds.
func (r Runbook) CABStage() string {
	if r.CAB != nil && r.CAB.Before != "" {
		return r.CAB.Before
	}
	for _, s := range r.Stages {
		if s.Environment == "production" || s.Environment == "prod" {
			return s.Name
		}
	}
	if len(r.Stages) == 0 {
		return ""
	}
	return r.Stages[len(r.Stages)-1].Name
}

// Gate is the approval gate the CAB requirement adds.
func (c CAB) Gate(before string) ApprovalGate {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = Duration(DefaultCABTimeout)
	}
	return ApprovalGate{Name: CABGateName, Before: before, Roles: c.Roles, Count: c.Count, Timeout: timeout}
}

// FailureMode is one entry of a pre-mortem: how the release could fail, and what is ready
// for it.
type FailureMode struct {
	Failure    string `yaml:"failure" json:"failure"`
	Mitigation string `yaml:"mitigation" json:"mitigation"`
}

// ChangeRequest opens and closes a change request in an ITSM system.
type ChangeRequest struct {
	Provider        string `yaml:"provider" json:"provider"`
	AssignmentGroup string `yaml:"assignmentGroup,omitempty" json:"assignmentGroup,omitempty"`
	Template        string `yaml:"template,omitempty" json:"template,omitempty"`
	When            string `yaml:"when,omitempty" json:"when,omitempty"`
}

// ITSM providers.
var ChangeRequestProviders = []string{"servicenow"}

// Analysis is a named metric check.
type Analysis struct {
	Name     string `yaml:"name" json:"name"`
	Provider string `yaml:"provider" json:"provider"`
	Query    string `yaml:"query" json:"query"`
	// SuccessCondition and FailureCondition are CEL over result (value, baseline).
	SuccessCondition string   `yaml:"successCondition,omitempty" json:"successCondition,omitempty"`
	FailureCondition string   `yaml:"failureCondition,omitempty" json:"failureCondition,omitempty"`
	Interval         Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// Count is how many measurements make one run; FailureLimit how many may fail.
	Count        int `yaml:"count,omitempty" json:"count,omitempty"`
	FailureLimit int `yaml:"failureLimit,omitempty" json:"failureLimit,omitempty"`
	// Baseline captures the query before the release touches production, for comparison.
	Baseline bool `yaml:"baseline,omitempty" json:"baseline,omitempty"`
}

// Analysis providers.
var AnalysisProviders = []string{"prometheus"}

// Strategy types.
const (
	StrategyRolling   = "rolling"
	StrategyCanary    = "canary"
	StrategyBlueGreen = "blueGreen"
)

// Strategies lists every strategy type.
var Strategies = []string{StrategyRolling, StrategyCanary, StrategyBlueGreen}

// Strategy is how a stage moves traffic to the new version.
type Strategy struct {
	Type string `yaml:"type" json:"type"`
	// MaxParallel is how many targets a rolling stage deploys at once (1 by default).
	MaxParallel int          `yaml:"maxParallel,omitempty" json:"maxParallel,omitempty"`
	Steps       []CanaryStep `yaml:"steps,omitempty" json:"steps,omitempty"`
	BlueGreen   *BlueGreen   `yaml:"blueGreen,omitempty" json:"blueGreen,omitempty"`
}

// CanaryStep sets a traffic weight, then optionally pauses and runs an analysis.
type CanaryStep struct {
	Weight   int      `yaml:"weight" json:"weight"`
	Pause    Duration `yaml:"pause,omitempty" json:"pause,omitempty"`
	Analysis string   `yaml:"analysis,omitempty" json:"analysis,omitempty"`
}

// BlueGreen deploys the idle side, smoke-tests it, switches, and keeps the old side.
type BlueGreen struct {
	RollbackWindow Duration `yaml:"rollbackWindow,omitempty" json:"rollbackWindow,omitempty"`
}

// HTTPCheck is a smoke test or synthetic probe.
type HTTPCheck struct {
	Name         string   `yaml:"name,omitempty" json:"name,omitempty"`
	URL          string   `yaml:"url" json:"url"`
	ExpectStatus int      `yaml:"expectStatus,omitempty" json:"expectStatus,omitempty"`
	Timeout      Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// ExitCriteria must hold before a stage counts as done.
type ExitCriteria struct {
	Analyses []string    `yaml:"analyses,omitempty" json:"analyses,omitempty"`
	Checks   []HTTPCheck `yaml:"checks,omitempty" json:"checks,omitempty"`
}

// Drift actions (Target.OnDrift): warn goes on and says so, fail stops the target, resync
// puts back what the last release left (argocd: a sync to git; command: the deploy command
// with TRAINYARD_OPERATION=resync and the previous version) before deploying.
const (
	DriftWarn   = "warn"
	DriftFail   = "fail"
	DriftResync = "resync"
)

// DriftActions lists every drift action; the first is the default.
var DriftActions = []string{DriftWarn, DriftFail, DriftResync}

// DriftActionOrDefault is what the target does about drift.
func (t Target) DriftActionOrDefault() string {
	if t.OnDrift == "" {
		return DriftWarn
	}
	return t.OnDrift
}

// ArgoCDTarget sets an Argo CD application's revision or image and syncs it.
type ArgoCDTarget struct {
	App      string `yaml:"app" json:"app"`
	Server   string `yaml:"server,omitempty" json:"server,omitempty"`
	Revision string `yaml:"revision,omitempty" json:"revision,omitempty"`
	Image    string `yaml:"image,omitempty" json:"image,omitempty"`
}

// SpinnakerTarget triggers a Spinnaker pipeline through Gate.
type SpinnakerTarget struct {
	Application string            `yaml:"application" json:"application"`
	Pipeline    string            `yaml:"pipeline" json:"pipeline"`
	Parameters  map[string]string `yaml:"parameters,omitempty" json:"parameters,omitempty"`
}

// HardwareTarget rolls a device fleet at a site in waves.
type HardwareTarget struct {
	// Inventory is a file path on the site worker or an http(s) URL listing the devices.
	Inventory string `yaml:"inventory" json:"inventory"`
	Flash     string `yaml:"flash" json:"flash"`
	Probe     string `yaml:"probe" json:"probe"`
	Waves     []Wave `yaml:"waves" json:"waves"`
	// MaxFailureRatio halts the rollout when more of a wave fails (0 to 1).
	MaxFailureRatio float64 `yaml:"maxFailureRatio,omitempty" json:"maxFailureRatio,omitempty"`
}

// Wave is one step of a fleet rollout: a count of devices, a percentage, or the rest.
type Wave struct {
	Count   int  `yaml:"count,omitempty" json:"count,omitempty"`
	Percent int  `yaml:"percent,omitempty" json:"percent,omitempty"`
	Rest    bool `yaml:"rest,omitempty" json:"rest,omitempty"`
}

// FlagTarget rolls a feature flag out through the Unleash admin API.
type FlagTarget struct {
	Flag        string `yaml:"flag" json:"flag"`
	Project     string `yaml:"project,omitempty" json:"project,omitempty"`
	Environment string `yaml:"environment" json:"environment"`
	// Percent is the gradual rollout percentage this target sets; rollback turns the flag off.
	Percent int `yaml:"percent,omitempty" json:"percent,omitempty"`
}

// Stabilization is the watch after the last stage. In YAML (and in the JSON of older
// releases) it may be just a duration: "stabilization: 30m".
type Stabilization struct {
	Window   Duration    `yaml:"window,omitempty" json:"window,omitempty"`
	Analyses []string    `yaml:"analyses,omitempty" json:"analyses,omitempty"`
	SLO      *SLO        `yaml:"slo,omitempty" json:"slo,omitempty"`
	Checks   []HTTPCheck `yaml:"checks,omitempty" json:"checks,omitempty"`
	// OnBreach is rollback (default: automatic) or page (ask the rollback authority).
	OnBreach string `yaml:"onBreach,omitempty" json:"onBreach,omitempty"`
}

// Breach actions.
var BreachActions = []string{"rollback", "page"}

// SLO is the objective whose error budget the stabilization watches burn.
type SLO struct {
	// Objective is the target success ratio in percent, e.g. 99.9.
	Objective float64 `yaml:"objective" json:"objective"`
	// ErrorRatio is a PromQL query of the ratio of failed requests (0 to 1).
	ErrorRatio string     `yaml:"errorRatio" json:"errorRatio"`
	BurnRates  []BurnRate `yaml:"burnRates,omitempty" json:"burnRates,omitempty"`
}

// BurnRate is one multi-window burn-rate limit: breach when the budget burns Factor times
// faster than sustainable over both Long and Short.
type BurnRate struct {
	Long   Duration `yaml:"long" json:"long"`
	Short  Duration `yaml:"short" json:"short"`
	Factor float64  `yaml:"factor" json:"factor"`
}

// IsZero reports whether nothing is declared (a runbook without stabilization).
func (s Stabilization) IsZero() bool {
	return s.Window == 0 && len(s.Analyses) == 0 && s.SLO == nil && len(s.Checks) == 0 && s.OnBreach == ""
}

// UnmarshalYAML accepts a duration or a block.
func (s *Stabilization) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = Stabilization{}
		return s.Window.UnmarshalYAML(n)
	}
	type plain Stabilization
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	*s = Stabilization(p)
	return nil
}

// UnmarshalJSON accepts a duration string (the JSON of releases started before the block
// form existed) or an object.
func (s *Stabilization) UnmarshalJSON(b []byte) error {
	var str string
	if json.Unmarshal(b, &str) == nil {
		*s = Stabilization{}
		return s.Window.UnmarshalJSON(b)
	}
	type plain Stabilization
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("stabilization: %w", err)
	}
	*s = Stabilization(p)
	return nil
}

// Rollback says how a release is undone.
type Rollback struct {
	// Scope is release (default: everything deployed), stage, or target.
	Scope string `yaml:"scope,omitempty" json:"scope,omitempty"`
	// Budget is how long a rollback may take before escalation.
	Budget Duration `yaml:"budget,omitempty" json:"budget,omitempty"`
	// ForwardFix lets the rollback authority end a breached release without rolling back.
	ForwardFix     bool            `yaml:"forwardFix,omitempty" json:"forwardFix,omitempty"`
	CircuitBreaker *CircuitBreaker `yaml:"circuitBreaker,omitempty" json:"circuitBreaker,omitempty"`
}

// Rollback scopes.
var RollbackScopes = []string{"release", "stage", "target"}

// CircuitBreaker blocks further releases after a rollback until someone with authority
// clears it.
type CircuitBreaker struct {
	// Scope is runbook (further releases of this runbook) or environment.
	Scope string `yaml:"scope" json:"scope"`
}

// Circuit breaker scopes.
var CircuitBreakerScopes = []string{"runbook", "environment"}
