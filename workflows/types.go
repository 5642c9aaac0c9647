package workflows

import (
	"fmt"
	"slices"
	"time"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/risk"
	"github.com/trainyard/trainyard/runbooks"
)

// Names callers use to reach a release. They are part of the wire contract with histories in
// flight: never rename them.
const (
	TaskQueue = "trainyard"

	QueryStatus = "status"

	UpdateApprove = "approve"
	UpdateReject  = "reject"
	UpdateAbort   = "abort"
	// UpdatePause holds the release before its next step; UpdateResume lets it go on.
	UpdatePause  = "pause"
	UpdateResume = "resume"
	// UpdateRollback orders a rollback (until the stabilization window ends);
	// UpdateFixForward ends a breached release as failed without rolling back.
	UpdateRollback   = "rollback"
	UpdateFixForward = "fix-forward"

	// SignalTargetProgress carries a stage's target events to its release.
	SignalTargetProgress = "target-progress"
)

// Search attributes the release keeps current, so releases are findable in the Temporal UI.
const (
	AttrRunbook     = "TrainyardRunbook"
	AttrVersion     = "TrainyardVersion"
	AttrPhase       = "TrainyardPhase"
	AttrEnvironment = "TrainyardEnvironment"
	AttrRisk        = "TrainyardRisk"
)

// SearchAttributeTypes lists the Trainyard search attributes and their Temporal types, for
// registering them on a namespace ("Keyword" or "Int").
var SearchAttributeTypes = map[string]string{
	AttrRunbook:     "Keyword",
	AttrVersion:     "Keyword",
	AttrPhase:       "Keyword",
	AttrEnvironment: "Keyword",
	AttrRisk:        "Int",
}

// CloudTaskQueue is where cloud targets (argocd, spinnaker, flag) deploy: served by the main
// worker process (`trainyard worker` without --site), next to TaskQueue.
const CloudTaskQueue = "trainyard-cloud"

// SiteTaskQueue is the task queue served by `trainyard worker --site <site>`.
func SiteTaskQueue(site string) string { return "trainyard-site-" + site }

// ReleaseID is the workflow id of a release of a runbook at a version, so that starting the
// same release twice finds the one that exists.
func ReleaseID(runbook, version string) string {
	return fmt.Sprintf("release-%s-%s", runbook, version)
}

// Principal is who acts: a person or a system, with the roles the server resolved for them.
// Credentials never travel in here.
type Principal struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles,omitempty"`
}

// HasAnyRole reports whether the principal holds at least one of roles.
func (p Principal) HasAnyRole(roles []string) bool {
	for _, r := range roles {
		if slices.Contains(p.Roles, r) {
			return true
		}
	}
	return false
}

// Component is one artifact a release ships.
type Component struct {
	Name     string `json:"name"`
	Version  string `json:"version,omitempty"`
	Artifact string `json:"artifact,omitempty"`
}

// Change carries facts about the change that CI knows and Trainyard does not.
type Change struct {
	Commit   string   `json:"commit,omitempty"`
	Authors  []string `json:"authors,omitempty"`
	Churn    int      `json:"churn,omitempty"`
	Coverage float64  `json:"coverage,omitempty"`
	// SchemaChange says CI saw a schema or storage change (on top of what the runbook's
	// components declare).
	SchemaChange bool `json:"schemaChange,omitempty"`
}

// ReleaseInput starts a release. It holds a snapshot of the runbook taken at request time.
type ReleaseInput struct {
	ID      string           `json:"id"`
	Runbook runbooks.Runbook `json:"runbook"`
	// RunbookHash identifies the exact runbook content the release runs with.
	RunbookHash string      `json:"runbookHash,omitempty"`
	Version     string      `json:"version"`
	Requester   Principal   `json:"requester"`
	Components  []Component `json:"components,omitempty"`
	Change      Change      `json:"change,omitempty"`
	RequestedAt time.Time   `json:"requestedAt"`
	// Impact is what the release touches, scored by the server from its runbook catalog.
	Impact *risk.Impact `json:"impact,omitempty"`
	// Labels are compliance metadata (sox, pci-scope, ticket): shown with the release, never
	// part of what ships.
	Labels map[string]string `json:"labels,omitempty"`
}

// Phase is where a release is in its life.
type Phase string

// Phases of a release. The last five are terminal.
const (
	PhasePending Phase = "pending"
	// PhaseChecking: the readiness gates are running.
	PhaseChecking         Phase = "checking"
	PhaseAwaitingApproval Phase = "awaiting_approval"
	// PhaseFrozen: the next stage is in a freeze window; the release waits for it to end.
	PhaseFrozen    Phase = "frozen"
	PhaseDeploying Phase = "deploying"
	// PhasePaused: an operator paused the release; it waits before its next stage.
	PhasePaused      Phase = "paused"
	PhaseStabilizing Phase = "stabilizing"
	// PhaseBlocked: an open circuit breaker holds the release before it starts (see
	// ReleaseStatus.CircuitBreakers); PhaseBreached: the stabilization window was breached and
	// the rollback authority was paged to decide (onBreach: page).
	PhaseBlocked     Phase = "blocked"
	PhaseBreached    Phase = "breached"
	PhaseRollingBack Phase = "rolling_back"
	PhaseSucceeded   Phase = "succeeded"
	PhaseRolledBack  Phase = "rolled_back"
	PhaseRejected    Phase = "rejected"
	PhaseAborted     Phase = "aborted"
	PhaseFailed      Phase = "failed"
	// PhaseQueued: the next stage's environment is locked by another release; this one waits
	// its turn. PhaseSuperseded: a newer release of the runbook took its place in the queue.
	PhaseQueued     Phase = "queued"
	PhaseSuperseded Phase = "superseded"
)

// Phases lists every phase, for filters and documentation. A phase added above must be
// added here.
var Phases = []Phase{
	PhasePending, PhaseChecking, PhaseAwaitingApproval, PhaseFrozen, PhaseDeploying, PhasePaused,
	PhaseQueued, PhaseStabilizing, PhaseBlocked, PhaseBreached, PhaseRollingBack, PhaseSucceeded, PhaseRolledBack,
	PhaseRejected, PhaseAborted, PhaseFailed, PhaseSuperseded,
}

// Terminal reports whether the release has ended.
func (p Phase) Terminal() bool {
	switch p {
	case PhaseSucceeded, PhaseRolledBack, PhaseRejected, PhaseAborted, PhaseFailed, PhaseSuperseded:
		return true
	}
	return false
}

// Target and stage states shown in the status.
const (
	StatePending     = "pending"
	StateRunning     = "running"
	StateDeployed    = "deployed"
	StateFailed      = "failed"
	StateRollingBack = "rolling_back"
	StateRolledBack  = "rolled_back"
	StateRollbackErr = "rollback_failed"
	StateCancelled   = "cancelled"
	StateSkipped     = "skipped"
	StateSucceeded   = "succeeded"
)

// Approval gate states.
const (
	GatePending  = "pending"
	GateWaiting  = "waiting"
	GateApproved = "approved"
	GateRejected = "rejected"
	GateTimedOut = "timed_out"
	// GateSkipped: the gate's when condition does not hold for this release.
	GateSkipped = "skipped"
)

// Readiness gate states.
const (
	ReadinessPending = "pending"
	ReadinessRunning = "running"
	ReadinessPassed  = "passed"
	ReadinessFailed  = "failed"
	ReadinessError   = "error"
	ReadinessWaived  = "waived"
	ReadinessSkipped = "skipped"
)

// GateStatus is one readiness gate's state and verdict.
type GateStatus struct {
	Name       string     `json:"name"`
	Type       string     `json:"type"`
	State      string     `json:"state"`
	Summary    string     `json:"summary,omitempty"`
	Waiver     string     `json:"waiver,omitempty"`
	StartedAt  *time.Time `json:"startedAt,omitempty"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
}

// ReleaseStatus is the whole state of a release, returned by the status query.
type ReleaseStatus struct {
	ID                  string           `json:"id"`
	Runbook             string           `json:"runbook"`
	RunbookHash         string           `json:"runbookHash,omitempty"`
	Version             string           `json:"version"`
	PreviousVersion     string           `json:"previousVersion,omitempty"`
	Requester           Principal        `json:"requester"`
	Components          []Component      `json:"components,omitempty"`
	Phase               Phase            `json:"phase"`
	CurrentStage        string           `json:"currentStage,omitempty"`
	Environment         string           `json:"environment,omitempty"`
	Stages              []StageStatus    `json:"stages"`
	Approvals           []ApprovalStatus `json:"approvals,omitempty"`
	Failure             string           `json:"failure,omitempty"`
	StabilizationEndsAt *time.Time       `json:"stabilizationEndsAt,omitempty"`
	// Lock says which environment's lock the release waits for, who holds it, and the
	// release's place in line (1: next).
	Lock *LockStatus `json:"lock,omitempty"`
	// Reservation says whose reservation of the next stage's environment the release waits
	// out, and until when.
	Reservation *ReservationStatus `json:"reservation,omitempty"`
	// Labels are compliance metadata given at start (e.g. sox: "true"); they describe the
	// release and never change what it ships.
	Labels map[string]string `json:"labels,omitempty"`
	// PausedBy and PauseReason say who paused the release and why.
	PausedBy    string `json:"pausedBy,omitempty"`
	PauseReason string `json:"pauseReason,omitempty"`
	// FreezeReason and FrozenUntil say why and until when a frozen release waits.
	FreezeReason string     `json:"freezeReason,omitempty"`
	FrozenUntil  *time.Time `json:"frozenUntil,omitempty"`
	// ChangeRequest is the ITSM change request's number, when the runbook files one.
	ChangeRequest string `json:"changeRequest,omitempty"`
	// Risk is the release's risk score with each factor's part; Impact what it touches.
	Risk   *risk.Assessment `json:"risk,omitempty"`
	Impact *risk.Impact     `json:"impact,omitempty"`
	// Gates are the readiness gates and their verdicts.
	Gates []GateStatus `json:"gates,omitempty"`
	// PreMortem is the runbook's expected failure modes, which approvers acknowledge.
	PreMortem []runbooks.FailureMode `json:"preMortem,omitempty"`
	// Waivers lists the waivers that let the release past a gate, policy or freeze.
	Waivers []string `json:"waivers,omitempty"`
	// Checks are what the stabilization window watches, each with its latest value against
	// its limit; Baselines the analyses measured before the release touched production.
	Checks    []CheckStatus    `json:"checks,omitempty"`
	Baselines []BaselineStatus `json:"baselines,omitempty"`
	// Breach is what broke the stabilization window, and what was decided about it.
	Breach *BreachStatus `json:"breach,omitempty"`
	// Rollback is the rollback's scope, steps and budget, and the circuit breakers it tripped.
	Rollback *RollbackStatus `json:"rollback,omitempty"`
	// CircuitBreakers are the open breakers a blocked release waits for.
	CircuitBreakers []BreakerStatus `json:"circuitBreakers,omitempty"`
	StartedAt       time.Time       `json:"startedAt"`
	EndedAt         *time.Time      `json:"endedAt,omitempty"`
	Timeline        []Event         `json:"timeline"`
}

// LockStatus is a queued release's wait for an environment.
type LockStatus struct {
	Environment string `json:"environment"`
	Holder      string `json:"holder,omitempty"`
	Position    int    `json:"position,omitempty"`
}

// ReservationStatus is a release's wait for another holder's reservation to end.
type ReservationStatus struct {
	Environment string     `json:"environment"`
	Holder      string     `json:"holder"`
	Until       *time.Time `json:"until,omitempty"`
	Reason      string     `json:"reason,omitempty"`
}

// StageStatus is one stage's progress.
type StageStatus struct {
	Name        string         `json:"name"`
	Environment string         `json:"environment,omitempty"`
	State       string         `json:"state"`
	Targets     []TargetStatus `json:"targets"`
	// NotExercisedBefore lists what the stage requires (environment parity) that no stage
	// before it has: this release meets it there for the first time.
	NotExercisedBefore []string `json:"notExercisedBefore,omitempty"`
}

// TargetStatus is one target's progress, with the tail of its last command's output.
type TargetStatus struct {
	Name       string     `json:"name"`
	Kind       string     `json:"kind"`
	Site       string     `json:"site,omitempty"`
	State      string     `json:"state"`
	Attempts   int32      `json:"attempts,omitempty"`
	Output     string     `json:"output,omitempty"`
	Error      string     `json:"error,omitempty"`
	DeployedAt *time.Time `json:"deployedAt,omitempty"`
	// Rollout progress (see TargetProgress): the canary step and weight, a fleet's devices,
	// the blue-green side, and a drift warning.
	Step          int    `json:"step,omitempty"`
	Steps         int    `json:"steps,omitempty"`
	Weight        int    `json:"weight,omitempty"`
	DevicesDone   int    `json:"devicesDone,omitempty"`
	DevicesFailed int    `json:"devicesFailed,omitempty"`
	DevicesTotal  int    `json:"devicesTotal,omitempty"`
	Side          string `json:"side,omitempty"`
	Warning       string `json:"warning,omitempty"`
	// Undo is what the target's rollback needs (activities.TargetRequest.Undo): kept in the
	// workflow's memory, rebuilt from the stage's signals on replay, never shown.
	Undo *activities.Undo `json:"-"`
}

// ApprovalStatus is one approval gate and the decisions taken on it.
type ApprovalStatus struct {
	Gate     string   `json:"gate"`
	Before   string   `json:"before"`
	Roles    []string `json:"roles"`
	Required int      `json:"required"`
	// DistinctRoles must each be held by a different approver.
	DistinctRoles []string   `json:"distinctRoles,omitempty"`
	State         string     `json:"state"`
	Deadline      *time.Time `json:"deadline,omitempty"`
	Decisions     []Decision `json:"decisions,omitempty"`
	// Why says why the gate applies (a when condition, the CAB's impact threshold) or why
	// it was skipped.
	Why string `json:"why,omitempty"`
	// EscalatedAt is when the escalation roles were notified; Overdue is set when the
	// deadline passed and the runbook says to keep waiting.
	EscalatedAt *time.Time `json:"escalatedAt,omitempty"`
	Overdue     bool       `json:"overdue,omitempty"`
}

// Decision is one person's approval or rejection.
type Decision struct {
	Actor    string    `json:"actor"`
	Roles    []string  `json:"roles,omitempty"`
	Decision string    `json:"decision"`
	Comment  string    `json:"comment,omitempty"`
	At       time.Time `json:"at"`
	// AcknowledgedPreMortem is set when the approver acknowledged the expected failure modes.
	AcknowledgedPreMortem bool `json:"acknowledgedPreMortem,omitempty"`
}

// Event is one line of the release timeline.
type Event struct {
	At      time.Time `json:"at"`
	Message string    `json:"message"`
}

// ApprovalRequest approves or rejects a gate (the Update says which).
type ApprovalRequest struct {
	Gate    string    `json:"gate"`
	Actor   Principal `json:"actor"`
	Comment string    `json:"comment,omitempty"`
	// AcknowledgePreMortem says the approver read the runbook's expected failure modes; an
	// approval of a release that lists them needs it.
	AcknowledgePreMortem bool `json:"acknowledgePreMortem,omitempty"`
}

// ApprovalResult is what an approve or reject Update returns.
type ApprovalResult struct {
	Gate      string `json:"gate"`
	State     string `json:"state"`
	Approvals int    `json:"approvals"`
	Required  int    `json:"required"`
}

// AbortRequest stops a release and rolls back what it deployed.
type AbortRequest struct {
	Actor  Principal `json:"actor"`
	Reason string    `json:"reason"`
}

// OperatorRequest is an operator's pause, resume, rollback or fix-forward.
type OperatorRequest struct {
	Actor  Principal `json:"actor"`
	Reason string    `json:"reason,omitempty"`
}

// OperatorResult is what an operator Update returns: the phase, and whether the release is
// paused.
type OperatorResult struct {
	Phase  Phase `json:"phase"`
	Paused bool  `json:"paused,omitempty"`
}

// AbortResult is what the abort Update returns.
type AbortResult struct {
	Phase Phase `json:"phase"`
}

// Error types set on Update validator errors, so the HTTP layer can answer 403, 404 or 409
// without parsing messages.
const (
	ErrTypeForbidden = "Forbidden"
	ErrTypeNotFound  = "NotFound"
	ErrTypeConflict  = "Conflict"
	ErrTypeInvalid   = "Invalid"
)

// TargetProgress is what a stage tells its release about one target.
type TargetProgress struct {
	Stage    string    `json:"stage"`
	Target   string    `json:"target"`
	State    string    `json:"state"`
	Attempts int32     `json:"attempts,omitempty"`
	Output   string    `json:"output,omitempty"`
	Error    string    `json:"error,omitempty"`
	At       time.Time `json:"at"`
	// Since the rollout change. Step of Steps is a canary stage's step, Weight the share of
	// traffic on the new version; Devices* a hardware fleet's progress; Side the blue-green
	// side deployed; Warning a drift the target went on despite.
	Step          int    `json:"step,omitempty"`
	Steps         int    `json:"steps,omitempty"`
	Weight        int    `json:"weight,omitempty"`
	DevicesDone   int    `json:"devicesDone,omitempty"`
	DevicesFailed int    `json:"devicesFailed,omitempty"`
	DevicesTotal  int    `json:"devicesTotal,omitempty"`
	Side          string `json:"side,omitempty"`
	Warning       string `json:"warning,omitempty"`
	// Undo is what a rollback of the target needs, as it stands: set once the target has
	// changed something (also while running, and on a failure that changed something).
	Undo *activities.Undo `json:"undo,omitempty"`
}
