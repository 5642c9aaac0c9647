package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/trainyard/trainyard/analysis"
	"github.com/trainyard/trainyard/integrations/grafana"
	"github.com/trainyard/trainyard/store"
)

// IncidentStore is the part of the store that keeps incidents, release markers and circuit
// breakers. A *store.Store has it; the activities find it on Activities.Store, so workers
// need no extra wiring.
type IncidentStore interface {
	RecordIncident(ctx context.Context, in store.Incident) error
	AddSeries(ctx context.Context, releaseID string, series []store.Series) error
	StartMarker(ctx context.Context, m store.Marker) (store.Marker, error)
	EndMarker(ctx context.Context, m store.Marker) (store.Marker, error)
	SetMarkerAnnotation(ctx context.Context, markerID, grafanaID int64) error
	TripBreaker(ctx context.Context, b store.CircuitBreaker) (store.CircuitBreaker, error)
	OpenBreakers(ctx context.Context, runbook string, environments []string) ([]store.CircuitBreaker, error)
}

// Annotations draws release markers on Grafana (grafana.url); nil on Activities when off.
type Annotations struct {
	Client grafana.Annotator
	// Tags are put on every annotation, before the marker's own.
	Tags []string
}

func (a *Activities) incidentStore() (IncidentStore, error) {
	st, ok := a.Store.(IncidentStore)
	if !ok || a.Store == nil {
		return nil, temporal.NewNonRetryableApplicationError(
			"this worker's store keeps no incidents, markers or circuit breakers: incident activities run on the main worker", "Misconfigured", nil)
	}
	return st, nil
}

// EvidenceQuery is one query whose range result is kept.
type EvidenceQuery struct {
	Name  string `json:"name"`
	Query string `json:"query"`
}

// EvidenceRequest keeps what a person needs to understand an incident: what breached, the
// watched queries from before the release to now, and the release's status (timeline,
// decisions, command outputs). Each part is optional; a later request replaces the status.
type EvidenceRequest struct {
	ReleaseID   string           `json:"releaseId"`
	Runbook     string           `json:"runbook"`
	Version     string           `json:"version"`
	Environment string           `json:"environment,omitempty"`
	Breach      *analysis.Breach `json:"breach,omitempty"`
	Queries     []EvidenceQuery  `json:"queries,omitempty"`
	// From is where the range results start (before the release started); they end now.
	From time.Time `json:"from,omitempty"`
	// Status is the release status as the workflow sees it (workflows.ReleaseStatus);
	// StatusSeq orders the release's evidence writes, which may finish in any order.
	Status    any   `json:"status,omitempty"`
	StatusSeq int64 `json:"statusSeq,omitempty"`
}

// maxEvidencePoints bounds each kept series: enough to see a breach's shape, small enough to
// keep thousands of incidents.
const maxEvidencePoints = 500

// RecordEvidence stores the incident and, when queries are given, their range results. The
// incident is written first, so a range query Prometheus cannot answer never loses the
// breach; a query that fails is kept with its error instead of points.
func (a *Activities) RecordEvidence(ctx context.Context, req EvidenceRequest) error {
	st, err := a.incidentStore()
	if err != nil {
		return err
	}
	in := store.Incident{ReleaseID: req.ReleaseID, Runbook: req.Runbook, Version: req.Version, Environment: req.Environment, StatusSeq: req.StatusSeq}
	if req.Breach != nil {
		if in.Breach, err = json.Marshal(req.Breach); err != nil {
			return fmt.Errorf("record evidence of %s: encode breach: %w", req.ReleaseID, err)
		}
	}
	if req.Status != nil {
		if in.Status, err = json.Marshal(req.Status); err != nil {
			return fmt.Errorf("record evidence of %s: encode status: %w", req.ReleaseID, err)
		}
	}
	if err := st.RecordIncident(ctx, in); err != nil {
		return fmt.Errorf("record evidence of %s: %w", req.ReleaseID, err)
	}
	if len(req.Queries) == 0 {
		return nil
	}
	to := time.Now().Truncate(time.Second)
	from := req.From.Truncate(time.Second)
	if from.IsZero() || !from.Before(to) {
		from = to.Add(-time.Hour)
	}
	step := evidenceStep(to.Sub(from))
	// Prometheus answers at from + k*step; aligning from makes the last point now.
	from = to.Add(-step * ((to.Sub(from) + step - 1) / step))
	series := make([]store.Series, 0, len(req.Queries))
	for _, q := range req.Queries {
		se := store.Series{Name: q.Name, Query: q.Query, From: from, To: to, Step: step}
		if a.Metrics == nil {
			se.Error = "no Prometheus is configured (prometheus.url)"
			series = append(series, se)
			continue
		}
		pts, err := a.Metrics.QueryRange(ctx, q.Query, from, to, step)
		if err != nil {
			se.Error = err.Error()
		}
		for _, p := range pts {
			se.Points = append(se.Points, store.Point{At: p.At, Value: p.Value})
		}
		series = append(series, se)
	}
	if err := st.AddSeries(ctx, req.ReleaseID, series); err != nil {
		return fmt.Errorf("record evidence of %s: %w", req.ReleaseID, err)
	}
	return nil
}

// evidenceStep is the whole second that spreads span over at most maxEvidencePoints points.
func evidenceStep(span time.Duration) time.Duration {
	step := (span + maxEvidencePoints - 1) / maxEvidencePoints
	step = (step + time.Second - 1) / time.Second * time.Second
	return max(step, time.Second)
}

// MarkerRequest records the start or end of a stage's deploy or rollback.
type MarkerRequest struct {
	ReleaseID   string `json:"releaseId"`
	Runbook     string `json:"runbook"`
	Version     string `json:"version"`
	Environment string `json:"environment,omitempty"`
	Stage       string `json:"stage,omitempty"`
	// Action is store.MarkerDeploy or store.MarkerRollback.
	Action string `json:"action"`
	// End marks the end (with Outcome); otherwise the start.
	End     bool      `json:"end,omitempty"`
	Outcome string    `json:"outcome,omitempty"`
	At      time.Time `json:"at"`
}

// RecordMarker stores the marker and draws it on Grafana when that is configured: a point at
// the start, widened to a region at the end. Grafana being unavailable is logged, never an
// error: the store is the record, and a marker must not hold a release or its rollback.
func (a *Activities) RecordMarker(ctx context.Context, req MarkerRequest) error {
	st, err := a.incidentStore()
	if err != nil {
		return err
	}
	m := store.Marker{
		ReleaseID: req.ReleaseID, Runbook: req.Runbook, Version: req.Version, Environment: req.Environment,
		Stage: req.Stage, Action: req.Action,
	}
	if !req.End {
		m.StartedAt = req.At
		if m, err = st.StartMarker(ctx, m); err != nil {
			return fmt.Errorf("record marker: %w", err)
		}
	} else {
		at := req.At
		m.EndedAt, m.Outcome = &at, req.Outcome
		if m, err = st.EndMarker(ctx, m); err != nil {
			return fmt.Errorf("record marker: %w", err)
		}
	}
	a.annotate(ctx, st, m)
	return nil
}

// annotate draws or widens m's Grafana annotation.
func (a *Activities) annotate(ctx context.Context, st IncidentStore, m store.Marker) {
	if a.Grafana == nil || a.Grafana.Client == nil {
		return
	}
	log := a.logger().With("release", m.ReleaseID, "stage", m.Stage, "action", m.Action)
	ann := grafana.Annotation{Time: m.StartedAt, Tags: a.markerTags(m), Text: markerText(m)}
	if m.EndedAt != nil {
		ann.TimeEnd = *m.EndedAt
	}
	if m.GrafanaID != 0 {
		if m.EndedAt == nil {
			return
		}
		if err := a.Grafana.Client.Update(ctx, m.GrafanaID, grafana.Annotation{TimeEnd: ann.TimeEnd, Text: ann.Text}); err != nil {
			log.Warn("grafana annotation not updated", "annotation", m.GrafanaID, "error", err)
		}
		return
	}
	id, err := a.Grafana.Client.Create(ctx, ann)
	if err != nil {
		log.Warn("grafana annotation not drawn", "error", err)
		return
	}
	if err := st.SetMarkerAnnotation(ctx, m.ID, id); err != nil {
		log.Warn("grafana annotation drawn but not remembered", "annotation", id, "error", err)
	}
}

func (a *Activities) markerTags(m store.Marker) []string {
	tags := slices.Clone(a.Grafana.Tags)
	tags = append(tags, m.Action, "runbook:"+m.Runbook, "release:"+m.ReleaseID)
	if m.Environment != "" {
		tags = append(tags, "environment:"+m.Environment)
	}
	return tags
}

func markerText(m store.Marker) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s of %s %s", m.Action, m.Runbook, m.Version)
	if m.Stage != "" {
		fmt.Fprintf(&b, ", stage %s", m.Stage)
	}
	if m.Environment != "" {
		fmt.Fprintf(&b, " (%s)", m.Environment)
	}
	switch {
	case m.EndedAt == nil:
		b.WriteString(": started")
	case m.Outcome != "":
		fmt.Fprintf(&b, ": %s after %s", m.Outcome, m.EndedAt.Sub(m.StartedAt).Round(time.Second))
	default:
		fmt.Fprintf(&b, ": ended after %s", m.EndedAt.Sub(m.StartedAt).Round(time.Second))
	}
	fmt.Fprintf(&b, " [%s]", m.ReleaseID)
	return b.String()
}

// BreakerQuery asks which open circuit breakers hold a release of Runbook into Environments.
type BreakerQuery struct {
	Runbook      string   `json:"runbook"`
	Environments []string `json:"environments,omitempty"`
}

// OpenCircuitBreakers returns the open breakers that hold the release.
func (a *Activities) OpenCircuitBreakers(ctx context.Context, q BreakerQuery) ([]store.CircuitBreaker, error) {
	st, err := a.incidentStore()
	if err != nil {
		return nil, err
	}
	open, err := st.OpenBreakers(ctx, q.Runbook, q.Environments)
	if err != nil {
		return nil, fmt.Errorf("check circuit breakers: %w", err)
	}
	return open, nil
}

// TripRequest opens circuit breakers after a release's rollback.
type TripRequest struct {
	ReleaseID string `json:"releaseId"`
	// Scope is store.BreakerRunbook or store.BreakerEnvironment; Names the runbook or the
	// environments.
	Scope  string   `json:"scope"`
	Names  []string `json:"names"`
	Reason string   `json:"reason"`
	// Roles may clear them (the runbook's rollbackAuthority).
	Roles []string  `json:"roles"`
	At    time.Time `json:"at"`
}

// TripCircuitBreakers opens the breakers and audits each trip; it returns the open breakers
// (one tripped earlier by another release stands, and is returned instead).
func (a *Activities) TripCircuitBreakers(ctx context.Context, req TripRequest) ([]store.CircuitBreaker, error) {
	st, err := a.incidentStore()
	if err != nil {
		return nil, err
	}
	out := make([]store.CircuitBreaker, 0, len(req.Names))
	for _, name := range req.Names {
		b, err := st.TripBreaker(ctx, store.CircuitBreaker{
			Scope: req.Scope, Name: name, ReleaseID: req.ReleaseID, Reason: req.Reason, Roles: req.Roles, TrippedAt: req.At,
		})
		if err != nil {
			return nil, fmt.Errorf("trip circuit breakers of %s: %w", req.ReleaseID, err)
		}
		if b.ReleaseID == req.ReleaseID {
			details, _ := json.Marshal(map[string]any{"scope": b.Scope, "name": b.Name, "reason": b.Reason, "roles": b.Roles})
			if _, err := a.Store.AppendAudit(ctx, store.AuditEvent{
				Actor: store.SystemActor, Action: "circuit-breaker.trip", ReleaseID: req.ReleaseID, Outcome: store.OutcomeAllowed, Details: details,
			}); err != nil {
				return nil, fmt.Errorf("audit circuit breaker %s/%s: %w", b.Scope, b.Name, err)
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// Notification kinds of stabilization and rollback.
const (
	// NotifyBreach: the stabilization window was breached (and, with onBreach: page, the
	// rollback authority must decide).
	NotifyBreach = "breach"
	// NotifyRollbackBudget: a rollback is still running after its budget.
	NotifyRollbackBudget = "rollback-budget-exceeded"
)
