package freeze

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/teambition/rrule-go"
)

// Schedule is a compiled, valid calendar: the form that answers questions. It is immutable
// and safe for concurrent use.
type Schedule struct {
	name    string
	loc     *time.Location
	windows []compiledWindow
}

type compiledWindow struct {
	name     string
	scope    Scope
	duration time.Duration
	// Exactly one of rule, cron and oneOff says when occurrences start.
	rule   *rrule.RRule
	cron   cron.Schedule
	oneOff bool
	// start and end bound a recurrence (zero: unbounded), or are a one-off's bounds.
	start, end time.Time
}

// Limits of an evaluation: FrozenAt follows back-to-back windows at most horizon ahead, and
// a window lasts at most maxDuration.
const (
	horizon     = 366 * 24 * time.Hour
	maxDuration = 366 * 24 * time.Hour
	// dstSlack widens searches for occurrences, whose wall-clock length differs from their
	// elapsed length by a daylight-saving shift.
	dstSlack = 3 * time.Hour
)

// Compile checks the calendar and returns its schedule, or an *InvalidError listing every
// problem with what to change.
func (c Calendar) Compile() (*Schedule, error) {
	var probs []Problem
	add := func(p, format string, args ...any) {
		probs = append(probs, Problem{Path: p, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case c.Name == "":
		add("name", "name is required: a calendar is named by runbooks' freezes (lowercase letters, digits and dashes)")
	case !NamePattern.MatchString(c.Name):
		add("name", "%q is not a calendar name: use lowercase letters, digits and dashes (at most 64), such as holidays", c.Name)
	}
	loc := time.UTC
	if c.TimeZone != "" {
		l, err := time.LoadLocation(c.TimeZone)
		if err != nil || c.TimeZone == "Local" {
			add("timeZone", "unknown time zone %q: use an IANA name such as Europe/Berlin or America/New_York", c.TimeZone)
		} else {
			loc = l
		}
	}
	if len(c.Windows) == 0 {
		add("windows", "a calendar needs at least one window")
	}
	s := &Schedule{name: c.Name, loc: loc}
	seen := map[string]int{}
	for i, w := range c.Windows {
		p := fmt.Sprintf("windows[%d]", i)
		switch {
		case w.Name == "":
			add(p+".name", "name is required: it is shown in a frozen release's status (christmas, friday-afternoon)")
		case !NamePattern.MatchString(w.Name):
			add(p+".name", "%q is not a window name: use lowercase letters, digits and dashes", w.Name)
		default:
			if j, dup := seen[w.Name]; dup {
				add(p+".name", "%q is also the name of windows[%d]; give each window its own name", w.Name, j)
			}
			seen[w.Name] = i
		}
		cw, wp := compileWindow(p, w, loc)
		probs = append(probs, wp...)
		if len(wp) == 0 {
			s.windows = append(s.windows, cw)
		}
	}
	if len(probs) > 0 {
		return nil, &InvalidError{Calendar: c.Name, Problems: probs}
	}
	return s, nil
}

func compileWindow(p string, w Window, loc *time.Location) (compiledWindow, []Problem) {
	var probs []Problem
	add := func(field, format string, args ...any) {
		probs = append(probs, Problem{Path: p + field, Msg: fmt.Sprintf(format, args...)})
	}
	cw := compiledWindow{name: w.Name, scope: w.Scope}

	if w.Start != "" {
		t, _, err := parseWhen(w.Start, loc)
		if err != nil {
			add(".start", "%v", err)
		}
		cw.start = t
	}
	if w.End != "" {
		t, dateOnly, err := parseWhen(w.End, loc)
		if err != nil {
			add(".end", "%v", err)
		} else if dateOnly {
			// A date as the end means through that day.
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
		}
		cw.end = t
	}
	if !cw.start.IsZero() && !cw.end.IsZero() && !cw.end.After(cw.start) {
		add(".end", "end %q is not after start %q", w.End, w.Start)
	}
	if w.Duration != "" {
		d, err := ParseDuration(w.Duration)
		switch {
		case err != nil:
			add(".duration", "%v", err)
		case d < 0:
			add(".duration", "duration %q is negative: a window lasts a positive time such as 64h", w.Duration)
		case d == 0:
			add(".duration", "duration %q is zero: a window lasts a positive time such as 64h", w.Duration)
		case d > maxDuration:
			add(".duration", "duration %q is longer than a year: split the freeze or make it a one-off with an end", w.Duration)
		default:
			cw.duration = d
		}
	}

	recurring := w.RRule != "" || w.Cron != ""
	switch {
	case w.RRule != "" && w.Cron != "":
		add("", "set rrule or cron, not both: one window has one recurrence (make two windows for two)")
	case !recurring && w.Start == "":
		add("", `set rrule (FREQ=WEEKLY;BYDAY=FR;BYHOUR=16) or cron ("0 16 * * 5") with a duration for a recurring window, or start with end or duration for a one-off window`)
	case recurring && w.Duration == "":
		add(".duration", "duration is required for a recurring window: how long each occurrence lasts, such as 64h or 2d")
	case !recurring && w.End != "" && w.Duration != "":
		add(".end", "set end or duration for a one-off window, not both")
	case !recurring && w.End == "" && w.Duration == "":
		add(".end", "a one-off window needs an end (2026-12-26 includes that day) or a duration")
	}
	if w.RRule != "" {
		cw.rule = compileRRule(p+".rrule", w.RRule, cw.start, loc, &probs)
	}
	if w.Cron != "" {
		cw.cron = compileCron(p+".cron", w.Cron, loc, &probs)
	}
	if !recurring && w.Start != "" {
		cw.oneOff = true
		if cw.end.IsZero() && cw.duration > 0 && !cw.start.IsZero() {
			cw.end = wallAdd(cw.start, cw.duration, loc)
		}
	}
	for i, e := range w.Scope.Environments {
		if _, err := path.Match(e, ""); err != nil || strings.TrimSpace(e) == "" {
			add(fmt.Sprintf(".scope.environments[%d]", i), "%q is not an environment name or pattern (production, prod-*)", e)
		}
	}
	for i, r := range w.Scope.Runbooks {
		if _, err := path.Match(r, ""); err != nil || strings.TrimSpace(r) == "" {
			add(fmt.Sprintf(".scope.runbooks[%d]", i), "%q is not a runbook name or pattern (payments, payments-*)", r)
		}
	}
	for i, t := range w.Scope.Tiers {
		if t < 1 {
			add(fmt.Sprintf(".scope.tiers[%d]", i), "tier %d is not a tier: tiers count from 1 (most critical)", t)
		}
	}
	return cw, probs
}

func compileRRule(p, text string, start time.Time, loc *time.Location, probs *[]Problem) *rrule.RRule {
	bad := func(format string, args ...any) *rrule.RRule {
		*probs = append(*probs, Problem{Path: p, Msg: fmt.Sprintf(format, args...)})
		return nil
	}
	rule := strings.TrimPrefix(strings.TrimSpace(text), "RRULE:")
	if strings.ContainsAny(rule, "\r\n") {
		return bad("write one RRULE line such as FREQ=WEEKLY;BYDAY=FR;BYHOUR=16; put a start date in start, not DTSTART")
	}
	opt, err := rrule.StrToROptionInLocation(rule, loc)
	if err != nil {
		return bad("%q is not an RFC 5545 RRULE (%v): write it like FREQ=WEEKLY;BYDAY=FR;BYHOUR=16", text, err)
	}
	if !opt.Dtstart.IsZero() {
		return bad("DTSTART does not belong in the rrule: put the first day in start (2026-01-02)")
	}
	if opt.Freq == rrule.MINUTELY || opt.Freq == rrule.SECONDLY {
		return bad("FREQ=%s repeats too often for a freeze window: use HOURLY or slower", opt.Freq)
	}
	opt.Dtstart = defaultAnchor(loc)
	if !start.IsZero() {
		opt.Dtstart = start.In(loc).Truncate(time.Second)
	}
	r, err := rrule.NewRRule(*opt)
	if err != nil {
		return bad("%q is not a usable RRULE (%v)", text, err)
	}
	if r.After(opt.Dtstart, true).IsZero() {
		return bad("%q never occurs from %s: check BYMONTH, BYMONTHDAY, UNTIL and COUNT (30 February does not exist)", text, opt.Dtstart.Format("2006-01-02T15:04"))
	}
	return r
}

func compileCron(p, text string, loc *time.Location, probs *[]Problem) cron.Schedule {
	spec := strings.TrimSpace(text)
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		*probs = append(*probs, Problem{Path: p, Msg: "leave the zone out of the cron expression: set the calendar's timeZone"})
		return nil
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		*probs = append(*probs, Problem{Path: p, Msg: fmt.Sprintf("%q is not a 5-field cron expression (%v): write minute hour day-of-month month day-of-week, such as \"0 16 * * 5\" for Fridays at 16:00", text, err)})
		return nil
	}
	if ss, ok := sched.(*cron.SpecSchedule); ok {
		ss.Location = loc
	}
	if sched.Next(defaultAnchor(loc)).IsZero() {
		*probs = append(*probs, Problem{Path: p, Msg: fmt.Sprintf("%q never fires: check the day of month and the month (30 February does not exist)", text)})
		return nil
	}
	return sched
}

// Name is the calendar's name.
func (s *Schedule) Name() string { return s.name }

// Location is the calendar's time zone.
func (s *Schedule) Location() *time.Location { return s.loc }

// FrozenAt reports whether a window in scope of subj is open at t; if so, until is when the
// freeze ends (in the calendar's zone) and window names the open window that lasts longest
// (the first declared, on a tie). Windows in scope that overlap or touch the freeze extend
// until: it is followed up to a year ahead, across at most 50 000 occurrences, so a freeze
// that never ends reports an until about a year ahead (or sooner), and asking again then
// tells more.
func (s *Schedule) FrozenAt(t time.Time, subj Subject) (frozen bool, until time.Time, window string) {
	t = t.In(s.loc)
	budget := maxOccurrences
	var cursors []*cursor
	for i := range s.windows {
		w := &s.windows[i]
		if w.scope.Matches(subj) {
			cursors = append(cursors, w.cursor(t, s.loc))
		}
	}
	// The occurrences open at t.
	for _, c := range cursors {
		for c.ok && !c.head.start.After(t) && budget > 0 {
			if c.head.end.After(t) && c.head.end.After(until) {
				until, window = c.head.end, c.name
			}
			c.advance()
			budget--
		}
	}
	if until.IsZero() {
		return false, time.Time{}, ""
	}
	// Occurrences that start before or when the freeze ends, and end after it, extend it.
	limit := t.Add(horizon)
	for extended := true; extended && until.Before(limit) && budget > 0; {
		extended = false
		for _, c := range cursors {
			for c.ok && !c.head.start.After(until) && until.Before(limit) && budget > 0 {
				if c.head.end.After(until) {
					until, extended = c.head.end, true
				}
				c.advance()
				budget--
			}
		}
	}
	return true, until.In(s.loc), window
}

// maxOccurrences bounds the work of one FrozenAt.
const maxOccurrences = 50000

// FrozenAt compiles c and evaluates it; see Schedule.FrozenAt. An invalid calendar cannot
// be evaluated, and a release must not pass a freeze it cannot evaluate: it reports frozen
// with a zero until and the window "invalid calendar". Call Validate (or Compile) first.
func (c Calendar) FrozenAt(t time.Time, subj Subject) (frozen bool, until time.Time, window string) {
	s, err := c.Compile()
	if err != nil {
		return true, time.Time{}, "invalid calendar"
	}
	return s.FrozenAt(t, subj)
}

// occurrence is one time a window is open: [start, end).
type occurrence struct{ start, end time.Time }

// cursor walks a window's occurrences in order of start.
type cursor struct {
	name string
	head occurrence
	ok   bool
	next func() (occurrence, bool)
}

func (c *cursor) advance() { c.head, c.ok = c.next() }

// cursor starts at the first occurrence that can still be open at t.
func (w *compiledWindow) cursor(t time.Time, loc *time.Location) *cursor {
	from := t.Add(-w.duration - dstSlack)
	if w.oneOff {
		from = w.start
	}
	if !w.start.IsZero() && from.Before(w.start) {
		from = w.start
	}
	c := &cursor{name: w.name}
	// within says whether a recurrence's occurrence starting at start counts.
	within := func(start time.Time) bool { return w.end.IsZero() || start.Before(w.end) }
	occ := func(start time.Time) occurrence { return occurrence{start, wallAdd(start, w.duration, loc)} }
	switch {
	case w.oneOff:
		done := false
		c.next = func() (occurrence, bool) {
			if done {
				return occurrence{}, false
			}
			done = true
			return occurrence{w.start, w.end}, true
		}
	case w.rule != nil:
		it := w.rule.Iterator()
		c.next = func() (occurrence, bool) {
			for {
				start, ok := it()
				if !ok || !within(start) {
					return occurrence{}, false
				}
				if !start.Before(from) {
					return occ(start), true
				}
			}
		}
	case w.cron != nil:
		// Next is strictly after its argument; cron has no seconds, so a nanosecond before
		// from finds an activation at from itself.
		prev := from.Add(-time.Nanosecond).In(loc)
		c.next = func() (occurrence, bool) {
			start := w.cron.Next(prev)
			if start.IsZero() || !within(start) {
				return occurrence{}, false
			}
			prev = start
			return occ(start), true
		}
	default:
		c.next = func() (occurrence, bool) { return occurrence{}, false }
	}
	c.advance()
	return c
}

// String describes the schedule briefly, for logs.
func (s *Schedule) String() string {
	return "calendar " + strconv.Quote(s.name) + " (" + s.loc.String() + ", " + strconv.Itoa(len(s.windows)) + " windows)"
}
