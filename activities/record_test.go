package activities

import (
	"context"
	"errors"
	"github.com/trainyard/trainyard/freeze"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/store"
)

// fakeStore is a Store whose methods do what their func fields say (nothing when nil).
type fakeStore struct {
	// Store is nil: a method a test did not expect to be called panics.
	Store
	UpsertReleaseFunc        func(ctx context.Context, r store.ReleaseRecord) error
	RecordDecisionFunc       func(ctx context.Context, d store.DecisionRecord) error
	LastSucceededVersionFunc func(ctx context.Context, runbook, exclude string) (string, error)
}

func (f *fakeStore) UpsertRelease(ctx context.Context, r store.ReleaseRecord) error {
	if f.UpsertReleaseFunc == nil {
		return nil
	}
	return f.UpsertReleaseFunc(ctx, r)
}

func (f *fakeStore) RecordDecision(ctx context.Context, d store.DecisionRecord) error {
	if f.RecordDecisionFunc == nil {
		return nil
	}
	return f.RecordDecisionFunc(ctx, d)
}

func (f *fakeStore) LastSucceededVersion(ctx context.Context, runbook, exclude string) (string, error) {
	if f.LastSucceededVersionFunc == nil {
		return "", nil
	}
	return f.LastSucceededVersionFunc(ctx, runbook, exclude)
}

func (f *fakeStore) FreezeStatus(context.Context, *freeze.Catalog, store.FreezeQuery) (store.FreezeDecision, error) {
	return store.FreezeDecision{}, nil
}

var errDBDown = errors.New("connection refused")

func releaseRecord() store.ReleaseRecord {
	return store.ReleaseRecord{
		ID: "release-shop-1.2.3", Runbook: "shop", Version: "1.2.3", Requester: "ci",
		Phase: "deploying", Environment: "staging", Seq: 7,
		StartedAt: time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 1, 2, 10, 5, 0, 0, time.UTC),
	}
}

func decisionRecord() store.DecisionRecord {
	return store.DecisionRecord{
		ReleaseID: "release-shop-1.2.3", Gate: "production", Actor: "alice", Decision: "approved",
		Comment: "lgtm", DecidedAt: time.Date(2026, 1, 2, 10, 6, 0, 0, time.UTC),
	}
}

func TestRecordRelease_WritesTheRecordToTheStore(t *testing.T) {
	t.Parallel()
	var got []store.ReleaseRecord
	acts := &Activities{Store: &fakeStore{UpsertReleaseFunc: func(_ context.Context, r store.ReleaseRecord) error {
		got = append(got, r)
		return nil
	}}}

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.RecordRelease, releaseRecord())
	require.NoError(t, err)
	require.Equal(t, []store.ReleaseRecord{releaseRecord()}, got)
}

func TestRecordDecision_WritesTheDecisionToTheStore(t *testing.T) {
	t.Parallel()
	var got []store.DecisionRecord
	acts := &Activities{Store: &fakeStore{RecordDecisionFunc: func(_ context.Context, d store.DecisionRecord) error {
		got = append(got, d)
		return nil
	}}}

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.RecordDecision, decisionRecord())
	require.NoError(t, err)
	require.Equal(t, []store.DecisionRecord{decisionRecord()}, got)
}

func TestPreviousVersion_AsksTheStoreExcludingThisRelease(t *testing.T) {
	t.Parallel()
	var runbook, exclude string
	acts := &Activities{Store: &fakeStore{LastSucceededVersionFunc: func(_ context.Context, rb, ex string) (string, error) {
		runbook, exclude = rb, ex
		return "1.2.2", nil
	}}}

	val, err := newActivityEnv(t, acts).ExecuteActivity(acts.PreviousVersion, PreviousVersionRequest{Runbook: "shop", ReleaseID: "release-shop-1.2.3"})
	require.NoError(t, err)
	var v string
	require.NoError(t, val.Get(&v))
	require.Equal(t, "1.2.2", v)
	require.Equal(t, "shop", runbook)
	require.Equal(t, "release-shop-1.2.3", exclude)
}

func TestRecordActivities_WrapStoreErrorsWithContext(t *testing.T) {
	t.Parallel()
	failing := &fakeStore{
		UpsertReleaseFunc:        func(context.Context, store.ReleaseRecord) error { return errDBDown },
		RecordDecisionFunc:       func(context.Context, store.DecisionRecord) error { return errDBDown },
		LastSucceededVersionFunc: func(context.Context, string, string) (string, error) { return "", errDBDown },
	}
	acts := &Activities{Store: failing}
	tests := []struct {
		name string
		call func(ctx context.Context) error
		says string
	}{
		{
			name: "RecordRelease",
			call: func(ctx context.Context) error { return acts.RecordRelease(ctx, releaseRecord()) },
			says: "record release release-shop-1.2.3 phase deploying: connection refused",
		},
		{
			name: "RecordDecision",
			call: func(ctx context.Context) error { return acts.RecordDecision(ctx, decisionRecord()) },
			says: "record approved of release-shop-1.2.3 by alice: connection refused",
		},
		{
			name: "PreviousVersion",
			call: func(ctx context.Context) error {
				_, err := acts.PreviousVersion(ctx, PreviousVersionRequest{Runbook: "shop", ReleaseID: "release-shop-1.2.3"})
				return err
			},
			says: "previous version of shop: connection refused",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.call(context.Background())
			require.ErrorIs(t, err, errDBDown)
			require.EqualError(t, err, tt.says)
		})
	}
}

func TestRecordActivities_StoreErrorsAreRetryableThroughTemporal(t *testing.T) {
	t.Parallel()
	acts := &Activities{Store: &fakeStore{UpsertReleaseFunc: func(context.Context, store.ReleaseRecord) error { return errDBDown }}}

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.RecordRelease, releaseRecord())
	appErr := requireApplicationError(t, err)
	require.False(t, appErr.NonRetryable(), "a store outage is retried")
	require.Equal(t, "record release release-shop-1.2.3 phase deploying: connection refused", appErr.Message())
}

func TestRecordActivities_WithoutStoreAreMisconfigured(t *testing.T) {
	t.Parallel()
	acts := &Activities{}
	tests := []struct {
		name string
		fn   any
		arg  any
	}{
		{name: "RecordRelease", fn: acts.RecordRelease, arg: releaseRecord()},
		{name: "RecordDecision", fn: acts.RecordDecision, arg: decisionRecord()},
		{name: "PreviousVersion", fn: acts.PreviousVersion, arg: PreviousVersionRequest{Runbook: "shop", ReleaseID: "r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := newActivityEnv(t, acts).ExecuteActivity(tt.fn, tt.arg)
			appErr := requireApplicationError(t, err)
			require.Equal(t, "Misconfigured", appErr.Type())
			require.True(t, appErr.NonRetryable())
			require.Contains(t, appErr.Message(), "this worker has no store")
		})
	}
}
