package store

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRecordIncident_KeepsTheFirstBreachAndTheLatestStatus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	first := Incident{ReleaseID: "r1", Runbook: "web", Version: "2.0.0", Environment: "production",
		Breach: json.RawMessage(`{"check":"error-rate"}`), Status: json.RawMessage(`{"phase":"stabilizing"}`), StatusSeq: 1}
	require.NoError(t, s.RecordIncident(ctx, first))
	require.NoError(t, s.RecordIncident(ctx, first), "a retried write changes nothing")

	// After the rollback: a status without a breach; the breach stays.
	require.NoError(t, s.RecordIncident(ctx, Incident{ReleaseID: "r1", Runbook: "web", Status: json.RawMessage(`{"phase":"rolled_back"}`), StatusSeq: 2}))
	got, err := s.GetIncident(ctx, "r1")
	require.NoError(t, err)
	require.JSONEq(t, `{"check":"error-rate"}`, string(got.Breach))
	require.JSONEq(t, `{"phase":"rolled_back"}`, string(got.Status))
	require.Equal(t, "production", got.Environment, "an empty environment does not erase the known one")
	require.Equal(t, "2.0.0", got.Version)

	// A write with neither keeps both.
	require.NoError(t, s.RecordIncident(ctx, Incident{ReleaseID: "r1", Runbook: "web"}))
	got, err = s.GetIncident(ctx, "r1")
	require.NoError(t, err)
	require.JSONEq(t, `{"phase":"rolled_back"}`, string(got.Status))

	_, err = s.GetIncident(ctx, "nope")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestAddSeries_KeepsNaNAndReplacesByName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	from := t0
	se := Series{Name: "error-rate", Query: "sum(rate(x[1m]))", From: from, To: from.Add(time.Minute), Step: 30 * time.Second,
		Points: []Point{{At: from, Value: 0.01}, {At: from.Add(30 * time.Second), Value: math.NaN()}, {At: from.Add(time.Minute), Value: 0.5}}}
	require.NoError(t, s.AddSeries(ctx, "r1", []Series{se, {Name: "burn", Query: "q", From: from, To: from, Step: time.Second, Error: "no data"}}))

	got, err := s.IncidentSeries(ctx, "r1")
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, "burn", got[0].Name)
	require.Equal(t, "no data", got[0].Error)
	require.Empty(t, got[0].Points)
	er := got[1]
	require.Equal(t, 30*time.Second, er.Step)
	require.Len(t, er.Points, 3)
	require.True(t, er.Points[0].At.Equal(from))
	require.Equal(t, 0.01, er.Points[0].Value)
	require.True(t, math.IsNaN(er.Points[1].Value))
	require.Equal(t, 0.5, er.Points[2].Value)

	se.Points = se.Points[:1]
	require.NoError(t, s.AddSeries(ctx, "r1", []Series{se}))
	got, err = s.IncidentSeries(ctx, "r1")
	require.NoError(t, err)
	require.Len(t, got[1].Points, 1, "a series of the same name is replaced")

	require.Error(t, s.AddSeries(ctx, "r1", []Series{{Name: "x", Step: 0}}), "a series needs a step")
}

func TestMarkers_StartEndAndFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	deploy := Marker{ReleaseID: "r1", Runbook: "web", Version: "2.0.0", Environment: "production", Stage: "prod", Action: MarkerDeploy, StartedAt: at(0)}
	m, err := s.StartMarker(ctx, deploy)
	require.NoError(t, err)
	require.NotZero(t, m.ID)
	require.Nil(t, m.EndedAt)
	again, err := s.StartMarker(ctx, Marker{ReleaseID: "r1", Runbook: "web", Stage: "prod", Action: MarkerDeploy, StartedAt: at(5)})
	require.NoError(t, err)
	require.Equal(t, m.ID, again.ID, "a retried start returns the stored marker")
	require.True(t, again.StartedAt.Equal(at(0)))

	require.NoError(t, s.SetMarkerAnnotation(ctx, m.ID, 42))
	deploy.EndedAt, deploy.Outcome = ptr(at(3)), "succeeded"
	ended, err := s.EndMarker(ctx, deploy)
	require.NoError(t, err)
	require.Equal(t, int64(42), ended.GrafanaID)
	require.True(t, ended.EndedAt.Equal(at(3)))
	require.Equal(t, "succeeded", ended.Outcome)
	late := deploy
	late.EndedAt, late.Outcome = ptr(at(9)), "failed"
	ended, err = s.EndMarker(ctx, late)
	require.NoError(t, err)
	require.True(t, ended.EndedAt.Equal(at(3)), "the first end stands")
	require.Equal(t, "succeeded", ended.Outcome)

	// An end whose start was lost is kept, starting when it ended.
	rb, err := s.EndMarker(ctx, Marker{ReleaseID: "r1", Runbook: "web", Environment: "production", Stage: "prod", Action: MarkerRollback, EndedAt: ptr(at(20)), Outcome: "succeeded"})
	require.NoError(t, err)
	require.True(t, rb.StartedAt.Equal(at(20)))
	_, err = s.StartMarker(ctx, Marker{ReleaseID: "r2", Runbook: "api", Environment: "staging", Stage: "stg", Action: MarkerDeploy, StartedAt: at(30)})
	require.NoError(t, err)

	cases := []struct {
		name string
		f    MarkerFilter
		want []string
	}{
		{"all, oldest first", MarkerFilter{}, []string{"r1/deploy", "r1/rollback", "r2/deploy"}},
		{"by runbook", MarkerFilter{Runbook: "api"}, []string{"r2/deploy"}},
		{"by environment", MarkerFilter{Environment: "production"}, []string{"r1/deploy", "r1/rollback"}},
		{"since keeps what had not ended", MarkerFilter{Since: at(10)}, []string{"r1/rollback", "r2/deploy"}},
		{"limit keeps the newest", MarkerFilter{Limit: 1}, []string{"r2/deploy"}},
		{"by release", MarkerFilter{ReleaseID: "r1", Since: at(4)}, []string{"r1/rollback"}},
	}
	for _, tc := range cases {
		got, err := s.ListMarkers(ctx, tc.f)
		require.NoError(t, err, tc.name)
		var names []string
		for _, m := range got {
			names = append(names, m.ReleaseID+"/"+m.Action)
		}
		require.Equal(t, tc.want, names, tc.name)
	}
	_, err = s.StartMarker(ctx, Marker{ReleaseID: "r1", Runbook: "web", Action: "smoke"})
	require.ErrorContains(t, err, "not deploy or rollback")
}

func TestCircuitBreakers_TripOnceHoldUntilCleared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	trip := CircuitBreaker{Scope: BreakerRunbook, Name: "web", ReleaseID: "r1", Reason: "error-rate breached", Roles: []string{"sre"}, TrippedAt: at(0)}
	b, err := s.TripBreaker(ctx, trip)
	require.NoError(t, err)
	require.True(t, b.Open())
	require.Equal(t, []string{"sre"}, b.Roles)

	// Another release's trip while it is open: the first stands.
	other, err := s.TripBreaker(ctx, CircuitBreaker{Scope: BreakerRunbook, Name: "web", ReleaseID: "r2", TrippedAt: at(1)})
	require.NoError(t, err)
	require.Equal(t, "r1", other.ReleaseID)
	_, err = s.TripBreaker(ctx, CircuitBreaker{Scope: BreakerEnvironment, Name: "production", ReleaseID: "r3", TrippedAt: at(2)})
	require.NoError(t, err)

	open, err := s.OpenBreakers(ctx, "web", []string{"staging", "production"})
	require.NoError(t, err)
	require.Len(t, open, 2)
	require.Equal(t, "runbook", open[0].Scope, "the runbook's breaker first")
	require.Equal(t, "production", open[1].Name)
	open, err = s.OpenBreakers(ctx, "api", []string{"staging"})
	require.NoError(t, err)
	require.Empty(t, open, "other runbooks and environments are not held")

	cleared, err := s.ClearBreaker(ctx, BreakerRunbook, "web", "alice", "fixed in 2.0.1", at(10))
	require.NoError(t, err)
	require.Equal(t, "alice", cleared.ClearedBy)
	require.False(t, cleared.Open())
	_, err = s.ClearBreaker(ctx, BreakerRunbook, "web", "alice", "again", at(11))
	require.ErrorIs(t, err, ErrNotFound)

	// r1's trip retried after the clear does not trip it again.
	again, err := s.TripBreaker(ctx, trip)
	require.NoError(t, err)
	require.False(t, again.Open())
	_, err = s.OpenBreaker(ctx, BreakerRunbook, "web")
	require.ErrorIs(t, err, ErrNotFound)

	all, err := s.ListBreakers(ctx, BreakerFilter{All: true})
	require.NoError(t, err)
	require.Len(t, all, 2)
	onlyOpen, err := s.ListBreakers(ctx, BreakerFilter{})
	require.NoError(t, err)
	require.Len(t, onlyOpen, 1)
	require.Equal(t, "production", onlyOpen[0].Name)

	_, err = s.TripBreaker(ctx, CircuitBreaker{Scope: "planet", Name: "x", ReleaseID: "r"})
	require.ErrorContains(t, err, "scope")
}

func TestPoint_JSONIsPrometheusShaped(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(Point{At: time.Unix(1700000000, 500_000_000), Value: math.Inf(1)})
	require.NoError(t, err)
	require.Equal(t, `[1700000000.5,"+Inf"]`, string(b))
	var p Point
	require.NoError(t, json.Unmarshal(b, &p))
	require.True(t, math.IsInf(p.Value, 1))
	require.Equal(t, int64(1700000000500), p.At.UnixMilli())
	require.Error(t, json.Unmarshal([]byte(`[1, 2]`), &p), "a value must be a string")
}

func TestRecordIncident_ALateOlderStatusWriteDoesNotReplaceANewerOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	final := Incident{ReleaseID: "r1", Runbook: "shop", Status: json.RawMessage(`{"phase":"rolled_back"}`), StatusSeq: 2}
	atBreach := Incident{ReleaseID: "r1", Runbook: "shop", Breach: json.RawMessage(`{"check":"error-rate"}`), Status: json.RawMessage(`{"phase":"stabilizing"}`), StatusSeq: 1}
	require.NoError(t, s.RecordIncident(ctx, final))
	require.NoError(t, s.RecordIncident(ctx, atBreach), "the breach-time write lands last")
	got, err := s.GetIncident(ctx, "r1")
	require.NoError(t, err)
	require.JSONEq(t, `{"phase":"rolled_back"}`, string(got.Status), "the newer status stays")
	require.JSONEq(t, `{"check":"error-rate"}`, string(got.Breach), "the breach is kept all the same")
}
