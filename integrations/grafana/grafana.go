package grafana

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Annotator is what Trainyard does with Grafana annotations.
type Annotator interface {
	// Create draws an annotation and returns its id.
	Create(ctx context.Context, a Annotation) (int64, error)
	// Update changes an annotation's end, text or tags; zero fields are left as they are.
	Update(ctx context.Context, id int64, a Annotation) error
}

// Annotation is an organisation-wide annotation (no dashboard or panel): dashboards show it
// through an annotation query filtering on its tags.
type Annotation struct {
	// Time is when it starts; TimeEnd, when set, makes it a region.
	Time    time.Time
	TimeEnd time.Time
	Tags    []string
	Text    string
}

// Errors callers branch on.
var (
	// ErrInvalidInput: the request was refused before reaching Grafana (bad base URL, no
	// time, an id that is not positive).
	ErrInvalidInput = errors.New("invalid grafana request")
	// ErrUnexpectedResponse: the answer was not the API's JSON (a proxy's error page, a body
	// over MaxResponseBytes).
	ErrUnexpectedResponse = errors.New("unexpected response from grafana")
)

// Error is Grafana's refusal of a request: the status and its message.
type Error struct {
	Method     string
	Path       string
	StatusCode int
	Message    string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("grafana %s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Retryable reports whether the same request may succeed later: rate limiting or a server
// error. A refused token (401, 403) or a bad request does not heal by itself.
func (e *Error) Retryable() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}
