package freeze

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func berlin(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	return loc
}

func compile(t *testing.T, c Calendar) *Schedule {
	t.Helper()
	s, err := c.Compile()
	require.NoError(t, err)
	return s
}

var prod = Subject{Environment: "production", Runbook: "payments", Tier: 1}

func TestFrozenAt_Windows(t *testing.T) {
	t.Parallel()
	bln := berlin(t)
	local := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, bln) }

	weekendRRule := Calendar{Name: "weekend", TimeZone: "Europe/Berlin", Windows: []Window{
		{Name: "friday-afternoon", RRule: "FREQ=WEEKLY;BYDAY=FR;BYHOUR=16", Duration: "64h"},
	}}
	weekendCron := Calendar{Name: "weekend", TimeZone: "Europe/Berlin", Windows: []Window{
		{Name: "friday-afternoon", Cron: "0 16 * * 5", Duration: "64h"},
	}}
	holidays := Calendar{Name: "holidays", TimeZone: "Europe/Berlin", Windows: []Window{
		{Name: "christmas", Start: "2026-12-24", End: "2026-12-26"},
	}}
	scoped := Calendar{Name: "scoped", Windows: []Window{
		{Name: "prod-only", Start: "2026-05-01", End: "2026-05-01", Scope: Scope{Environments: []string{"production", "prod-*"}}},
		{Name: "payments", Start: "2026-05-02", End: "2026-05-02", Scope: Scope{Runbooks: []string{"payments-*"}}},
		{Name: "critical", Start: "2026-05-03", End: "2026-05-03", Scope: Scope{Tiers: []int{1, 2}}},
	}}
	adjacent := Calendar{Name: "chain", TimeZone: "Europe/Berlin", Windows: []Window{
		{Name: "weekend", Cron: "0 18 * * 5", Duration: "2d14h"}, // Friday 18:00 to Monday 08:00
		{Name: "monday-holiday", Start: "2026-06-08T08:00", End: "2026-06-08T18:00"},
		{Name: "monday-evening", Start: "2026-06-08T17:00", Duration: "15h"}, // overlaps, to Tuesday 08:00
	}}
	overlapping := Calendar{Name: "overlap", TimeZone: "Europe/Berlin", Windows: []Window{
		{Name: "christmas", RRule: "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=24", Duration: "3d"},
		{Name: "year-end", Start: "2026-12-19", End: "2027-01-03", Scope: Scope{Environments: []string{"production"}}},
	}}

	tests := []struct {
		name   string
		cal    Calendar
		at     time.Time
		subj   Subject
		frozen bool
		until  time.Time
		window string
	}{
		{name: "weekly friday freeze: before it starts", cal: weekendRRule, at: local(2026, 6, 5, 15, 59), subj: prod},
		{name: "weekly friday freeze: as it starts", cal: weekendRRule, at: local(2026, 6, 5, 16, 0), subj: prod, frozen: true, until: local(2026, 6, 8, 8, 0), window: "friday-afternoon"},
		{name: "weekly friday freeze: sunday", cal: weekendRRule, at: local(2026, 6, 7, 12, 0), subj: prod, frozen: true, until: local(2026, 6, 8, 8, 0), window: "friday-afternoon"},
		{name: "weekly friday freeze: ends monday 08:00 (exclusive)", cal: weekendRRule, at: local(2026, 6, 8, 8, 0), subj: prod},
		{name: "weekly friday freeze: wednesday", cal: weekendRRule, at: local(2026, 6, 10, 12, 0), subj: prod},
		// Clocks go forward on Sunday 29 March 2026: 64h of wall clock are 63h elapsed, and
		// the freeze still ends Monday 08:00 local.
		{name: "dst spring: ends monday 08:00 local", cal: weekendRRule, at: time.Date(2026, 3, 27, 15, 30, 0, 0, time.UTC), subj: prod, frozen: true, until: local(2026, 3, 30, 8, 0), window: "friday-afternoon"},
		{name: "dst spring: monday 07:30 local is still frozen", cal: weekendRRule, at: time.Date(2026, 3, 30, 5, 30, 0, 0, time.UTC), subj: prod, frozen: true, until: local(2026, 3, 30, 8, 0), window: "friday-afternoon"},
		{name: "dst spring: monday 08:30 local is open", cal: weekendRRule, at: time.Date(2026, 3, 30, 6, 30, 0, 0, time.UTC), subj: prod},
		{name: "dst summer: starts 16:00 local, 14:00 UTC", cal: weekendRRule, at: time.Date(2026, 4, 3, 14, 0, 0, 0, time.UTC), subj: prod, frozen: true, until: local(2026, 4, 6, 8, 0), window: "friday-afternoon"},
		{name: "dst summer: 15:30 local is open", cal: weekendRRule, at: time.Date(2026, 4, 3, 13, 30, 0, 0, time.UTC), subj: prod},
		{name: "dst autumn: 64h across the extra hour", cal: weekendRRule, at: local(2026, 10, 23, 16, 0), subj: prod, frozen: true, until: local(2026, 10, 26, 8, 0), window: "friday-afternoon"},
		{name: "cron: dst spring ends monday 08:00 local", cal: weekendCron, at: time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC), subj: prod, frozen: true, until: local(2026, 3, 30, 8, 0), window: "friday-afternoon"},
		{name: "cron: summer friday 15:59 local is open", cal: weekendCron, at: local(2026, 7, 3, 15, 59), subj: prod},
		{name: "cron: summer friday 16:00 local", cal: weekendCron, at: local(2026, 7, 3, 16, 0), subj: prod, frozen: true, until: local(2026, 7, 6, 8, 0), window: "friday-afternoon"},
		{name: "one-off holiday: the day before", cal: holidays, at: local(2026, 12, 23, 23, 59), subj: prod},
		{name: "one-off holiday: christmas day", cal: holidays, at: local(2026, 12, 25, 10, 0), subj: prod, frozen: true, until: local(2026, 12, 27, 0, 0), window: "christmas"},
		{name: "one-off holiday: the end date is included", cal: holidays, at: local(2026, 12, 26, 23, 59), subj: prod, frozen: true, until: local(2026, 12, 27, 0, 0), window: "christmas"},
		{name: "one-off holiday: over after the end date", cal: holidays, at: local(2026, 12, 27, 0, 0), subj: prod},
		{name: "one-off holiday: UTC time in the zone's day", cal: holidays, at: time.Date(2026, 12, 23, 23, 30, 0, 0, time.UTC), subj: prod, frozen: true, until: local(2026, 12, 27, 0, 0), window: "christmas"},
		{name: "scope environment: production", cal: scoped, at: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), subj: prod, frozen: true, until: time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC), window: "prod-only"},
		{name: "scope environment: glob", cal: scoped, at: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), subj: Subject{Environment: "prod-eu", Runbook: "web"}, frozen: true, until: time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC), window: "prod-only"},
		{name: "scope environment: staging is not frozen", cal: scoped, at: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), subj: Subject{Environment: "staging", Runbook: "payments", Tier: 1}},
		{name: "scope runbook: matching", cal: scoped, at: time.Date(2026, 5, 2, 12, 0, 0, 0, time.UTC), subj: Subject{Environment: "staging", Runbook: "payments-api"}, frozen: true, until: time.Date(2026, 5, 3, 0, 0, 0, 0, time.UTC), window: "payments"},
		{name: "scope runbook: other runbook", cal: scoped, at: time.Date(2026, 5, 2, 12, 0, 0, 0, time.UTC), subj: Subject{Environment: "production", Runbook: "web"}},
		{name: "scope tier: tier 2", cal: scoped, at: time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC), subj: Subject{Environment: "staging", Runbook: "web", Tier: 2}, frozen: true, until: time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC), window: "critical"},
		{name: "scope tier: tier 3", cal: scoped, at: time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC), subj: Subject{Environment: "production", Runbook: "web", Tier: 3}},
		{name: "scope tier: no tier", cal: scoped, at: time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC), subj: Subject{Environment: "production", Runbook: "web"}},
		{name: "adjacent and overlapping windows extend until", cal: adjacent, at: local(2026, 6, 6, 12, 0), subj: prod, frozen: true, until: local(2026, 6, 9, 8, 0), window: "weekend"},
		{name: "adjacency: from the middle window", cal: adjacent, at: local(2026, 6, 8, 9, 0), subj: prod, frozen: true, until: local(2026, 6, 9, 8, 0), window: "monday-holiday"},
		{name: "overlap: christmas inside the year-end freeze", cal: overlapping, at: local(2026, 12, 25, 12, 0), subj: prod, frozen: true, until: local(2027, 1, 4, 0, 0), window: "year-end"},
		{name: "overlap: out of the year-end scope only christmas", cal: overlapping, at: local(2026, 12, 25, 12, 0), subj: Subject{Environment: "staging"}, frozen: true, until: local(2026, 12, 27, 0, 0), window: "christmas"},
		{name: "yearly rule: next year too", cal: overlapping, at: local(2027, 12, 24, 0, 0), subj: Subject{Environment: "staging"}, frozen: true, until: local(2027, 12, 27, 0, 0), window: "christmas"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			frozen, until, window := compile(t, tt.cal).FrozenAt(tt.at, tt.subj)
			require.Equal(t, tt.frozen, frozen)
			require.Equal(t, tt.window, window)
			if !tt.frozen {
				require.True(t, until.IsZero())
				return
			}
			require.True(t, tt.until.Equal(until), "until: want %s, got %s", tt.until, until)
			_, wantOffset := tt.until.Zone()
			_, gotOffset := until.Zone()
			require.Equal(t, wantOffset, gotOffset, "until is in the calendar's zone")
		})
	}
}

func TestFrozenAt_UntilIsInTheCalendarsZone(t *testing.T) {
	t.Parallel()
	cal := Calendar{Name: "holidays", TimeZone: "Europe/Berlin", Windows: []Window{{Name: "christmas", Start: "2026-12-24", End: "2026-12-26"}}}
	_, until, _ := cal.FrozenAt(time.Date(2026, 12, 25, 0, 0, 0, 0, time.UTC), prod)
	require.Equal(t, "2026-12-27T00:00:00+01:00", until.Format(time.RFC3339))
}

func TestFrozenAt_FreezeWithoutEndStopsAYearAhead(t *testing.T) {
	t.Parallel()
	always := Calendar{Name: "always", Windows: []Window{{Name: "daily", RRule: "FREQ=DAILY", Duration: "24h"}}}
	at := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	frozen, until, _ := compile(t, always).FrozenAt(at, prod)
	require.True(t, frozen)
	require.False(t, until.Before(at.Add(horizon)))
	require.True(t, until.Before(at.Add(horizon+48*time.Hour)))
}

func TestFrozenAt_BackToBackOccurrencesAreFollowedWithinBounds(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, w := range []Window{
		{Name: "hourly", RRule: "FREQ=HOURLY", Duration: "2h"},
		{Name: "every-minute", Cron: "* * * * *", Duration: "1m"},
	} {
		start := time.Now()
		frozen, until, _ := compile(t, Calendar{Name: "busy", Windows: []Window{w}}).FrozenAt(at, prod)
		require.True(t, frozen, w.Name)
		require.True(t, until.After(at.Add(24*time.Hour)), "%s: until %s", w.Name, until)
		require.False(t, until.After(at.Add(horizon+2*time.Hour)), "%s: until %s", w.Name, until)
		require.Less(t, time.Since(start), 5*time.Second, "%s: the work is bounded", w.Name)
	}
}

func TestFrozenAt_RecurrenceBoundedByStartAndEnd(t *testing.T) {
	t.Parallel()
	cal := Calendar{Name: "quarter", Windows: []Window{{Name: "fridays", Cron: "0 12 * * 5", Duration: "2h", Start: "2026-04-01", End: "2026-06-30"}}}
	s := compile(t, cal)
	frozen, _, _ := s.FrozenAt(time.Date(2026, 3, 27, 13, 0, 0, 0, time.UTC), prod)
	require.False(t, frozen, "before start")
	frozen, _, _ = s.FrozenAt(time.Date(2026, 4, 3, 13, 0, 0, 0, time.UTC), prod)
	require.True(t, frozen)
	frozen, _, _ = s.FrozenAt(time.Date(2026, 7, 3, 13, 0, 0, 0, time.UTC), prod)
	require.False(t, frozen, "after end")
}

func TestFrozenAt_RRuleStartSetsTimeOfDayAndInterval(t *testing.T) {
	t.Parallel()
	// Every other Friday from 2 January 2026 at 16:30.
	cal := Calendar{Name: "fortnight", TimeZone: "America/New_York", Windows: []Window{{Name: "payday", RRule: "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR", Start: "2026-01-02T16:30", Duration: "1h"}}}
	s := compile(t, cal)
	ny := s.Location()
	frozen, until, _ := s.FrozenAt(time.Date(2026, 1, 16, 17, 0, 0, 0, ny), prod)
	require.True(t, frozen)
	require.True(t, until.Equal(time.Date(2026, 1, 16, 17, 30, 0, 0, ny)))
	frozen, _, _ = s.FrozenAt(time.Date(2026, 1, 9, 17, 0, 0, 0, ny), prod)
	require.False(t, frozen, "the week between")
}

func TestFrozenAt_InvalidCalendarIsFrozen(t *testing.T) {
	t.Parallel()
	frozen, until, window := Calendar{Name: "bad"}.FrozenAt(time.Now(), prod)
	require.True(t, frozen, "a freeze that cannot be evaluated holds the release")
	require.True(t, until.IsZero())
	require.Equal(t, "invalid calendar", window)
}

func TestCompile_ReportsWhatToFix(t *testing.T) {
	t.Parallel()
	one := func(w Window) Calendar { return Calendar{Name: "c", Windows: []Window{w}} }
	tests := []struct {
		name string
		cal  Calendar
		path string
		msg  string
	}{
		{name: "no name", cal: Calendar{Windows: []Window{{Name: "w", Start: "2026-01-01", End: "2026-01-01"}}}, path: "name", msg: "name is required"},
		{name: "bad name", cal: Calendar{Name: "Holidays!", Windows: []Window{{Name: "w", Start: "2026-01-01", End: "2026-01-01"}}}, path: "name", msg: "not a calendar name"},
		{name: "unknown zone", cal: Calendar{Name: "c", TimeZone: "Mars/Olympus", Windows: []Window{{Name: "w", Start: "2026-01-01", End: "2026-01-01"}}}, path: "timeZone", msg: `unknown time zone "Mars/Olympus"`},
		{name: "no windows", cal: Calendar{Name: "c"}, path: "windows", msg: "at least one window"},
		{name: "window without name", cal: one(Window{Start: "2026-01-01", End: "2026-01-01"}), path: "windows[0].name", msg: "name is required"},
		{name: "duplicate window names", cal: Calendar{Name: "c", Windows: []Window{{Name: "w", Start: "2026-01-01", End: "2026-01-01"}, {Name: "w", Start: "2026-01-02", End: "2026-01-02"}}}, path: "windows[1].name", msg: "also the name of windows[0]"},
		{name: "bad rrule", cal: one(Window{Name: "w", RRule: "FREQ=FORTNIGHTLY", Duration: "1h"}), path: "windows[0].rrule", msg: "not an RFC 5545 RRULE"},
		{name: "rrule with unknown part", cal: one(Window{Name: "w", RRule: "FREQ=WEEKLY;BYDAYS=FR", Duration: "1h"}), path: "windows[0].rrule", msg: "not an RFC 5545 RRULE"},
		{name: "rrule too frequent", cal: one(Window{Name: "w", RRule: "FREQ=MINUTELY", Duration: "1h"}), path: "windows[0].rrule", msg: "repeats too often"},
		{name: "rrule that never occurs", cal: one(Window{Name: "w", RRule: "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", Duration: "1h"}), path: "windows[0].rrule", msg: "never occurs"},
		{name: "rrule that ended before its start", cal: one(Window{Name: "w", RRule: "FREQ=WEEKLY;UNTIL=20200101T000000Z", Duration: "1h"}), path: "windows[0].rrule", msg: "never occurs"},
		{name: "rrule with DTSTART", cal: one(Window{Name: "w", RRule: "FREQ=WEEKLY;DTSTART=20260101T000000", Duration: "1h"}), path: "windows[0].rrule", msg: "put the first day in start"},
		{name: "bad cron", cal: one(Window{Name: "w", Cron: "0 16 * *", Duration: "1h"}), path: "windows[0].cron", msg: "not a 5-field cron expression"},
		{name: "cron out of range", cal: one(Window{Name: "w", Cron: "0 25 * * 5", Duration: "1h"}), path: "windows[0].cron", msg: "not a 5-field cron expression"},
		{name: "cron that never fires", cal: one(Window{Name: "w", Cron: "0 0 30 2 *", Duration: "1h"}), path: "windows[0].cron", msg: "never fires"},
		{name: "cron with zone", cal: one(Window{Name: "w", Cron: "CRON_TZ=Europe/Berlin 0 16 * * 5", Duration: "1h"}), path: "windows[0].cron", msg: "set the calendar's timeZone"},
		{name: "both rrule and cron", cal: one(Window{Name: "w", RRule: "FREQ=WEEKLY", Cron: "0 16 * * 5", Duration: "1h"}), path: "windows[0]", msg: "not both"},
		{name: "neither rrule, cron nor start", cal: one(Window{Name: "w", Duration: "1h"}), path: "windows[0]", msg: "set rrule"},
		{name: "recurring without duration", cal: one(Window{Name: "w", Cron: "0 16 * * 5"}), path: "windows[0].duration", msg: "duration is required"},
		{name: "negative duration", cal: one(Window{Name: "w", Cron: "0 16 * * 5", Duration: "-2h"}), path: "windows[0].duration", msg: "negative"},
		{name: "zero duration", cal: one(Window{Name: "w", Cron: "0 16 * * 5", Duration: "0s"}), path: "windows[0].duration", msg: "zero"},
		{name: "unparsable duration", cal: one(Window{Name: "w", Cron: "0 16 * * 5", Duration: "2 days"}), path: "windows[0].duration", msg: "not a duration"},
		{name: "duration over a year", cal: one(Window{Name: "w", Cron: "0 16 * * 5", Duration: "400d"}), path: "windows[0].duration", msg: "longer than a year"},
		{name: "one-off without end", cal: one(Window{Name: "w", Start: "2026-01-01"}), path: "windows[0].end", msg: "needs an end"},
		{name: "one-off with end and duration", cal: one(Window{Name: "w", Start: "2026-01-01", End: "2026-01-02", Duration: "1h"}), path: "windows[0].end", msg: "not both"},
		{name: "end before start", cal: one(Window{Name: "w", Start: "2026-01-02", End: "2026-01-01T12:00"}), path: "windows[0].end", msg: "not after start"},
		{name: "bad start", cal: one(Window{Name: "w", Start: "24.12.2026", End: "2026-12-26"}), path: "windows[0].start", msg: "not a date or time"},
		{name: "bad scope pattern", cal: one(Window{Name: "w", Start: "2026-01-01", End: "2026-01-01", Scope: Scope{Environments: []string{"prod-["}}}), path: "windows[0].scope.environments[0]", msg: "not an environment name or pattern"},
		{name: "bad tier", cal: one(Window{Name: "w", Start: "2026-01-01", End: "2026-01-01", Scope: Scope{Tiers: []int{0}}}), path: "windows[0].scope.tiers[0]", msg: "tiers count from 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cal.Validate()
			var inv *InvalidError
			require.True(t, errors.As(err, &inv), "want *InvalidError, got %v", err)
			var found bool
			for _, p := range inv.Problems {
				if p.Path == tt.path {
					require.Contains(t, p.Msg, tt.msg)
					found = true
				}
			}
			require.True(t, found, "no problem at %s in %v", tt.path, inv.Problems)
		})
	}
}

func TestCompile_ListsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	err := Calendar{Name: "c", TimeZone: "Nowhere/Land", Windows: []Window{
		{Name: "a", RRule: "FREQ=NEVER", Duration: "1h"},
		{Name: "b", Cron: "nope", Duration: "-1h"},
	}}.Validate()
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	require.Len(t, inv.Problems, 4)
	require.Contains(t, err.Error(), `calendar "c" is invalid: timeZone: unknown time zone`)
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "64h", want: 64 * time.Hour},
		{in: "90m", want: 90 * time.Minute},
		{in: "2d", want: 48 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "-2h", want: -2 * time.Hour},
		{in: "-1d", want: -24 * time.Hour},
		{in: "", bad: true},
		{in: "d", bad: true},
		{in: "2 days", bad: true},
		{in: "1d-2h", bad: true},
		{in: "xd", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if tt.bad {
			require.Error(t, err, tt.in)
			continue
		}
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
}

func TestCalendar_JSONRoundTrip(t *testing.T) {
	t.Parallel()
	cal := Calendar{Name: "weekend", TimeZone: "Europe/Berlin", Windows: []Window{
		{Name: "friday-afternoon", RRule: "FREQ=WEEKLY;BYDAY=FR;BYHOUR=16", Duration: "64h", Scope: Scope{Environments: []string{"production"}, Tiers: []int{1}}},
		{Name: "christmas", Start: "2026-12-24", End: "2026-12-26"},
	}}
	b, err := json.Marshal(cal)
	require.NoError(t, err)
	require.NotContains(t, string(b), `"scope":{}`, "an empty scope is left out")
	var back Calendar
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, cal, back)
}
