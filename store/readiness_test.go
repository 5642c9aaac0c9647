package store

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReleaseOutcomes_CountsOwnAndComponentHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	end := func(id, runbook, phase string, minute int, comps ...string) {
		r := release(id, 1, phase)
		r.Runbook = runbook
		r.EndedAt = ptr(at(minute))
		require.NoError(t, s.UpsertRelease(ctx, r))
		require.NoError(t, s.RecordAssessment(ctx, id, 10, json.RawMessage(`{"score":10}`), comps))
	}
	end("p1", "payments", "succeeded", 1, "ledger")
	end("p2", "payments", "rolled_back", 2, "ledger")
	end("p3", "payments", "failed", 3, "ledger")
	end("p4", "payments", "deploying", 4, "ledger") // still running: not counted
	end("o1", "orders", "rolled_back", 5, "ledger", "orders-api")
	end("o2", "orders", "succeeded", 6, "orders-api")

	own, comps, err := s.ReleaseOutcomes(ctx, "payments", []string{"ledger"}, "p4", 20)
	require.NoError(t, err)
	require.Equal(t, Outcomes{Total: 3, Failed: 2}, own)
	require.Equal(t, Outcomes{Total: 1, Failed: 1}, comps, "o2 shipped no ledger")

	own, _, err = s.ReleaseOutcomes(ctx, "payments", nil, "p4", 2)
	require.NoError(t, err)
	require.Equal(t, Outcomes{Total: 2, Failed: 2}, own, "only the last two count")
}

func TestRecordAssessment_UnknownReleaseIsNotFound(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	err := s.RecordAssessment(context.Background(), "nope", 1, json.RawMessage(`{}`), nil)
	require.ErrorIs(t, err, ErrNotFound)
}

func TestReports_KeepTheBodyAsSent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	body := []byte(`{"SchemaVersion":2}`)
	r, err := s.AttachReport(ctx, ScanReport{ReleaseID: "r1", Name: "image", Format: "trivy", Tool: "Trivy", Findings: 3, Body: body, UploadedBy: "ci"})
	require.NoError(t, err)
	require.NotZero(t, r.ID)
	got, err := s.Reports(ctx, "r1")
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, body, got[0].Body)
	require.Equal(t, 3, got[0].Findings)
	none, err := s.Reports(ctx, "r2")
	require.NoError(t, err)
	require.Empty(t, none)
}

func TestGateResults_RetriedWriteReplaces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	g := GateResult{ReleaseID: "r1", Gate: "scan", Type: "scanReport", Outcome: "failed", Summary: "1 critical",
		Evidence: json.RawMessage(`{"blocking":["CVE-1"]}`), StartedAt: at(0), FinishedAt: at(1)}
	require.NoError(t, s.RecordGateResult(ctx, g))
	g.Outcome, g.Waiver = "waived", "WVR-2026-001"
	require.NoError(t, s.RecordGateResult(ctx, g))
	got, err := s.GateResults(ctx, "r1")
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "waived", got[0].Outcome)
	require.JSONEq(t, `{"blocking":["CVE-1"]}`, string(got[0].Evidence))

	g.Outcome = "maybe"
	require.Error(t, s.RecordGateResult(ctx, g), "the outcome is checked by the database")
}

func TestLastPassedDrill_NewestPassedOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	_, err := s.LastPassedDrill(ctx, "orders-db")
	require.ErrorIs(t, err, ErrNotFound)
	for _, d := range []Drill{
		{Component: "orders-db", Outcome: DrillPassed, DrilledAt: at(0), RecordedBy: "sre"},
		{Component: "orders-db", Outcome: DrillPassed, DrilledAt: at(60), RecordedBy: "sre"},
		{Component: "orders-db", Outcome: DrillFailed, DrilledAt: at(120), RecordedBy: "sre"},
	} {
		_, err := s.RecordDrill(ctx, d)
		require.NoError(t, err)
	}
	d, err := s.LastPassedDrill(ctx, "orders-db")
	require.NoError(t, err)
	require.True(t, d.DrilledAt.Equal(at(60)))
	_, err = s.RecordDrill(ctx, Drill{Component: "orders-db", Outcome: "skipped", DrilledAt: at(0), RecordedBy: "x"})
	require.Error(t, err)
}
