package server

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
	"github.com/trainyard/trainyard/workflows"
)

// incidentFake is the harness's store with incidents, markers and breakers in memory.
type incidentFake struct {
	*fakeStore
	mu         sync.Mutex
	incident   *store.Incident
	series     []store.Series
	markers    []store.Marker
	filters    []store.MarkerFilter
	breakers   []store.CircuitBreaker
	clearedBy  string
	clearCalls int
}

func (f *incidentFake) GetIncident(_ context.Context, id string) (store.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.incident == nil || f.incident.ReleaseID != id {
		return store.Incident{}, store.ErrNotFound
	}
	return *f.incident, nil
}

func (f *incidentFake) IncidentSeries(context.Context, string) ([]store.Series, error) {
	return f.series, nil
}

func (f *incidentFake) ListMarkers(_ context.Context, mf store.MarkerFilter) ([]store.Marker, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filters = append(f.filters, mf)
	return f.markers, nil
}

func (f *incidentFake) ListBreakers(context.Context, store.BreakerFilter) ([]store.CircuitBreaker, error) {
	return f.breakers, nil
}

func (f *incidentFake) OpenBreaker(_ context.Context, scope, name string) (store.CircuitBreaker, error) {
	for _, b := range f.breakers {
		if b.Scope == scope && b.Name == name && b.Open() {
			return b, nil
		}
	}
	return store.CircuitBreaker{}, store.ErrNotFound
}

func (f *incidentFake) ClearBreaker(_ context.Context, scope, name, by, reason string, at time.Time) (store.CircuitBreaker, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clearCalls++
	for i, b := range f.breakers {
		if b.Scope == scope && b.Name == name && b.Open() {
			f.breakers[i].ClearedBy, f.breakers[i].ClearedAt, f.breakers[i].ClearReason = by, &at, reason
			f.clearedBy = by
			return f.breakers[i], nil
		}
	}
	return store.CircuitBreaker{}, store.ErrNotFound
}

func newIncidentHarness(t *testing.T) (*harness, *incidentFake) {
	t.Helper()
	h := newHarness(t, nil)
	ist := &incidentFake{fakeStore: h.store}
	h.srv.deps.Store = ist
	h.srv.deps.Auth = config.NewAuthenticator([]config.Principal{
		{Name: "ci", Roles: []string{"deployer"}, Token: ciToken},
		{Name: "alice", Roles: []string{"approver", "sre"}, Token: approverToken},
	})
	return h, ist
}

func TestRollback_SendsOneUpdatePerPersonAndAuditsEveryAttempt(t *testing.T) {
	t.Parallel()
	h, _ := newIncidentHarness(t)
	var ids []string
	var got workflows.OperatorRequest
	h.engine.OperateFunc = func(_ context.Context, id, updateID, update string, req workflows.OperatorRequest) (workflows.OperatorResult, error) {
		require.Equal(t, workflows.UpdateRollback, update)
		if req.Actor.Name == "ci" {
			return workflows.OperatorResult{}, &RefusedError{Type: workflows.ErrTypeForbidden, Message: "ci cannot order a rollback of release r1: it needs one of the roles sre (rollbackAuthority)"}
		}
		ids, got = append(ids, updateID), req
		return workflows.OperatorResult{Phase: workflows.PhaseStabilizing}, nil
	}
	path := "/api/v1/releases/r1/rollback"

	rec := h.do(t, call{method: http.MethodPost, path: path, token: approverToken, body: `{}`})
	p := requireProblem(t, rec, http.StatusBadRequest, path)
	require.Contains(t, p.Detail, "reason is required")

	rec = h.do(t, call{method: http.MethodPost, path: path, token: ciToken, body: `{"reason":"looks bad"}`})
	p = requireProblem(t, rec, http.StatusForbidden, path)
	require.Equal(t, workflows.ErrTypeForbidden, p.Reason)

	for range 2 {
		rec = h.do(t, call{method: http.MethodPost, path: path, token: approverToken, body: `{"reason":"checkout errors doubled"}`})
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		require.JSONEq(t, `{"phase":"stabilizing"}`, rec.Body.String())
	}
	require.Equal(t, []string{"rollback/alice", "rollback/alice"}, ids, "a retried call is the same Update")
	require.Equal(t, "checkout errors doubled", got.Reason)

	audits := h.store.auditRows()
	require.Len(t, audits, 4)
	var outcomes []string
	for _, a := range audits {
		require.Equal(t, actionRollback, a.Action)
		require.Equal(t, "r1", a.ReleaseID)
		outcomes = append(outcomes, a.Outcome)
	}
	require.Equal(t, []string{store.OutcomeDenied, store.OutcomeDenied, store.OutcomeAllowed, store.OutcomeAllowed}, outcomes)
}

func TestFixForward_RefusalsMapToTheirStatus(t *testing.T) {
	t.Parallel()
	cases := []struct {
		refusal string
		status  int
	}{
		{workflows.ErrTypeConflict, http.StatusConflict},
		{workflows.ErrTypeForbidden, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.refusal, func(t *testing.T) {
			t.Parallel()
			h, _ := newIncidentHarness(t)
			h.engine.OperateFunc = func(_ context.Context, _, updateID, update string, _ workflows.OperatorRequest) (workflows.OperatorResult, error) {
				require.Equal(t, workflows.UpdateFixForward, update)
				require.Equal(t, "fix-forward/alice/k1", updateID)
				return workflows.OperatorResult{}, &RefusedError{Type: tc.refusal, Message: "no"}
			}
			path := "/api/v1/releases/r1/fix-forward"
			rec := h.do(t, call{method: http.MethodPost, path: path, token: approverToken, body: `{"reason":"patch is out"}`,
				header: map[string]string{headerIdempotencyKey: "k1"}})
			requireProblem(t, rec, tc.status, path)
			audits := h.store.auditRows()
			require.Len(t, audits, 1)
			require.Equal(t, actionFixForward, audits[0].Action)
			require.Equal(t, store.OutcomeDenied, audits[0].Outcome)
		})
	}
}

var r0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// breachedStatus is a release that breached, was paged, and rolled back on alice's order.
func breachedStatus() workflows.ReleaseStatus {
	decided := workflows.Decision{Actor: "alice", Roles: []string{"sre"}, Decision: workflows.DecisionRollback, Comment: "checkout | errors", At: r0.Add(12 * time.Minute)}
	return workflows.ReleaseStatus{
		ID: "release-shop-2.0.0", Runbook: "shop", Version: "2.0.0", PreviousVersion: "1.9.0", Requester: workflows.Principal{Name: "ci"},
		Phase: workflows.PhaseRolledBack, Environment: "production", Failure: "stabilization breached: error-rate: failed",
		StartedAt: r0, EndedAt: ptr(r0.Add(15 * time.Minute)),
		Approvals: []workflows.ApprovalStatus{{Gate: "prod-signoff", Decisions: []workflows.Decision{{Actor: "bob", Decision: "approved", Comment: "ship it", At: r0.Add(2 * time.Minute)}}}},
		Checks: []workflows.CheckStatus{
			{Name: "error-rate", Kind: "analysis", Value: ptr(0.4), Limit: "fails when result.value > 0.05", OK: false, Message: "analysis error-rate failed"},
			{Name: "slo burn 1h/5m", Kind: "burn", Limit: "14.4x over 1h and 5m", OK: true, Message: "no data"},
		},
		Baselines: []workflows.BaselineStatus{{Analysis: "error-rate", Value: ptr(0.002), At: r0.Add(4 * time.Minute)}},
		Breach: &workflows.BreachStatus{Check: "error-rate", Kind: "analysis", Message: "analysis error-rate failed: value 0.4", At: r0.Add(10 * time.Minute),
			OnBreach: workflows.OnBreachPage, PagedAt: ptr(r0.Add(10 * time.Minute)), Decision: &decided},
		Rollback: &workflows.RollbackStatus{Scope: "release", StartedAt: r0.Add(12*time.Minute + 500*time.Millisecond), EndedAt: ptr(r0.Add(14 * time.Minute)),
			Budget: runbooks.Duration(time.Minute), BudgetExceededAt: ptr(r0.Add(13*time.Minute + 500*time.Millisecond)), OrderedBy: &decided,
			Steps:           []workflows.RollbackStep{{Stage: "production", Target: "web-1", State: workflows.StateRolledBack, Output: "restored 1.9.0 on web-1\n", StartedAt: r0.Add(12 * time.Minute), EndedAt: ptr(r0.Add(14 * time.Minute))}},
			CircuitBreakers: []string{"runbook/shop"}},
		Stages: []workflows.StageStatus{{Name: "production", Environment: "production", Targets: []workflows.TargetStatus{
			{Name: "web-1", State: workflows.StateRolledBack, Output: "deployed 2.0.0\n"},
			{Name: "web-2", State: workflows.StatePending},
		}}},
		Timeline: []workflows.Event{{At: r0, Message: "release requested by ci"}, {At: r0.Add(10 * time.Minute), Message: "stabilization breached: error-rate"}},
	}
}

func TestReport_NamesTheBreachDecisionsActionsMetricsAndOutputs(t *testing.T) {
	t.Parallel()
	h, ist := newIncidentHarness(t)
	h.engine.StatusFunc = func(context.Context, string) (workflows.ReleaseStatus, error) { return breachedStatus(), nil }
	ist.markers = []store.Marker{{Action: store.MarkerDeploy, Stage: "production", Environment: "production", StartedAt: r0.Add(4 * time.Minute), EndedAt: ptr(r0.Add(5 * time.Minute)), Outcome: "succeeded"}}
	var pts []store.Point
	for i := range 20 {
		v := 0.001
		if i >= 10 {
			v = 0.4
		}
		pts = append(pts, store.Point{At: r0.Add(time.Duration(i) * time.Minute), Value: v})
	}
	pts[3].Value = math.NaN()
	ist.series = []store.Series{
		{Name: "error-rate", Query: "sum(rate(errors[1m]))", From: r0, To: r0.Add(20 * time.Minute), Step: time.Minute, Points: pts},
		{Name: "slo error ratio over 1h", Query: "x", From: r0, To: r0, Step: time.Second, Error: "no data"},
	}

	rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/releases/release-shop-2.0.0/report", token: ciToken})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "text/markdown; charset=utf-8", rec.Header().Get("Content-Type"))
	md := rec.Body.String()
	for _, want := range []string{
		"# Incident report: release release-shop-2.0.0\n",
		"| Version | 2.0.0 (previous: 1.9.0) |",
		"| Outcome | rolled_back |",
		"**error-rate** (analysis) breached at 2026-03-01 12:10:00Z: analysis error-rate failed: value 0.4",
		"alice decided **rollback** at 2026-03-01 12:12:00Z (2m0s after the page)",
		"| error-rate | analysis | 0.4 | fails when result.value > 0.05 | **no** |",
		"| slo burn 1h/5m | burn | unknown |",
		"| error-rate | 0.002 | 2026-03-01 12:04:00Z |",
		"| 2026-03-01 12:02:00Z | bob |  | approval prod-signoff | approved | ship it |",
		`| breach of error-rate | rollback | checkout \| errors |`,
		"| deploy | production | production | 2026-03-01 12:04:00Z | 2026-03-01 12:05:00Z | 1m0s | succeeded |",
		"Rollback (scope release) started 2026-03-01 12:12:00Z, 2m1s after the breach, took 2m0s",
		"**over its budget of 1m0s**",
		"| web-1 | production | 2026-03-01 12:12:00Z | 2m0s | rolled_back |",
		"Circuit breakers tripped: runbook/shop.",
		"### error-rate\n\n```promql\nsum(rate(errors[1m]))\n```",
		"Lowest 0.001, highest 0.4, last 0.4.",
		"| 2026-03-01 12:10:00Z | 0.4 ← breach |",
		"No values: no data",
		"### production / web-1 (rolled_back)\n\n```text\ndeployed 2.0.0\n```",
		"### production / web-1: rollback (rolled_back)\n\n```text\nrestored 1.9.0 on web-1\n```",
		"| 2026-03-01 12:10:00Z | stabilization breached: error-rate |",
	} {
		require.Contains(t, md, want, "report:\n%s", md)
	}
	require.Equal(t, 1, strings.Count(md, "| rollback | checkout"), "an order that decided the breach is listed once")
	require.NotContains(t, md, "web-2 (", "targets without output are left out")
	require.Equal(t, "release-shop-2.0.0", ist.filters[0].ReleaseID)
}

func TestReport_FallsBackToTheStatusKeptWithTheIncident(t *testing.T) {
	t.Parallel()
	h, ist := newIncidentHarness(t)
	h.engine.StatusFunc = func(context.Context, string) (workflows.ReleaseStatus, error) {
		return workflows.ReleaseStatus{}, ErrReleaseNotFound
	}
	path := "/api/v1/releases/release-shop-2.0.0/report"
	rec := h.do(t, call{method: http.MethodGet, path: path, token: ciToken})
	requireProblem(t, rec, http.StatusNotFound, path)

	b, err := json.Marshal(breachedStatus())
	require.NoError(t, err)
	ist.incident = &store.Incident{ReleaseID: "release-shop-2.0.0", Runbook: "shop", Status: b, UpdatedAt: r0.Add(15 * time.Minute)}
	rec = h.do(t, call{method: http.MethodGet, path: path, token: ciToken})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), "built from the status kept with its incident at 2026-03-01 12:15:00Z")
	require.Contains(t, rec.Body.String(), "**error-rate** (analysis) breached")
}

func TestReport_HealthyReleaseSaysNothingBreached(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.engine.StatusFunc = func(_ context.Context, id string) (workflows.ReleaseStatus, error) {
		return workflows.ReleaseStatus{ID: id, Phase: workflows.PhaseSucceeded, StartedAt: r0}, nil
	}
	rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/releases/r1/report", token: ciToken})
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "Nothing: the release stayed healthy through its stabilization window.")
	require.Contains(t, rec.Body.String(), "Nobody decided anything")
}

func TestMarkers_PassesFiltersAndRefusesBadOnes(t *testing.T) {
	t.Parallel()
	h, ist := newIncidentHarness(t)
	ist.markers = []store.Marker{{ReleaseID: "r1", Runbook: "shop", Action: store.MarkerDeploy, StartedAt: r0}}
	rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/markers?since=2026-03-01T11:00:00Z&runbook=shop&environment=production&limit=10", token: ciToken})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var got struct {
		Markers []store.Marker `json:"markers"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Len(t, got.Markers, 1)
	require.Equal(t, store.MarkerFilter{Runbook: "shop", Environment: "production", Since: r0.Add(-time.Hour), Limit: 10}, ist.filters[0])

	rec = h.do(t, call{method: http.MethodGet, path: "/api/v1/markers?since=yesterday", token: ciToken})
	requireProblem(t, rec, http.StatusBadRequest, "/api/v1/markers")

	plain := newHarness(t, nil)
	rec = plain.do(t, call{method: http.MethodGet, path: "/api/v1/markers", token: ciToken})
	requireProblem(t, rec, http.StatusServiceUnavailable, "/api/v1/markers")
}

func TestClearBreaker_OnlyTheAuthorityMayAndEveryAttemptIsAudited(t *testing.T) {
	t.Parallel()
	h, ist := newIncidentHarness(t)
	ist.breakers = []store.CircuitBreaker{{Scope: "runbook", Name: "shop", ReleaseID: "release-shop-2.0.0", Roles: []string{"sre"}, TrippedAt: r0}}
	clear := func(token, path, body string) (int, string) {
		rec := h.do(t, call{method: http.MethodPost, path: path, token: token, body: body})
		return rec.Code, rec.Body.String()
	}
	path := "/api/v1/circuit-breakers/runbook/shop/clear"

	code, body := clear(approverToken, "/api/v1/circuit-breakers/planet/shop/clear", `{"reason":"x"}`)
	require.Equal(t, http.StatusBadRequest, code, body)
	code, body = clear(approverToken, path, `{}`)
	require.Equal(t, http.StatusBadRequest, code, body)
	code, body = clear(approverToken, "/api/v1/circuit-breakers/environment/production/clear", `{"reason":"x"}`)
	require.Equal(t, http.StatusNotFound, code, body)
	code, body = clear(ciToken, path, `{"reason":"fixed"}`)
	require.Equal(t, http.StatusForbidden, code, body)
	require.Contains(t, body, "sre")
	require.Zero(t, ist.clearCalls, "refused attempts change nothing")

	code, body = clear(approverToken, path, `{"reason":"fixed in 2.0.1"}`)
	require.Equal(t, http.StatusOK, code, body)
	var b store.CircuitBreaker
	require.NoError(t, json.Unmarshal([]byte(body), &b))
	require.Equal(t, "alice", b.ClearedBy)
	require.Equal(t, "fixed in 2.0.1", b.ClearReason)

	audits := h.store.auditRows()
	require.Len(t, audits, 5)
	for _, a := range audits {
		require.Equal(t, actionBreakerClear, a.Action)
	}
	last := audits[4]
	require.Equal(t, store.OutcomeAllowed, last.Outcome)
	require.Equal(t, "release-shop-2.0.0", last.ReleaseID, "the audit names the release that tripped it")
	require.Equal(t, store.OutcomeDenied, audits[3].Outcome)

	rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/circuit-breakers?all=true", token: ciToken})
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), `"clearedBy":"alice"`)
}
