package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Querier is what analyses ask of Prometheus.
type Querier interface {
	// Query evaluates an instant query at at (the server's now when at is zero). The result
	// must be a scalar or a vector of one element: none is ErrNoData, several ErrManySeries.
	Query(ctx context.Context, query string, at time.Time) (Sample, error)
	// QueryRange evaluates a range query from start to end every step and returns the first
	// series of the result (Prometheus orders series by their labels); none is ErrNoData.
	QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]Point, error)
}

// Sample is the value of an instant query and the time it was evaluated at. Value may be NaN
// (0/0, such as an error ratio with no traffic) or ±Inf.
type Sample struct {
	Value float64
	At    time.Time
}

// Point is one value of a range query.
type Point struct {
	At    time.Time
	Value float64
}

// Errors callers branch on.
var (
	// ErrNoData: the query matched no series. For an analysis this is inconclusive (the
	// service may have no traffic yet, or the metric is misnamed), not a failure.
	ErrNoData = errors.New("prometheus query returned no data")
	// ErrManySeries: an instant query returned several series where one number is needed;
	// the query must aggregate them (sum(), max(), ...). Retrying does not help.
	ErrManySeries = errors.New("prometheus query returned several series")
	// ErrWrongResultType: an instant query returned a range vector or a string where a
	// number is needed (a selector such as x[5m] without rate() around it).
	ErrWrongResultType = errors.New("prometheus query returned no number")
	// ErrInvalidInput: the request was refused before reaching Prometheus (bad base URL, an
	// empty query, a non-positive step).
	ErrInvalidInput = errors.New("invalid prometheus request")
	// ErrUnexpectedResponse: the answer was not the API's JSON envelope (a proxy's error
	// page, a body over MaxResponseBytes, a value that is not a number).
	ErrUnexpectedResponse = errors.New("unexpected response from prometheus")
)

// Error is Prometheus' refusal or failure of a query: the HTTP status and the envelope's
// errorType (bad_data, execution, timeout, canceled, internal, unavailable, not_found) and
// error text, which names what is wrong with the query.
type Error struct {
	// Endpoint is the API path, such as /api/v1/query.
	Endpoint   string
	StatusCode int
	Type       string
	Message    string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("prometheus %s: %d %s", e.Endpoint, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Type != "" {
		s += ": " + e.Type
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Retryable reports whether the same query may succeed later: a timeout, cancellation or
// unavailability on the server's side, rate limiting, or a 5xx from a proxy in between. A bad
// query (bad_data) or one that cannot execute (execution) fails the same way every time.
func (e *Error) Retryable() bool {
	switch e.Type {
	case "timeout", "canceled", "unavailable", "internal":
		return true
	case "bad_data", "execution", "not_found":
		return false
	}
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// IsRetryable reports whether err may go away on its own: a transport failure or a
// retryable *Error. Invalid input, several series and no data are not: a query returning no
// data is an answer, not an outage.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Retryable()
	}
	switch {
	case errors.Is(err, ErrNoData), errors.Is(err, ErrManySeries), errors.Is(err, ErrWrongResultType),
		errors.Is(err, ErrInvalidInput), errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, ErrUnexpectedResponse):
		// A proxy's error page during a restart looks like this too.
		return true
	}
	return true
}
