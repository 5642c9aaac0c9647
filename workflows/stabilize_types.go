package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/runbooks"
)

// CheckStatus is one watched check's latest value against its limit: an analysis (a KPI or an
// error rate), an SLO burn-rate limit, or an HTTP check.
type CheckStatus struct {
	Name string `json:"name"`
	// Kind is analysis, burn, http (or watch, for a watch that cannot run).
	Kind string `json:"kind"`
	// Value is the analysis's last value, the lower of a burn-rate limit's two burn rates, or
	// an HTTP check's failures in a row; absent when unknown (no data, no traffic).
	Value   *float64  `json:"value,omitempty"`
	Limit   string    `json:"limit"`
	OK      bool      `json:"ok"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// BaselineStatus is an analysis measured before the release touched production.
type BaselineStatus struct {
	Analysis string    `json:"analysis"`
	Value    *float64  `json:"value,omitempty"`
	At       time.Time `json:"at"`
	// Error says why there is no value: the analysis then errors through the window.
	Error string `json:"error,omitempty"`
}

// Breach actions (runbooks' stabilization.onBreach).
const (
	OnBreachRollback = "rollback"
	OnBreachPage     = "page"
)

// Decisions on a breach, and the gate they are stored under.
const (
	DecisionRollback   = "rollback"
	DecisionFixForward = "fix-forward"
	breachGate         = "breach"
	rollbackGate       = "rollback"
)

// BreachStatus is what broke the stabilization window, and what was decided about it.
type BreachStatus struct {
	Check   string    `json:"check"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
	// OnBreach is what the runbook says: rollback (at once) or page (ask the rollback
	// authority); PagedAt is when they were paged.
	OnBreach string     `json:"onBreach"`
	PagedAt  *time.Time `json:"pagedAt,omitempty"`
	// Decision is the rollback authority's: rollback or fix-forward, by whom, and why.
	Decision *Decision `json:"decision,omitempty"`
}

// RollbackStatus is a rollback: what it undoes, its steps, and its time budget.
type RollbackStatus struct {
	// Scope is the runbook's rollback.scope: release, stage or target.
	Scope  string `json:"scope"`
	Reason string `json:"reason,omitempty"`
	// OrderedBy is the person who ordered it through the rollback Update, if one did.
	OrderedBy *Decision  `json:"orderedBy,omitempty"`
	StartedAt time.Time  `json:"startedAt"`
	EndedAt   *time.Time `json:"endedAt,omitempty"`
	// Budget is how long it may take (rollback.budget); BudgetExceededAt is when it ran
	// over and the rollback authority was told.
	Budget           runbooks.Duration `json:"budget,omitempty"`
	BudgetExceededAt *time.Time        `json:"budgetExceededAt,omitempty"`
	Steps            []RollbackStep    `json:"steps"`
	// CircuitBreakers are the breakers the rollback tripped, as scope/name.
	CircuitBreakers []string `json:"circuitBreakers,omitempty"`
}

// RollbackStep is the undo of one target.
type RollbackStep struct {
	Stage  string `json:"stage"`
	Target string `json:"target"`
	State  string `json:"state"`
	// Output is the tail of the undo's output (the target keeps its deploy's).
	Output    string     `json:"output,omitempty"`
	Error     string     `json:"error,omitempty"`
	StartedAt time.Time  `json:"startedAt"`
	EndedAt   *time.Time `json:"endedAt,omitempty"`
}

// BreakerStatus is an open circuit breaker holding the release.
type BreakerStatus struct {
	Scope string `json:"scope"`
	Name  string `json:"name"`
	// TrippedBy is the release whose rollback tripped it, Reason why that one rolled back.
	TrippedBy string    `json:"trippedBy"`
	Reason    string    `json:"reason,omitempty"`
	TrippedAt time.Time `json:"trippedAt"`
	// Roles may clear it (POST /api/v1/circuit-breakers/{scope}/{name}/clear).
	Roles []string `json:"roles"`
}

// versionStabilization (change id "stabilization") watches the window's analyses, SLO burn
// rates and HTTP checks, pages on breach, scopes and budgets rollbacks, trips and waits for
// circuit breakers, records markers and keeps incident evidence. Releases started before it
// replay the window as a timer and the rollback of everything.
const (
	changeStabilization  = "stabilization"
	versionStabilization = workflow.Version(1)
)

// stabilization is the release's state of this phase: decisions taken through Updates, the
// watch's progress, and activities that run alongside the release (markers, evidence,
// notifications), waited for before it ends.
type stabilization struct {
	version workflow.Version
	known   bool
	// rollbackOrder and fixForward are the rollback authority's decisions (Updates).
	rollbackOrder *Decision
	fixForward    *Decision
	// watch is where the stabilization watch stands between slices.
	watch activities.WatchResult
	// background are activities started without waiting (markers, evidence, pages).
	background []workflow.Future
}
