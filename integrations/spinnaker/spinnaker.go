package spinnaker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Pipelines is what Trainyard does with Spinnaker pipelines. *Client is the real one.
type Pipelines interface {
	// Trigger starts a manual execution of an application's pipeline (by name or id) with
	// parameters, as user, and returns the execution id.
	Trigger(ctx context.Context, application, pipeline string, params map[string]string, user string) (string, error)
	// Execution reads an execution and its stages.
	Execution(ctx context.Context, id string) (Execution, error)
	// Wait polls the execution until it ends; an end other than SUCCEEDED is a
	// *PipelineFailedError.
	Wait(ctx context.Context, id string, poll time.Duration, progress func(Execution)) (Execution, error)
	// Cancel cancels a running execution, recording reason.
	Cancel(ctx context.Context, id, reason string) error
}

var _ Pipelines = (*Client)(nil)

// Status is an execution's or stage's status (Orca's ExecutionStatus).
type Status string

// Statuses.
const (
	StatusNotStarted     Status = "NOT_STARTED"
	StatusRunning        Status = "RUNNING"
	StatusPaused         Status = "PAUSED"
	StatusSuspended      Status = "SUSPENDED"
	StatusSucceeded      Status = "SUCCEEDED"
	StatusFailedContinue Status = "FAILED_CONTINUE"
	StatusTerminal       Status = "TERMINAL"
	StatusCanceled       Status = "CANCELED"
	StatusStopped        Status = "STOPPED"
	StatusSkipped        Status = "SKIPPED"
	// StatusBuffered is an execution waiting for another of the same pipeline to end (the
	// pipeline does not allow concurrent executions).
	StatusBuffered Status = "BUFFERED"
)

// Complete reports whether nothing more will happen, well or badly.
func (s Status) Complete() bool {
	switch s {
	case StatusSucceeded, StatusFailedContinue, StatusTerminal, StatusCanceled, StatusStopped, StatusSkipped:
		return true
	}
	return false
}

// failed reports whether a stage with status s failed.
func (s Status) failed() bool {
	return s == StatusTerminal || s == StatusStopped || s == StatusCanceled || s == StatusFailedContinue
}

// Execution is the part of a pipeline execution Trainyard reads.
type Execution struct {
	ID          string `json:"id"`
	Application string `json:"application"`
	// Name is the pipeline's name.
	Name   string  `json:"name"`
	Status Status  `json:"status"`
	Stages []Stage `json:"stages,omitempty"`
	// CanceledBy and CancellationReason are set once the execution is canceled.
	CanceledBy         string `json:"canceledBy,omitempty"`
	CancellationReason string `json:"cancellationReason,omitempty"`
}

// Stage is one stage of an execution, in Orca's order. Stages Orca adds inside another
// (a deploy's wait for stability) name it in ParentID.
type Stage struct {
	ID       string `json:"id"`
	RefID    string `json:"refId,omitempty"`
	ParentID string `json:"parentId,omitempty"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Status   Status `json:"status"`
	// Error is what the stage's context says went wrong: exception.details.errors (or
	// .error), error, or the exceptions of its cloud driver tasks (kato.tasks).
	Error string `json:"error,omitempty"`
}

// Current is the stage running now (or the last one that started), for progress reports.
func (e Execution) Current() (Stage, bool) {
	for i := len(e.Stages) - 1; i >= 0; i-- {
		if e.Stages[i].Status == StatusRunning && e.Stages[i].ParentID == "" {
			return e.Stages[i], true
		}
	}
	for i := len(e.Stages) - 1; i >= 0; i-- {
		if e.Stages[i].Status != StatusNotStarted && e.Stages[i].ParentID == "" {
			return e.Stages[i], true
		}
	}
	return Stage{}, false
}

// failure explains an execution that ended other than SUCCEEDED: the top-level stage that
// failed, and the error of it or of the stage inside it that holds one.
func (e Execution) failure() *PipelineFailedError {
	pf := &PipelineFailedError{ExecutionID: e.ID, Status: e.Status}
	var picked *Stage
	for _, strict := range []bool{true, false} {
		for i := range e.Stages {
			s := &e.Stages[i]
			if !s.Status.failed() || (strict && s.Status == StatusFailedContinue) {
				continue
			}
			if picked == nil || (picked.Error == "" && s.Error != "") {
				picked = s
			}
		}
		if picked != nil {
			break
		}
	}
	if picked != nil {
		top := *picked
		for seen := 0; top.ParentID != "" && seen < len(e.Stages); seen++ {
			parent, ok := e.stage(top.ParentID)
			if !ok {
				break
			}
			top = parent
		}
		pf.Stage = top.Name
		pf.Message = picked.Error
		if top.ID != picked.ID && picked.Error != "" {
			pf.Message = picked.Name + ": " + picked.Error
		}
	}
	if e.Status == StatusCanceled && pf.Message == "" {
		pf.Message = "canceled"
		if e.CanceledBy != "" {
			pf.Message += " by " + e.CanceledBy
		}
		if e.CancellationReason != "" {
			pf.Message += ": " + e.CancellationReason
		}
	}
	return pf
}

func (e Execution) stage(id string) (Stage, bool) {
	for _, s := range e.Stages {
		if s.ID == id {
			return s, true
		}
	}
	return Stage{}, false
}

// PipelineFailedError is an execution that ended other than SUCCEEDED.
type PipelineFailedError struct {
	ExecutionID string
	Status      Status
	// Stage is the name of the (top-level) stage that failed; empty when none did (an
	// execution canceled before a stage failed).
	Stage   string
	Message string
}

func (e *PipelineFailedError) Error() string {
	s := fmt.Sprintf("spinnaker execution %s ended %s", e.ExecutionID, e.Status)
	if e.Stage != "" {
		s += fmt.Sprintf(" at stage %q", e.Stage)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Errors callers branch on.
var (
	// ErrUnauthorized: Gate refused the credentials (401) or Fiat denied the request (403).
	ErrUnauthorized = errors.New("spinnaker gate refused the request: check the gate token or session and the user's permissions on the application")
	// ErrNotFound: no such execution, or no such pipeline in the application.
	ErrNotFound = errors.New("not found in spinnaker")
	// ErrInvalidInput: the request was refused before reaching Gate.
	ErrInvalidInput = errors.New("invalid spinnaker request")
	// ErrUnexpectedResponse: Gate answered success with something that is not its JSON (a
	// login page when the session expired, a body over MaxResponseBytes).
	ErrUnexpectedResponse = errors.New("unexpected response from spinnaker gate")
)

// APIError is Gate's answer to a request it refused or failed: the HTTP status and the
// message of its error body ({"status", "error", "message"}).
type APIError struct {
	Method     string
	Path       string
	StatusCode int
	Message    string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("spinnaker gate %s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden {
		s += " (check the gate token or session and the user's permissions)"
	}
	return s
}

// Unwrap lets errors.Is match ErrUnauthorized and ErrNotFound.
func (e *APIError) Unwrap() error {
	switch e.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrUnauthorized
	case http.StatusNotFound:
		return ErrNotFound
	}
	return nil
}

// Retryable reports whether the same request may succeed later.
func (e *APIError) Retryable() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// IsRetryable reports whether trying again may help: an *APIError that says so, or a
// failure to reach Gate at all. The sentinels and *PipelineFailedError are final.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var pf *PipelineFailedError
	if errors.As(err, &pf) {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Retryable()
	}
	for _, final := range []error{ErrInvalidInput, ErrUnexpectedResponse, context.Canceled} {
		if errors.Is(err, final) {
			return false
		}
	}
	return true
}
