package runbooks

import (
	"encoding/json"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Runbook declares how one kind of release goes. A release carries a copy of its runbook in
// the workflow input, so editing the file never changes a release in flight; every field
// must therefore survive a JSON round trip.
type Runbook struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Stabilization is how long production must stay healthy after the last stage before the
	// release is done. An abort during the window rolls everything back.
	Stabilization Duration `yaml:"stabilization,omitempty" json:"stabilization,omitempty"`
	// RollbackAuthority names the roles that may abort a release (the requester always may).
	RollbackAuthority []string       `yaml:"rollbackAuthority,omitempty" json:"rollbackAuthority,omitempty"`
	Approvals         []ApprovalGate `yaml:"approvals,omitempty" json:"approvals,omitempty"`
	Stages            []Stage        `yaml:"stages" json:"stages"`
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
	// AllowRequester lets the person who started the release approve it. Off by default:
	// separation of duties is the safe default for a production release.
	AllowRequester bool `yaml:"allowRequester,omitempty" json:"allowRequester,omitempty"`
	// Timeout is how long the gate waits for a decision before the release is rejected.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// Stage is one environment the release rolls through, in order.
type Stage struct {
	Name        string   `yaml:"name" json:"name"`
	Environment string   `yaml:"environment,omitempty" json:"environment,omitempty"`
	Targets     []Target `yaml:"targets" json:"targets"`
}

// Target kinds this version understands.
const (
	KindCommand = "command"
)

// Target is one thing a stage deploys to. A command target runs shell commands on the site
// worker that serves its site.
type Target struct {
	Name     string   `yaml:"name" json:"name"`
	Kind     string   `yaml:"kind" json:"kind"`
	Site     string   `yaml:"site,omitempty" json:"site,omitempty"`
	Deploy   string   `yaml:"deploy,omitempty" json:"deploy,omitempty"`
	Rollback string   `yaml:"rollback,omitempty" json:"rollback,omitempty"`
	Timeout  Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Heartbeat is how long the site worker may stay silent before Temporal treats the
	// command as lost and retries it elsewhere (or on the restarted worker).
	Heartbeat Duration `yaml:"heartbeat,omitempty" json:"heartbeat,omitempty"`
}

// Defaults applied where a runbook leaves a duration unset.
const (
	DefaultTargetTimeout    = 10 * time.Minute
	DefaultHeartbeat        = 30 * time.Second
	DefaultApprovalTimeout  = 24 * time.Hour
	DefaultApprovalCount    = 1
	DefaultStabilizationDur = 0
)

// Sites lists the distinct sites the runbook's targets run on, in order of first use.
func (r Runbook) Sites() []string {
	var sites []string
	seen := map[string]bool{}
	for _, s := range r.Stages {
		for _, t := range s.Targets {
			if t.Site != "" && !seen[t.Site] {
				seen[t.Site] = true
				sites = append(sites, t.Site)
			}
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
