package analysis

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/runbooks"
)

func outcomes(s string) []Measurement {
	var ms []Measurement
	for i, c := range s {
		o := map[rune]Outcome{'S': OutcomeSuccessful, 'F': OutcomeFailed, 'I': OutcomeInconclusive, 'E': OutcomeError}[c]
		msg := string(o)
		if o == OutcomeError {
			msg = "prometheus /api/v1/query: dial tcp 127.0.0.1:9090: connection refused"
		}
		ms = append(ms, Measurement{Analysis: "error-rate", Value: float64(i), Outcome: o, Message: msg})
	}
	return ms
}

func TestRunState_Limits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		count, limit int
		seq          string
		done, failed bool
		verdict      Outcome
		summary      string
	}{
		{"all successful", 5, 1, "SSSSS", true, false, OutcomeSuccessful, "5 of 5 measurements: 5 successful, 0 failed (limit 1)"},
		{"failures within the limit", 5, 1, "SFSSS", true, false, OutcomeSuccessful, "1 failed (limit 1)"},
		{"failures over the limit end the run early", 5, 1, "SFF", true, true, OutcomeFailed, "3 of 5 measurements: 1 successful, 2 failed (limit 1)"},
		{"no failure allowed by default", 3, 0, "F", true, true, OutcomeFailed, "1 failed (limit 0)"},
		{"still running", 5, 1, "SS", false, false, OutcomeRunning, "2 of 5"},
		{"an inconclusive measurement makes a finished run inconclusive", 3, 0, "SIS", true, false, OutcomeInconclusive, "1 inconclusive"},
		{"errors do not count towards count", 2, 0, "ESES", true, false, OutcomeSuccessful, "2 of 2 measurements: 2 successful, 0 failed (limit 0), 0 inconclusive, 2 errors"},
		{"four errors in a row are tolerated", 10, 0, "EEEESEEEE", false, false, OutcomeRunning, "8 errors"},
		{"five errors in a row fail the run", 10, 0, "SEEEEE", true, true, OutcomeFailed,
			"Prometheus unreachable or the query failing: 5 measurements in a row errored (limit 4); last: prometheus /api/v1/query: dial tcp"},
		{"without a count the run goes on", 0, 2, "SSSSSSSSSSFF", false, false, OutcomeRunning, "12 measurements"},
		{"without a count it still fails", 0, 2, "SFSFSF", true, true, OutcomeFailed, "3 failed (limit 2)"},
		{"measurements after the end change nothing", 2, 0, "SSFFF", true, false, OutcomeSuccessful, "2 successful, 0 failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := NewRunState(runbooks.Analysis{Name: "error-rate", Count: tt.count, FailureLimit: tt.limit})
			for _, m := range outcomes(tt.seq) {
				r.Add(m)
			}
			require.Equal(t, tt.done, r.Done(), "done")
			require.Equal(t, tt.failed, r.Failed(), "failed")
			require.Equal(t, tt.verdict, r.Verdict())
			require.Contains(t, r.Summary(), tt.summary)
			require.Contains(t, r.Summary(), "analysis error-rate "+string(tt.verdict))
		})
	}
}

func TestRunState_LimitsCanBeLoosened(t *testing.T) {
	t.Parallel()
	r := NewRunState(runbooks.Analysis{Name: "x", Count: 3})
	r.InconclusiveLimit, r.ConsecutiveErrorLimit = 1, 6
	for _, m := range outcomes("SIEEEEEES") {
		r.Add(m)
	}
	require.False(t, r.Failed())
	require.Equal(t, OutcomeSuccessful, r.Verdict())
}

func TestRunState_ResumesFromJSON(t *testing.T) {
	t.Parallel()
	r := NewRunState(runbooks.Analysis{Name: "error-rate", Count: 5, FailureLimit: 1})
	for _, m := range outcomes("SFE") {
		r.Add(m)
	}
	r.Add(Measurement{Analysis: "error-rate", Value: math.NaN(), Outcome: OutcomeInconclusive, Message: "NaN"})
	b, err := json.Marshal(r)
	require.NoError(t, err)

	var back RunState
	require.NoError(t, json.Unmarshal(b, &back))
	require.True(t, math.IsNaN(back.Last.Value))
	back.Last, r.Last = nil, nil
	require.Equal(t, r, back)

	back.Add(outcomes("F")[0])
	require.True(t, back.Failed(), "the failure before the retry still counts")
}
