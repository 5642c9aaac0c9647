package analysis

import (
	"fmt"
	"strings"

	"github.com/trainyard/trainyard/runbooks"
)

// DefaultConsecutiveErrorLimit is how many measurements in a row may error before a run
// fails (Argo Rollouts' consecutiveErrorLimit default): an analysis that cannot see its
// metrics cannot vouch for the release.
const DefaultConsecutiveErrorLimit = 4

// RunState is the tally of one analysis run: a runbook analysis's Count measurements, of
// which more than FailureLimit failing fails the run (Argo Rollouts' semantics). It holds
// only counters and the last measurement, and encodes to JSON, so an activity can keep it in
// its heartbeat details and resume a run after a retry.
//
// Successful, failed and inconclusive measurements count towards Count; errors do not (a
// Prometheus hiccup does not use up the run), but more than ConsecutiveErrorLimit of them in
// a row fail it.
type RunState struct {
	Analysis string `json:"analysis"`
	// Count is how many measurements make the run; 0 runs until the caller stops it (a
	// stabilization window), and it is then never Done unless it fails.
	Count int `json:"count,omitempty"`
	// FailureLimit is how many measurements may fail.
	FailureLimit int `json:"failureLimit,omitempty"`
	// InconclusiveLimit is how many measurements may be inconclusive before a finished run
	// is inconclusive rather than successful (Argo's default, 0: any).
	InconclusiveLimit int `json:"inconclusiveLimit,omitempty"`
	// ConsecutiveErrorLimit is how many errors in a row are tolerated;
	// DefaultConsecutiveErrorLimit when 0.
	ConsecutiveErrorLimit int `json:"consecutiveErrorLimit,omitempty"`

	Successes         int          `json:"successes"`
	Failures          int          `json:"failures"`
	Inconclusives     int          `json:"inconclusives"`
	Errors            int          `json:"errors"`
	ConsecutiveErrors int          `json:"consecutiveErrors"`
	Last              *Measurement `json:"last,omitempty"`
	// LastError is the last errored measurement's message, kept for the failure message when
	// errors end the run.
	LastError string `json:"lastError,omitempty"`
}

// NewRunState starts a run of a.
func NewRunState(a runbooks.Analysis) RunState {
	return RunState{Analysis: a.Name, Count: a.Count, FailureLimit: a.FailureLimit}
}

// Add records a measurement. Measurements added after the run is Done change nothing.
func (r *RunState) Add(m Measurement) {
	if r.Done() {
		return
	}
	r.Last = &m
	switch m.Outcome {
	case OutcomeSuccessful:
		r.Successes++
		r.ConsecutiveErrors = 0
	case OutcomeFailed:
		r.Failures++
		r.ConsecutiveErrors = 0
	case OutcomeInconclusive:
		r.Inconclusives++
		r.ConsecutiveErrors = 0
	default:
		r.Errors++
		r.ConsecutiveErrors++
		r.LastError = m.Message
	}
}

// Measured is how many measurements count towards Count.
func (r RunState) Measured() int { return r.Successes + r.Failures + r.Inconclusives }

// Failed reports whether the run has failed: more failed measurements than FailureLimit, or
// more errors in a row than ConsecutiveErrorLimit.
func (r RunState) Failed() bool {
	return r.Failures > r.FailureLimit || r.ConsecutiveErrors > r.errorLimit()
}

// Done reports whether the run needs no more measurements: it failed, or has Count of them.
func (r RunState) Done() bool {
	return r.Failed() || (r.Count > 0 && r.Measured() >= r.Count)
}

// Verdict is the run's outcome: OutcomeRunning until Done, then failed, inconclusive (more
// inconclusive measurements than InconclusiveLimit; a person decides) or successful.
func (r RunState) Verdict() Outcome {
	switch {
	case r.Failed():
		return OutcomeFailed
	case !r.Done():
		return OutcomeRunning
	case r.Inconclusives > r.InconclusiveLimit:
		return OutcomeInconclusive
	}
	return OutcomeSuccessful
}

// Summary says where the run stands, for the release timeline.
func (r RunState) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "analysis %s %s: ", r.Analysis, r.Verdict())
	if r.ConsecutiveErrors > r.errorLimit() {
		fmt.Fprintf(&b, "Prometheus unreachable or the query failing: %d measurements in a row errored (limit %d); last: %s",
			r.ConsecutiveErrors, r.errorLimit(), r.LastError)
		return b.String()
	}
	of := ""
	if r.Count > 0 {
		of = fmt.Sprintf(" of %d", r.Count)
	}
	fmt.Fprintf(&b, "%d%s measurements: %d successful, %d failed (limit %d), %d inconclusive",
		r.Measured(), of, r.Successes, r.Failures, r.FailureLimit, r.Inconclusives)
	if r.Errors > 0 {
		fmt.Fprintf(&b, ", %d errors", r.Errors)
	}
	if r.Last != nil {
		fmt.Fprintf(&b, "; last: %s", r.Last.Message)
	}
	return b.String()
}

func (r RunState) errorLimit() int {
	if r.ConsecutiveErrorLimit > 0 {
		return r.ConsecutiveErrorLimit
	}
	return DefaultConsecutiveErrorLimit
}
