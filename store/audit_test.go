package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/internal/testpg"
)

// appendEvents appends n events, one a minute from t0, and returns their ids.
func appendEvents(t *testing.T, s *Store, n int) []int64 {
	t.Helper()
	ids := make([]int64, n)
	for i := range n {
		id, err := s.AppendAudit(context.Background(), AuditEvent{
			At: at(i), Actor: fmt.Sprintf("user-%d", i), Roles: []string{"approver"}, Action: "release.approve",
			ReleaseID: "r1", Outcome: OutcomeAllowed, Details: json.RawMessage(fmt.Sprintf(`{"n": %d}`, i)),
		})
		require.NoError(t, err)
		ids[i] = id
	}
	return ids
}

// auditRow reads one row as VerifyAudit does.
func auditRow(t *testing.T, s *Store, id int64) AuditEvent {
	t.Helper()
	rows, err := s.queryAudit(context.Background(), `SELECT `+auditColumns+` FROM audit_events WHERE id = $1`, id)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	return rows[0]
}

func TestAuditChain_LinksEachRowToTheOneBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	ids := appendEvents(t, s, 5)

	events, err := s.ListAudit(ctx, AuditFilter{})
	require.NoError(t, err)
	require.Len(t, events, 5)
	prev := ""
	for i, e := range events {
		require.Equal(t, ids[i], e.ID)
		require.Equal(t, prev, e.PrevHash, "row %d links to the row before", e.ID)
		require.Len(t, e.Hash, 64)
		require.Equal(t, AuditHash(prev, e), e.Hash)
		prev = e.Hash
	}

	report, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.Equal(t, VerifyReport{Checked: 5, FirstID: ids[0], LastID: ids[4], LastHash: prev}, report)
	require.True(t, report.OK())
}

func TestAuditChain_InsertIsChainedWhateverTheCallerSends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	ids := appendEvents(t, s, 2)
	head := auditRow(t, s, ids[1]).Hash

	var got struct {
		ID       int64  `db:"id"`
		PrevHash string `db:"prev_hash"`
		Hash     string `db:"hash"`
	}
	require.NoError(t, s.DB().GetContext(ctx, &got, `
		INSERT INTO audit_events (id, actor, action, outcome, prev_hash, hash)
		VALUES (1000000, 'mallory', 'release.approve', 'allowed', 'forged', 'forged')
		RETURNING id, prev_hash, hash`))
	require.Equal(t, ids[1]+1, got.ID, "the id is drawn under the chain's lock")
	require.Equal(t, head, got.PrevHash)
	require.Equal(t, AuditHash(head, auditRow(t, s, got.ID)), got.Hash)

	report, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.True(t, report.OK(), "%+v", report)
	require.Equal(t, int64(3), report.Checked)
}

func TestAuditChain_ConcurrentAppendsKeepOneUnbrokenChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	const writers, each = 5, 20
	errs := make(chan error, writers*each)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				_, err := s.AppendAudit(ctx, AuditEvent{Actor: fmt.Sprintf("writer-%d", w), Action: "release.start",
					ReleaseID: fmt.Sprintf("r%d", i), Outcome: OutcomeAllowed})
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	report, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.True(t, report.OK(), "first break: %v", report.FirstBroken)
	require.Equal(t, int64(writers*each), report.Checked)
	require.Zero(t, report.BeforeChain)
}

// TestAuditHash_GoAndDatabaseAgree holds the two halves of the encoding together: rows the
// database chained, with awkward values, hash in Go to what the database stored, through
// sessions in different time zones.
func TestAuditHash_GoAndDatabaseAgree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testpg.URL(t)
	utc := openStore(t, dbURL)
	require.NoError(t, utc.Migrate(ctx))
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	q := u.Query()
	q.Set("timezone", "Pacific/Chatham") // UTC+12:45 or +13:45: no whole-hour slip hides
	u.RawQuery = q.Encode()
	chatham := openStore(t, u.String())
	var zone string
	require.NoError(t, chatham.DB().GetContext(ctx, &zone, `SHOW TimeZone`))
	require.Equal(t, "Pacific/Chatham", zone)

	tests := []struct {
		name string
		e    AuditEvent
	}{
		{name: "plain", e: AuditEvent{At: at(1), Actor: "alice", Roles: []string{"approver"}, SourceIP: "10.0.0.7",
			UserAgent: "trainyard-cli/1", Action: "release.approve", ReleaseID: "r1", Outcome: OutcomeAllowed,
			Details: json.RawMessage(`{"gate":"prod"}`)}},
		{name: "nothing optional", e: AuditEvent{At: at(2), Actor: "ci", Action: "release.start", Outcome: OutcomeFailed}},
		{name: "separators and non-ASCII in every field", e: AuditEvent{
			At: at(3), Actor: "Zoë 👩‍💻\n3:x", Roles: []string{"a:b", "", "x\ny", "ü", "9:"},
			SourceIP: "::1", UserAgent: `curl/8 "quoted" \back ` + "\t", SlackUser: "U0ß", SlackTeam: "T:1\n",
			Device: "📱 iPhone", Action: "release.approve", ReleaseID: "r-ß", Outcome: OutcomeDenied,
			Details: json.RawMessage(`{"z": 1, "a": {"é": "\u2028 <b>&", "n": [1.50, 1e3, null, true, "\u00e9"]}, "": ""}`)}},
		{name: "time with nanoseconds in another zone", e: AuditEvent{
			At:    time.Date(2026, 3, 1, 23, 59, 59, 123456789, time.FixedZone("MST", -7*3600)),
			Actor: "bob", Action: "release.abort", Outcome: OutcomeAllowed}},
		{name: "time on a whole second", e: AuditEvent{At: time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC),
			Actor: "bob", Action: "release.abort", Outcome: OutcomeAllowed}},
		{name: "long values", e: AuditEvent{At: at(4), Actor: strings.Repeat("é", 300), UserAgent: strings.Repeat("agent ", 2000),
			Action: "release.start", Outcome: OutcomeAllowed, Details: json.RawMessage(`{"big":"` + strings.Repeat("x", 10000) + `"}`)}},
	}
	for _, tt := range tests {
		for _, sess := range []struct {
			name string
			s    *Store
		}{{"utc session", utc}, {"chatham session", chatham}} {
			t.Run(tt.name+"/"+sess.name, func(t *testing.T) {
				id, err := sess.s.AppendAudit(ctx, tt.e)
				require.NoError(t, err)
				e := auditRow(t, sess.s, id)
				var canonical string
				require.NoError(t, sess.s.DB().GetContext(ctx, &canonical, `
					SELECT audit_event_canonical(prev_hash, id, at, actor, roles, source_ip, user_agent, slack_user,
						slack_team, device, action, release_id, outcome, details)
					FROM audit_events WHERE id = $1`, id))
				require.Equal(t, canonical, string(AuditCanonical(e.PrevHash, e)))
				require.Equal(t, e.Hash, AuditHash(e.PrevHash, e))
			})
		}
	}
	report, err := utc.VerifyAudit(ctx)
	require.NoError(t, err)
	require.True(t, report.OK(), "first break: %v", report.FirstBroken)
	require.Equal(t, int64(2*len(tests)), report.Checked)
}

func TestAuditCanonical_IsTheDocumentedEncoding(t *testing.T) {
	t.Parallel()
	e := AuditEvent{
		ID: 42, At: time.Date(2026, 3, 1, 13, 0, 0, 500, time.FixedZone("CET", 3600)), Actor: "Zoë",
		Roles: []string{"approver", "release-manager"}, SourceIP: "127.0.0.1", Action: "release.approve",
		Outcome: OutcomeAllowed, Details: json.RawMessage(`{"gate": "prod"}`),
	}
	want := "trainyard-audit-v1\n" +
		"3:abc\n" +
		"2:42\n" +
		"27:2026-03-01T12:00:00.000000Z\n" +
		"3:Zoë\n" +
		"28:8:approver15:release-manager\n" +
		"9:127.0.0.1\n" +
		"0:\n0:\n0:\n0:\n" + // user agent, slack user, slack team, device
		"15:release.approve\n" +
		"0:\n" + // release id
		"7:allowed\n" +
		`16:{"gate": "prod"}` + "\n"
	require.Equal(t, want, string(AuditCanonical("abc", e)))
	require.Regexp(t, `^[0-9a-f]{64}$`, AuditHash("abc", e))
	require.NotEqual(t, AuditHash("abc", e), AuditHash("abd", e))
}

// tamper runs stmt the way only a superuser or the table's owner can: with the table's
// triggers off, in one transaction so no other session sees them off.
func tamper(t *testing.T, s *Store, stmt string, args ...any) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	for _, q := range []string{`ALTER TABLE audit_events DISABLE TRIGGER ALL`, stmt, `ALTER TABLE audit_events ENABLE TRIGGER ALL`} {
		var a []any
		if q == stmt {
			a = args
		}
		_, err := tx.ExecContext(ctx, q, a...)
		require.NoError(t, err, q)
	}
	require.NoError(t, tx.Commit())
}

func TestVerifyAudit_FindsTheRowTamperedWithTheTriggersOff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// stmt tampers with the trail; $1 is the id of the third of six rows.
		stmt string
		// brokenAt is the index of the row reported, kind what it reports.
		brokenAt int
		kind     string
	}{
		{name: "outcome changed", stmt: `UPDATE audit_events SET outcome = 'denied' WHERE id = $1`, brokenAt: 2, kind: BreakHashMismatch},
		{name: "actor changed", stmt: `UPDATE audit_events SET actor = 'mallory' WHERE id = $1`, brokenAt: 2, kind: BreakHashMismatch},
		{name: "details changed", stmt: `UPDATE audit_events SET details = '{"n": 99}' WHERE id = $1`, brokenAt: 2, kind: BreakHashMismatch},
		{name: "row deleted", stmt: `DELETE FROM audit_events WHERE id = $1`, brokenAt: 3, kind: BreakLink},
		{name: "first row deleted", stmt: `DELETE FROM audit_events WHERE id = $1 - 2`, brokenAt: 1, kind: BreakLink},
		{
			name: "row rewritten with a hash that fits it",
			stmt: `UPDATE audit_events SET outcome = 'denied',
				hash = audit_event_hash(audit_event_canonical(prev_hash, id, at, actor, roles, source_ip, user_agent,
					slack_user, slack_team, device, action, release_id, 'denied', details))
				WHERE id = $1`,
			brokenAt: 3, kind: BreakLink,
		},
		{
			name: "row forged at the end",
			stmt: `INSERT INTO audit_events (id, actor, action, outcome, prev_hash, hash)
				SELECT nextval(pg_get_serial_sequence('audit_events', 'id')), 'mallory', 'release.approve', 'allowed', hash, 'forged'
				FROM audit_events WHERE id = $1 + 3`,
			brokenAt: 6, kind: BreakHashMismatch,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := newStore(t)
			ids := appendEvents(t, s, 6)
			tamper(t, s, tt.stmt, ids[2])
			ids = append(ids, ids[5]+1) // the forged row's

			report, err := s.VerifyAudit(ctx)
			require.NoError(t, err)
			require.False(t, report.OK())
			require.Equal(t, int64(1), report.Broken, "one change, one break: %+v", report)
			require.NotNil(t, report.FirstBroken)
			require.Equal(t, ids[tt.brokenAt], report.FirstBroken.ID)
			require.Equal(t, tt.kind, report.FirstBroken.Kind)
			require.Contains(t, report.FirstBroken.String(), fmt.Sprintf("row %d: %s", ids[tt.brokenAt], tt.kind))

			// The trail goes on after the tampering; the break stays the only one.
			_, err = s.AppendAudit(ctx, AuditEvent{Actor: "alice", Action: "release.abort", Outcome: OutcomeAllowed})
			require.NoError(t, err)
			again, err := s.VerifyAudit(ctx)
			require.NoError(t, err)
			require.Equal(t, int64(1), again.Broken)
			require.Equal(t, report.Checked+1, again.Checked)
		})
	}
}

func TestVerifyAudit_CountsRowsFromBeforeTheChainWithoutFailingThem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t, testpg.URL(t))
	fsys, err := fs.Sub(migrations, "migrations")
	require.NoError(t, err)
	p, err := goose.NewProvider(goose.DialectPostgres, s.DB().DB, fsys, goose.WithDisableGlobalRegistry(true))
	require.NoError(t, err)
	_, err = p.UpTo(ctx, 1)
	require.NoError(t, err)
	_, err = s.DB().ExecContext(ctx, `
		INSERT INTO audit_events (actor, action, outcome)
		SELECT 'ci', 'release.start', 'allowed' FROM generate_series(1, 3)`)
	require.NoError(t, err)

	require.NoError(t, s.Migrate(ctx), "the chain's migration leaves old rows as they are")
	ids := appendEvents(t, s, 2)

	old, err := s.ListAudit(ctx, AuditFilter{Actor: "ci"})
	require.NoError(t, err)
	require.Len(t, old, 3)
	require.Empty(t, old[0].Hash)
	report, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.Equal(t, VerifyReport{
		Checked: 2, BeforeChain: 3, LastBeforeChain: old[2].ID,
		FirstID: ids[0], LastID: ids[1], LastHash: auditRow(t, s, ids[1]).Hash,
	}, report)
	require.True(t, report.OK())
	require.Empty(t, auditRow(t, s, ids[0]).PrevHash, "the chain starts at the first row with a hash")
}

func TestVerifyAudit_EmptyTrailIsIntact(t *testing.T) {
	t.Parallel()
	report, err := newStore(t).VerifyAudit(context.Background())
	require.NoError(t, err)
	require.Equal(t, VerifyReport{}, report)
	require.True(t, report.OK())
}

func TestVerifyAudit_ReadsPastOnePage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	_, err := s.DB().ExecContext(ctx, `
		INSERT INTO audit_events (actor, action, outcome, details)
		SELECT 'ci', 'release.start', 'allowed', jsonb_build_object('i', i) FROM generate_series(1, $1) AS i`, verifyPage+5)
	require.NoError(t, err)
	report, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.True(t, report.OK(), "first break: %v", report.FirstBroken)
	require.Equal(t, int64(verifyPage+5), report.Checked)
}

func TestAppendAudit_RefusesToChainFromAnOlderSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	tx, err := s.DB().BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_events (actor, action, outcome) VALUES ('ci', 'release.start', 'allowed')`)
	require.ErrorContains(t, err, "audit events must be appended at READ COMMITTED, not repeatable read")
}

func TestListAudit_PagesAfterAnIDWithoutGapsOrRepeats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	// Out of time order, with ties on the time, and another actor's rows in between.
	for _, e := range []AuditEvent{
		{At: at(5), Actor: "alice"}, {At: at(1), Actor: "alice"}, {At: at(3), Actor: "bob"},
		{At: at(3), Actor: "alice"}, {At: at(3), Actor: "alice"}, {At: at(0), Actor: "bob"},
		{At: at(9), Actor: "alice"}, {At: at(3), Actor: "alice"}, {At: at(2), Actor: "alice"},
	} {
		e.Action, e.Outcome = "release.approve", OutcomeAllowed
		_, err := s.AppendAudit(ctx, e)
		require.NoError(t, err)
	}

	for _, tt := range []struct {
		name string
		f    AuditFilter
	}{
		{name: "everything"},
		{name: "one actor", f: AuditFilter{Actor: "alice"}},
		{name: "one actor in a window", f: AuditFilter{Actor: "alice", Since: at(2), Until: at(9)}},
	} {
		f := tt.f
		t.Run(tt.name, func(t *testing.T) {
			want, err := s.ListAudit(ctx, f)
			require.NoError(t, err)
			for limit := 1; limit <= 4; limit++ {
				var got []AuditEvent
				page := f
				page.Limit = limit
				for {
					events, err := s.ListAudit(ctx, page)
					require.NoError(t, err)
					got = append(got, events...)
					if len(events) < limit {
						break
					}
					page.After = events[len(events)-1].ID
				}
				require.Equal(t, want, got, "pages of %d", limit)
			}
		})
	}

	// Continuing after a row the filter leaves out still continues from where it sits.
	all, err := s.ListAudit(ctx, AuditFilter{})
	require.NoError(t, err)
	bob := all[0] // bob's at(0)
	require.Equal(t, "bob", bob.Actor)
	rest, err := s.ListAudit(ctx, AuditFilter{Actor: "alice", After: bob.ID})
	require.NoError(t, err)
	require.Len(t, rest, 7)

	_, err = s.ListAudit(ctx, AuditFilter{After: 999999})
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, "999999")
}

// A caller must not keep an action out of the trail by sending text PostgreSQL refuses.
func TestAppendAudit_RecordsTextPostgreSQLWouldRefuse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	id, err := s.AppendAudit(ctx, AuditEvent{
		Actor: "mallory", Roles: []string{"dev\xfe"}, UserAgent: "curl\xff/8", Device: "pc\x00", Action: "release.approve",
		ReleaseID: "r\x001", Outcome: OutcomeAllowed,
		Details: json.RawMessage(`{"comment": "ok\u0000", "k\u0000": [1.50, 12345678901234567890, "\\u0000"], "raw": "` + "\xff" + `"}`),
	})
	require.NoError(t, err)

	e := auditRow(t, s, id)
	require.Equal(t, []string{"dev\uFFFD"}, e.Roles)
	require.Equal(t, "curl\uFFFD/8", e.UserAgent)
	require.Equal(t, "pc\uFFFD", e.Device)
	require.Equal(t, "r\uFFFD1", e.ReleaseID)
	require.JSONEq(t, `{"comment": "ok\ufffd", "k\ufffd": [1.50, 12345678901234567890, "\\u0000"], "raw": "\ufffd"}`, string(e.Details))
	require.Equal(t, AuditHash(e.PrevHash, e), e.Hash)
}

func TestVerifyAudit_RowWithoutAHashAfterTheChainBeganIsBroken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t)
	appendEvents(t, s, 2)
	// Only the owner could: drop the check that new rows carry a hash, insert with the
	// chain's trigger off.
	tamper(t, s, `ALTER TABLE audit_events DROP CONSTRAINT audit_events_chained`)
	var unchained int64
	require.NoError(t, s.DB().GetContext(ctx, &unchained, `SELECT nextval('audit_events_id_seq')`))
	tamper(t, s, `INSERT INTO audit_events (id, actor, action, outcome) VALUES ($1, 'mallory', 'release.approve', 'allowed')`, unchained)
	appendEvents(t, s, 1)

	report, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(4), report.Checked)
	require.Equal(t, int64(1), report.Broken, "the row after it starts afresh, as the trigger does")
	require.Equal(t, &ChainBreak{ID: unchained, Kind: BreakUnchained}, report.FirstBroken)
}

func TestRecordStart_WritesTheReleaseRowAndAChainedAuditRowTogether(t *testing.T) {
	t.Parallel()
	st := newStore(t)
	ctx := context.Background()
	rec := ReleaseRecord{ID: "release-shop-1", Runbook: "shop", Version: "1", Requester: "ci", Phase: "pending"}
	ev := AuditEvent{Actor: "ci", Roles: []string{"deployer"}, Action: "release.start", ReleaseID: rec.ID, Outcome: OutcomeAllowed}
	id, err := st.RecordStart(ctx, rec, ev)
	require.NoError(t, err)
	require.Positive(t, id)
	got, err := st.GetRelease(ctx, rec.ID)
	require.NoError(t, err)
	require.Equal(t, "pending", got.Phase)

	// Starting again (the same release, retried) leaves the row and adds an audit row.
	require.NoError(t, st.UpsertRelease(ctx, ReleaseRecord{ID: rec.ID, Runbook: "shop", Version: "1", Requester: "ci", Phase: "deploying", Seq: 1}))
	_, err = st.RecordStart(ctx, rec, ev)
	require.NoError(t, err)
	got, err = st.GetRelease(ctx, rec.ID)
	require.NoError(t, err)
	require.Equal(t, "deploying", got.Phase, "an existing row is left alone")
	events, err := st.ListAudit(ctx, AuditFilter{ReleaseID: rec.ID})
	require.NoError(t, err)
	require.Len(t, events, 2)
	report, err := st.VerifyAudit(ctx)
	require.NoError(t, err)
	require.True(t, report.OK(), "%+v", report)
}
