package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound is returned, wrapped, when a looked-up record does not exist.
var ErrNotFound = errors.New("not found")

const (
	defaultReleaseLimit = 50
	maxReleaseLimit     = 500
	defaultAuditLimit   = 100
	maxAuditLimit       = 1000
)

// Store reads and writes trainyard's records. It is safe for concurrent use.
type Store struct {
	db *sqlx.DB
}

// Open connects to the PostgreSQL database at url (a lib/pq URL or key=value string) and
// checks that it answers.
func Open(ctx context.Context, url string) (*Store, error) {
	db, err := sqlx.Open("postgres", oneRoundTrip(url))
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	// Enough for the server and a worker's activities on one database; idle connections
	// are let go so a quiet process does not hold a share of max_connections.
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(5)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	return &Store{db: db}, nil
}

// oneRoundTrip turns on lib/pq's binary_parameters unless the URL decides otherwise: without
// it every query with parameters costs two round trips (prepare, then execute), and the audit
// write sits on the path of every API action. It is safe because no query here passes a
// []byte parameter (JSON goes as text cast to jsonb), the one thing it changes the encoding of.
func oneRoundTrip(dsn string) string {
	if strings.Contains(dsn, "binary_parameters") {
		return dsn
	}
	if u, err := neturl.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("binary_parameters", "yes")
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " binary_parameters=yes"
}

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the database answers; for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w", err)
	}
	return nil
}

// DB is the underlying pool, for tests.
func (s *Store) DB() *sqlx.DB { return s.db }

// Migrate applies the pending migrations. Processes that start together (server and
// workers) may all call it: a PostgreSQL advisory lock lets one migrate while the others
// wait, then find nothing left to do.
func (s *Store) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// Poll for the lock each second, for up to five minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, s.db.DB, fsys,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		slog.InfoContext(ctx, "applied migration", "file", r.Source.Path, "version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}

// UpsertRelease records the release's state as of r.Seq. It changes the row only when
// r.Seq is higher than the stored one, so a retried write that lands late changes nothing;
// a row made by RecordStart has seq 0, so the workflow's writes start at 1. Runbook,
// version, requester and start time are set when the row is created and never changed.
func (s *Store) UpsertRelease(ctx context.Context, r ReleaseRecord) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO releases (id, runbook, version, requester, phase, environment, failure, seq, started_at, updated_at, ended_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, COALESCE($9::timestamptz, now()), now(), $10)
		ON CONFLICT (id) DO UPDATE SET
			phase = EXCLUDED.phase,
			environment = EXCLUDED.environment,
			failure = EXCLUDED.failure,
			seq = EXCLUDED.seq,
			updated_at = now(),
			ended_at = EXCLUDED.ended_at
		WHERE releases.seq < EXCLUDED.seq`,
		r.ID, r.Runbook, r.Version, r.Requester, r.Phase, r.Environment, r.Failure, r.Seq,
		nullTime(r.StartedAt), r.EndedAt)
	if err != nil {
		return fmt.Errorf("upsert release %q: %w", r.ID, err)
	}
	return nil
}

// GetRelease returns the release with the given id, or an error wrapping ErrNotFound.
func (s *Store) GetRelease(ctx context.Context, id string) (ReleaseRecord, error) {
	var r ReleaseRecord
	err := s.db.GetContext(ctx, &r, `SELECT `+releaseColumns+` FROM releases WHERE id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return ReleaseRecord{}, fmt.Errorf("get release %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return ReleaseRecord{}, fmt.Errorf("get release %q: %w", id, err)
	}
	return r, nil
}

// ListReleases returns the releases matching f, newest first: f.Limit of them, 50 when
// unset, 500 at most.
func (s *Store) ListReleases(ctx context.Context, f ReleaseFilter) ([]ReleaseRecord, error) {
	var w where
	w.eq("runbook", f.Runbook)
	w.eq("phase", f.Phase)
	w.eq("environment", f.Environment)
	q := `SELECT ` + releaseColumns + ` FROM releases` + w.sql() +
		` ORDER BY started_at DESC, id DESC LIMIT ` + w.arg(clamp(f.Limit, defaultReleaseLimit, maxReleaseLimit))
	out := []ReleaseRecord{}
	if err := s.db.SelectContext(ctx, &out, q, w.args...); err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	return out, nil
}

// LastSucceededVersion is the version of the runbook's release that most recently ended
// in phase "succeeded", leaving out release exclude (usually the one asking); "" when
// there is none.
func (s *Store) LastSucceededVersion(ctx context.Context, runbook, exclude string) (string, error) {
	var v string
	err := s.db.GetContext(ctx, &v, `
		SELECT version FROM releases
		WHERE runbook = $1 AND phase = 'succeeded' AND id <> $2
		ORDER BY ended_at DESC NULLS LAST, updated_at DESC, id DESC
		LIMIT 1`, runbook, exclude)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("last succeeded version of runbook %q: %w", runbook, err)
	}
	return v, nil
}

// RecordDecision stores an approval or rejection. An actor decides a gate once: a repeat
// (a retry, a double click) is ignored and the first decision stands.
func (s *Store) RecordDecision(ctx context.Context, d DecisionRecord) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO approvals (release_id, gate, actor, decision, comment, decided_at)
		VALUES ($1, $2, $3, $4, $5, COALESCE($6::timestamptz, now()))
		ON CONFLICT (release_id, gate, actor) DO NOTHING`,
		d.ReleaseID, d.Gate, d.Actor, d.Decision, d.Comment, nullTime(d.DecidedAt))
	if err != nil {
		return fmt.Errorf("record decision on gate %q of release %q by %q: %w", d.Gate, d.ReleaseID, d.Actor, err)
	}
	return nil
}

// Decisions returns the release's decisions, oldest first.
func (s *Store) Decisions(ctx context.Context, releaseID string) ([]DecisionRecord, error) {
	out := []DecisionRecord{}
	err := s.db.SelectContext(ctx, &out, `
		SELECT release_id, gate, actor, decision, comment, decided_at FROM approvals
		WHERE release_id = $1
		ORDER BY decided_at, gate, actor`, releaseID)
	if err != nil {
		return nil, fmt.Errorf("list decisions of release %q: %w", releaseID, err)
	}
	return out, nil
}

const releaseColumns = `id, runbook, version, requester, phase, environment, failure, seq, started_at, updated_at, ended_at`

// where builds a WHERE clause with numbered parameters.
type where struct {
	conds []string
	args  []any
}

func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *where) cond(c string) { w.conds = append(w.conds, c) }

// eq adds column = v, unless v is empty, which matches everything.
func (w *where) eq(column, v string) {
	if v != "" {
		w.cond(column + " = " + w.arg(v))
	}
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

func clamp(limit, def, most int) int {
	switch {
	case limit <= 0:
		return def
	case limit > most:
		return most
	default:
		return limit
	}
}

// nullTime makes the zero time NULL, so the database fills in now().
func nullTime(t time.Time) sql.NullTime {
	return sql.NullTime{Time: t, Valid: !t.IsZero()}
}
