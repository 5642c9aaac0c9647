package argocd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Apps is what Trainyard does with Argo CD applications. *Client is the real one.
type Apps interface {
	// App reads an application's target, sync, health, operation and history.
	App(ctx context.Context, name string) (App, error)
	// SetRevision points the application's source at revision (spec.source.targetRevision).
	SetRevision(ctx context.Context, app, revision string) error
	// SetImage sets a kustomize image override (spec.source.kustomize.images), replacing the
	// override of the same image name.
	SetImage(ctx context.Context, app, image string) error
	// Sync starts a sync to revision (the target revision when empty) without pruning.
	Sync(ctx context.Context, app, revision string) error
	// WaitHealthy polls until the last operation succeeded and the app is Synced and Healthy.
	WaitHealthy(ctx context.Context, app string, poll time.Duration, progress func(App)) (App, error)
	// Wait polls until the app reaches want; WaitHealthy is Wait(Want{Synced: true}).
	Wait(ctx context.Context, app string, want Want, poll time.Duration, progress func(App)) (App, error)
	// Rollback syncs the app back to the deployment historyID of its history.
	Rollback(ctx context.Context, app string, historyID int64) error
	// Drift compares the live state with git and names the resources that differ.
	Drift(ctx context.Context, app string) (DriftReport, error)
	// SetCanaryWeight moves an Argo Rollouts canary, managed by app, to the step that sets
	// weight percent of traffic.
	SetCanaryWeight(ctx context.Context, app, rollout, namespace string, weight int) error
}

var _ Apps = (*Client)(nil)

// SyncStatus is whether the live state matches git (status.sync.status).
type SyncStatus string

// Sync statuses.
const (
	SyncSynced    SyncStatus = "Synced"
	SyncOutOfSync SyncStatus = "OutOfSync"
	SyncUnknown   SyncStatus = "Unknown"
)

// Health is an application's or resource's health (status.health.status).
type Health string

// Health statuses.
const (
	HealthHealthy     Health = "Healthy"
	HealthProgressing Health = "Progressing"
	HealthDegraded    Health = "Degraded"
	// HealthSuspended is what a canary Rollout paused at a step reports.
	HealthSuspended Health = "Suspended"
	HealthMissing   Health = "Missing"
	HealthUnknown   Health = "Unknown"
)

// Phase is the phase of the app's last operation (status.operationState.phase).
type Phase string

// Operation phases.
const (
	PhaseRunning     Phase = "Running"
	PhaseTerminating Phase = "Terminating"
	PhaseFailed      Phase = "Failed"
	PhaseError       Phase = "Error"
	PhaseSucceeded   Phase = "Succeeded"
)

// Completed reports whether the operation has ended, well or badly.
func (p Phase) Completed() bool {
	return p == PhaseFailed || p == PhaseError || p == PhaseSucceeded
}

// App is the part of an Argo CD application Trainyard reads.
type App struct {
	Name string `json:"name"`
	// Revision is spec.source.targetRevision: what git says should run. Empty for a
	// multi-source application (spec.sources), which this package does not change.
	Revision string `json:"revision,omitempty"`
	// KustomizeImages are the image overrides of spec.source.kustomize.images.
	KustomizeImages []string `json:"kustomizeImages,omitempty"`
	// Images are the images the app's live resources run (status.summary.images).
	Images       []string   `json:"images,omitempty"`
	SyncStatus   SyncStatus `json:"syncStatus"`
	SyncRevision string     `json:"syncRevision,omitempty"`
	Health       Health     `json:"health"`
	// HealthMessage says why the app is not healthy, when Argo CD says.
	HealthMessage    string `json:"healthMessage,omitempty"`
	OperationPhase   Phase  `json:"operationPhase,omitempty"`
	OperationMessage string `json:"operationMessage,omitempty"`
	// OperationPending is true while a requested operation (the app's "operation" field) has
	// not finished; OperationPhase may still be the previous operation's until it starts.
	OperationPending bool `json:"operationPending,omitempty"`
	// AutoSync is true when automated sync is on; Argo CD then refuses rollbacks and syncs to
	// a revision other than the target revision.
	AutoSync bool `json:"autoSync,omitempty"`
	// History are the app's past deployments, oldest first (Argo CD keeps the last ten by
	// default: spec.revisionHistoryLimit).
	History []HistoryEntry `json:"history,omitempty"`
}

// HistoryEntry is one past deployment (status.history).
type HistoryEntry struct {
	ID         int64     `json:"id"`
	Revision   string    `json:"revision"`
	DeployedAt time.Time `json:"deployedAt"`
}

// Current is the last deployment.
func (a App) Current() (HistoryEntry, bool) {
	if len(a.History) == 0 {
		return HistoryEntry{}, false
	}
	return a.History[len(a.History)-1], true
}

// Previous is the last deployment of a revision other than the current one's: the one a
// rollback returns to.
func (a App) Previous() (HistoryEntry, bool) {
	cur, ok := a.Current()
	if !ok {
		return HistoryEntry{}, false
	}
	for i := len(a.History) - 2; i >= 0; i-- {
		if a.History[i].Revision != cur.Revision {
			return a.History[i], true
		}
	}
	return HistoryEntry{}, false
}

// Want says what Wait waits for. The last operation must always have succeeded and the app
// be Healthy.
type Want struct {
	// Synced also requires the live state to match git. Leave it false after a rollback:
	// a rolled back app runs an older revision than git names, so it stays OutOfSync.
	Synced bool
	// Suspended accepts Suspended health as done: a canary Rollout paused at a step.
	Suspended bool
}

// DriftReport is the difference between an app's live state and git.
type DriftReport struct {
	App        string     `json:"app"`
	SyncStatus SyncStatus `json:"syncStatus"`
	// OutOfSync is true when Argo CD reports the app OutOfSync.
	OutOfSync bool `json:"outOfSync"`
	// Resources are the resources whose live state is not what git says, or that git no
	// longer has (RequiresPruning).
	Resources []DriftResource `json:"resources,omitempty"`
}

// DriftResource is one resource out of sync.
type DriftResource struct {
	Group           string     `json:"group,omitempty"`
	Kind            string     `json:"kind"`
	Namespace       string     `json:"namespace,omitempty"`
	Name            string     `json:"name"`
	Status          SyncStatus `json:"status"`
	Health          Health     `json:"health,omitempty"`
	RequiresPruning bool       `json:"requiresPruning,omitempty"`
}

func (r DriftResource) String() string {
	s := r.Kind + "/" + r.Name
	if r.Namespace != "" {
		s = r.Namespace + "/" + s
	}
	return s + " " + string(r.Status)
}

// Errors callers branch on.
var (
	// ErrUnauthorized: Argo CD refused the token (401) or its RBAC denied the request (403).
	// Argo CD also answers 403 for an app that does not exist, so as not to reveal names.
	ErrUnauthorized = errors.New("argocd refused the request: check the argocd token and its RBAC permissions")
	// ErrNotFound: the application (or the resource asked for) does not exist.
	ErrNotFound = errors.New("not found in argocd")
	// ErrInvalidInput: the request was refused before reaching Argo CD.
	ErrInvalidInput = errors.New("invalid argocd request")
	// ErrAutoSyncEnabled: Argo CD refuses rollbacks, and syncs to another revision than the
	// target, while automated sync is on. Turn off spec.syncPolicy.automated for the app.
	ErrAutoSyncEnabled = errors.New("argocd automated sync is on")
	// ErrOperationInProgress: another sync or rollback is running; trying later may work.
	ErrOperationInProgress = errors.New("another argocd operation is in progress")
	// ErrNoCanaryStep: the Rollout has no canary step setting the weight asked for.
	ErrNoCanaryStep = errors.New("no such canary step")
	// ErrNoCanary: the Rollout is fully promoted, so there is no canary to move. Right after
	// a sync its controller may not have seen the new revision yet, so trying again may help.
	ErrNoCanary = errors.New("no canary in progress")
	// ErrRolloutAborted: the canary was aborted (by a failed analysis or by hand).
	ErrRolloutAborted = errors.New("argo rollouts canary aborted")
	// ErrUnexpectedResponse: Argo CD answered success with something that is not its JSON.
	ErrUnexpectedResponse = errors.New("unexpected response from argocd")
)

// APIError is Argo CD's answer to a request it refused or failed: the HTTP status and the
// gRPC code and message of its error body ({"error", "code", "message"}).
type APIError struct {
	Method     string
	Path       string
	StatusCode int
	// Code is the gRPC status code Argo CD's gateway reports (5 NotFound, 7 PermissionDenied,
	// 9 FailedPrecondition, 16 Unauthenticated...); zero when the body had none.
	Code    int
	Message string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("argocd %s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		s += ": " + e.Message
	}
	switch e.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		s += " (check the argocd token and its RBAC permissions)"
	}
	return s
}

// Unwrap lets errors.Is match the sentinels that the status and message stand for.
func (e *APIError) Unwrap() error {
	switch {
	case e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden:
		return ErrUnauthorized
	case e.StatusCode == http.StatusNotFound && e.Code != 0:
		// A 404 without a gRPC code is the gateway not knowing the path, not a missing app.
		return ErrNotFound
	case strings.Contains(e.Message, "auto-sync"):
		return ErrAutoSyncEnabled
	case strings.Contains(e.Message, "another operation is already in progress"):
		return ErrOperationInProgress
	}
	return nil
}

// Retryable reports whether the same request may succeed later.
func (e *APIError) Retryable() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500 ||
		errors.Is(e, ErrOperationInProgress)
}

// SyncFailedError is a sync or rollback that ended badly: its operation Failed or Errored,
// or it succeeded and left the app Degraded.
type SyncFailedError struct {
	App     string
	Phase   Phase
	Message string
	Health  Health
}

func (e *SyncFailedError) Error() string {
	var s string
	if e.Phase == PhaseSucceeded {
		s = fmt.Sprintf("argocd app %q synced but is %s", e.App, e.Health)
	} else {
		s = fmt.Sprintf("argocd app %q: sync %s (health %s)", e.App, strings.ToLower(string(e.Phase)), e.Health)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// IsRetryable reports whether trying again may help: an *APIError that says so, or a
// failure to reach Argo CD at all. The sentinels and *SyncFailedError are final.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var sf *SyncFailedError
	if errors.As(err, &sf) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Retryable()
	}
	for _, final := range []error{ErrInvalidInput, ErrNoCanaryStep, ErrRolloutAborted, ErrUnexpectedResponse, context.Canceled} {
		if errors.Is(err, final) {
			return false
		}
	}
	return true
}
