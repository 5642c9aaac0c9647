package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/apiclient"
	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/internal/testpg"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/server"
	"github.com/trainyard/trainyard/store"
	"github.com/trainyard/trainyard/workflows"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	testpg.Main(m)
}

// noEngine is a server.Engine for tests that only read the audit trail.
type noEngine struct{}

func (noEngine) Start(context.Context, workflows.ReleaseInput) (bool, error) { return false, nil }
func (noEngine) Status(context.Context, string) (workflows.ReleaseStatus, error) {
	return workflows.ReleaseStatus{}, server.ErrReleaseNotFound
}
func (noEngine) Approve(context.Context, string, string, workflows.ApprovalRequest) (workflows.ApprovalResult, error) {
	return workflows.ApprovalResult{}, nil
}
func (noEngine) Reject(context.Context, string, string, workflows.ApprovalRequest) (workflows.ApprovalResult, error) {
	return workflows.ApprovalResult{}, nil
}
func (noEngine) Abort(context.Context, string, string, workflows.AbortRequest) (workflows.AbortResult, error) {
	return workflows.AbortResult{}, nil
}
func (noEngine) Operate(context.Context, string, string, string, workflows.OperatorRequest) (workflows.OperatorResult, error) {
	return workflows.OperatorResult{}, nil
}
func (noEngine) Ping(context.Context) error { return nil }

// auditLog is a server.Store holding audit events in id order; it lists them as the store
// does, a page at a time after an id, and remembers each filter it was asked.
type auditLog struct {
	mu      sync.Mutex
	events  []store.AuditEvent
	filters []store.AuditFilter
}

func (l *auditLog) RecordStart(ctx context.Context, _ store.ReleaseRecord, ev store.AuditEvent) (int64, error) {
	return l.AppendAudit(ctx, ev)
}
func (l *auditLog) ListReleases(context.Context, store.ReleaseFilter) ([]store.ReleaseRecord, error) {
	return nil, nil
}
func (l *auditLog) AppendAudit(context.Context, store.AuditEvent) (int64, error) { return 0, nil }
func (l *auditLog) Ping(context.Context) error                                   { return nil }

func (l *auditLog) ListAudit(_ context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.filters = append(l.filters, f)
	out := []store.AuditEvent{}
	for _, ev := range l.events {
		if ev.ID > f.After && (f.ReleaseID == "" || ev.ReleaseID == f.ReleaseID) && len(out) < f.Limit {
			out = append(out, ev)
		}
	}
	return out, nil
}

// auditAPI serves the real handler over log, for the token "auditor-token-1".
func auditAPI(t *testing.T, log *auditLog) string {
	t.Helper()
	srv := server.New(server.Deps{
		Engine:  noEngine{},
		Store:   log,
		Auth:    config.NewAuthenticator([]config.Principal{{Name: "auditor", Roles: []string{"auditor"}, Token: "auditor-token-1"}}),
		Catalog: runbooks.Catalog{Dir: t.TempDir()},
	})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

var approval = store.AuditEvent{
	ID: 7, At: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC), Actor: "alice",
	Roles: []string{"release-manager", "approver"}, SourceIP: "10.0.0.7", UserAgent: `agent "with, quotes"` + "\nand a line",
	Device: "alice-laptop", Action: "release.approve", ReleaseID: "r1", Outcome: store.OutcomeAllowed,
	Details: json.RawMessage(`{"gate":"prod","comment":"ship it, now"}`), PrevHash: "aa", Hash: "bb",
}

func TestAuditExport_WritesCSVWithAHeaderAndEveryField(t *testing.T) {
	t.Parallel()
	denied := store.AuditEvent{ID: 9, At: approval.At.Add(time.Second), Actor: "mallory", Roles: []string{}, SourceIP: "10.0.0.9",
		Action: "release.approve", ReleaseID: "r1", Outcome: store.OutcomeDenied, PrevHash: "bb", Hash: "cc"}
	log := &auditLog{events: []store.AuditEvent{approval, denied}}
	url := auditAPI(t, log)

	stdout, stderr, err := runCLI(t, "audit", "export", "--api", url, "--token", "auditor-token-1", "--release", "r1",
		"--actor", "alice", "--action", "release.approve", "--since", "2026-03-01", "--until", "2026-03-02T00:00:00Z")
	require.NoError(t, err, stderr)
	require.Equal(t, "Exported 2 audit events.\n", stderr)

	rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	require.NoError(t, err)
	require.Equal(t, [][]string{
		{"id", "at", "actor", "roles", "source_ip", "user_agent", "slack_user", "slack_team", "device", "action", "release_id", "outcome", "details", "hash"},
		{"7", "2026-03-01T12:00:00.123456Z", "alice", "release-manager approver", "10.0.0.7", "agent \"with, quotes\"\nand a line", "", "",
			"alice-laptop", "release.approve", "r1", "allowed", `{"gate":"prod","comment":"ship it, now"}`, "bb"},
		{"9", "2026-03-01T12:00:01.123456Z", "mallory", "", "10.0.0.9", "", "", "", "", "release.approve", "r1", "denied", "{}", "cc"},
	}, rows)
	require.Equal(t, store.AuditFilter{ReleaseID: "r1", Actor: "alice", Action: "release.approve",
		Since: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC),
		Limit: apiclient.MaxAuditPage}, log.filters[0])
}

func TestAuditExport_JSONLinesPageThroughEveryEvent(t *testing.T) {
	t.Parallel()
	log := &auditLog{}
	const n = 2*apiclient.MaxAuditPage + 3
	for i := range n {
		ev := approval
		ev.ID, ev.At, ev.Hash = int64(i+1), approval.At.Add(time.Duration(i)*time.Second), fmt.Sprintf("h%d", i+1)
		if i%2 == 1 {
			ev.ReleaseID = "r2"
		}
		log.events = append(log.events, ev)
	}
	url := auditAPI(t, log)

	stdout, stderr, err := runCLI(t, "audit", "export", "--api", url, "--token", "auditor-token-1", "--format", "json")
	require.NoError(t, err, stderr)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	require.Len(t, lines, n)
	for i, line := range lines {
		var ev apiclient.AuditEvent
		require.NoError(t, json.Unmarshal([]byte(line), &ev), line)
		require.Equal(t, int64(i+1), ev.ID)
		require.Equal(t, fmt.Sprintf("h%d", i+1), ev.Hash)
	}
	require.Len(t, log.filters, 3)
	require.Equal(t, []int64{0, apiclient.MaxAuditPage, 2 * apiclient.MaxAuditPage},
		[]int64{log.filters[0].After, log.filters[1].After, log.filters[2].After})

	first := lines[0]
	require.Contains(t, first, `"device":"alice-laptop"`)
	require.Contains(t, first, `"prevHash":"aa"`)
	require.Contains(t, first, `"roles":["release-manager","approver"]`)
	require.Contains(t, first, `"details":{"gate":"prod","comment":"ship it, now"}`)

	stdout, _, err = runCLI(t, "audit", "export", "--api", url, "--token", "auditor-token-1", "--format", "json", "--release", "r2")
	require.NoError(t, err)
	require.Len(t, strings.Split(strings.TrimSuffix(stdout, "\n"), "\n"), n/2)
}

func TestAuditExport_RefusesBadFlagsBeforeCallingTheAPI(t *testing.T) {
	t.Parallel()
	log := &auditLog{}
	url := auditAPI(t, log)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--format", "xml"}, `--format "xml": use csv or json`},
		{[]string{"--since", "yesterday"}, `--since "yesterday": give an RFC 3339 time`},
		{[]string{"--until=-5m"}, `--until "-5m"`},
		{[]string{"--since", "1h", "--until", "2h"}, "must be after --since"},
	}
	for _, tt := range tests {
		_, _, err := runCLI(t, append([]string{"audit", "export", "--api", url, "--token", "auditor-token-1"}, tt.args...)...)
		require.ErrorContains(t, err, tt.want)
	}
	require.Empty(t, log.filters)

	_, _, err := runCLI(t, "audit", "export", "--api", url, "--token", "wrong-token")
	require.ErrorContains(t, err, "export stopped after 0 events: Unauthorized")
}

func TestParseTimeFlag_TakesTimesDatesAndDurationsBack(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"2026-03-01T08:30:00Z", time.Date(2026, 3, 1, 8, 30, 0, 0, time.UTC)},
		{"2026-03-01T08:30:00.5+01:00", time.Date(2026, 3, 1, 7, 30, 0, 500000000, time.UTC)},
		{"2026-03-01", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"24h", now.Add(-24 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"7d", now.Add(-7 * 24 * time.Hour)},
	}
	for _, tt := range tests {
		got, err := parseTimeFlag("since", tt.in, now)
		require.NoError(t, err, tt.in)
		require.True(t, tt.want.Equal(got), "%s: got %s, want %s", tt.in, got, tt.want)
	}
	for _, bad := range []string{"0d", "-1d", "d", "0s", "soon", "2026-13-01"} {
		_, err := parseTimeFlag("since", bad, now)
		require.Error(t, err, bad)
	}
}

// verifyDatabase is a migrated database with three chained audit events, named to the
// CLI by TRAINYARD_DATABASE_URL.
func verifyDatabase(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	url := testpg.URL(t)
	t.Setenv("TRAINYARD_CONFIG", "")
	t.Setenv("TRAINYARD_DATABASE_URL", url)
	st, err := store.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	require.NoError(t, st.Migrate(ctx))
	for _, actor := range []string{"ci", "mallory", "alice"} {
		_, err := st.AppendAudit(ctx, store.AuditEvent{Actor: actor, Action: "release.approve", ReleaseID: "r1", Outcome: store.OutcomeAllowed})
		require.NoError(t, err)
	}
	return st
}

func TestAuditVerify_IntactChainPrintsTheHeadAndSucceeds(t *testing.T) {
	st := verifyDatabase(t)
	stdout, _, err := runCLI(t, "audit", "verify")
	require.NoError(t, err)
	report, err := st.VerifyAudit(context.Background())
	require.NoError(t, err)
	require.Contains(t, stdout, "Chain   checked 3 rows, ids 1 to 3\n")
	require.Contains(t, stdout, "Head    id 3, hash "+report.LastHash+"\n")
	require.Contains(t, stdout, "Result  intact\n")

	stdout, _, err = runCLI(t, "audit", "verify", "--json")
	require.NoError(t, err)
	var got store.VerifyReport
	require.NoError(t, json.Unmarshal([]byte(stdout), &got))
	require.Equal(t, report, got)
}

func TestAuditVerify_TamperedRowIsNamedAndFails(t *testing.T) {
	st := verifyDatabase(t)
	ctx := context.Background()
	tx, err := st.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	for _, q := range []string{
		`ALTER TABLE audit_events DISABLE TRIGGER ALL`,
		`UPDATE audit_events SET outcome = 'denied' WHERE actor = 'mallory'`,
		`ALTER TABLE audit_events ENABLE TRIGGER ALL`,
	} {
		_, err := tx.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	require.NoError(t, tx.Commit())

	stdout, _, err := runCLI(t, "audit", "verify")
	require.EqualError(t, err, "the audit trail is broken: 1 of 3 rows fail, the first at row 2")
	require.Contains(t, stdout, "Result       BROKEN: 1 of 3 rows fail\n")
	require.Contains(t, stdout, "First break  row 2: hash mismatch: ")
}
