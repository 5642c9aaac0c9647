package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Outcomes counts how earlier releases ended: Failed are those that rolled back or failed.
type Outcomes struct {
	Total  int `json:"total" db:"total"`
	Failed int `json:"failed" db:"failed"`
}

// RecordAssessment stores the risk a release was scored with and the components it ships.
// Writing the same assessment twice (a retried activity) changes nothing.
func (s *Store) RecordAssessment(ctx context.Context, releaseID string, score int, risk json.RawMessage, components []string) error {
	if components == nil {
		components = []string{}
	}
	res, err := s.db.ExecContext(ctx, `
		UPDATE releases SET risk_score = $2, risk = $3, components = $4 WHERE id = $1`,
		releaseID, score, string(risk), pq.Array(components))
	if err != nil {
		return fmt.Errorf("record risk of release %q: %w", releaseID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("record risk of release %q: %w", releaseID, ErrNotFound)
	}
	return nil
}

// ReleaseOutcomes counts how the runbook's last limit finished releases ended (own), and the
// last limit finished releases of other runbooks that shipped one of components (comps).
// Release exclude (the one asking) is left out of both.
func (s *Store) ReleaseOutcomes(ctx context.Context, runbook string, components []string, exclude string, limit int) (own, comps Outcomes, err error) {
	const q = `
		SELECT count(*) AS total, count(*) FILTER (WHERE phase IN ('rolled_back', 'failed')) AS failed
		FROM (SELECT phase FROM releases WHERE %s AND id <> $2
		        AND phase IN ('succeeded', 'rolled_back', 'failed')
		      ORDER BY ended_at DESC NULLS LAST LIMIT $3) last`
	if err := s.db.GetContext(ctx, &own, fmt.Sprintf(q, "runbook = $1"), runbook, exclude, limit); err != nil {
		return own, comps, fmt.Errorf("count outcomes of runbook %q: %w", runbook, err)
	}
	if len(components) > 0 {
		if err := s.db.GetContext(ctx, &comps, fmt.Sprintf(q, "runbook <> $1 AND components && $4"),
			runbook, exclude, limit, pq.Array(components)); err != nil {
			return own, comps, fmt.Errorf("count outcomes of components %v: %w", components, err)
		}
	}
	return own, comps, nil
}

// ScanReport is a report CI attached to a release.
type ScanReport struct {
	ID         int64     `json:"id" db:"id"`
	ReleaseID  string    `json:"releaseId" db:"release_id"`
	Name       string    `json:"name" db:"name"`
	Format     string    `json:"format" db:"format"`
	Tool       string    `json:"tool" db:"tool"`
	Findings   int       `json:"findings" db:"findings"`
	Body       []byte    `json:"-" db:"body"`
	UploadedBy string    `json:"uploadedBy" db:"uploaded_by"`
	UploadedAt time.Time `json:"uploadedAt" db:"uploaded_at"`
}

// AttachReport stores a scan report for a release and returns it with its id.
func (s *Store) AttachReport(ctx context.Context, r ScanReport) (ScanReport, error) {
	err := s.db.GetContext(ctx, &r, `
		INSERT INTO scan_reports (release_id, name, format, tool, findings, body, uploaded_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		RETURNING id, uploaded_at`,
		r.ReleaseID, r.Name, r.Format, r.Tool, r.Findings, r.Body, r.UploadedBy)
	if err != nil {
		return r, fmt.Errorf("attach report %q to release %q: %w", r.Name, r.ReleaseID, err)
	}
	return r, nil
}

// Reports returns the reports attached to a release, oldest first, with their bodies.
func (s *Store) Reports(ctx context.Context, releaseID string) ([]ScanReport, error) {
	out := []ScanReport{}
	if err := s.db.SelectContext(ctx, &out, `
		SELECT id, release_id, name, format, tool, findings, body, uploaded_by, uploaded_at
		FROM scan_reports WHERE release_id = $1 ORDER BY uploaded_at, id`, releaseID); err != nil {
		return nil, fmt.Errorf("list reports of release %q: %w", releaseID, err)
	}
	return out, nil
}

// GateResult is the outcome of one readiness gate of a release, with its evidence.
type GateResult struct {
	ReleaseID  string          `json:"releaseId" db:"release_id"`
	Gate       string          `json:"gate" db:"gate"`
	Type       string          `json:"type" db:"type"`
	Outcome    string          `json:"outcome" db:"outcome"`
	Summary    string          `json:"summary" db:"summary"`
	Evidence   json.RawMessage `json:"evidence,omitempty" db:"evidence"`
	Waiver     string          `json:"waiver,omitempty" db:"waiver"`
	StartedAt  time.Time       `json:"startedAt" db:"started_at"`
	FinishedAt time.Time       `json:"finishedAt" db:"finished_at"`
}

// RecordGateResult stores a gate's outcome; a retried write replaces it with the same.
func (s *Store) RecordGateResult(ctx context.Context, g GateResult) error {
	evidence := []byte(g.Evidence)
	if len(evidence) == 0 {
		evidence = []byte("{}")
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO gate_results (release_id, gate, type, outcome, summary, evidence, waiver, started_at, finished_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (release_id, gate) DO UPDATE SET
			type = EXCLUDED.type, outcome = EXCLUDED.outcome, summary = EXCLUDED.summary,
			evidence = EXCLUDED.evidence, waiver = EXCLUDED.waiver,
			started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at`,
		g.ReleaseID, g.Gate, g.Type, g.Outcome, storable(g.Summary), string(storableJSON(evidence)), g.Waiver, g.StartedAt, g.FinishedAt)
	if err != nil {
		return fmt.Errorf("record result of gate %q of release %q: %w", g.Gate, g.ReleaseID, err)
	}
	return nil
}

// GateResults returns a release's gate results by gate name.
func (s *Store) GateResults(ctx context.Context, releaseID string) ([]GateResult, error) {
	out := []GateResult{}
	if err := s.db.SelectContext(ctx, &out, `
		SELECT release_id, gate, type, outcome, summary, evidence, waiver, started_at, finished_at
		FROM gate_results WHERE release_id = $1 ORDER BY gate`, releaseID); err != nil {
		return nil, fmt.Errorf("list gate results of release %q: %w", releaseID, err)
	}
	return out, nil
}

// Drill is one restore drill of a component's data.
type Drill struct {
	ID         int64     `json:"id" db:"id"`
	Component  string    `json:"component" db:"component"`
	Outcome    string    `json:"outcome" db:"outcome"`
	DrilledAt  time.Time `json:"drilledAt" db:"drilled_at"`
	Notes      string    `json:"notes,omitempty" db:"notes"`
	RecordedBy string    `json:"recordedBy" db:"recorded_by"`
	RecordedAt time.Time `json:"recordedAt" db:"recorded_at"`
}

// Drill outcomes.
const (
	DrillPassed = "passed"
	DrillFailed = "failed"
)

// RecordDrill stores a restore drill.
func (s *Store) RecordDrill(ctx context.Context, d Drill) (Drill, error) {
	err := s.db.GetContext(ctx, &d, `
		INSERT INTO restore_drills (component, outcome, drilled_at, notes, recorded_by)
		VALUES ($1, $2, $3, $4, $5) RETURNING id, recorded_at`,
		d.Component, d.Outcome, d.DrilledAt, storable(d.Notes), d.RecordedBy)
	if err != nil {
		return d, fmt.Errorf("record restore drill of %q: %w", d.Component, err)
	}
	return d, nil
}

// LastPassedDrill returns the newest passed drill of a component, or an error wrapping
// ErrNotFound when there is none.
func (s *Store) LastPassedDrill(ctx context.Context, component string) (Drill, error) {
	var d Drill
	err := s.db.GetContext(ctx, &d, `
		SELECT id, component, outcome, drilled_at, notes, recorded_by, recorded_at FROM restore_drills
		WHERE component = $1 AND outcome = 'passed' ORDER BY drilled_at DESC LIMIT 1`, component)
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("last restore drill of %q: %w", component, ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("last restore drill of %q: %w", component, err)
	}
	return d, nil
}
