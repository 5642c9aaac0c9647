package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

// newStore is a migrated store on a fresh database.
func newStore(t *testing.T) *Store {
	t.Helper()
	s := openStore(t, testpg.URL(t))
	require.NoError(t, s.Migrate(context.Background()))
	return s
}

func openStore(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }

func ptr[T any](v T) *T { return &v }

func release(id string, seq int64, phase string) ReleaseRecord {
	return ReleaseRecord{
		ID: id, Runbook: "payments", Version: "1.0.0", Requester: "ci",
		Phase: phase, Seq: seq, StartedAt: t0,
	}
}

func TestOpen_UnreachableServerFails(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://trainyard@127.0.0.1:1/trainyard?sslmode=disable&connect_timeout=2")
	require.ErrorContains(t, err, "connect to postgres")
}

func TestMigrate_TwiceIsNoop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	_, err := s.AppendAudit(ctx, AuditEvent{Actor: "alice", Action: "start", Outcome: OutcomeAllowed})
	require.NoError(t, err)

	require.NoError(t, s.Migrate(ctx))

	var applied int
	require.NoError(t, s.DB().GetContext(ctx, &applied, `SELECT count(*) FROM goose_db_version WHERE version_id = 1`))
	require.Equal(t, 1, applied)
	events, err := s.ListAudit(ctx, AuditFilter{})
	require.NoError(t, err)
	require.Len(t, events, 1, "data survives")
}

func TestMigrate_ConcurrentProcessesBothSucceed(t *testing.T) {
	t.Parallel()
	url := testpg.URL(t)
	stores := []*Store{openStore(t, url), openStore(t, url), openStore(t, url)}

	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(context.Background()) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, stores[0].UpsertRelease(context.Background(), release("r1", 1, "running")))
}

func TestMigration_DownRemovesSchemaAndUpRestoresIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	fsys, err := fs.Sub(migrations, "migrations")
	require.NoError(t, err)
	p, err := goose.NewProvider(goose.DialectPostgres, s.DB().DB, fsys, goose.WithDisableGlobalRegistry(true))
	require.NoError(t, err)

	_, err = p.DownTo(ctx, 0)
	require.NoError(t, err)
	var tables int
	require.NoError(t, s.DB().GetContext(ctx, &tables, `
		SELECT count(*) FROM information_schema.tables
		WHERE table_schema = 'public' AND table_name IN ('releases', 'approvals', 'audit_events')`))
	require.Zero(t, tables)

	require.NoError(t, s.Migrate(ctx))
	require.NoError(t, s.UpsertRelease(ctx, release("r1", 1, "running")))
}

func TestUpsertRelease_InsertsNewRelease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	r := release("r1", 3, "stage")
	r.Environment, r.Failure, r.EndedAt = "prod", "", nil

	require.NoError(t, s.UpsertRelease(ctx, r))

	got, err := s.GetRelease(ctx, "r1")
	require.NoError(t, err)
	require.Equal(t, "payments", got.Runbook)
	require.Equal(t, "1.0.0", got.Version)
	require.Equal(t, "ci", got.Requester)
	require.Equal(t, "stage", got.Phase)
	require.Equal(t, "prod", got.Environment)
	require.Equal(t, int64(3), got.Seq)
	require.WithinDuration(t, t0, got.StartedAt, 0)
	require.False(t, got.UpdatedAt.IsZero())
	require.Nil(t, got.EndedAt)
}

func TestUpsertRelease_ZeroStartedAtMeansNow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	r := release("r1", 1, "running")
	r.StartedAt = time.Time{}

	require.NoError(t, s.UpsertRelease(ctx, r))

	got, err := s.GetRelease(ctx, "r1")
	require.NoError(t, err)
	require.WithinDuration(t, time.Now(), got.StartedAt, time.Minute)
}

func TestUpsertRelease_NewerSeqUpdatesStateButNotIdentity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	require.NoError(t, s.UpsertRelease(ctx, release("r1", 1, "running")))
	before, err := s.GetRelease(ctx, "r1")
	require.NoError(t, err)

	later := ReleaseRecord{
		ID: "r1", Runbook: "other", Version: "9.9.9", Requester: "mallory", StartedAt: at(60),
		Phase: "failed", Environment: "staging", Failure: "smoke check failed", Seq: 2, EndedAt: ptr(at(30)),
	}
	require.NoError(t, s.UpsertRelease(ctx, later))

	got, err := s.GetRelease(ctx, "r1")
	require.NoError(t, err)
	require.Equal(t, "failed", got.Phase)
	require.Equal(t, "staging", got.Environment)
	require.Equal(t, "smoke check failed", got.Failure)
	require.Equal(t, int64(2), got.Seq)
	require.NotNil(t, got.EndedAt)
	require.WithinDuration(t, at(30), *got.EndedAt, 0)
	require.True(t, !got.UpdatedAt.Before(before.UpdatedAt))

	require.Equal(t, "payments", got.Runbook, "set on insert only")
	require.Equal(t, "1.0.0", got.Version, "set on insert only")
	require.Equal(t, "ci", got.Requester, "set on insert only")
	require.WithinDuration(t, t0, got.StartedAt, 0, "set on insert only")
}

func TestUpsertRelease_IgnoresOlderSeq(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		seq  int64
	}{
		{name: "older seq", seq: 4},
		{name: "same seq retried", seq: 5},
		{name: "seq zero", seq: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := newStore(t)
			current := release("r1", 5, "succeeded")
			current.EndedAt = ptr(at(10))
			require.NoError(t, s.UpsertRelease(ctx, current))
			want, err := s.GetRelease(ctx, "r1")
			require.NoError(t, err)

			stale := release("r1", tt.seq, "running")
			stale.Environment = "prod"
			require.NoError(t, s.UpsertRelease(ctx, stale))

			got, err := s.GetRelease(ctx, "r1")
			require.NoError(t, err)
			require.Equal(t, want, got)
		})
	}
}

func TestGetRelease_UnknownIDIsErrNotFound(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	_, err := s.GetRelease(context.Background(), "nope")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, `"nope"`)
}

func TestListReleases_FiltersNewestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	for i, r := range []ReleaseRecord{
		{ID: "pay-1", Runbook: "payments", Phase: "succeeded", Environment: "prod"},
		{ID: "pay-2", Runbook: "payments", Phase: "running", Environment: "staging"},
		{ID: "pay-3", Runbook: "payments", Phase: "running", Environment: "prod"},
		{ID: "web-1", Runbook: "web", Phase: "running", Environment: "prod"},
	} {
		r.Version, r.Seq, r.StartedAt = "1", 1, at(i)
		require.NoError(t, s.UpsertRelease(ctx, r))
	}

	tests := []struct {
		name   string
		filter ReleaseFilter
		want   []string
	}{
		{name: "no filter lists all, newest first", want: []string{"web-1", "pay-3", "pay-2", "pay-1"}},
		{name: "by runbook", filter: ReleaseFilter{Runbook: "payments"}, want: []string{"pay-3", "pay-2", "pay-1"}},
		{name: "by phase", filter: ReleaseFilter{Phase: "succeeded"}, want: []string{"pay-1"}},
		{name: "by environment", filter: ReleaseFilter{Environment: "staging"}, want: []string{"pay-2"}},
		{name: "filters combine", filter: ReleaseFilter{Runbook: "payments", Phase: "running", Environment: "prod"}, want: []string{"pay-3"}},
		{name: "limit", filter: ReleaseFilter{Limit: 2}, want: []string{"web-1", "pay-3"}},
		{name: "no match is empty, not nil", filter: ReleaseFilter{Runbook: "none"}, want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListReleases(ctx, tt.filter)
			require.NoError(t, err)
			require.NotNil(t, got)
			ids := []string{}
			for _, r := range got {
				ids = append(ids, r.ID)
			}
			require.Equal(t, tt.want, ids)
		})
	}
}

func TestListReleases_LimitDefaultsTo50AndCapsAt500(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	_, err := s.DB().ExecContext(ctx, `
		INSERT INTO releases (id, runbook, version, phase, seq)
		SELECT 'r' || i, 'payments', '1', 'running', 1 FROM generate_series(1, 501) AS i`)
	require.NoError(t, err)

	tests := []struct {
		limit, want int
	}{{0, 50}, {-1, 50}, {10, 10}, {500, 500}, {501, 500}, {100000, 500}}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			got, err := s.ListReleases(ctx, ReleaseFilter{Limit: tt.limit})
			require.NoError(t, err)
			require.Len(t, got, tt.want)
		})
	}
}

func TestLastSucceededVersion_NewestEndedOtherThanExcluded(t *testing.T) {
	t.Parallel()
	type rel struct {
		id, runbook, version, phase string
		startedAt                   int
		endedAt                     *int
	}
	tests := []struct {
		name     string
		releases []rel
		exclude  string
		want     string
	}{
		{name: "none yet", want: ""},
		{
			name: "newest by end time, not start time",
			releases: []rel{
				{"a", "payments", "1.0", "succeeded", 0, ptr(50)},
				{"b", "payments", "1.1", "succeeded", 10, ptr(20)},
			},
			want: "1.0",
		},
		{
			name: "leaves out the excluded release",
			releases: []rel{
				{"a", "payments", "1.0", "succeeded", 0, ptr(10)},
				{"b", "payments", "1.1", "succeeded", 20, ptr(30)},
			},
			exclude: "b",
			want:    "1.0",
		},
		{
			name: "ignores other phases and other runbooks",
			releases: []rel{
				{"a", "payments", "1.0", "succeeded", 0, ptr(10)},
				{"b", "payments", "1.1", "rolled_back", 20, ptr(30)},
				{"c", "payments", "1.2", "running", 40, nil},
				{"d", "web", "7.0", "succeeded", 50, ptr(60)},
			},
			want: "1.0",
		},
		{
			name:     "only failures",
			releases: []rel{{"a", "payments", "1.0", "failed", 0, ptr(10)}},
			want:     "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := newStore(t)
			for _, r := range tt.releases {
				rec := ReleaseRecord{ID: r.id, Runbook: r.runbook, Version: r.version, Phase: r.phase, Seq: 1, StartedAt: at(r.startedAt)}
				if r.endedAt != nil {
					rec.EndedAt = ptr(at(*r.endedAt))
				}
				require.NoError(t, s.UpsertRelease(ctx, rec))
			}
			got, err := s.LastSucceededVersion(ctx, "payments", tt.exclude)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestRecordDecision_SameActorTwiceStoredOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	first := DecisionRecord{ReleaseID: "r1", Gate: "prod", Actor: "alice", Decision: "approved", Comment: "lgtm", DecidedAt: at(1)}
	require.NoError(t, s.RecordDecision(ctx, first))

	second := first
	second.Decision, second.Comment, second.DecidedAt = "rejected", "changed my mind", at(2)
	require.NoError(t, s.RecordDecision(ctx, second))

	got, err := s.Decisions(ctx, "r1")
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "approved", got[0].Decision, "the first decision stands")
	require.Equal(t, "lgtm", got[0].Comment)
	require.WithinDuration(t, at(1), got[0].DecidedAt, 0)
}

func TestDecisions_ListsOnlyThatReleaseOldestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	for _, d := range []DecisionRecord{
		{ReleaseID: "r1", Gate: "prod", Actor: "bob", Decision: "approved", DecidedAt: at(5)},
		{ReleaseID: "r1", Gate: "prod", Actor: "alice", Decision: "approved", DecidedAt: at(1)},
		{ReleaseID: "r1", Gate: "security", Actor: "alice", Decision: "rejected", DecidedAt: at(3)},
		{ReleaseID: "r2", Gate: "prod", Actor: "alice", Decision: "approved", DecidedAt: at(2)},
	} {
		require.NoError(t, s.RecordDecision(ctx, d))
	}

	got, err := s.Decisions(ctx, "r1")
	require.NoError(t, err)
	var order []string
	for _, d := range got {
		order = append(order, d.Gate+"/"+d.Actor)
	}
	require.Equal(t, []string{"prod/alice", "security/alice", "prod/bob"}, order)

	none, err := s.Decisions(ctx, "unknown")
	require.NoError(t, err)
	require.NotNil(t, none)
	require.Empty(t, none)
}

func TestRecordDecision_ZeroTimeMeansNow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	require.NoError(t, s.RecordDecision(ctx, DecisionRecord{ReleaseID: "r1", Gate: "prod", Actor: "alice", Decision: "approved"}))
	got, err := s.Decisions(ctx, "r1")
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.WithinDuration(t, time.Now(), got[0].DecidedAt, time.Minute)
}

func TestAppendAudit_RoundTripsEveryField(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	in := AuditEvent{
		At: at(1), Actor: "alice", Roles: []string{"approver", "release-manager"},
		SourceIP: "10.0.0.7", UserAgent: "curl/8.5", SlackUser: "U024BE7LH", SlackTeam: "T024BE7LD",
		Device: "alice-laptop", Action: "approve", ReleaseID: "r1",
		Outcome: OutcomeDenied, Details: json.RawMessage(`{"gate":"prod","reason":"self-approval"}`),
	}
	id, err := s.AppendAudit(ctx, in)
	require.NoError(t, err)
	require.Positive(t, id)

	got, err := s.ListAudit(ctx, AuditFilter{})
	require.NoError(t, err)
	require.Len(t, got, 1)
	e := got[0]
	require.Equal(t, id, e.ID)
	require.WithinDuration(t, at(1), e.At, 0)
	require.Equal(t, in.Actor, e.Actor)
	require.Equal(t, in.Roles, e.Roles)
	require.Equal(t, in.SourceIP, e.SourceIP)
	require.Equal(t, in.UserAgent, e.UserAgent)
	require.Equal(t, in.SlackUser, e.SlackUser)
	require.Equal(t, in.SlackTeam, e.SlackTeam)
	require.Equal(t, in.Device, e.Device)
	require.Equal(t, in.Action, e.Action)
	require.Equal(t, in.ReleaseID, e.ReleaseID)
	require.Equal(t, in.Outcome, e.Outcome)
	require.JSONEq(t, string(in.Details), string(e.Details))
	require.Empty(t, e.PrevHash, "the first row starts the chain")
	require.Equal(t, AuditHash("", e), e.Hash)
}

func TestAppendAudit_FillsDefaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	tests := []struct {
		name    string
		details json.RawMessage
	}{
		{name: "nil details"},
		{name: "empty details", details: json.RawMessage{}},
		{name: "null details", details: json.RawMessage(`null`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := s.AppendAudit(ctx, AuditEvent{Actor: "ci", Action: "start", Outcome: OutcomeAllowed, Details: tt.details})
			require.NoError(t, err)
			got, err := s.ListAudit(ctx, AuditFilter{Actor: "ci"})
			require.NoError(t, err)
			e := got[len(got)-1]
			require.Equal(t, id, e.ID)
			require.JSONEq(t, `{}`, string(e.Details))
			require.Equal(t, []string{}, e.Roles)
			require.Empty(t, e.ReleaseID)
			require.WithinDuration(t, time.Now(), e.At, time.Minute)
		})
	}
}

func TestAppendAudit_RefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	tests := []struct {
		name string
		e    AuditEvent
	}{
		{name: "unknown outcome", e: AuditEvent{Actor: "a", Action: "start", Outcome: "maybe"}},
		{name: "details not JSON", e: AuditEvent{Actor: "a", Action: "start", Outcome: OutcomeAllowed, Details: json.RawMessage(`{oops`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.AppendAudit(ctx, tt.e)
			require.ErrorContains(t, err, `append audit event "start" by "a"`)
		})
	}
}

func TestAuditEvents_RefusesUpdateAndDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	_, err := s.AppendAudit(ctx, AuditEvent{Actor: "alice", Action: "abort", ReleaseID: "r1", Outcome: OutcomeAllowed})
	require.NoError(t, err)

	tests := []struct {
		name string
		stmt string
	}{
		{name: "update", stmt: `UPDATE audit_events SET outcome = 'denied'`},
		{name: "update matching no row", stmt: `UPDATE audit_events SET outcome = 'denied' WHERE id = -1`},
		{name: "delete", stmt: `DELETE FROM audit_events`},
		{name: "delete matching no row", stmt: `DELETE FROM audit_events WHERE id = -1`},
		{name: "truncate", stmt: `TRUNCATE audit_events`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.DB().ExecContext(ctx, tt.stmt)
			require.ErrorContains(t, err, "audit_events is append-only")
		})
	}

	got, err := s.ListAudit(ctx, AuditFilter{})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, OutcomeAllowed, got[0].Outcome)
}

func TestListAudit_FiltersOldestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	for _, e := range []AuditEvent{
		{At: at(4), Actor: "bob", Action: "approve", ReleaseID: "r1", Outcome: OutcomeAllowed},
		{At: at(1), Actor: "ci", Action: "start", ReleaseID: "r1", Outcome: OutcomeAllowed},
		{At: at(2), Actor: "alice", Action: "approve", ReleaseID: "r1", Outcome: OutcomeDenied},
		{At: at(3), Actor: "alice", Action: "abort", ReleaseID: "r2", Outcome: OutcomeAllowed},
		{At: at(5), Actor: "mallory", Action: "rollback", Outcome: OutcomeDenied},
	} {
		_, err := s.AppendAudit(ctx, e)
		require.NoError(t, err)
	}

	tests := []struct {
		name   string
		filter AuditFilter
		want   []string // actor/action
	}{
		{name: "no filter lists all, oldest first", want: []string{"ci/start", "alice/approve", "alice/abort", "bob/approve", "mallory/rollback"}},
		{name: "by release", filter: AuditFilter{ReleaseID: "r1"}, want: []string{"ci/start", "alice/approve", "bob/approve"}},
		{name: "by actor", filter: AuditFilter{Actor: "alice"}, want: []string{"alice/approve", "alice/abort"}},
		{name: "by action", filter: AuditFilter{Action: "approve"}, want: []string{"alice/approve", "bob/approve"}},
		{name: "since is inclusive", filter: AuditFilter{Since: at(4)}, want: []string{"bob/approve", "mallory/rollback"}},
		{name: "until is exclusive", filter: AuditFilter{Until: at(2)}, want: []string{"ci/start"}},
		{name: "window and actor", filter: AuditFilter{Actor: "alice", Since: at(3), Until: at(10)}, want: []string{"alice/abort"}},
		{name: "limit keeps the oldest", filter: AuditFilter{Limit: 2}, want: []string{"ci/start", "alice/approve"}},
		{name: "no match is empty", filter: AuditFilter{Actor: "nobody"}, want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListAudit(ctx, tt.filter)
			require.NoError(t, err)
			require.NotNil(t, got)
			keys := []string{}
			for _, e := range got {
				keys = append(keys, e.Actor+"/"+e.Action)
			}
			require.Equal(t, tt.want, keys)
		})
	}
}

func TestListAudit_LimitDefaultsTo100AndCapsAt1000(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	_, err := s.DB().ExecContext(ctx, `
		INSERT INTO audit_events (actor, action, outcome)
		SELECT 'ci', 'start', 'allowed' FROM generate_series(1, 1001)`)
	require.NoError(t, err)

	tests := []struct {
		limit, want int
	}{{0, 100}, {-5, 100}, {7, 7}, {1000, 1000}, {1001, 1000}}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			got, err := s.ListAudit(ctx, AuditFilter{Limit: tt.limit})
			require.NoError(t, err)
			require.Len(t, got, tt.want)
		})
	}
}
