package flags

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Manager is what Trainyard does with a feature flag in one environment of one project.
type Manager interface {
	// Enable switches the flag on. Unleash gives a flag switched on without any active
	// strategy a flexibleRollout at 100%, so set the rollout first when it must start lower.
	Enable(ctx context.Context, project, flag, env string) error
	// Disable switches the flag off: the kill switch.
	Disable(ctx context.Context, project, flag, env string) error
	// SetRollout sets the percentage of the flag's gradual rollout, creating the
	// flexibleRollout strategy when the environment has none. It does not switch the flag on.
	SetRollout(ctx context.Context, project, flag, env string, percent int) error
	// State reads whether the flag is on and its rollout percentage.
	State(ctx context.Context, project, flag, env string) (FlagState, error)
}

// Restore puts a flag back through m as State saw it before a rollout: the rollout
// percentage (when there was a rollout strategy then), then whether it was on. A strategy
// the rollout added stays, which is harmless once the flag is back off.
func Restore(ctx context.Context, m Manager, project, flag, env string, prev FlagState) error {
	if prev.StrategyID != "" {
		if err := m.SetRollout(ctx, project, flag, env, prev.Percent); err != nil {
			return err
		}
	}
	if prev.Enabled {
		return m.Enable(ctx, project, flag, env)
	}
	return m.Disable(ctx, project, flag, env)
}

// FlagState is a flag's state in one environment, kept by a rollout so its rollback can put
// it back with Restore.
type FlagState struct {
	Enabled bool `json:"enabled"`
	// Percent is the rollout strategy's percentage; 0 when StrategyID is empty.
	Percent int `json:"percent"`
	// StrategyID is the rollout strategy's id: the first flexibleRollout strategy, in
	// Unleash's order, that is active and has no constraints or segments (those roll out to
	// a chosen audience, not to a share of everyone). Empty when there is none.
	StrategyID string `json:"strategyId,omitempty"`
}

// StrategyName is Unleash's built-in gradual rollout strategy.
const StrategyName = "flexibleRollout"

// Errors callers branch on. None of them is helped by retrying.
var (
	// ErrUnauthorized: Unleash did not accept the token (401): it is missing, wrong or
	// expired, or was sent as "Bearer ..." (the Admin API wants the bare token).
	ErrUnauthorized = errors.New("unleash did not accept the api token")
	// ErrForbidden: the token is valid but may not do this (403): a client or read-only
	// token, a project it does not cover, or an environment that requires change requests.
	ErrForbidden = errors.New("unleash refused the operation")
	// ErrNotFound: the project, flag, environment or strategy does not exist (404).
	ErrNotFound = errors.New("unleash flag not found")
	// ErrInvalidInput: the request was refused before it reached Unleash.
	ErrInvalidInput = errors.New("invalid flag request")
	// ErrUnexpectedResponse: Unleash answered success with something that is not the Admin
	// API's JSON (a proxy's login page, a body over MaxResponseBytes, a non-numeric rollout).
	ErrUnexpectedResponse = errors.New("unexpected response from unleash")
)

// Error is Unleash's answer to a request it refused or failed: the HTTP status and the
// name and message of its error body. errors.Is matches ErrUnauthorized (401),
// ErrForbidden (403) and ErrNotFound (404).
type Error struct {
	// Op says what was being done, naming the project, flag and environment.
	Op         string
	Method     string
	Path       string
	StatusCode int
	// Name is Unleash's error kind ("NotFoundError", "PermissionError"); may be empty.
	Name    string
	Message string
	// RetryAfter is the Retry-After header's delay (429 and 503), zero when absent.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: unleash %s %s: %d %s", e.Op, e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Name != "" {
		s += ": " + e.Name
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf("; retry after %s", e.RetryAfter)
	}
	return s
}

// Is lets errors.Is(err, ErrNotFound) and the like see through an *Error.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	}
	return false
}

// Retryable reports whether the same request may succeed later: rate limiting (429) and
// server errors (5xx).
func (e *Error) Retryable() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// IsRetryable reports whether trying again may help: an *Error that says so, or a failure
// to reach Unleash at all (network, timeout). This package's sentinels are final.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var ue *Error
	if errors.As(err, &ue) {
		return ue.Retryable()
	}
	for _, final := range []error{ErrInvalidInput, ErrUnexpectedResponse, ErrNotFound, ErrUnauthorized, ErrForbidden, context.Canceled} {
		if errors.Is(err, final) {
			return false
		}
	}
	return true
}
