package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/freeze"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
)

// managerToken belongs to rita, a release manager: she may change calendars and grant waivers.
const managerToken = "rita-secret-token-3"

// fakeGovStore keeps calendars and waivers in memory, with the store's rules; set Err to make
// every call fail.
type fakeGovStore struct {
	mu        sync.Mutex
	calendars map[string]store.CalendarRecord
	waivers   []store.Waiver
	Err       error
}

func newFakeGovStore() *fakeGovStore {
	return &fakeGovStore{calendars: map[string]store.CalendarRecord{}}
}

func (f *fakeGovStore) ListCalendars(context.Context) ([]store.CalendarRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return nil, f.Err
	}
	out := []store.CalendarRecord{}
	for _, r := range f.calendars {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Calendar.Name < out[j].Calendar.Name })
	return out, nil
}

func (f *fakeGovStore) GetCalendar(_ context.Context, name string) (store.CalendarRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return store.CalendarRecord{}, f.Err
	}
	r, ok := f.calendars[name]
	if !ok {
		return r, fmt.Errorf("get calendar %q: %w", name, store.ErrNotFound)
	}
	return r, nil
}

func (f *fakeGovStore) PutCalendar(_ context.Context, cal freeze.Calendar, actor string) (store.CalendarRecord, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return store.CalendarRecord{}, false, f.Err
	}
	if err := cal.Validate(); err != nil {
		return store.CalendarRecord{}, false, fmt.Errorf("%w: %w", store.ErrInvalidCalendar, err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r, exists := f.calendars[cal.Name]
	if !exists {
		r.CreatedBy, r.CreatedAt = actor, now
	}
	r.Calendar, r.UpdatedBy, r.UpdatedAt = cal, actor, now
	f.calendars[cal.Name] = r
	return r, !exists, nil
}

func (f *fakeGovStore) DeleteCalendar(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return f.Err
	}
	if _, ok := f.calendars[name]; !ok {
		return fmt.Errorf("delete calendar %q: %w", name, store.ErrNotFound)
	}
	delete(f.calendars, name)
	return nil
}

func (f *fakeGovStore) GrantWaiver(_ context.Context, w store.Waiver) (store.Waiver, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return store.Waiver{}, f.Err
	}
	w.ID = fmt.Sprintf("WVR-%d-%03d", w.CreatedAt.Year(), len(f.waivers)+1)
	f.waivers = append(f.waivers, w)
	return w, nil
}

func (f *fakeGovStore) GetWaiver(_ context.Context, id string) (store.Waiver, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.waivers {
		if w.ID == id {
			return w, nil
		}
	}
	return store.Waiver{}, fmt.Errorf("get waiver %q: %w", id, store.ErrNotFound)
}

func (f *fakeGovStore) ListWaivers(_ context.Context, filter store.WaiverFilter) ([]store.Waiver, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return nil, f.Err
	}
	out := []store.Waiver{}
	for i := len(f.waivers) - 1; i >= 0; i-- {
		w := f.waivers[i]
		if (filter.Kind == "" || w.Kind == filter.Kind) && (filter.Target == "" || w.Target == filter.Target) &&
			(filter.ActiveAt.IsZero() || w.ActiveAt(filter.ActiveAt)) {
			out = append(out, w)
		}
	}
	return out, nil
}

func (f *fakeGovStore) RevokeWaiver(_ context.Context, id, by string, at time.Time) (store.Waiver, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, w := range f.waivers {
		if w.ID != id {
			continue
		}
		switch {
		case w.RevokedAt != nil:
			return w, fmt.Errorf("revoke waiver %q: %w: %s revoked it at %s", id, store.ErrWaiverInactive, w.RevokedBy, w.RevokedAt.Format(time.RFC3339))
		case !at.Before(w.ExpiresAt):
			return w, fmt.Errorf("revoke waiver %q: %w: it expired at %s", id, store.ErrWaiverInactive, w.ExpiresAt.Format(time.RFC3339))
		}
		w.RevokedAt, w.RevokedBy = &at, by
		f.waivers[i] = w
		return w, nil
	}
	return store.Waiver{}, fmt.Errorf("revoke waiver %q: %w", id, store.ErrNotFound)
}

const holidaysCalendarFile = `name: holidays
timeZone: Europe/Berlin
windows:
  - name: christmas
    start: 2026-12-24
    end: 2026-12-26
`

// paymentsRunbook names the holidays calendar in its freezes.
const paymentsRunbook = `name: payments
tier: 1
freezes: [holidays, missing-calendar]
stages:
  - name: prod
    environment: production
    targets:
      - name: web-prod
        kind: command
        site: local
        deploy: echo deploy
        rollback: echo rollback
`

type govHarness struct {
	*harness
	gov *fakeGovStore
}

// newGovHarness is a server with governance: calendar files (name to YAML) in their own
// folder, the runbooks hello and payments, and a release manager among the principals.
func newGovHarness(t *testing.T, calendarFiles map[string]string, cfg config.Governance) *govHarness {
	t.Helper()
	rbDir, calDir := t.TempDir(), t.TempDir()
	for name, body := range map[string]string{"hello.yaml": helloRunbook, "payments.yaml": paymentsRunbook} {
		require.NoError(t, os.WriteFile(filepath.Join(rbDir, name), []byte(body), 0o600))
	}
	for name, body := range calendarFiles {
		require.NoError(t, os.WriteFile(filepath.Join(calDir, name), []byte(body), 0o600))
	}
	cat, _ := freeze.LoadCatalog(calDir)
	h := &govHarness{
		harness: &harness{engine: &fakeEngine{}, store: &fakeStore{}, logs: &syncBuffer{}, dir: rbDir},
		gov:     newFakeGovStore(),
	}
	srv := New(Deps{
		Engine: h.engine,
		Store:  h.store,
		Auth: config.NewAuthenticator([]config.Principal{
			{Name: "ci", Roles: []string{"deployer"}, Token: ciToken},
			{Name: "alice", Roles: []string{"approver"}, Token: approverToken},
			{Name: "rita", Roles: []string{"release-manager"}, Token: managerToken},
		}),
		Catalog:    runbooks.Catalog{Dir: rbDir},
		PublicURL:  "https://trainyard.example",
		Logger:     slog.New(slog.NewJSONHandler(h.logs, nil)),
		Governance: Governance{Store: h.gov, Calendars: cat, Config: cfg},
	})
	srv.now = func() time.Time { return time.Date(2026, 12, 25, 10, 0, 0, 0, time.UTC) }
	h.srv, h.handler = srv, srv.Handler()
	return h
}

// lastAudit is the one audit row a request wrote.
func lastAudit(t *testing.T, h *govHarness, action string) (store.AuditEvent, map[string]any) {
	t.Helper()
	rows := h.store.auditRows()
	require.NotEmpty(t, rows, "the request is audited")
	ev := rows[len(rows)-1]
	require.Equal(t, action, ev.Action)
	var details map[string]any
	require.NoError(t, json.Unmarshal(ev.Details, &details))
	return ev, details
}

const weekendJSON = `{"timeZone":"Europe/Berlin","windows":[{"name":"friday-afternoon","rrule":"FREQ=WEEKLY;BYDAY=FR;BYHOUR=16","duration":"64h","scope":{"environments":["production"]}}]}`

func TestPutCalendar_CreatesThenReplacesAndAudits(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, map[string]string{"holidays.yaml": holidaysCalendarFile}, config.Governance{})

	rec := h.do(t, call{method: http.MethodPut, path: "/api/v1/calendars/weekend", token: managerToken, body: weekendJSON})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	require.Equal(t, "https://trainyard.example/api/v1/calendars/weekend", rec.Header().Get("Location"))
	var got calendarView
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Equal(t, "weekend", got.Calendar.Name, "the name comes from the path")
	require.Equal(t, "api", got.Source)
	require.Equal(t, "rita", got.CreatedBy)
	ev, details := lastAudit(t, h, actionCalendarPut)
	require.Equal(t, store.OutcomeAllowed, ev.Outcome)
	require.Equal(t, "rita", ev.Actor)
	require.Equal(t, "weekend", details["calendar"])
	require.Equal(t, true, details["created"])
	require.Contains(t, string(ev.Details), `"rrule":"FREQ=WEEKLY;BYDAY=FR;BYHOUR=16"`, "the definition is in the trail")

	rec = h.do(t, call{method: http.MethodPut, path: "/api/v1/calendars/weekend", token: managerToken, body: strings.Replace(weekendJSON, "64h", "62h", 1)})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	_, details = lastAudit(t, h, actionCalendarPut)
	require.Equal(t, false, details["created"])

	rec = h.do(t, call{method: http.MethodGet, path: "/api/v1/calendars/weekend", token: ciToken})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), `"duration":"62h"`)

	rec = h.do(t, call{method: http.MethodGet, path: "/api/v1/calendars", token: ciToken})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var list struct {
		Calendars []calendarView `json:"calendars"`
		Problems  []string       `json:"problems"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &list))
	require.Len(t, list.Calendars, 2)
	require.Equal(t, "holidays", list.Calendars[0].Name)
	require.Equal(t, "file", list.Calendars[0].Source)
	require.True(t, strings.HasSuffix(list.Calendars[0].File, "holidays.yaml"))
	require.Equal(t, "weekend", list.Calendars[1].Name)
	require.Empty(t, list.Problems)
	require.Len(t, h.store.auditRows(), 2, "reads are not audited")
}

func TestPutCalendar_RefusesCallerWithoutAdminRole(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, nil, config.Governance{})
	rec := h.do(t, call{method: http.MethodPut, path: "/api/v1/calendars/weekend", token: approverToken, body: weekendJSON})
	p := requireProblem(t, rec, http.StatusForbidden, "/api/v1/calendars/weekend")
	require.Contains(t, p.Detail, "needs one of the roles release-manager; alice holds roles approver")
	ev, details := lastAudit(t, h, actionCalendarPut)
	require.Equal(t, store.OutcomeDenied, ev.Outcome)
	require.Equal(t, "alice", ev.Actor)
	require.Equal(t, "weekend", details["calendar"])
	require.EqualValues(t, http.StatusForbidden, details["status"])
	require.Empty(t, h.gov.calendars, "nothing stored")
}

func TestPutCalendar_ConfiguredAdminRolesDecide(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, nil, config.Governance{CalendarAdminRoles: []string{"approver"}})
	rec := h.do(t, call{method: http.MethodPut, path: "/api/v1/calendars/weekend", token: approverToken, body: weekendJSON})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	rec = h.do(t, call{method: http.MethodPut, path: "/api/v1/calendars/weekend", token: managerToken, body: weekendJSON})
	requireProblem(t, rec, http.StatusForbidden, "/api/v1/calendars/weekend")
}

func TestPutCalendar_InvalidRequestIs400WithWhatToFix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path, body string
		detail           string
		problemPath      string
	}{
		{name: "bad rrule", body: `{"windows":[{"name":"w","rrule":"FREQ=SOMETIMES","duration":"1h"}]}`, detail: "not an RFC 5545 RRULE", problemPath: "windows[0].rrule"},
		{name: "bad cron", body: `{"windows":[{"name":"w","cron":"every friday","duration":"1h"}]}`, detail: "not a 5-field cron expression", problemPath: "windows[0].cron"},
		{name: "rrule and cron", body: `{"windows":[{"name":"w","rrule":"FREQ=WEEKLY","cron":"0 16 * * 5","duration":"1h"}]}`, detail: "not both", problemPath: "windows[0]"},
		{name: "neither", body: `{"windows":[{"name":"w","duration":"1h"}]}`, detail: "set rrule", problemPath: "windows[0]"},
		{name: "unknown zone", body: `{"timeZone":"Europe/Atlantis","windows":[{"name":"w","start":"2026-01-01","end":"2026-01-01"}]}`, detail: "unknown time zone", problemPath: "timeZone"},
		{name: "negative duration", body: `{"windows":[{"name":"w","cron":"0 16 * * 5","duration":"-1h"}]}`, detail: "negative", problemPath: "windows[0].duration"},
		{name: "no windows", body: `{"windows":[]}`, detail: "at least one window", problemPath: "windows"},
		{name: "unknown field", body: `{"windows":[{"name":"w","rule":"FREQ=WEEKLY"}]}`, detail: `unknown field "rule"`},
		{name: "malformed JSON", body: `{"windows":[`, detail: "ends in the middle"},
		{name: "empty body", body: ``, detail: "body is empty"},
		{name: "names disagree", body: `{"name":"other","windows":[{"name":"w","start":"2026-01-01","end":"2026-01-01"}]}`, detail: `the body names calendar "other" but the path names "weekend"`},
		{name: "bad name in path", path: "/api/v1/calendars/Week_End", body: weekendJSON, detail: `"Week_End" is not a calendar name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newGovHarness(t, nil, config.Governance{})
			path := tt.path
			if path == "" {
				path = "/api/v1/calendars/weekend"
			}
			rec := h.do(t, call{method: http.MethodPut, path: path, token: managerToken, body: tt.body})
			p := requireProblem(t, rec, http.StatusBadRequest, path)
			require.Contains(t, p.Detail, tt.detail)
			if tt.problemPath != "" {
				require.Equal(t, problemTypeInvalidCalendar, p.Type)
				var paths []string
				for _, pr := range p.Problems {
					paths = append(paths, pr.Path)
				}
				require.Contains(t, paths, tt.problemPath)
			}
			ev, _ := lastAudit(t, h, actionCalendarPut)
			require.Equal(t, store.OutcomeDenied, ev.Outcome)
			require.Empty(t, h.gov.calendars)
		})
	}
}

func TestPutCalendar_NameDefinedByAFileIs409(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, map[string]string{"holidays.yaml": holidaysCalendarFile}, config.Governance{})
	rec := h.do(t, call{method: http.MethodPut, path: "/api/v1/calendars/holidays", token: managerToken, body: weekendJSON})
	p := requireProblem(t, rec, http.StatusConflict, "/api/v1/calendars/holidays")
	require.Contains(t, p.Detail, "is defined by the file ")
	require.Contains(t, p.Detail, "holidays.yaml, the reviewed source")
	ev, details := lastAudit(t, h, actionCalendarPut)
	require.Equal(t, store.OutcomeDenied, ev.Outcome)
	require.EqualValues(t, http.StatusConflict, details["status"])
	require.Empty(t, h.gov.calendars)
}

func TestPutCalendar_NameClaimedByABrokenFileIs409(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, map[string]string{"weekend.yaml": "name: weekend\nwindows: []\n"}, config.Governance{})
	rec := h.do(t, call{method: http.MethodPut, path: "/api/v1/calendars/weekend", token: managerToken, body: weekendJSON})
	p := requireProblem(t, rec, http.StatusConflict, "/api/v1/calendars/weekend")
	require.Contains(t, p.Detail, "claimed by a broken file")
}

func TestPutCalendar_StoreFailureIs500AndAuditedAsFailed(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, nil, config.Governance{})
	h.gov.Err = errors.New("connection refused")
	rec := h.do(t, call{method: http.MethodPut, path: "/api/v1/calendars/weekend", token: managerToken, body: weekendJSON})
	requireProblem(t, rec, http.StatusInternalServerError, "/api/v1/calendars/weekend")
	ev, _ := lastAudit(t, h, actionCalendarPut)
	require.Equal(t, store.OutcomeFailed, ev.Outcome)
}

func TestDeleteCalendar(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, map[string]string{"holidays.yaml": holidaysCalendarFile}, config.Governance{})
	rec := h.do(t, call{method: http.MethodPut, path: "/api/v1/calendars/weekend", token: managerToken, body: weekendJSON})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())

	rec = h.do(t, call{method: http.MethodDelete, path: "/api/v1/calendars/weekend", token: approverToken})
	requireProblem(t, rec, http.StatusForbidden, "/api/v1/calendars/weekend")
	ev, _ := lastAudit(t, h, actionCalendarDelete)
	require.Equal(t, store.OutcomeDenied, ev.Outcome)

	rec = h.do(t, call{method: http.MethodDelete, path: "/api/v1/calendars/weekend", token: managerToken})
	require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
	ev, details := lastAudit(t, h, actionCalendarDelete)
	require.Equal(t, store.OutcomeAllowed, ev.Outcome)
	require.Equal(t, "weekend", details["calendar"])
	require.Empty(t, h.gov.calendars)

	rec = h.do(t, call{method: http.MethodDelete, path: "/api/v1/calendars/weekend", token: managerToken})
	requireProblem(t, rec, http.StatusNotFound, "/api/v1/calendars/weekend")
	ev, _ = lastAudit(t, h, actionCalendarDelete)
	require.Equal(t, store.OutcomeDenied, ev.Outcome)

	rec = h.do(t, call{method: http.MethodDelete, path: "/api/v1/calendars/holidays", token: managerToken})
	p := requireProblem(t, rec, http.StatusConflict, "/api/v1/calendars/holidays")
	require.Contains(t, p.Detail, "holidays.yaml, the reviewed source")
}

func TestDeleteCalendar_NamedByARunbookIs409(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, nil, config.Governance{})
	rec := h.do(t, call{method: http.MethodPut, path: "/api/v1/calendars/holidays", token: managerToken, body: weekendJSON})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	rec = h.do(t, call{method: http.MethodDelete, path: "/api/v1/calendars/holidays", token: managerToken})
	p := requireProblem(t, rec, http.StatusConflict, "/api/v1/calendars/holidays")
	require.Contains(t, p.Detail, `runbooks payments name calendar "holidays"`)
	require.Len(t, h.gov.calendars, 1, "kept")
	ev, _ := lastAudit(t, h, actionCalendarDelete)
	require.Equal(t, store.OutcomeDenied, ev.Outcome)
}

func TestListCalendars_ShowsBrokenFilesAndShadowedAPICalendars(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, map[string]string{
		"holidays.yaml": holidaysCalendarFile,
		"broken.yaml":   "name: broken\ntimeZone: Mars/Olympus\nwindows:\n  - name: w\n    start: 2026-01-01\n    end: 2026-01-01\n",
	}, config.Governance{})
	// Stored through the API before the file of the same name was added.
	_, _, err := h.gov.PutCalendar(context.Background(), freeze.Calendar{Name: "holidays", Windows: []freeze.Window{{Name: "w", Start: "2030-01-01", End: "2030-01-01"}}}, "rita")
	require.NoError(t, err)

	rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/calendars", token: ciToken})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var list struct {
		Calendars []calendarView `json:"calendars"`
		Problems  []string       `json:"problems"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &list))
	require.Len(t, list.Calendars, 2)
	require.Equal(t, "file", list.Calendars[0].Source)
	require.Equal(t, "api", list.Calendars[1].Source)
	require.True(t, list.Calendars[1].Shadowed)
	require.Len(t, list.Problems, 1)
	require.Contains(t, list.Problems[0], "unknown time zone")

	rec = h.do(t, call{method: http.MethodGet, path: "/api/v1/calendars/holidays", token: ciToken})
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), `"source":"file"`, "the file wins")

	rec = h.do(t, call{method: http.MethodGet, path: "/api/v1/calendars/broken", token: ciToken})
	p := requireProblem(t, rec, http.StatusNotFound, "/api/v1/calendars/broken")
	require.Contains(t, p.Detail, "broken file")
	rec = h.do(t, call{method: http.MethodGet, path: "/api/v1/calendars/nope", token: ciToken})
	requireProblem(t, rec, http.StatusNotFound, "/api/v1/calendars/nope")
}

func TestGovernance_WithoutAStoreIs503(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil) // its fake Store has no calendar or waiver methods
	rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/calendars", token: ciToken})
	p := requireProblem(t, rec, http.StatusServiceUnavailable, "/api/v1/calendars")
	require.Contains(t, p.Detail, "not available on this server")
	rec = h.do(t, call{method: http.MethodGet, path: "/api/v1/calendars", token: ""})
	requireProblem(t, rec, http.StatusUnauthorized, "/api/v1/calendars")
}

func TestFreezeQuery(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, map[string]string{"holidays.yaml": holidaysCalendarFile}, config.Governance{})
	rec := h.do(t, call{method: http.MethodPut, path: "/api/v1/calendars/weekend", token: managerToken, body: weekendJSON})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())

	get := func(query string) freezeResponse {
		t.Helper()
		rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/freeze?" + query, token: ciToken})
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var r freezeResponse
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &r))
		return r
	}

	// Saturday 26 December 2026: both calendars freeze production; payments names holidays only.
	r := get("environment=production&runbook=payments&at=2026-12-26T12:00:00Z")
	require.True(t, r.Frozen)
	require.Equal(t, "2026-12-27T00:00:00+01:00", r.Until.Format(time.RFC3339), "only the runbook's calendars hold it")
	require.Equal(t, 1, r.Subject.Tier, "the tier comes from the runbook")
	require.Equal(t, []string{"holidays", "missing-calendar"}, r.RunbookCalendars)
	require.Equal(t, []string{"missing-calendar"}, r.MissingCalendars)
	require.Len(t, r.Freezes, 2)
	require.Equal(t, "holidays", r.Freezes[0].Calendar)
	require.Equal(t, "christmas", r.Freezes[0].Window)
	require.True(t, *r.Freezes[0].AppliesToRunbook)
	require.Equal(t, "weekend", r.Freezes[1].Calendar)
	require.False(t, *r.Freezes[1].AppliesToRunbook)

	// An unknown runbook: every calendar counts.
	r = get("environment=production&runbook=web&at=2026-12-26T12:00:00Z")
	require.True(t, r.Frozen)
	require.Equal(t, "2026-12-28T08:00:00+01:00", r.Until.Format(time.RFC3339))
	require.Nil(t, r.Freezes[0].AppliesToRunbook)

	// Staging on a weekday after Christmas: nothing.
	r = get("environment=staging&runbook=web&at=2026-12-29T12:00:00Z")
	require.False(t, r.Frozen)
	require.Empty(t, r.Freezes)

	// The default time is now (the harness's 25 December 2026).
	r = get("environment=production&runbook=payments")
	require.True(t, r.Frozen)
	require.Equal(t, "2026-12-25T10:00:00Z", r.At.UTC().Format(time.RFC3339))

	// An active waiver is shown, and lets the subject through that calendar; the query
	// does not use it, so nothing is audited.
	_, err := h.gov.GrantWaiver(context.Background(), store.Waiver{Kind: store.WaiverKindFreeze, Target: "holidays",
		Scope: store.WaiverScope{Runbooks: []string{"payments"}}, Reason: "fix", GrantedBy: "rita",
		CreatedAt: time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC), ExpiresAt: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	audits := len(h.store.auditRows())
	r = get("environment=production&runbook=payments&at=2026-12-26T12:00:00Z")
	require.False(t, r.Frozen)
	require.Equal(t, "WVR-2026-001", r.Freezes[0].Waiver)
	require.Len(t, h.store.auditRows(), audits)
}

func TestFreezeQuery_BadParametersAre400(t *testing.T) {
	t.Parallel()
	h := newGovHarness(t, nil, config.Governance{})
	for query, detail := range map[string]string{
		"tier=first":       "tier must be a whole number",
		"tier=0":           "tier must be a whole number",
		"at=tomorrow":      "at must be an RFC 3339 time",
		"at=2026-12-24":    "at must be an RFC 3339 time",
		"environment=prod": "",
	} {
		rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/freeze?" + query, token: ciToken})
		if detail == "" {
			require.Equal(t, http.StatusOK, rec.Code, query)
			continue
		}
		p := requireProblem(t, rec, http.StatusBadRequest, "/api/v1/freeze")
		require.Contains(t, p.Detail, detail, query)
	}
}
