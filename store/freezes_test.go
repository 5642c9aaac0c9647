package store

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/freeze"
	"github.com/trainyard/trainyard/internal/testpg"
)

// governanceStore is a migrated store on a fresh database.
func governanceStore(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, testpg.URL(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Migrate(ctx))
	return s
}

const holidaysFile = `name: holidays
timeZone: Europe/Berlin
windows:
  - name: christmas
    start: 2026-12-24
    end: 2026-12-26
`

// calendarFiles writes calendar files into a folder and loads it.
func calendarFiles(t *testing.T, files map[string]string) *freeze.Catalog {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600))
	}
	cat, _ := freeze.LoadCatalog(dir)
	return cat
}

func weekendCalendar() freeze.Calendar {
	return freeze.Calendar{Name: "weekend", TimeZone: "Europe/Berlin", Windows: []freeze.Window{
		{Name: "friday-afternoon", RRule: "FREQ=WEEKLY;BYDAY=FR;BYHOUR=16", Duration: "64h", Scope: freeze.Scope{Environments: []string{"production"}}},
	}}
}

var (
	christmasDay = time.Date(2026, 12, 25, 10, 0, 0, 0, time.UTC)
	// 26 December 2026 is a Saturday: both calendars freeze production.
	boxingDay = time.Date(2026, 12, 26, 10, 0, 0, 0, time.UTC)
)

func TestCalendars_PutGetListDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := governanceStore(t)

	rec, created, err := s.PutCalendar(ctx, weekendCalendar(), "alice")
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, "alice", rec.CreatedBy)
	require.Equal(t, weekendCalendar(), rec.Calendar)

	changed := weekendCalendar()
	changed.Windows[0].Duration = "62h"
	rec, created, err = s.PutCalendar(ctx, changed, "bob")
	require.NoError(t, err)
	require.False(t, created, "a second put replaces")
	require.Equal(t, "alice", rec.CreatedBy)
	require.Equal(t, "bob", rec.UpdatedBy)
	require.False(t, rec.UpdatedAt.Before(rec.CreatedAt))

	_, _, err = s.PutCalendar(ctx, freeze.Calendar{Name: "another", Windows: []freeze.Window{{Name: "w", Start: "2026-01-01", End: "2026-01-01"}}}, "alice")
	require.NoError(t, err)

	got, err := s.GetCalendar(ctx, "weekend")
	require.NoError(t, err)
	require.Equal(t, "62h", got.Calendar.Windows[0].Duration)

	all, err := s.ListCalendars(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, "another", all[0].Calendar.Name)
	require.Equal(t, "weekend", all[1].Calendar.Name)

	require.NoError(t, s.DeleteCalendar(ctx, "weekend"))
	require.ErrorIs(t, s.DeleteCalendar(ctx, "weekend"), ErrNotFound)
	_, err = s.GetCalendar(ctx, "weekend")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestPutCalendar_RefusesInvalidCalendar(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := governanceStore(t)
	_, _, err := s.PutCalendar(ctx, freeze.Calendar{Name: "bad", Windows: []freeze.Window{{Name: "w", RRule: "FREQ=NEVER", Duration: "1h"}}}, "alice")
	require.ErrorIs(t, err, ErrInvalidCalendar)
	var inv *freeze.InvalidError
	require.ErrorAs(t, err, &inv)
	require.Equal(t, "windows[0].rrule", inv.Problems[0].Path)
	_, err = s.GetCalendar(ctx, "bad")
	require.ErrorIs(t, err, ErrNotFound, "nothing stored")
}

func TestFreezeStatus_FrozenByFileCalendar(t *testing.T) {
	t.Parallel()
	s := governanceStore(t)
	files := calendarFiles(t, map[string]string{"holidays.yaml": holidaysFile})
	d, err := s.FreezeStatus(context.Background(), files, FreezeQuery{
		Environment: "production", Runbook: "payments", ReleaseID: "release-payments-1.0.0", Tier: 1,
		Calendars: []string{"holidays"}, At: christmasDay,
	})
	require.NoError(t, err)
	require.True(t, d.Frozen)
	require.Equal(t, "holidays", d.Calendar)
	require.Equal(t, "christmas", d.Window)
	require.Equal(t, "2026-12-27T00:00:00+01:00", d.Until.Format(time.RFC3339))
	require.Empty(t, d.Waiver)
	require.Equal(t, "frozen by holidays (christmas) until 2026-12-27T00:00:00+01:00", d.Reason)
	require.Equal(t, []FreezeCheck{{Calendar: "holidays", Source: CalendarSourceFile, Frozen: true, Until: d.Until, Window: "christmas"}}, d.Checks)
}

func TestFreezeStatus_APICalendarOutsideItsWindows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := governanceStore(t)
	_, _, err := s.PutCalendar(ctx, weekendCalendar(), "alice")
	require.NoError(t, err)
	wednesday := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	d, err := s.FreezeStatus(ctx, nil, FreezeQuery{Environment: "production", Runbook: "payments", Calendars: []string{"weekend"}, At: wednesday})
	require.NoError(t, err)
	require.False(t, d.Frozen)
	require.True(t, d.Until.IsZero())
	require.Equal(t, "not frozen: no window of weekend is open", d.Reason)
	require.Equal(t, CalendarSourceAPI, d.Checks[0].Source)

	saturday := time.Date(2026, 6, 13, 12, 0, 0, 0, time.UTC)
	d, err = s.FreezeStatus(ctx, nil, FreezeQuery{Environment: "production", Runbook: "payments", Calendars: []string{"weekend"}, At: saturday})
	require.NoError(t, err)
	require.True(t, d.Frozen)
	require.Equal(t, "2026-06-15T08:00:00+02:00", d.Until.Format(time.RFC3339))

	d, err = s.FreezeStatus(ctx, nil, FreezeQuery{Environment: "staging", Runbook: "payments", Calendars: []string{"weekend"}, At: saturday})
	require.NoError(t, err)
	require.False(t, d.Frozen, "the window is scoped to production")
}

func TestFreezeStatus_FileWinsOverAPICalendarOfTheSameName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := governanceStore(t)
	// Stored before the file appeared: the file is the reviewed source.
	_, _, err := s.PutCalendar(ctx, freeze.Calendar{Name: "holidays", Windows: []freeze.Window{{Name: "never", Start: "2030-01-01", End: "2030-01-01"}}}, "alice")
	require.NoError(t, err)
	files := calendarFiles(t, map[string]string{"holidays.yaml": holidaysFile})
	d, err := s.FreezeStatus(ctx, files, FreezeQuery{Environment: "production", Runbook: "payments", Calendars: []string{"holidays"}, At: christmasDay})
	require.NoError(t, err)
	require.True(t, d.Frozen)
	require.Equal(t, CalendarSourceFile, d.Checks[0].Source)
}

func TestFreezeStatus_CalendarThatCannotBeEvaluatedIsAnError(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := governanceStore(t)
	files := calendarFiles(t, map[string]string{
		"holidays.yaml": holidaysFile,
		"broken.yaml":   "name: broken\nwindows:\n  - name: w\n    cron: \"0 99 * * *\"\n    duration: 1h\n",
	})
	q := FreezeQuery{Environment: "production", Runbook: "payments", ReleaseID: "r1", At: christmasDay}

	q.Calendars = []string{"holidays", "nowhere"}
	_, err := s.FreezeStatus(ctx, files, q)
	require.ErrorIs(t, err, ErrUnknownCalendar)
	require.ErrorContains(t, err, `"nowhere"`)
	require.ErrorContains(t, err, files.Dir())
	require.ErrorContains(t, err, `release "r1"`)

	q.Calendars = []string{"broken"}
	_, err = s.FreezeStatus(ctx, files, q)
	require.ErrorIs(t, err, ErrInvalidCalendar)
	require.ErrorContains(t, err, "not a 5-field cron expression")

	// A stored definition that no longer validates (written by an older version, say).
	_, err = s.DB().ExecContext(ctx, `INSERT INTO freeze_calendars (name, definition, created_by, updated_by) VALUES ('stale', '{"name":"stale","windows":[]}', 'x', 'x')`)
	require.NoError(t, err)
	q.Calendars = []string{"stale"}
	_, err = s.FreezeStatus(ctx, files, q)
	require.ErrorIs(t, err, ErrInvalidCalendar)
	require.ErrorContains(t, err, "at least one window")
}

func TestFreezeStatus_NoCalendarsIsNotFrozen(t *testing.T) {
	t.Parallel()
	d, err := governanceStore(t).FreezeStatus(context.Background(), nil, FreezeQuery{Environment: "production", Runbook: "payments"})
	require.NoError(t, err)
	require.Equal(t, FreezeDecision{}, d)
}

func TestFreezeStatus_LaterFreezeDecidesUntil(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := governanceStore(t)
	_, _, err := s.PutCalendar(ctx, weekendCalendar(), "alice")
	require.NoError(t, err)
	files := calendarFiles(t, map[string]string{"holidays.yaml": holidaysFile})
	d, err := s.FreezeStatus(ctx, files, FreezeQuery{Environment: "production", Runbook: "payments", Calendars: []string{"holidays", "weekend", "holidays"}, At: boxingDay})
	require.NoError(t, err)
	require.True(t, d.Frozen)
	require.Equal(t, "weekend", d.Calendar, "the weekend freeze ends on Monday, after christmas")
	require.Equal(t, "2026-12-28T08:00:00+01:00", d.Until.Format(time.RFC3339))
	require.Equal(t, "frozen by holidays (christmas) until 2026-12-27T00:00:00+01:00; and by weekend (friday-afternoon) until 2026-12-28T08:00:00+01:00", d.Reason)
	require.Len(t, d.Checks, 2, "a calendar named twice is checked once")
}

// grantFreezeWaiver grants a waiver of the holidays calendar, active over Christmas 2026.
func grantFreezeWaiver(t *testing.T, s *Store, mutate func(*Waiver)) Waiver {
	t.Helper()
	w := Waiver{
		Kind: WaiverKindFreeze, Target: "holidays", Reason: "payment outage fix",
		Scope:     WaiverScope{Runbooks: []string{"payments"}},
		GrantedBy: "alice", GrantedRoles: []string{"release-manager"},
		CreatedAt: time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC),
		ExpiresAt: time.Date(2026, 12, 27, 0, 0, 0, 0, time.UTC),
	}
	if mutate != nil {
		mutate(&w)
	}
	got, err := s.GrantWaiver(context.Background(), w)
	require.NoError(t, err)
	return got
}

func TestFreezeStatus_WaiverLetsReleaseThroughAndItsUseIsAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := governanceStore(t)
	files := calendarFiles(t, map[string]string{"holidays.yaml": holidaysFile})
	w := grantFreezeWaiver(t, s, nil)

	d, err := s.FreezeStatus(ctx, files, FreezeQuery{
		Environment: "production", Runbook: "payments", ReleaseID: "release-payments-1.0.1",
		Calendars: []string{"holidays"}, At: christmasDay,
	})
	require.NoError(t, err)
	require.False(t, d.Frozen)
	require.Equal(t, w.ID, d.Waiver)
	require.Equal(t, "WVR-2026-001", d.Waiver)
	require.Equal(t, "not frozen: holidays (christmas) would freeze it until 2026-12-27T00:00:00+01:00, waived by WVR-2026-001", d.Reason)
	require.True(t, d.Checks[0].Frozen)
	require.Equal(t, w.ID, d.Checks[0].Waiver)

	events, err := s.ListAudit(ctx, AuditFilter{Action: ActionWaiverUse})
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.Equal(t, SystemActor, events[0].Actor)
	require.Equal(t, "release-payments-1.0.1", events[0].ReleaseID)
	require.Equal(t, OutcomeAllowed, events[0].Outcome)
	var details map[string]any
	require.NoError(t, json.Unmarshal(events[0].Details, &details))
	require.Equal(t, "WVR-2026-001", details["waiver"])
	require.Equal(t, "holidays", details["target"])
	require.Equal(t, "christmas", details["window"])
	require.Equal(t, "alice", details["grantedBy"])
}

func TestFreezeStatus_WaiverAppliesOnlyInItsScopeAndLifetime(t *testing.T) {
	t.Parallel()
	revokedAt := time.Date(2026, 12, 24, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		mutate func(*Waiver)
		revoke bool
	}{
		{name: "other runbook", mutate: func(w *Waiver) { w.Scope = WaiverScope{Runbooks: []string{"web"}} }},
		{name: "other environment", mutate: func(w *Waiver) { w.Scope.Environments = []string{"staging"} }},
		{name: "other release", mutate: func(w *Waiver) { w.Scope.Releases = []string{"release-payments-0.9.0"} }},
		{name: "other calendar", mutate: func(w *Waiver) { w.Target = "weekend" }},
		{name: "other kind", mutate: func(w *Waiver) { w.Kind = WaiverKindGate }},
		{name: "expired", mutate: func(w *Waiver) { w.ExpiresAt = christmasDay }},
		{name: "granted later", mutate: func(w *Waiver) {
			w.CreatedAt = christmasDay.Add(time.Hour)
			w.ExpiresAt = christmasDay.Add(48 * time.Hour)
		}},
		{name: "revoked", revoke: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := governanceStore(t)
			files := calendarFiles(t, map[string]string{"holidays.yaml": holidaysFile})
			w := grantFreezeWaiver(t, s, tt.mutate)
			if tt.revoke {
				_, err := s.RevokeWaiver(ctx, w.ID, "bob", revokedAt)
				require.NoError(t, err)
			}
			d, err := s.FreezeStatus(ctx, files, FreezeQuery{
				Environment: "production", Runbook: "payments", ReleaseID: "release-payments-1.0.1",
				Calendars: []string{"holidays"}, At: christmasDay,
			})
			require.NoError(t, err)
			require.True(t, d.Frozen)
			require.Empty(t, d.Waiver)
			events, err := s.ListAudit(ctx, AuditFilter{Action: ActionWaiverUse})
			require.NoError(t, err)
			require.Empty(t, events, "no waiver was used")
		})
	}
}

func TestFreezeStatus_WaiverOfOneCalendarDoesNotPassAnother(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := governanceStore(t)
	_, _, err := s.PutCalendar(ctx, weekendCalendar(), "alice")
	require.NoError(t, err)
	files := calendarFiles(t, map[string]string{"holidays.yaml": holidaysFile})
	w := grantFreezeWaiver(t, s, nil)

	d, err := s.FreezeStatus(ctx, files, FreezeQuery{Environment: "production", Runbook: "payments", ReleaseID: "r1", Calendars: []string{"holidays", "weekend"}, At: boxingDay})
	require.NoError(t, err)
	require.True(t, d.Frozen)
	require.Equal(t, "weekend", d.Calendar)
	require.Empty(t, d.Waiver, "the release does not get through")
	require.Equal(t, w.ID, d.Checks[0].Waiver)
	require.Equal(t, "frozen by weekend (friday-afternoon) until 2026-12-28T08:00:00+01:00", d.Reason)
	events, err := s.ListAudit(ctx, AuditFilter{Action: ActionWaiverUse})
	require.NoError(t, err)
	require.Empty(t, events, "a waiver is used only when the release passes")
}

func TestFreezeStatus_DatabaseErrorIsNotACalendarError(t *testing.T) {
	t.Parallel()
	s := governanceStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.FreezeStatus(ctx, nil, FreezeQuery{Calendars: []string{"weekend"}})
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrUnknownCalendar) || errors.Is(err, ErrInvalidCalendar), "retrying may help: %v", err)
}
