package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/apiclient"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/workflows"
)

func at(hhmmss string) time.Time {
	t, err := time.Parse(time.RFC3339, "2026-01-02T"+hhmmss+"Z")
	if err != nil {
		panic(err)
	}
	return t
}

func TestRenderStatus_ShowsStagesTargetsApprovalsAndFailure(t *testing.T) {
	t.Parallel()
	deadline := at("12:00:00")
	s := workflows.ReleaseStatus{
		ID: "release-hello-1.2.3", Runbook: "hello", Version: "1.2.3", PreviousVersion: "1.2.2",
		Requester: workflows.Principal{Name: "ci"}, Phase: workflows.PhaseRollingBack, CurrentStage: "prod", Environment: "production",
		Components: []workflows.Component{{Name: "api", Version: "1.2.3", Artifact: "reg/api@sha256:ab"}},
		Failure:    "target web-prod failed: exit status 1",
		StartedAt:  at("10:00:00"),
		Stages: []workflows.StageStatus{
			{Name: "staging", Environment: "staging", State: workflows.StateSucceeded, Targets: []workflows.TargetStatus{
				{Name: "web-staging", Kind: "command", Site: "local", State: workflows.StateDeployed, Attempts: 1},
			}},
			{Name: "prod", Environment: "production", State: workflows.StateFailed, Targets: []workflows.TargetStatus{
				{Name: "web-prod", Kind: "command", Site: "dc1", State: workflows.StateFailed, Attempts: 3, Error: "exit status 1\nmore", Output: "a\nb\nc\nd\ne\nf\nboom\n"},
			}},
		},
		Approvals: []workflows.ApprovalStatus{{Gate: "production", Before: "prod", Roles: []string{"approver"}, Required: 1, State: workflows.GateApproved, Deadline: &deadline,
			Decisions: []workflows.Decision{{Actor: "alice", Decision: workflows.GateApproved, Comment: "lgtm", At: at("10:05:00")}}}},
		Timeline: []workflows.Event{{At: at("10:00:00"), Message: "release requested by ci"}, {At: at("10:06:00"), Message: "web-prod failed"}},
	}
	var b bytes.Buffer
	renderStatus(&b, s)
	out := b.String()

	for _, want := range []string{
		"Release     release-hello-1.2.3\n",
		"Runbook     hello 1.2.3 (previous 1.2.2)\n",
		"Phase       rolling_back, stage prod (production)\n",
		"Components  api 1.2.3 (reg/api@sha256:ab)\n",
		"Failure     target web-prod failed: exit status 1\n",
		"STAGE / TARGET     SITE   STATE      ATTEMPTS  ERROR\n",
		"staging (staging)         succeeded\n",
		"  web-staging      local  deployed   1\n",
		"  web-prod         dc1    failed     3         exit status 1\n",
		"  | boom\n",
		"production  prod    approved  1/1       approver  -\n",
		"Decisions:\n",
		`  production: approved by alice at 2026-01-02 10:05:00Z: "lgtm"`,
		"  2026-01-02 10:06:00Z  web-prod failed\n",
	} {
		require.Contains(t, out, want, "output:\n%s", out)
	}
	require.NotContains(t, out, "  | a\n", "only the last lines of output are shown")
	for _, line := range strings.Split(out, "\n") {
		require.Equal(t, strings.TrimRight(line, " "), line, "no trailing padding")
	}
}

func TestParseComponent_KeepsDigestReferencesWhole(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want workflows.Component
		err  bool
	}{
		{in: "api=1.2.3", want: workflows.Component{Name: "api", Version: "1.2.3"}},
		{in: "api=1.2.3@ghcr.io/acme/api@sha256:ab", want: workflows.Component{Name: "api", Version: "1.2.3", Artifact: "ghcr.io/acme/api@sha256:ab"}},
		{in: "api", err: true},
		{in: "=1.2.3", err: true},
		{in: "api=@x", err: true},
	}
	for _, tt := range tests {
		got, err := parseComponent(tt.in)
		if tt.err {
			require.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, tt.want, got)
	}
}

func TestWaitingGate_PicksTheOnlyWaitingGate(t *testing.T) {
	t.Parallel()
	gate := func(name, state string) workflows.ApprovalStatus {
		return workflows.ApprovalStatus{Gate: name, State: state}
	}
	got, err := waitingGate(workflows.ReleaseStatus{Approvals: []workflows.ApprovalStatus{gate("a", "approved"), gate("b", "waiting")}})
	require.NoError(t, err)
	require.Equal(t, "b", got)

	_, err = waitingGate(workflows.ReleaseStatus{ID: "r", Approvals: []workflows.ApprovalStatus{gate("a", "waiting"), gate("b", "waiting")}})
	require.ErrorContains(t, err, "several gates waiting (a, b)")
	_, err = waitingGate(workflows.ReleaseStatus{ID: "r", Approvals: []workflows.ApprovalStatus{gate("a", "pending")}})
	require.ErrorContains(t, err, "a (pending)")
}

// statusServer answers GET /api/v1/releases/ID with the next status of a script.
func statusServer(t *testing.T, script []workflows.ReleaseStatus) *httptest.Server {
	var mu sync.Mutex
	i := 0
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		st := script[min(i, len(script)-1)]
		i++
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(st)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func TestWatch_PrintsNewEventsOnceAndExitsByOutcome(t *testing.T) {
	t.Parallel()
	e1 := workflows.Event{At: at("10:00:00"), Message: "requested"}
	e2 := workflows.Event{At: at("10:00:01"), Message: "deploying staging"}
	e3 := workflows.Event{At: at("10:00:01"), Message: "web-staging deployed"}
	tests := []struct {
		name    string
		last    workflows.ReleaseStatus
		wantErr string
	}{
		{name: "succeeded", last: workflows.ReleaseStatus{ID: "r", Phase: workflows.PhaseSucceeded, Timeline: []workflows.Event{e1, e2, e3}}},
		{name: "rolled back", last: workflows.ReleaseStatus{ID: "r", Phase: workflows.PhaseRolledBack, Failure: "smoke check failed", Timeline: []workflows.Event{e1, e2, e3}},
			wantErr: "release r ended rolled_back: smoke check failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := statusServer(t, []workflows.ReleaseStatus{
				{ID: "r", Phase: workflows.PhasePending, Timeline: []workflows.Event{e1}},
				{ID: "r", Phase: workflows.PhaseDeploying, Timeline: []workflows.Event{e1, e2}},
				tt.last,
			})
			var out, errOut bytes.Buffer
			now := func() time.Time { return at("09:59:59") }
			err := watchRelease(context.Background(), apiclient.New(ts.URL, "tok", nil), "r", time.Millisecond, &out, &errOut, now)
			if tt.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.EqualError(t, err, tt.wantErr)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			require.Equal(t, []string{
				"10:00:00  requested",
				"09:59:59  phase pending",
				"10:00:01  deploying staging",
				"09:59:59  phase pending -> deploying",
				"10:00:01  web-staging deployed",
				"09:59:59  phase deploying -> " + string(tt.last.Phase),
			}, lines)
			require.Empty(t, errOut.String())
		})
	}
}

func TestExplain_PrintsLocatedProblems(t *testing.T) {
	t.Parallel()
	err := explain(&apiclient.Problem{Title: "Invalid runbook", Detail: "fix the problems", Problems: []runbooks.Problem{{File: "request", Line: 3, Path: "stages", Msg: "a runbook needs at least one stage"}}})
	require.EqualError(t, err, "Invalid runbook: fix the problems\n  request:3: stages: a runbook needs at least one stage")
}

func TestReleaseCmd_AsksForATokenWhenNoneIsSet(t *testing.T) {
	t.Setenv("TRAINYARD_TOKEN", "")
	cmd := newReleaseCmd()
	cmd.SetArgs([]string{"status", "r1"})
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	err := cmd.Execute()
	require.EqualError(t, err, "set TRAINYARD_TOKEN or --token (in dev: dev-token to start, dev-approver-token to approve)")
}

func TestReleaseApprove_DecidesTheWaitingGateWhenNoneIsNamed(t *testing.T) {
	t.Parallel()
	var got apiclient.DecisionRequest
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/releases/r1", func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "Bearer tok", r.Header.Get("Authorization"))
		_ = json.NewEncoder(w).Encode(workflows.ReleaseStatus{ID: "r1", Phase: workflows.PhaseAwaitingApproval,
			Approvals: []workflows.ApprovalStatus{{Gate: "staging", State: workflows.GateApproved}, {Gate: "production", State: workflows.GateWaiting}}})
	})
	mux.HandleFunc("POST /api/v1/releases/r1/approvals", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, json.NewDecoder(r.Body).Decode(&got))
		_ = json.NewEncoder(w).Encode(workflows.ApprovalResult{Gate: got.Gate, State: workflows.GateApproved, Approvals: 1, Required: 1})
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)

	cmd := newReleaseCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs([]string{"approve", "r1", "--api", ts.URL, "--token", "tok", "--comment", "canary is clean"})
	require.NoError(t, cmd.Execute())
	require.Equal(t, apiclient.DecisionRequest{Gate: "production", Decision: "approve", Comment: "canary is clean"}, got)
	require.Equal(t, "Approved gate production of r1: gate is approved (1 of 1 approvals)\n", out.String())
}

func TestReleaseStart_PrintsWhereToFollowTheRelease(t *testing.T) {
	t.Parallel()
	var got apiclient.StartRequest
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "ci-42", r.Header.Get("Idempotency-Key"))
		require.NoError(t, json.NewDecoder(r.Body).Decode(&got))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(apiclient.StartResponse{ID: "release-ci-42", Phase: "pending", StatusURL: "http://api/r", TemporalUIURL: "http://ui/r"})
	}))
	t.Cleanup(ts.Close)

	cmd := newReleaseCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs([]string{"start", "hello", "1.2.3", "--api", ts.URL, "--token", "tok", "--idempotency-key", "ci-42",
		"--component", "api=1.2.3@reg/api@sha256:ab", "--commit", "abc", "--author", "bob", "--author", "eve"})
	require.NoError(t, cmd.Execute())
	require.Equal(t, apiclient.StartRequest{Runbook: "hello", Version: "1.2.3",
		Components: []workflows.Component{{Name: "api", Version: "1.2.3", Artifact: "reg/api@sha256:ab"}},
		Change:     &workflows.Change{Commit: "abc", Authors: []string{"bob", "eve"}}}, got)
	require.Equal(t, `Started release release-ci-42 (phase pending)
  Status       http://api/r
  Temporal UI  http://ui/r
Follow it with: trainyard release watch release-ci-42
`, out.String())
}
