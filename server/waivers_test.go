package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/store"
)

// The harness's now is 2026-12-25T10:00:00Z.
const grantBody = `{"kind":"freeze","target":"holidays","scope":{"runbooks":["payments"],"releases":["release-payments-1.0.1"]},"reason":"checkout outage fix, INC-4711","expiresAt":"2026-12-27T00:00:00Z"}`

func grant(t *testing.T, h *govHarness, body string) waiverView {
	t.Helper()
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/waivers", token: managerToken, body: body})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	var w waiverView
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &w))
	return w
}

func TestGrantWaiver_CreatesAndAudits(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, map[string]string{"holidays.yaml": holidaysCalendarFile}, config.Governance{})
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/waivers", token: managerToken, body: grantBody})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	require.Equal(t, "https://trainyard.example/api/v1/waivers/WVR-2026-001", rec.Header().Get("Location"))
	var w waiverView
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &w))
	require.Equal(t, "WVR-2026-001", w.ID)
	require.Equal(t, store.WaiverActive, w.State)
	require.Equal(t, "rita", w.GrantedBy)
	require.Equal(t, []string{"release-manager"}, w.GrantedRoles)
	require.Equal(t, time.Date(2026, 12, 25, 10, 0, 0, 0, time.UTC), w.CreatedAt)
	require.Equal(t, "checkout outage fix, INC-4711", w.Reason)

	ev, details := lastAudit(t, h, actionWaiverGrant)
	require.Equal(t, store.OutcomeAllowed, ev.Outcome)
	require.Equal(t, "rita", ev.Actor)
	require.Equal(t, []string{"release-manager"}, ev.Roles)
	require.Equal(t, "release-payments-1.0.1", ev.ReleaseID, "a waiver for one release is audited under it")
	require.Equal(t, "WVR-2026-001", details["waiver"])
	require.Equal(t, "holidays", details["target"])
	require.Equal(t, "checkout outage fix, INC-4711", details["waiverReason"])
	require.Equal(t, "2026-12-27T00:00:00Z", details["expiresAt"])

	rec = h.do(t, call{method: http.MethodGet, path: "/api/v1/waivers/WVR-2026-001", token: ciToken})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	rec = h.do(t, call{method: http.MethodGet, path: "/api/v1/waivers/WVR-2026-999", token: ciToken})
	requireProblem(t, rec, http.StatusNotFound, "/api/v1/waivers/WVR-2026-999")
}

func TestGrantWaiver_RefusesCallerWithoutWaiverRoleAndAuditsIt(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, map[string]string{"holidays.yaml": holidaysCalendarFile}, config.Governance{})
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/waivers", token: approverToken, body: grantBody})
	p := requireProblem(t, rec, http.StatusForbidden, "/api/v1/waivers")
	require.Contains(t, p.Detail, "granting a waiver needs one of the roles release-manager")
	ev, details := lastAudit(t, h, actionWaiverGrant)
	require.Equal(t, store.OutcomeDenied, ev.Outcome)
	require.Equal(t, "alice", ev.Actor)
	require.EqualValues(t, http.StatusForbidden, details["status"])
	require.Empty(t, h.gov.waivers)

	// The configuration names who may grant.
	h = newGovHarness(t, map[string]string{"holidays.yaml": holidaysCalendarFile}, config.Governance{WaiverRoles: []string{"sre-lead"}})
	rec = h.do(t, call{method: http.MethodPost, path: "/api/v1/waivers", token: managerToken, body: grantBody})
	p = requireProblem(t, rec, http.StatusForbidden, "/api/v1/waivers")
	require.Contains(t, p.Detail, "sre-lead; rita holds roles release-manager")
}

func TestGrantWaiver_RefusesBadRequestsAndAuditsThem(t *testing.T) {
	t.Parallel()
	with := func(old, new string) string { return strings.Replace(grantBody, old, new, 1) }
	tests := []struct {
		name, body, detail string
		cfg                config.Governance
	}{
		{name: "no reason", body: with(`"checkout outage fix, INC-4711"`, `" "`), detail: "reason is required"},
		{name: "no expiry", body: with(`,"expiresAt":"2026-12-27T00:00:00Z"`, ``), detail: "expiresAt is required: an RFC 3339 time at most 7 days ahead"},
		{name: "expiry in the past", body: with(`2026-12-27T00:00:00Z`, `2026-12-25T09:00:00Z`), detail: "is not in the future"},
		{name: "expiry beyond the default 7 days", body: with(`2026-12-27T00:00:00Z`, `2027-01-02T00:00:00Z`), detail: "more than 7 days ahead (governance.maxWaiver): expire it by 2027-01-01T10:00:00Z"},
		{name: "expiry beyond the configured maximum", body: grantBody, cfg: config.Governance{MaxWaiver: 24 * time.Hour}, detail: "more than 1 day ahead"},
		{name: "unknown kind", body: with(`"kind":"freeze"`, `"kind":"everything"`), detail: `kind "everything" is not a kind of waiver`},
		{name: "unknown calendar", body: with(`"target":"holidays"`, `"target":"summer"`), detail: `no freeze calendar is named "summer"`},
		{name: "no target", body: with(`"target":"holidays",`, ``), detail: "target is required"},
		{name: "empty scope", body: with(`{"runbooks":["payments"],"releases":["release-payments-1.0.1"]}`, `{}`), detail: "scope must name at least one runbook, environment or release"},
		{name: "blank scope entry", body: with(`"runbooks":["payments"]`, `"runbooks":[""]`), detail: "scope.runbooks[0]"},
		{name: "unknown field", body: with(`"reason"`, `"why"`), detail: `unknown field "why"`},
		{name: "expiry not a time", body: with(`"2026-12-27T00:00:00Z"`, `"in two days"`), detail: "expiresAt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newGovHarness(t, map[string]string{"holidays.yaml": holidaysCalendarFile}, tt.cfg)
			rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/waivers", token: managerToken, body: tt.body})
			p := requireProblem(t, rec, http.StatusBadRequest, "/api/v1/waivers")
			require.Contains(t, p.Detail, tt.detail)
			ev, details := lastAudit(t, h, actionWaiverGrant)
			require.Equal(t, store.OutcomeDenied, ev.Outcome)
			require.Equal(t, p.Detail, details["reason"])
			require.Empty(t, h.gov.waivers)
		})
	}
}

func TestGrantWaiver_GateAndPolicyWaiversNeedNoCalendar(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, nil, config.Governance{})
	w := grant(t, h, strings.Replace(strings.Replace(grantBody, `"kind":"freeze"`, `"kind":"gate"`, 1), `"target":"holidays"`, `"target":"security-scan"`, 1))
	require.Equal(t, store.WaiverKindGate, w.Kind)
	require.Equal(t, "security-scan", w.Target)
}

func TestListWaivers_ActiveOnly(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, map[string]string{"holidays.yaml": holidaysCalendarFile}, config.Governance{})
	first := grant(t, h, grantBody)
	second := grant(t, h, grantBody)
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/waivers/" + first.ID + "/revoke", token: managerToken})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	list := func(query string) []waiverView {
		t.Helper()
		rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/waivers" + query, token: ciToken})
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var body struct {
			Waivers []waiverView `json:"waivers"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
		return body.Waivers
	}
	all := list("")
	require.Len(t, all, 2)
	require.Equal(t, second.ID, all[0].ID, "newest first")
	require.Equal(t, store.WaiverRevoked, all[1].State)
	active := list("?active=true")
	require.Len(t, active, 1)
	require.Equal(t, second.ID, active[0].ID)
	require.Empty(t, list("?active=true&kind=gate"))

	rec = h.do(t, call{method: http.MethodGet, path: "/api/v1/waivers?active=yes", token: ciToken})
	requireProblem(t, rec, http.StatusBadRequest, "/api/v1/waivers")
	rec = h.do(t, call{method: http.MethodGet, path: "/api/v1/waivers?kind=everything", token: ciToken})
	requireProblem(t, rec, http.StatusBadRequest, "/api/v1/waivers")
}

func TestRevokeWaiver(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, map[string]string{"holidays.yaml": holidaysCalendarFile}, config.Governance{})
	w := grant(t, h, grantBody)
	path := "/api/v1/waivers/" + w.ID + "/revoke"

	rec := h.do(t, call{method: http.MethodPost, path: path, token: approverToken, body: `{"reason":"not yours"}`})
	requireProblem(t, rec, http.StatusForbidden, path)
	ev, _ := lastAudit(t, h, actionWaiverRevoke)
	require.Equal(t, store.OutcomeDenied, ev.Outcome)

	rec = h.do(t, call{method: http.MethodPost, path: path, token: managerToken, body: `{"reason":`})
	requireProblem(t, rec, http.StatusBadRequest, path)

	rec = h.do(t, call{method: http.MethodPost, path: path, token: managerToken, body: `{"reason":"the fix shipped"}`})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var got waiverView
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Equal(t, store.WaiverRevoked, got.State)
	require.Equal(t, "rita", got.RevokedBy)
	ev, details := lastAudit(t, h, actionWaiverRevoke)
	require.Equal(t, store.OutcomeAllowed, ev.Outcome)
	require.Equal(t, "release-payments-1.0.1", ev.ReleaseID)
	require.Equal(t, w.ID, details["waiver"])
	require.Equal(t, "the fix shipped", details["revokeReason"])

	rec = h.do(t, call{method: http.MethodPost, path: path, token: managerToken})
	p := requireProblem(t, rec, http.StatusConflict, path)
	require.Contains(t, p.Detail, "rita revoked it at")
	ev, _ = lastAudit(t, h, actionWaiverRevoke)
	require.Equal(t, store.OutcomeDenied, ev.Outcome)

	rec = h.do(t, call{method: http.MethodPost, path: "/api/v1/waivers/WVR-2026-404/revoke", token: managerToken})
	requireProblem(t, rec, http.StatusNotFound, "/api/v1/waivers/WVR-2026-404/revoke")
	ev, _ = lastAudit(t, h, actionWaiverRevoke)
	require.Equal(t, store.OutcomeDenied, ev.Outcome)
}

func TestRevokeWaiver_ExpiredIs409(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, map[string]string{"holidays.yaml": holidaysCalendarFile}, config.Governance{})
	w := grant(t, h, strings.Replace(grantBody, "2026-12-27T00:00:00Z", "2026-12-25T11:00:00Z", 1))
	h.srv.now = func() time.Time { return time.Date(2026, 12, 25, 12, 0, 0, 0, time.UTC) }
	rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/waivers/" + w.ID, token: ciToken})
	require.Contains(t, rec.Body.String(), `"state":"expired"`, "a waiver stops applying at expiry on its own")
	rec = h.do(t, call{method: http.MethodPost, path: "/api/v1/waivers/" + w.ID + "/revoke", token: managerToken})
	p := requireProblem(t, rec, http.StatusConflict, "/api/v1/waivers/"+w.ID+"/revoke")
	require.Contains(t, p.Detail, "it expired at 2026-12-25T11:00:00Z")
}
