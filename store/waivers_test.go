package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGrantWaiver_NumbersWaiversPerYear(t *testing.T) {
	t.Parallel()
	s := governanceStore(t)
	first := grantFreezeWaiver(t, s, nil)
	second := grantFreezeWaiver(t, s, nil)
	next := grantFreezeWaiver(t, s, func(w *Waiver) {
		w.CreatedAt = time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)
		w.ExpiresAt = time.Date(2027, 1, 3, 0, 0, 0, 0, time.UTC)
	})
	require.Equal(t, "WVR-2026-001", first.ID)
	require.Equal(t, "WVR-2026-002", second.ID)
	require.Equal(t, "WVR-2027-001", next.ID)

	got, err := s.GetWaiver(context.Background(), first.ID)
	require.NoError(t, err)
	require.Equal(t, first, got)
	require.Equal(t, WaiverScope{Runbooks: []string{"payments"}, Environments: []string{}, Releases: []string{}}, got.Scope)
	require.Equal(t, []string{"release-manager"}, got.GrantedRoles)
	require.Nil(t, got.RevokedAt)
}

func TestGrantWaiver_RefusesAMeaninglessWaiver(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Waiver)
		msg    string
	}{
		{name: "unknown kind", mutate: func(w *Waiver) { w.Kind = "everything" }, msg: `kind "everything" is not one of freeze, gate, policy`},
		{name: "no target", mutate: func(w *Waiver) { w.Target = "" }, msg: "target is empty"},
		{name: "no reason", mutate: func(w *Waiver) { w.Reason = "  " }, msg: "reason is empty"},
		{name: "no grantor", mutate: func(w *Waiver) { w.GrantedBy = "" }, msg: "grantedBy is empty"},
		{name: "empty scope", mutate: func(w *Waiver) { w.Scope = WaiverScope{} }, msg: "scope names no runbook"},
		{name: "expires before granted", mutate: func(w *Waiver) { w.ExpiresAt = w.CreatedAt }, msg: "expiresAt is not after createdAt"},
	}
	s := governanceStore(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := Waiver{Kind: WaiverKindFreeze, Target: "holidays", Reason: "fix", GrantedBy: "alice",
				Scope: WaiverScope{Runbooks: []string{"payments"}}, ExpiresAt: time.Now().Add(time.Hour)}
			tt.mutate(&w)
			_, err := s.GrantWaiver(context.Background(), w)
			require.ErrorIs(t, err, ErrInvalidWaiver)
			require.ErrorContains(t, err, tt.msg)
		})
	}
	all, err := s.ListWaivers(context.Background(), WaiverFilter{})
	require.NoError(t, err)
	require.Empty(t, all)
}

func TestListWaivers_ActiveAtLeavesOutExpiredAndRevoked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := governanceStore(t)
	active := grantFreezeWaiver(t, s, nil)
	expired := grantFreezeWaiver(t, s, func(w *Waiver) { w.ExpiresAt = christmasDay.Add(-time.Hour) })
	revoked := grantFreezeWaiver(t, s, nil)
	_, err := s.RevokeWaiver(ctx, revoked.ID, "bob", christmasDay.Add(-time.Minute))
	require.NoError(t, err)
	gate := grantFreezeWaiver(t, s, func(w *Waiver) { w.Kind, w.Target = WaiverKindGate, "security-scan" })

	all, err := s.ListWaivers(ctx, WaiverFilter{})
	require.NoError(t, err)
	require.Len(t, all, 4)
	require.Equal(t, gate.ID, all[0].ID, "newest first")

	now, err := s.ListWaivers(ctx, WaiverFilter{ActiveAt: christmasDay})
	require.NoError(t, err)
	require.Equal(t, []string{gate.ID, active.ID}, waiverIDs(now))

	freezes, err := s.ListWaivers(ctx, WaiverFilter{Kind: WaiverKindFreeze, Target: "holidays", ActiveAt: christmasDay})
	require.NoError(t, err)
	require.Equal(t, []string{active.ID}, waiverIDs(freezes))

	before, err := s.ListWaivers(ctx, WaiverFilter{Kind: WaiverKindFreeze, ActiveAt: christmasDay.Add(-2 * time.Hour)})
	require.NoError(t, err)
	require.Equal(t, []string{revoked.ID, expired.ID, active.ID}, waiverIDs(before), "each was active then")
}

func waiverIDs(ws []Waiver) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.ID
	}
	return out
}

func TestActiveWaivers_StopApplyingAtExpiryOnTheirOwn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := governanceStore(t)
	w := grantFreezeWaiver(t, s, nil)
	m := WaiverMatch{Kind: WaiverKindFreeze, Target: "holidays", Runbook: "payments", Environment: "production", ReleaseID: "r1"}

	m.At = w.ExpiresAt.Add(-time.Second)
	got, err := s.ActiveWaivers(ctx, m)
	require.NoError(t, err)
	require.Equal(t, []string{w.ID}, waiverIDs(got))

	m.At = w.ExpiresAt
	got, err = s.ActiveWaivers(ctx, m)
	require.NoError(t, err)
	require.Empty(t, got)

	// Zero means now: a waiver granted an hour ago for two hours applies, one that expired a
	// minute ago does not.
	current := grantFreezeWaiver(t, s, func(w *Waiver) {
		w.CreatedAt, w.ExpiresAt = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	})
	grantFreezeWaiver(t, s, func(w *Waiver) {
		w.CreatedAt, w.ExpiresAt = time.Now().Add(-time.Hour), time.Now().Add(-time.Minute)
	})
	m.At = time.Time{}
	got, err = s.ActiveWaivers(ctx, m)
	require.NoError(t, err)
	require.Equal(t, []string{current.ID}, waiverIDs(got))
}

func TestRevokeWaiver_OnceAndOnlyWhileActive(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := governanceStore(t)
	w := grantFreezeWaiver(t, s, func(w *Waiver) { w.CreatedAt, w.ExpiresAt = time.Time{}, time.Now().Add(time.Hour) })

	revoked, err := s.RevokeWaiver(ctx, w.ID, "bob", time.Time{})
	require.NoError(t, err)
	require.NotNil(t, revoked.RevokedAt)
	require.Equal(t, "bob", revoked.RevokedBy)
	require.Equal(t, WaiverRevoked, revoked.State(time.Now()))

	again, err := s.RevokeWaiver(ctx, w.ID, "carol", time.Time{})
	require.ErrorIs(t, err, ErrWaiverInactive)
	require.ErrorContains(t, err, "bob revoked it at")
	require.Equal(t, "bob", again.RevokedBy, "the first revocation stands")

	old := grantFreezeWaiver(t, s, nil) // expired on 27 December 2026
	_, err = s.RevokeWaiver(ctx, old.ID, "bob", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	require.ErrorIs(t, err, ErrWaiverInactive)
	require.ErrorContains(t, err, "it expired at 2026-12-27T00:00:00Z")

	_, err = s.RevokeWaiver(ctx, "WVR-2026-999", "bob", time.Time{})
	require.ErrorIs(t, err, ErrNotFound)
}

func TestWaivers_AreNeverEditedOrDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := governanceStore(t)
	w := grantFreezeWaiver(t, s, func(w *Waiver) { w.CreatedAt, w.ExpiresAt = time.Time{}, time.Now().Add(time.Hour) })

	for _, stmt := range []string{
		`UPDATE waivers SET reason = 'something else' WHERE id = $1`,
		`UPDATE waivers SET expires_at = expires_at + interval '1 year' WHERE id = $1`,
		`UPDATE waivers SET revoked_at = now(), revoked_by = 'bob', scope = '{}' WHERE id = $1`,
		`DELETE FROM waivers WHERE id = $1`,
	} {
		_, err := s.DB().ExecContext(ctx, stmt, w.ID)
		require.ErrorContains(t, err, "waivers are evidence", stmt)
	}
	_, err := s.RevokeWaiver(ctx, w.ID, "bob", time.Time{})
	require.NoError(t, err)
	_, err = s.DB().ExecContext(ctx, `UPDATE waivers SET revoked_by = 'mallory' WHERE id = $1`, w.ID)
	require.ErrorContains(t, err, "waivers are evidence", "a revocation is not rewritten")
}

func TestWaiverScope_Matches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		scope WaiverScope
		want  bool
	}{
		{name: "runbook", scope: WaiverScope{Runbooks: []string{"web", "payments"}}, want: true},
		{name: "runbook and environment", scope: WaiverScope{Runbooks: []string{"payments"}, Environments: []string{"production"}}, want: true},
		{name: "release", scope: WaiverScope{Releases: []string{"release-payments-1.0.1"}}, want: true},
		{name: "other runbook", scope: WaiverScope{Runbooks: []string{"web"}}},
		{name: "other environment", scope: WaiverScope{Runbooks: []string{"payments"}, Environments: []string{"staging"}}},
		{name: "other release", scope: WaiverScope{Runbooks: []string{"payments"}, Releases: []string{"release-payments-1.0.0"}}},
		{name: "no patterns: exact names only", scope: WaiverScope{Runbooks: []string{"pay*"}}},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, tt.scope.Matches("payments", "production", "release-payments-1.0.1"), tt.name)
	}
}
