package freeze

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
	// Zones must load on hosts and images without a zoneinfo database: a calendar whose zone
	// cannot be loaded cannot be evaluated, and an unevaluable freeze stops releases.
	_ "time/tzdata"
)

// NamePattern is what calendar and window names look like (as runbook names do): they
// appear in runbooks, URLs, waivers and release statuses.
var NamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$`)

// Calendar is a named set of freeze windows, evaluated in one time zone. It is a document:
// a file under the calendars folder (YAML) or the body of PUT /api/v1/calendars/{name}
// (JSON), with the same fields in both.
type Calendar struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// TimeZone is an IANA zone name (Europe/Berlin); UTC when empty. Windows' times of day,
	// dates and durations are read on this zone's wall clock.
	TimeZone string   `yaml:"timeZone,omitempty" json:"timeZone,omitempty"`
	Windows  []Window `yaml:"windows" json:"windows"`
}

// Window is one freeze: recurring (RRule or Cron, each occurrence lasting Duration) or
// one-off (Start, and End or Duration).
type Window struct {
	Name string `yaml:"name" json:"name"`
	// RRule is an RFC 5545 recurrence rule such as "FREQ=WEEKLY;BYDAY=FR;BYHOUR=16". Fields
	// it leaves out (minute, second; the weekday of a bare WEEKLY rule) are taken from Start,
	// which defaults to 2024-01-01T00:00 (a Monday) in the calendar's zone.
	RRule string `yaml:"rrule,omitempty" json:"rrule,omitempty"`
	// Cron is a 5-field cron expression (minute hour day-of-month month day-of-week) such as
	// "0 16 * * 5", read in the calendar's zone.
	Cron string `yaml:"cron,omitempty" json:"cron,omitempty"`
	// Duration is how long each occurrence lasts, on the wall clock: "64h", "90m", "2d",
	// "1d12h". Required for recurring windows; a one-off window sets Duration or End.
	Duration string `yaml:"duration,omitempty" json:"duration,omitempty"`
	// Start and End are dates (2026-12-24), local times (2026-12-24T12:00) or RFC 3339 times.
	// For a one-off window they are its bounds, and an End that is a date includes that whole
	// day. For a recurring window they bound the recurrence: no occurrence starts before
	// Start or at or after End.
	Start string `yaml:"start,omitempty" json:"start,omitempty"`
	End   string `yaml:"end,omitempty" json:"end,omitempty"`
	Scope Scope  `yaml:"scope,omitempty" json:"scope,omitzero"`
}

// Scope narrows a window to some releases. An empty list matches every value; a set list
// must contain the subject's value. Environments and runbooks may be glob patterns
// (payments-*), as path.Match reads them.
type Scope struct {
	Environments []string `yaml:"environments,omitempty" json:"environments,omitempty"`
	Runbooks     []string `yaml:"runbooks,omitempty" json:"runbooks,omitempty"`
	Tiers        []int    `yaml:"tiers,omitempty" json:"tiers,omitempty"`
}

// Subject is what a freeze is asked about: a release of a runbook (of a tier) going to an
// environment.
type Subject struct {
	Environment string `json:"environment"`
	Runbook     string `json:"runbook"`
	Tier        int    `json:"tier,omitempty"`
}

// Matches reports whether s is in the scope.
func (sc Scope) Matches(s Subject) bool {
	return matchGlob(sc.Environments, s.Environment) && matchGlob(sc.Runbooks, s.Runbook) && matchTier(sc.Tiers, s.Tier)
}

func matchGlob(patterns []string, v string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, v); ok {
			return true
		}
	}
	return false
}

func matchTier(tiers []int, tier int) bool {
	if len(tiers) == 0 {
		return true
	}
	for _, t := range tiers {
		if t == tier {
			return true
		}
	}
	return false
}

// Problem is one thing wrong with a calendar: the file (when it came from one), the field
// path (windows[1].rrule) and what to do about it.
type Problem struct {
	File string `json:"file,omitempty"`
	Path string `json:"path,omitempty"`
	Msg  string `json:"message"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File + ": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// InvalidError lists every problem found in a calendar, not only the first.
type InvalidError struct {
	Calendar string
	Problems []Problem
}

func (e *InvalidError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	name := "calendar"
	if e.Calendar != "" {
		name = "calendar " + strconv.Quote(e.Calendar)
	}
	return name + " is invalid: " + strings.Join(lines, "; ")
}

// Validate reports every problem of the calendar as an *InvalidError, or nil.
func (c Calendar) Validate() error {
	_, err := c.Compile()
	return err
}

// defaultAnchor is the DTSTART of an RRULE window without Start: midnight, Monday the 1st
// of January, so a bare rule's defaults (time of day, weekday, day of month, month) are the
// plainest ones.
func defaultAnchor(loc *time.Location) time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, loc) }

// ParseDuration reads a window duration: a Go duration ("64h", "1h30m") optionally led by
// whole days ("2d", "1d12h"). A day is 24 hours of wall clock.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	neg := strings.HasPrefix(in, "-")
	in = strings.TrimPrefix(in, "-")
	var d time.Duration
	if i := strings.IndexByte(in, 'd'); i > 0 {
		days, err := strconv.Atoi(in[:i])
		if err != nil || days > 3660 {
			return 0, fmt.Errorf("%q is not a duration: write it like 90m, 64h, 2d or 1d12h", s)
		}
		d = time.Duration(days) * 24 * time.Hour
		in = in[i+1:]
	}
	if in != "" {
		rest, err := time.ParseDuration(in)
		if err != nil || strings.HasPrefix(in, "-") || strings.HasPrefix(in, "+") {
			return 0, fmt.Errorf("%q is not a duration: write it like 90m, 64h, 2d or 1d12h", s)
		}
		d += rest
	} else if d == 0 {
		return 0, fmt.Errorf("%q is not a duration: write it like 90m, 64h, 2d or 1d12h", s)
	}
	if neg {
		d = -d
	}
	return d, nil
}

// Time layouts Start and End accept; the first is a date.
var timeLayouts = []string{"2006-01-02", "2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05"}

// parseWhen reads a date, a local time (in loc) or an RFC 3339 time.
func parseWhen(s string, loc *time.Location) (t time.Time, dateOnly bool, err error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.In(loc), false, nil
	}
	for i, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, i == 0, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("%q is not a date or time: write 2026-12-24, 2026-12-24T16:00 (in the calendar's zone) or 2026-12-24T16:00:00+01:00", s)
}

// wallAdd adds d to t on loc's wall clock: 64h after Friday 16:00 is Monday 08:00 even
// when the weekend has a daylight-saving change.
func wallAdd(t time.Time, d time.Duration, loc *time.Location) time.Time {
	l := t.In(loc)
	naive := time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC).Add(d)
	return time.Date(naive.Year(), naive.Month(), naive.Day(), naive.Hour(), naive.Minute(), naive.Second(), naive.Nanosecond(), loc)
}
