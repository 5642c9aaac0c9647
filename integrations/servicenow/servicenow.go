package servicenow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Client is what Trainyard does with change requests.
type Client interface {
	// Open files a change request for in.CorrelationID, or returns the active one already
	// filed for it: calling Open twice opens one change request.
	Open(ctx context.Context, in ChangeInput) (Change, error)
	// Note adds a work note.
	Note(ctx context.Context, sysID, text string) error
	// Move brings the change to state to, through the states its type's model passes on the
	// way; note (optional) is written with the last step. A change already in state to is left
	// alone, so a retried Move changes nothing.
	Move(ctx context.Context, sysID string, to State, note string) error
	// Close closes the change with outcome: Closed with a close code, or Canceled. A change
	// already closed with the same outcome is left alone; any other closed change is ErrClosed.
	Close(ctx context.Context, sysID string, outcome Outcome, notes string) error
	// Get reads the change.
	Get(ctx context.Context, sysID string) (Change, error)
}

// Type is a change request's type, which chooses the states it passes through.
type Type string

// Change types.
const (
	TypeNormal    Type = "normal"
	TypeStandard  Type = "standard"
	TypeEmergency Type = "emergency"
)

// ChangeInput is what Open files.
type ChangeInput struct {
	// CorrelationID identifies the change for the caller (the release id); required, at most
	// 100 characters, without '^' (ServiceNow's query separator).
	CorrelationID string
	// CorrelationDisplay names the caller in ServiceNow ("Trainyard").
	CorrelationDisplay string
	// ShortDescription is the change's title; required, cut to 160 characters.
	ShortDescription string
	Description      string
	// Type is normal when empty; standard when Template is set.
	Type Type
	// AssignmentGroup is a group's sys_id or its name; a name is looked up in sys_user_group.
	AssignmentGroup string
	// Template is the sys_id of a standard change template version
	// (std_change_producer_version); setting it files a standard change.
	Template string
	// PlannedStart and PlannedEnd are start_date and end_date when set.
	PlannedStart, PlannedEnd time.Time
}

// Change is the part of a change request Trainyard reads back.
type Change struct {
	SysID         string `json:"sysId"`
	Number        string `json:"number"`
	State         State  `json:"state"`
	Type          Type   `json:"type"`
	CorrelationID string `json:"correlationId,omitempty"`
	CloseCode     string `json:"closeCode,omitempty"`
}

// State is a change request's state as ServiceNow stores it.
type State int

// Change request states.
const (
	StateNew       State = -5
	StateAssess    State = -4
	StateAuthorize State = -3
	StateScheduled State = -2
	StateImplement State = -1
	StateReview    State = 0
	StateClosed    State = 3
	StateCanceled  State = 4
)

var stateNames = map[State]string{
	StateNew: "new", StateAssess: "assess", StateAuthorize: "authorize", StateScheduled: "scheduled",
	StateImplement: "implement", StateReview: "review", StateClosed: "closed", StateCanceled: "canceled",
}

func (s State) String() string {
	if n, ok := stateNames[s]; ok {
		return n
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Terminal reports whether nothing follows s (closed or canceled).
func (s State) Terminal() bool { return s == StateClosed || s == StateCanceled }

// ParseState turns a state's name ("implement") into the State.
func ParseState(name string) (State, error) {
	for s, n := range stateNames {
		if n == name {
			return s, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown change state %q; use new, assess, authorize, scheduled, implement, review, closed or canceled", ErrInvalidInput, name)
}

// model is the order of states each type passes through (ServiceNow's default change models).
func model(t Type) []State {
	switch t {
	case TypeStandard:
		return []State{StateNew, StateScheduled, StateImplement, StateReview, StateClosed}
	case TypeEmergency:
		return []State{StateNew, StateAuthorize, StateScheduled, StateImplement, StateReview, StateClosed}
	default:
		return []State{StateNew, StateAssess, StateAuthorize, StateScheduled, StateImplement, StateReview, StateClosed}
	}
}

// Steps are the states a change of type t passes through from from to to, to included.
// Moving backwards, or to a state t's model does not have, is ErrInvalidMove.
func Steps(t Type, from, to State) ([]State, error) {
	m := model(t)
	fi, ti := -1, -1
	for i, s := range m {
		if s == from {
			fi = i
		}
		if s == to {
			ti = i
		}
	}
	if fi < 0 || ti < 0 || ti < fi {
		return nil, fmt.Errorf("%w: a %s change cannot go from %s to %s", ErrInvalidMove, t, from, to)
	}
	return append([]State(nil), m[fi+1:ti+1]...), nil
}

// Outcome is how a change ends: one of ServiceNow's close codes, or canceled.
type Outcome string

// Outcomes.
const (
	OutcomeSuccessful       Outcome = "successful"
	OutcomeSuccessfulIssues Outcome = "successful_issues"
	OutcomeUnsuccessful     Outcome = "unsuccessful"
	// OutcomeCanceled cancels the change (state 4) instead of closing it.
	OutcomeCanceled Outcome = "canceled"
)

func (o Outcome) valid() bool {
	switch o {
	case OutcomeSuccessful, OutcomeSuccessfulIssues, OutcomeUnsuccessful, OutcomeCanceled:
		return true
	}
	return false
}

// Errors callers branch on. None of them is helped by retrying.
var (
	// ErrInvalidInput: the request was refused before reaching ServiceNow.
	ErrInvalidInput = errors.New("invalid change request input")
	// ErrInvalidMove: the change's model does not lead from its state to the one asked for.
	ErrInvalidMove = errors.New("invalid change request move")
	// ErrClosed: the change is already closed or canceled (differently from what was asked).
	ErrClosed = errors.New("change request already closed")
	// ErrUnexpectedResponse: ServiceNow answered success with something that is not the Table
	// API's JSON (a login page, a hibernating instance, a body over MaxResponseBytes).
	ErrUnexpectedResponse = errors.New("unexpected response from servicenow")
)

// Error is ServiceNow's answer to a request it refused or failed: the HTTP status and the
// message and detail of its error body.
type Error struct {
	Method     string
	Path       string
	StatusCode int
	Message    string
	Detail     string
	// RetryAfter is the Retry-After header's delay (429 and 503), zero when absent.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := fmt.Sprintf("servicenow %s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf("; retry after %s", e.RetryAfter)
	}
	return s
}

// Retryable reports whether the same request may succeed later: rate limiting (429) and
// server errors (5xx). Other 4xx answers will not change.
func (e *Error) Retryable() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// IsRetryable reports whether trying again may help: an *Error that says so, or a failure to
// reach ServiceNow at all (network, timeout). Errors of this package's sentinels are final.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var se *Error
	if errors.As(err, &se) {
		return se.Retryable()
	}
	for _, final := range []error{ErrInvalidInput, ErrInvalidMove, ErrClosed, ErrUnexpectedResponse, context.Canceled} {
		if errors.Is(err, final) {
			return false
		}
	}
	return true
}
