package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/lib/pq"
)

// Incident is the evidence kept for a release that breached its stabilization window or was
// rolled back after a failure. Breach and Status are JSON the workflow side defines (the
// breached check, and the release status with its timeline, decisions and command outputs);
// the store keeps them as given.
type Incident struct {
	ReleaseID   string          `json:"releaseId"`
	Runbook     string          `json:"runbook"`
	Version     string          `json:"version"`
	Environment string          `json:"environment"`
	Breach      json.RawMessage `json:"breach,omitempty"`
	Status      json.RawMessage `json:"status,omitempty"`
	// StatusSeq orders the writes of Status: one with a lower or equal number than the
	// stored one leaves the stored status alone.
	StatusSeq int64     `json:"statusSeq,omitempty"`
	OpenedAt  time.Time `json:"openedAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// RecordIncident creates the release's incident or updates it: Status replaces the stored
// one when given with a higher StatusSeq (writes may land out of order), and Breach is kept
// from the first write that has one (a later write, such as the status after the rollback,
// never changes what breached).
func (s *Store) RecordIncident(ctx context.Context, in Incident) error {
	if in.ReleaseID == "" || in.Runbook == "" {
		return fmt.Errorf("record incident: release id and runbook are required")
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO incidents (release_id, runbook, version, environment, breach, status, status_seq)
		VALUES ($1, $2, $3, $4, $5::jsonb, COALESCE($6::jsonb, '{}'), CASE WHEN $6::jsonb IS NULL THEN 0 ELSE $7::bigint END)
		ON CONFLICT (release_id) DO UPDATE SET
			environment = CASE WHEN EXCLUDED.environment <> '' THEN EXCLUDED.environment ELSE incidents.environment END,
			breach = COALESCE(incidents.breach, EXCLUDED.breach),
			status = CASE WHEN $6::jsonb IS NOT NULL AND $7::bigint > incidents.status_seq THEN EXCLUDED.status ELSE incidents.status END,
			status_seq = CASE WHEN $6::jsonb IS NOT NULL AND $7::bigint > incidents.status_seq THEN $7::bigint ELSE incidents.status_seq END,
			updated_at = now()`,
		in.ReleaseID, in.Runbook, in.Version, in.Environment, jsonText(in.Breach), jsonText(in.Status), in.StatusSeq)
	if err != nil {
		return fmt.Errorf("record incident of release %q: %w", in.ReleaseID, err)
	}
	return nil
}

// GetIncident returns the release's incident, or an error wrapping ErrNotFound.
func (s *Store) GetIncident(ctx context.Context, releaseID string) (Incident, error) {
	var (
		in             Incident
		breach, status []byte
	)
	err := s.db.QueryRowContext(ctx, `
		SELECT release_id, runbook, version, environment, breach, status, opened_at, updated_at
		FROM incidents WHERE release_id = $1`, releaseID).
		Scan(&in.ReleaseID, &in.Runbook, &in.Version, &in.Environment, &breach, &status, &in.OpenedAt, &in.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Incident{}, fmt.Errorf("incident of release %q: %w", releaseID, ErrNotFound)
	}
	if err != nil {
		return Incident{}, fmt.Errorf("incident of release %q: %w", releaseID, err)
	}
	in.Breach, in.Status = rawOrNil(breach), rawOrNil(status)
	return in, nil
}

// Point is one value of a stored series. In JSON it is [unix seconds, "value"], the way
// Prometheus writes range results, so NaN and ±Inf (an error ratio without traffic) survive.
type Point struct {
	At    time.Time
	Value float64
}

// MarshalJSON writes [seconds, "value"].
func (p Point) MarshalJSON() ([]byte, error) {
	secs := float64(p.At.UnixMilli()) / 1000
	return json.Marshal([]any{secs, strconv.FormatFloat(p.Value, 'g', -1, 64)})
}

// UnmarshalJSON reads [seconds, "value"].
func (p *Point) UnmarshalJSON(b []byte) error {
	var pair [2]json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil {
		return fmt.Errorf("point: want [seconds, \"value\"]: %w", err)
	}
	var secs float64
	var val string
	if err := json.Unmarshal(pair[0], &secs); err != nil {
		return fmt.Errorf("point time: %w", err)
	}
	if err := json.Unmarshal(pair[1], &val); err != nil {
		return fmt.Errorf("point value: %w", err)
	}
	v, err := strconv.ParseFloat(val, 64)
	if err != nil {
		return fmt.Errorf("point value %q: %w", val, err)
	}
	p.At = time.UnixMilli(int64(math.Round(secs * 1000))).UTC()
	p.Value = v
	return nil
}

// Series is one query's range result kept as evidence of an incident.
type Series struct {
	Name  string        `json:"name"`
	Query string        `json:"query"`
	From  time.Time     `json:"from"`
	To    time.Time     `json:"to"`
	Step  time.Duration `json:"step"`
	// Points are the values; Error says why there are none (no data, a refused query).
	Points []Point `json:"points"`
	Error  string  `json:"error,omitempty"`
}

// AddSeries stores a release's series; a series of the same name is replaced.
func (s *Store) AddSeries(ctx context.Context, releaseID string, series []Series) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store series of release %q: %w", releaseID, err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, se := range series {
		if se.Step <= 0 {
			return fmt.Errorf("store series %q of release %q: step %s must be above 0", se.Name, releaseID, se.Step)
		}
		pts := se.Points
		if pts == nil {
			pts = []Point{}
		}
		b, err := json.Marshal(pts)
		if err != nil {
			return fmt.Errorf("store series %q of release %q: %w", se.Name, releaseID, err)
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO incident_series (release_id, name, query, range_from, range_to, step_ms, points, error)
			VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)
			ON CONFLICT (release_id, name) DO UPDATE SET
				query = EXCLUDED.query, range_from = EXCLUDED.range_from, range_to = EXCLUDED.range_to,
				step_ms = EXCLUDED.step_ms, points = EXCLUDED.points, error = EXCLUDED.error`,
			releaseID, se.Name, se.Query, se.From, se.To, se.Step.Milliseconds(), string(b), se.Error); err != nil {
			return fmt.Errorf("store series %q of release %q: %w", se.Name, releaseID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store series of release %q: %w", releaseID, err)
	}
	return nil
}

// IncidentSeries returns the release's series, by name.
func (s *Store) IncidentSeries(ctx context.Context, releaseID string) ([]Series, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT name, query, range_from, range_to, step_ms, points, error
		FROM incident_series WHERE release_id = $1 ORDER BY name`, releaseID)
	if err != nil {
		return nil, fmt.Errorf("series of release %q: %w", releaseID, err)
	}
	defer rows.Close()
	out := []Series{}
	for rows.Next() {
		var (
			se     Series
			stepMS int64
			points []byte
		)
		if err := rows.Scan(&se.Name, &se.Query, &se.From, &se.To, &stepMS, &points, &se.Error); err != nil {
			return nil, fmt.Errorf("series of release %q: %w", releaseID, err)
		}
		se.Step = time.Duration(stepMS) * time.Millisecond
		if err := json.Unmarshal(points, &se.Points); err != nil {
			return nil, fmt.Errorf("series %q of release %q: stored points: %w", se.Name, releaseID, err)
		}
		out = append(out, se)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("series of release %q: %w", releaseID, err)
	}
	return out, nil
}

// Marker actions.
const (
	MarkerDeploy   = "deploy"
	MarkerRollback = "rollback"
)

// Marker is one deploy or rollback of a release's stage, from start to end.
type Marker struct {
	ID          int64      `json:"id"`
	ReleaseID   string     `json:"releaseId"`
	Runbook     string     `json:"runbook"`
	Version     string     `json:"version"`
	Environment string     `json:"environment"`
	Stage       string     `json:"stage"`
	Action      string     `json:"action"`
	StartedAt   time.Time  `json:"startedAt"`
	EndedAt     *time.Time `json:"endedAt,omitempty"`
	Outcome     string     `json:"outcome,omitempty"`
	// GrafanaID is the Grafana annotation drawn for the marker; 0 when none.
	GrafanaID int64 `json:"grafanaId,omitempty"`
}

const markerColumns = `id, release_id, runbook, version, environment, stage, action, started_at, ended_at, outcome, COALESCE(grafana_id, 0)`

func scanMarker(scan func(...any) error) (Marker, error) {
	var m Marker
	err := scan(&m.ID, &m.ReleaseID, &m.Runbook, &m.Version, &m.Environment, &m.Stage, &m.Action, &m.StartedAt, &m.EndedAt, &m.Outcome, &m.GrafanaID)
	return m, err
}

// StartMarker records the start of m's action and returns the stored marker. Starting the same
// (release, action, stage) again returns the marker already stored.
func (s *Store) StartMarker(ctx context.Context, m Marker) (Marker, error) {
	if err := m.check(); err != nil {
		return Marker{}, err
	}
	row := s.db.QueryRowContext(ctx, `
		INSERT INTO release_markers (release_id, runbook, version, environment, stage, action, started_at)
		VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7::timestamptz, now()))
		ON CONFLICT (release_id, action, stage) DO UPDATE SET release_id = EXCLUDED.release_id
		RETURNING `+markerColumns,
		m.ReleaseID, m.Runbook, m.Version, m.Environment, m.Stage, m.Action, nullTime(m.StartedAt))
	out, err := scanMarker(row.Scan)
	if err != nil {
		return Marker{}, fmt.Errorf("start %s marker of release %q stage %q: %w", m.Action, m.ReleaseID, m.Stage, err)
	}
	return out, nil
}

// EndMarker records the end of m's action (m.EndedAt, m.Outcome) and returns the stored
// marker. An end without a recorded start is stored with the end as its start, so a lost start
// never loses the end.
func (s *Store) EndMarker(ctx context.Context, m Marker) (Marker, error) {
	if err := m.check(); err != nil {
		return Marker{}, err
	}
	end := time.Time{}
	if m.EndedAt != nil {
		end = *m.EndedAt
	}
	row := s.db.QueryRowContext(ctx, `
		INSERT INTO release_markers (release_id, runbook, version, environment, stage, action, started_at, ended_at, outcome)
		VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7::timestamptz, now()), COALESCE($7::timestamptz, now()), $8)
		ON CONFLICT (release_id, action, stage) DO UPDATE SET
			ended_at = COALESCE(release_markers.ended_at, EXCLUDED.ended_at),
			outcome = CASE WHEN release_markers.ended_at IS NULL THEN EXCLUDED.outcome ELSE release_markers.outcome END
		RETURNING `+markerColumns,
		m.ReleaseID, m.Runbook, m.Version, m.Environment, m.Stage, m.Action, nullTime(end), m.Outcome)
	out, err := scanMarker(row.Scan)
	if err != nil {
		return Marker{}, fmt.Errorf("end %s marker of release %q stage %q: %w", m.Action, m.ReleaseID, m.Stage, err)
	}
	return out, nil
}

// SetMarkerAnnotation remembers the Grafana annotation drawn for a marker.
func (s *Store) SetMarkerAnnotation(ctx context.Context, markerID, grafanaID int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE release_markers SET grafana_id = $2 WHERE id = $1`, markerID, grafanaID)
	if err != nil {
		return fmt.Errorf("set annotation of marker %d: %w", markerID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("set annotation of marker %d: %w", markerID, ErrNotFound)
	}
	return nil
}

func (m Marker) check() error {
	switch {
	case m.ReleaseID == "" || m.Runbook == "":
		return fmt.Errorf("marker: release id and runbook are required")
	case m.Action != MarkerDeploy && m.Action != MarkerRollback:
		return fmt.Errorf("marker: action %q is not %s or %s", m.Action, MarkerDeploy, MarkerRollback)
	}
	return nil
}

// MarkerFilter narrows a marker listing; empty fields match everything.
type MarkerFilter struct {
	ReleaseID   string
	Runbook     string
	Environment string
	// Since keeps markers that had not ended by then (ended after it, or still running).
	Since time.Time
	Limit int
}

// ListMarkers returns the markers matching f, oldest first: f.Limit of the newest, 100 when
// unset, 1000 at most.
func (s *Store) ListMarkers(ctx context.Context, f MarkerFilter) ([]Marker, error) {
	var w where
	w.eq("release_id", f.ReleaseID)
	w.eq("runbook", f.Runbook)
	w.eq("environment", f.Environment)
	if !f.Since.IsZero() {
		w.cond("(ended_at IS NULL OR ended_at >= " + w.arg(f.Since) + ")")
	}
	q := `SELECT * FROM (SELECT ` + markerColumns + ` FROM release_markers` + w.sql() +
		` ORDER BY started_at DESC, id DESC LIMIT ` + w.arg(clamp(f.Limit, defaultAuditLimit, maxAuditLimit)) +
		`) newest ORDER BY started_at, id`
	rows, err := s.db.QueryContext(ctx, q, w.args...)
	if err != nil {
		return nil, fmt.Errorf("list markers: %w", err)
	}
	defer rows.Close()
	out := []Marker{}
	for rows.Next() {
		m, err := scanMarker(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("list markers: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list markers: %w", err)
	}
	return out, nil
}

// Circuit breaker scopes.
const (
	BreakerRunbook     = "runbook"
	BreakerEnvironment = "environment"
)

// CircuitBreaker holds further releases of a runbook, or into an environment, after a
// rollback, until someone holding one of Roles clears it.
type CircuitBreaker struct {
	ID    int64  `json:"id"`
	Scope string `json:"scope"`
	Name  string `json:"name"`
	// ReleaseID is the release whose rollback tripped it; Reason why it rolled back.
	ReleaseID string    `json:"releaseId"`
	Reason    string    `json:"reason"`
	Roles     []string  `json:"roles"`
	TrippedAt time.Time `json:"trippedAt"`
	// ClearedBy, ClearedAt and ClearReason are set once it is cleared.
	ClearedBy   string     `json:"clearedBy,omitempty"`
	ClearedAt   *time.Time `json:"clearedAt,omitempty"`
	ClearReason string     `json:"clearReason,omitempty"`
}

// Open reports whether the breaker still holds releases.
func (b CircuitBreaker) Open() bool { return b.ClearedAt == nil }

const breakerColumns = `id, scope, name, release_id, reason, roles, tripped_at, COALESCE(cleared_by, ''), cleared_at, clear_reason`

func scanBreaker(scan func(...any) error) (CircuitBreaker, error) {
	var b CircuitBreaker
	err := scan(&b.ID, &b.Scope, &b.Name, &b.ReleaseID, &b.Reason, pq.Array(&b.Roles), &b.TrippedAt, &b.ClearedBy, &b.ClearedAt, &b.ClearReason)
	if b.Roles == nil {
		b.Roles = []string{}
	}
	return b, err
}

// TripBreaker opens the breaker b.Scope/b.Name for release b.ReleaseID and returns the open
// breaker: b, or the one already open (tripped by another release, which stands). A release
// trips a breaker once: a retried trip after someone cleared it does not trip it again.
func (s *Store) TripBreaker(ctx context.Context, b CircuitBreaker) (CircuitBreaker, error) {
	if b.Scope != BreakerRunbook && b.Scope != BreakerEnvironment {
		return CircuitBreaker{}, fmt.Errorf("trip circuit breaker: scope %q is not %s or %s", b.Scope, BreakerRunbook, BreakerEnvironment)
	}
	if b.Name == "" || b.ReleaseID == "" {
		return CircuitBreaker{}, fmt.Errorf("trip circuit breaker: name and release id are required")
	}
	roles := b.Roles
	if roles == nil {
		roles = []string{}
	}
	if _, err := s.db.ExecContext(ctx, `
		INSERT INTO circuit_breakers (scope, name, release_id, reason, roles, tripped_at)
		VALUES ($1, $2, $3, $4, $5, COALESCE($6::timestamptz, now()))
		ON CONFLICT DO NOTHING`,
		b.Scope, b.Name, b.ReleaseID, b.Reason, pq.Array(roles), nullTime(b.TrippedAt)); err != nil {
		return CircuitBreaker{}, fmt.Errorf("trip circuit breaker %s/%s: %w", b.Scope, b.Name, err)
	}
	row := s.db.QueryRowContext(ctx, `SELECT `+breakerColumns+` FROM circuit_breakers
		WHERE scope = $1 AND name = $2 AND (cleared_at IS NULL OR release_id = $3)
		ORDER BY cleared_at IS NULL DESC, id DESC LIMIT 1`, b.Scope, b.Name, b.ReleaseID)
	out, err := scanBreaker(row.Scan)
	if err != nil {
		return CircuitBreaker{}, fmt.Errorf("trip circuit breaker %s/%s: %w", b.Scope, b.Name, err)
	}
	return out, nil
}

// OpenBreakers returns the open breakers that hold a release of runbook into any of
// environments: the runbook's, and those of the environments. Runbook first, then the
// environments in the order given.
func (s *Store) OpenBreakers(ctx context.Context, runbook string, environments []string) ([]CircuitBreaker, error) {
	if environments == nil {
		environments = []string{}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+breakerColumns+` FROM circuit_breakers
		WHERE cleared_at IS NULL AND ((scope = 'runbook' AND name = $1) OR (scope = 'environment' AND name = ANY($2)))
		ORDER BY scope = 'runbook' DESC, array_position($2, name), id`, runbook, pq.Array(environments))
	if err != nil {
		return nil, fmt.Errorf("open circuit breakers of runbook %q: %w", runbook, err)
	}
	return collectBreakers(rows, "open circuit breakers of runbook "+strconv.Quote(runbook))
}

// BreakerFilter narrows a breaker listing.
type BreakerFilter struct {
	// All lists cleared breakers too, newest first; otherwise only open ones.
	All   bool
	Limit int
}

// ListBreakers returns open breakers (or all, with f.All), newest first.
func (s *Store) ListBreakers(ctx context.Context, f BreakerFilter) ([]CircuitBreaker, error) {
	cond := ` WHERE cleared_at IS NULL`
	if f.All {
		cond = ""
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+breakerColumns+` FROM circuit_breakers`+cond+
		` ORDER BY tripped_at DESC, id DESC LIMIT $1`, clamp(f.Limit, defaultAuditLimit, maxAuditLimit))
	if err != nil {
		return nil, fmt.Errorf("list circuit breakers: %w", err)
	}
	return collectBreakers(rows, "list circuit breakers")
}

// ClearBreaker clears the open breaker scope/name and returns it; an error wrapping
// ErrNotFound when none is open.
func (s *Store) ClearBreaker(ctx context.Context, scope, name, by, reason string, at time.Time) (CircuitBreaker, error) {
	if by == "" {
		return CircuitBreaker{}, fmt.Errorf("clear circuit breaker %s/%s: who clears it is required", scope, name)
	}
	row := s.db.QueryRowContext(ctx, `
		UPDATE circuit_breakers SET cleared_by = $3, cleared_at = COALESCE($4::timestamptz, now()), clear_reason = $5
		WHERE scope = $1 AND name = $2 AND cleared_at IS NULL
		RETURNING `+breakerColumns, scope, name, by, nullTime(at), reason)
	b, err := scanBreaker(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return CircuitBreaker{}, fmt.Errorf("clear circuit breaker %s/%s: no open breaker: %w", scope, name, ErrNotFound)
	}
	if err != nil {
		return CircuitBreaker{}, fmt.Errorf("clear circuit breaker %s/%s: %w", scope, name, err)
	}
	return b, nil
}

// OpenBreaker returns the open breaker scope/name, or an error wrapping ErrNotFound.
func (s *Store) OpenBreaker(ctx context.Context, scope, name string) (CircuitBreaker, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+breakerColumns+` FROM circuit_breakers
		WHERE scope = $1 AND name = $2 AND cleared_at IS NULL`, scope, name)
	b, err := scanBreaker(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return CircuitBreaker{}, fmt.Errorf("circuit breaker %s/%s: no open breaker: %w", scope, name, ErrNotFound)
	}
	if err != nil {
		return CircuitBreaker{}, fmt.Errorf("circuit breaker %s/%s: %w", scope, name, err)
	}
	return b, nil
}

func collectBreakers(rows *sql.Rows, what string) ([]CircuitBreaker, error) {
	defer rows.Close()
	out := []CircuitBreaker{}
	for rows.Next() {
		b, err := scanBreaker(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// jsonText is raw JSON as text for a ::jsonb parameter, or NULL when empty.
func jsonText(raw json.RawMessage) sql.NullString {
	if len(raw) == 0 || string(raw) == "null" {
		return sql.NullString{}
	}
	return sql.NullString{String: string(raw), Valid: true}
}

func rawOrNil(b []byte) json.RawMessage {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	return json.RawMessage(b)
}
