package activities

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/analysis"
	"github.com/trainyard/trainyard/integrations/grafana"
	"github.com/trainyard/trainyard/integrations/prometheus"
	"github.com/trainyard/trainyard/store"
)

// incidentStore is a Store that also keeps incidents, markers and breakers in memory.
type incidentStore struct {
	fakeStore
	mu        sync.Mutex
	incidents []store.Incident
	series    map[string][]store.Series
	markers   []store.Marker
	breakers  []store.CircuitBreaker
	audits    []store.AuditEvent
}

func (s *incidentStore) RecordIncident(_ context.Context, in store.Incident) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.incidents = append(s.incidents, in)
	return nil
}

func (s *incidentStore) AddSeries(_ context.Context, id string, series []store.Series) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.series == nil {
		s.series = map[string][]store.Series{}
	}
	s.series[id] = append(s.series[id], series...)
	return nil
}

func (s *incidentStore) find(m store.Marker) int {
	for i, x := range s.markers {
		if x.ReleaseID == m.ReleaseID && x.Action == m.Action && x.Stage == m.Stage {
			return i
		}
	}
	return -1
}

func (s *incidentStore) StartMarker(_ context.Context, m store.Marker) (store.Marker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.find(m); i >= 0 {
		return s.markers[i], nil
	}
	m.ID = int64(len(s.markers) + 1)
	s.markers = append(s.markers, m)
	return m, nil
}

func (s *incidentStore) EndMarker(_ context.Context, m store.Marker) (store.Marker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(m)
	if i < 0 {
		m.ID, m.StartedAt = int64(len(s.markers)+1), *m.EndedAt
		s.markers = append(s.markers, m)
		return m, nil
	}
	s.markers[i].EndedAt, s.markers[i].Outcome = m.EndedAt, m.Outcome
	return s.markers[i], nil
}

func (s *incidentStore) SetMarkerAnnotation(_ context.Context, id, grafanaID int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.markers[id-1].GrafanaID = grafanaID
	return nil
}

func (s *incidentStore) TripBreaker(_ context.Context, b store.CircuitBreaker) (store.CircuitBreaker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.breakers {
		if x.Scope == b.Scope && x.Name == b.Name && x.Open() {
			return x, nil
		}
	}
	s.breakers = append(s.breakers, b)
	return b, nil
}

func (s *incidentStore) OpenBreakers(_ context.Context, runbook string, envs []string) ([]store.CircuitBreaker, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.CircuitBreaker
	for _, b := range s.breakers {
		if b.Scope == store.BreakerRunbook && b.Name == runbook {
			out = append(out, b)
		}
	}
	return out, nil
}

func (s *incidentStore) AppendAudit(_ context.Context, e store.AuditEvent) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audits = append(s.audits, e)
	return int64(len(s.audits)), nil
}

func TestRecordEvidence_KeepsTheBreachThenTheRangeResults(t *testing.T) {
	t.Parallel()
	st := &incidentStore{}
	var asked []time.Duration
	prom := &prometheus.Fake{RangeFunc: func(_ context.Context, q string, start, end time.Time, step time.Duration) ([]prometheus.Point, error) {
		asked = append(asked, step)
		if q == "broken" {
			return nil, &prometheus.Error{Endpoint: "/api/v1/query_range", StatusCode: 400, Type: "bad_data", Message: "parse error"}
		}
		return []prometheus.Point{{At: start, Value: 0.01}, {At: end, Value: 0.4}}, nil
	}}
	acts := &Activities{Store: st, Metrics: prom}
	breach := &analysis.Breach{Check: "error-rate", Kind: analysis.KindAnalysis, Message: "failed", At: time.Now()}
	req := EvidenceRequest{
		ReleaseID: "r1", Runbook: "shop", Version: "1.2.3", Environment: "production", Breach: breach,
		Queries: []EvidenceQuery{{Name: "error-rate", Query: errorRateQuery}, {Name: "typo", Query: "broken"}},
		From:    time.Now().Add(-2 * time.Hour), Status: map[string]any{"phase": "stabilizing"},
	}

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.RecordEvidence, req)
	require.NoError(t, err)

	require.Len(t, st.incidents, 1)
	var b analysis.Breach
	require.NoError(t, json.Unmarshal(st.incidents[0].Breach, &b))
	require.Equal(t, "error-rate", b.Check)
	require.JSONEq(t, `{"phase":"stabilizing"}`, string(st.incidents[0].Status))
	series := st.series["r1"]
	require.Len(t, series, 2)
	require.Len(t, series[0].Points, 2)
	require.Equal(t, 0.4, series[0].Points[1].Value)
	require.Equal(t, 15*time.Second, series[0].Step, "two hours in at most 500 points")
	require.Contains(t, series[1].Error, "parse error", "a failed query is kept with its error")
	require.Equal(t, []time.Duration{15 * time.Second, 15 * time.Second}, asked)
}

func TestRecordEvidence_StatusOnlyTouchesNoMetrics(t *testing.T) {
	t.Parallel()
	st := &incidentStore{}
	prom := &prometheus.Fake{}
	acts := &Activities{Store: st, Metrics: prom}
	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.RecordEvidence, EvidenceRequest{ReleaseID: "r1", Runbook: "shop", Status: map[string]any{"phase": "rolled_back"}})
	require.NoError(t, err)
	require.Len(t, st.incidents, 1)
	require.Nil(t, st.incidents[0].Breach)
	require.Empty(t, prom.Queries())
}

func TestRecordEvidence_NeedsTheIncidentStore(t *testing.T) {
	t.Parallel()
	acts := &Activities{Store: &fakeStore{}}
	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.RecordEvidence, EvidenceRequest{ReleaseID: "r1", Runbook: "shop"})
	require.ErrorContains(t, err, "main worker")
}

func TestEvidenceStep_SpreadsTheRangeOverAtMost500Points(t *testing.T) {
	t.Parallel()
	cases := []struct {
		span, want time.Duration
	}{
		{time.Minute, time.Second},
		{500 * time.Second, time.Second},
		{501 * time.Second, 2 * time.Second},
		{2 * time.Hour, 15 * time.Second},
		{25 * time.Hour, 180 * time.Second},
	}
	for _, tc := range cases {
		got := evidenceStep(tc.span)
		require.Equal(t, tc.want, got, tc.span.String())
		require.LessOrEqual(t, int64(tc.span/got), int64(maxEvidencePoints))
	}
}

func TestRecordMarker_DrawsAPointThenARegionOnGrafana(t *testing.T) {
	t.Parallel()
	st := &incidentStore{}
	fake := &grafana.Fake{Token: "glsa_test"}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	acts := &Activities{Store: st, Grafana: &Annotations{Client: &grafana.Client{BaseURL: srv.URL, Token: "glsa_test", HTTP: srv.Client()}, Tags: []string{"trainyard"}}}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	req := MarkerRequest{ReleaseID: "r1", Runbook: "shop", Version: "1.2.3", Environment: "production", Stage: "prod", Action: store.MarkerDeploy, At: t0}
	env := newActivityEnv(t, acts)

	_, err := env.ExecuteActivity(acts.RecordMarker, req)
	require.NoError(t, err)
	_, err = env.ExecuteActivity(acts.RecordMarker, req)
	require.NoError(t, err, "a retried start")
	anns := fake.Annotations()
	require.Len(t, anns, 1, "a retried start draws nothing more")
	require.Equal(t, []string{"trainyard", "deploy", "runbook:shop", "release:r1", "environment:production"}, anns[0].Tags)
	require.Contains(t, anns[0].Text, "deploy of shop 1.2.3, stage prod (production): started")

	end := req
	end.End, end.Outcome, end.At = true, "succeeded", t0.Add(90*time.Second)
	_, err = env.ExecuteActivity(acts.RecordMarker, end)
	require.NoError(t, err)
	anns = fake.Annotations()
	require.Len(t, anns, 1)
	require.True(t, anns[0].End().Equal(t0.Add(90*time.Second)), "the annotation became a region")
	require.Contains(t, anns[0].Text, "succeeded after 1m30s")
	require.Equal(t, int64(1), st.markers[0].GrafanaID)
}

func TestRecordMarker_GrafanaDownNeverFailsTheMarker(t *testing.T) {
	t.Parallel()
	st := &incidentStore{}
	fake := &grafana.Fake{}
	fake.FailNext(http.StatusServiceUnavailable, http.StatusServiceUnavailable)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	acts := &Activities{Store: st, Grafana: &Annotations{Client: &grafana.Client{BaseURL: srv.URL, HTTP: srv.Client()}}}
	req := MarkerRequest{ReleaseID: "r1", Runbook: "shop", Stage: "prod", Action: store.MarkerRollback, At: time.Now()}

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.RecordMarker, req)
	require.NoError(t, err)
	require.Len(t, st.markers, 1, "the store is the record")
	require.Zero(t, st.markers[0].GrafanaID)

	// At the end, with Grafana back, the marker is drawn as a region after all.
	req.End, req.Outcome, req.At = true, "failed", req.At.Add(time.Minute)
	_, err = newActivityEnv(t, acts).ExecuteActivity(acts.RecordMarker, req)
	require.NoError(t, err)
	_, err = newActivityEnv(t, acts).ExecuteActivity(acts.RecordMarker, req)
	require.NoError(t, err)
	require.Len(t, fake.Annotations(), 1)
	require.False(t, fake.Annotations()[0].End().Equal(fake.Annotations()[0].Start()))
}

func TestTripCircuitBreakers_AuditsOwnTripsOnly(t *testing.T) {
	t.Parallel()
	st := &incidentStore{breakers: []store.CircuitBreaker{{Scope: store.BreakerRunbook, Name: "web", ReleaseID: "older"}}}
	acts := &Activities{Store: st}
	env := newActivityEnv(t, acts)

	v, err := env.ExecuteActivity(acts.TripCircuitBreakers, TripRequest{ReleaseID: "r1", Scope: store.BreakerRunbook, Names: []string{"web"}, Reason: "x", Roles: []string{"sre"}})
	require.NoError(t, err)
	var got []store.CircuitBreaker
	require.NoError(t, v.Get(&got))
	require.Equal(t, "older", got[0].ReleaseID, "an open breaker stands")
	require.Empty(t, st.audits)

	_, err = env.ExecuteActivity(acts.TripCircuitBreakers, TripRequest{ReleaseID: "r1", Scope: store.BreakerEnvironment, Names: []string{"production"}, Reason: "x"})
	require.NoError(t, err)
	require.Len(t, st.audits, 1)
	require.Equal(t, "circuit-breaker.trip", st.audits[0].Action)
	require.Equal(t, store.SystemActor, st.audits[0].Actor)

	v, err = env.ExecuteActivity(acts.OpenCircuitBreakers, BreakerQuery{Runbook: "web"})
	require.NoError(t, err)
	require.NoError(t, v.Get(&got))
	require.Len(t, got, 1)
}
