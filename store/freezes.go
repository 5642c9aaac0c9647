package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trainyard/trainyard/freeze"
)

// Errors FreezeStatus wraps when a named calendar cannot be evaluated. Retrying does not
// help with either: a person must define or fix the calendar (or change the runbook).
var (
	// ErrUnknownCalendar: no file and no API calendar has the name.
	ErrUnknownCalendar = errors.New("unknown freeze calendar")
	// ErrInvalidCalendar: the calendar's file is broken, or its stored definition no
	// longer validates. PutCalendar wraps it (with the *freeze.InvalidError) too.
	ErrInvalidCalendar = errors.New("invalid freeze calendar")
)

// Calendar sources, as FreezeCheck.Source reports them.
const (
	CalendarSourceFile = "file"
	CalendarSourceAPI  = "api"
)

// CalendarRecord is a freeze calendar managed through the API.
type CalendarRecord struct {
	Calendar  freeze.Calendar `json:"calendar"`
	CreatedBy string          `json:"createdBy"`
	CreatedAt time.Time       `json:"createdAt"`
	UpdatedBy string          `json:"updatedBy"`
	UpdatedAt time.Time       `json:"updatedAt"`
}

const calendarColumns = `name, definition, created_by, created_at, updated_by, updated_at`

// PutCalendar creates or replaces the API calendar cal.Name, as actor. An invalid calendar
// is refused with an error wrapping ErrInvalidCalendar and the *freeze.InvalidError that
// lists what to fix. It does not know the calendar files: the caller refuses a name a file
// defines (files are the reviewed source).
func (s *Store) PutCalendar(ctx context.Context, cal freeze.Calendar, actor string) (rec CalendarRecord, created bool, err error) {
	if err := cal.Validate(); err != nil {
		return CalendarRecord{}, false, fmt.Errorf("put calendar %q: %w: %w", cal.Name, ErrInvalidCalendar, err)
	}
	def, err := json.Marshal(cal)
	if err != nil {
		return CalendarRecord{}, false, fmt.Errorf("put calendar %q: %w", cal.Name, err)
	}
	row := s.db.QueryRowContext(ctx, `
		INSERT INTO freeze_calendars (name, definition, created_by, created_at, updated_by, updated_at)
		VALUES ($1, $2::jsonb, $3, now(), $3, now())
		ON CONFLICT (name) DO UPDATE SET
			definition = EXCLUDED.definition,
			updated_by = EXCLUDED.updated_by,
			updated_at = EXCLUDED.updated_at
		RETURNING `+calendarColumns+`, (xmax = 0) AS inserted`,
		cal.Name, string(def), actor)
	rec, err = scanCalendar(row.Scan, &created)
	if err != nil {
		return CalendarRecord{}, false, fmt.Errorf("put calendar %q: %w", cal.Name, err)
	}
	return rec, created, nil
}

// GetCalendar returns the API calendar with the name, or an error wrapping ErrNotFound.
func (s *Store) GetCalendar(ctx context.Context, name string) (CalendarRecord, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+calendarColumns+` FROM freeze_calendars WHERE name = $1`, name)
	rec, err := scanCalendar(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return CalendarRecord{}, fmt.Errorf("get calendar %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return CalendarRecord{}, fmt.Errorf("get calendar %q: %w", name, err)
	}
	return rec, nil
}

// ListCalendars returns the API calendars by name.
func (s *Store) ListCalendars(ctx context.Context) ([]CalendarRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+calendarColumns+` FROM freeze_calendars ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list calendars: %w", err)
	}
	defer rows.Close()
	out := []CalendarRecord{}
	for rows.Next() {
		rec, err := scanCalendar(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("list calendars: %w", err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list calendars: %w", err)
	}
	return out, nil
}

// DeleteCalendar removes the API calendar with the name, or returns an error wrapping
// ErrNotFound. Waivers naming it are kept: they are evidence.
func (s *Store) DeleteCalendar(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM freeze_calendars WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("delete calendar %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("delete calendar %q: %w", name, ErrNotFound)
	}
	return nil
}

// scanCalendar reads calendarColumns, then any extra destinations.
func scanCalendar(scan func(...any) error, extra ...any) (CalendarRecord, error) {
	var (
		rec  CalendarRecord
		name string
		def  []byte
	)
	dest := append([]any{&name, &def, &rec.CreatedBy, &rec.CreatedAt, &rec.UpdatedBy, &rec.UpdatedAt}, extra...)
	if err := scan(dest...); err != nil {
		return CalendarRecord{}, err
	}
	if err := json.Unmarshal(def, &rec.Calendar); err != nil {
		return CalendarRecord{}, fmt.Errorf("calendar %q: stored definition: %w", name, err)
	}
	rec.Calendar.Name = name
	return rec, nil
}

// FreezeQuery asks whether a release may pass its freeze calendars now. It is plain data,
// fit to be an activity's input.
type FreezeQuery struct {
	Environment string `json:"environment"`
	Runbook     string `json:"runbook"`
	// ReleaseID is the release asking: waivers scoped to releases match it, and a waiver
	// that lets it through is audited under it.
	ReleaseID string `json:"releaseId,omitempty"`
	Tier      int    `json:"tier,omitempty"`
	// Calendars are the runbook's freezes, by name.
	Calendars []string `json:"calendars"`
	// At is the time asked about; zero means now.
	At time.Time `json:"at,omitzero"`
}

// FreezeDecision is the answer to a FreezeQuery.
type FreezeDecision struct {
	// Frozen is true when at least one calendar freezes the release and no waiver lets it
	// through that calendar.
	Frozen bool `json:"frozen"`
	// Until, Calendar and Window describe the freeze that ends last, when Frozen. Until is in
	// the calendar's zone. A release that waits until then must ask again: another window,
	// or a revoked waiver, may hold it then.
	Until    time.Time `json:"until,omitzero"`
	Calendar string    `json:"calendar,omitempty"`
	Window   string    `json:"window,omitempty"`
	// Waiver is the id of the waiver that let the release through, when not Frozen only
	// thanks to waivers (the first, when several calendars were waived; Checks has each).
	Waiver string `json:"waiver,omitempty"`
	// Reason says it in a sentence, for the release's status: "frozen by holidays
	// (christmas) until 2026-12-27T00:00:00+01:00".
	Reason string `json:"reason,omitempty"`
	// Checks has one entry per calendar asked about, in the order asked.
	Checks []FreezeCheck `json:"checks,omitempty"`
}

// FreezeCheck is one calendar's answer.
type FreezeCheck struct {
	Calendar string `json:"calendar"`
	// Source is "file" or "api".
	Source string    `json:"source"`
	Frozen bool      `json:"frozen"`
	Until  time.Time `json:"until,omitzero"`
	Window string    `json:"window,omitempty"`
	// Waiver is the id of the active waiver that lets the release through this calendar.
	Waiver string `json:"waiver,omitempty"`
}

// Audit actions the store writes itself.
const (
	// ActionWaiverUse records a waiver letting a release through a freeze.
	ActionWaiverUse = "waiver.use"
	// SystemActor is the actor of audit rows Trainyard writes on its own behalf.
	SystemActor = "trainyard"
)

// FreezeStatus evaluates the calendars q names for q's release at q.At (now when zero).
// Calendars come from files (the reviewed source; files may be nil) and then from the API
// calendars. For each calendar that freezes the release, an active waiver of kind freeze
// for that calendar whose scope matches the release lets it through.
//
// When the release may pass thanks to waivers, each waiver used is audited (action
// waiver.use, actor "trainyard", the release's id), and a failed audit write is an error:
// a waiver is not used unrecorded. A retried call records the use again, as the audit trail
// records attempts.
//
// A calendar that does not exist anywhere is an error wrapping ErrUnknownCalendar, one that
// cannot be evaluated (broken file, stored definition that no longer validates) an error
// wrapping ErrInvalidCalendar: a release must not pass a freeze it cannot evaluate. Other
// errors are the database's, and retrying may help.
func (s *Store) FreezeStatus(ctx context.Context, files *freeze.Catalog, q FreezeQuery) (FreezeDecision, error) {
	at := q.At
	if at.IsZero() {
		at = time.Now()
	}
	subj := freeze.Subject{Environment: q.Environment, Runbook: q.Runbook, Tier: q.Tier}
	var d FreezeDecision
	used := map[string]Waiver{} // by calendar
	seen := map[string]bool{}
	for _, name := range q.Calendars {
		if seen[name] {
			continue
		}
		seen[name] = true
		sched, source, err := s.freezeSchedule(ctx, files, name)
		if err != nil {
			return FreezeDecision{}, fmt.Errorf("freeze status of %s: %w", describeQuery(q), err)
		}
		chk := FreezeCheck{Calendar: name, Source: source}
		chk.Frozen, chk.Until, chk.Window = sched.FrozenAt(at, subj)
		if chk.Frozen {
			ws, err := s.ActiveWaivers(ctx, WaiverMatch{Kind: WaiverKindFreeze, Target: name, Runbook: q.Runbook, Environment: q.Environment, ReleaseID: q.ReleaseID, At: at})
			if err != nil {
				return FreezeDecision{}, fmt.Errorf("freeze status of %s: %w", describeQuery(q), err)
			}
			if len(ws) > 0 {
				chk.Waiver = ws[0].ID
				used[name] = ws[0]
			}
		}
		d.Checks = append(d.Checks, chk)
	}

	var blocking, waived []string
	for _, c := range d.Checks {
		switch {
		case c.Frozen && c.Waiver == "":
			if !d.Frozen || c.Until.After(d.Until) {
				d.Frozen, d.Until, d.Calendar, d.Window = true, c.Until, c.Calendar, c.Window
			}
			blocking = append(blocking, fmt.Sprintf("%s (%s) until %s", c.Calendar, c.Window, c.Until.Format(time.RFC3339)))
		case c.Frozen:
			waived = append(waived, fmt.Sprintf("%s (%s) would freeze it until %s, waived by %s", c.Calendar, c.Window, c.Until.Format(time.RFC3339), c.Waiver))
		}
	}
	switch {
	case d.Frozen:
		d.Reason = "frozen by " + strings.Join(blocking, "; and by ")
	case len(waived) > 0:
		for _, c := range d.Checks {
			if c.Waiver != "" {
				d.Waiver = c.Waiver
				break
			}
		}
		d.Reason = "not frozen: " + strings.Join(waived, "; ")
		if err := s.auditWaiverUse(ctx, q, at, used, d.Checks); err != nil {
			return FreezeDecision{}, fmt.Errorf("freeze status of %s: %w", describeQuery(q), err)
		}
	case len(d.Checks) > 0:
		names := make([]string, len(d.Checks))
		for i, c := range d.Checks {
			names[i] = c.Calendar
		}
		d.Reason = "not frozen: no window of " + strings.Join(names, ", ") + " is open"
	}
	return d, nil
}

func describeQuery(q FreezeQuery) string {
	what := fmt.Sprintf("runbook %q to %q", q.Runbook, q.Environment)
	if q.ReleaseID != "" {
		what = fmt.Sprintf("release %q (%s)", q.ReleaseID, what)
	}
	return what
}

// freezeSchedule finds a calendar: in the files, else through the API.
func (s *Store) freezeSchedule(ctx context.Context, files *freeze.Catalog, name string) (*freeze.Schedule, string, error) {
	if fc, ok := files.Get(name); ok {
		return fc.Schedule, CalendarSourceFile, nil
	}
	if why := files.Broken(name); why != nil {
		return nil, "", fmt.Errorf("%w %q: its file in %s is broken, fix it: %w", ErrInvalidCalendar, name, files.Dir(), why)
	}
	rec, err := s.GetCalendar(ctx, name)
	if errors.Is(err, ErrNotFound) {
		where := "no calendar file defines it"
		if files.Dir() != "" {
			where = "no file in " + files.Dir() + " defines it"
		}
		return nil, "", fmt.Errorf("%w %q: %s and none was made through the API (GET /api/v1/calendars lists them); define it, or take it out of the runbook's freezes: a release cannot pass a freeze that cannot be evaluated", ErrUnknownCalendar, name, where)
	}
	if err != nil {
		return nil, "", err
	}
	sched, err := rec.Calendar.Compile()
	if err != nil {
		return nil, "", fmt.Errorf("%w %q: its stored definition no longer validates, PUT it again: %w", ErrInvalidCalendar, name, err)
	}
	return sched, CalendarSourceAPI, nil
}

func (s *Store) auditWaiverUse(ctx context.Context, q FreezeQuery, at time.Time, used map[string]Waiver, checks []FreezeCheck) error {
	for _, c := range checks {
		w, ok := used[c.Calendar]
		if !ok {
			continue
		}
		details, err := json.Marshal(map[string]any{
			"waiver": w.ID, "kind": w.Kind, "target": w.Target, "window": c.Window,
			"frozenUntil": c.Until.Format(time.RFC3339), "runbook": q.Runbook, "environment": q.Environment,
			"tier": q.Tier, "at": at.UTC().Format(time.RFC3339), "grantedBy": w.GrantedBy,
			"expiresAt": w.ExpiresAt.UTC().Format(time.RFC3339),
		})
		if err != nil {
			return fmt.Errorf("audit use of waiver %s: %w", w.ID, err)
		}
		if _, err := s.AppendAudit(ctx, AuditEvent{
			Actor: SystemActor, Action: ActionWaiverUse, ReleaseID: q.ReleaseID,
			Outcome: OutcomeAllowed, Details: details,
		}); err != nil {
			return fmt.Errorf("audit use of waiver %s: %w", w.ID, err)
		}
	}
	return nil
}
