package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReservations_OverlapsAreRefusedAndOthersWait(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	r, err := s.CreateReservation(ctx, Reservation{Environment: "perf", Runbook: "payments", StartsAt: at(0), EndsAt: at(60), Reason: "load test", CreatedBy: "alice"})
	require.NoError(t, err)
	_, err = s.CreateReservation(ctx, Reservation{Environment: "perf", Runbook: "orders", StartsAt: at(30), EndsAt: at(90), Reason: "x", CreatedBy: "bob"})
	require.ErrorIs(t, err, ErrOverlap)
	require.ErrorContains(t, err, "runbook payments")
	_, err = s.CreateReservation(ctx, Reservation{Environment: "perf", Runbook: "orders", StartsAt: at(60), EndsAt: at(90), Reason: "next slot", CreatedBy: "bob"})
	require.NoError(t, err, "back to back is fine")

	w, err := s.ReservationStatus(ctx, "perf", "orders", "release-orders-1", at(10))
	require.NoError(t, err)
	require.True(t, w.Blocked)
	require.Equal(t, "runbook payments", w.Holder)
	require.True(t, w.Until.Equal(at(60)))
	w, err = s.ReservationStatus(ctx, "perf", "payments", "release-payments-9", at(10))
	require.NoError(t, err)
	require.False(t, w.Blocked, "the holder may deploy in its slot")
	w, err = s.ReservationStatus(ctx, "staging", "orders", "x", at(10))
	require.NoError(t, err)
	require.False(t, w.Blocked)

	_, err = s.CancelReservation(ctx, r.ID, "alice", at(5))
	require.NoError(t, err)
	w, err = s.ReservationStatus(ctx, "perf", "orders", "release-orders-1", at(10))
	require.NoError(t, err)
	require.False(t, w.Blocked, "a cancelled reservation holds nothing")
	_, err = s.CancelReservation(ctx, r.ID, "alice", at(6))
	require.ErrorIs(t, err, ErrNotFound)
	list, err := s.ListReservations(ctx, "perf", at(0))
	require.NoError(t, err)
	require.Len(t, list, 1)
}

func TestPromotions_RecordedOncePerStageAndComponent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	p := Promotion{ReleaseID: "r1", Stage: "staging", Environment: "staging", Component: "api", Version: "1.2.0", Artifact: "reg/api@sha256:aa", PromotedAt: at(0)}
	require.NoError(t, s.RecordPromotions(ctx, []Promotion{p}))
	require.NoError(t, s.RecordPromotions(ctx, []Promotion{p}), "a retry changes nothing")
	p.Stage, p.Environment, p.PromotedAt = "production", "production", at(10)
	require.NoError(t, s.RecordPromotions(ctx, []Promotion{p}))
	got, err := s.Promotions(ctx, "r1")
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, got[0].Artifact, got[1].Artifact)
	_ = time.Second
}
