package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lib/pq"
)

// Waiver kinds: what a waiver lets a release pass.
const (
	WaiverKindFreeze = "freeze" // a freeze calendar, named by Target
	WaiverKindGate   = "gate"   // a readiness or approval gate
	WaiverKindPolicy = "policy" // a policy
)

// WaiverKinds lists every kind.
var WaiverKinds = []string{WaiverKindFreeze, WaiverKindGate, WaiverKindPolicy}

var (
	// ErrInvalidWaiver is wrapped by GrantWaiver for a waiver that cannot be stored.
	ErrInvalidWaiver = errors.New("invalid waiver")
	// ErrWaiverInactive is wrapped by RevokeWaiver for a waiver already revoked or expired.
	ErrWaiverInactive = errors.New("waiver is not active")
)

// Waiver is a named person's time-limited permission for some releases to pass one freeze
// calendar, gate or policy. It is never edited or deleted: it expires at ExpiresAt on its
// own, or is revoked once before that.
type Waiver struct {
	// ID is WVR-<year>-<n>, given by GrantWaiver.
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Target names what is waived: the calendar, gate or policy.
	Target string      `json:"target"`
	Scope  WaiverScope `json:"scope"`
	Reason string      `json:"reason"`
	// GrantedBy and GrantedRoles are who granted it and the roles they held then.
	GrantedBy    string     `json:"grantedBy"`
	GrantedRoles []string   `json:"grantedRoles"`
	CreatedAt    time.Time  `json:"createdAt"`
	ExpiresAt    time.Time  `json:"expiresAt"`
	RevokedAt    *time.Time `json:"revokedAt,omitempty"`
	RevokedBy    string     `json:"revokedBy,omitempty"`
}

// WaiverScope says which releases a waiver covers. An empty list matches any value; a set
// list must contain the release's value exactly. A waiver names at least one list.
type WaiverScope struct {
	Runbooks     []string `json:"runbooks"`
	Environments []string `json:"environments"`
	Releases     []string `json:"releases"`
}

// Empty reports whether the scope names nothing, which would cover every release.
func (sc WaiverScope) Empty() bool {
	return len(sc.Runbooks) == 0 && len(sc.Environments) == 0 && len(sc.Releases) == 0
}

// Matches reports whether a release of runbook to environment with id releaseID is covered.
func (sc WaiverScope) Matches(runbook, environment, releaseID string) bool {
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	return in(sc.Runbooks, runbook) && in(sc.Environments, environment) && in(sc.Releases, releaseID)
}

func (sc WaiverScope) normalized() WaiverScope {
	orEmpty := func(v []string) []string {
		if v == nil {
			return []string{}
		}
		return v
	}
	return WaiverScope{Runbooks: orEmpty(sc.Runbooks), Environments: orEmpty(sc.Environments), Releases: orEmpty(sc.Releases)}
}

// Waiver states, as State reports them.
const (
	WaiverActive  = "active"
	WaiverExpired = "expired"
	WaiverRevoked = "revoked"
	WaiverPending = "pending" // asked about a time before it was granted
)

// ActiveAt reports whether the waiver applies at t: granted by then, not yet expired and
// not revoked by then.
func (w Waiver) ActiveAt(t time.Time) bool { return w.State(t) == WaiverActive }

// State is the waiver's state at t.
func (w Waiver) State(t time.Time) string {
	switch {
	case w.RevokedAt != nil && !t.Before(*w.RevokedAt):
		return WaiverRevoked
	case !t.Before(w.ExpiresAt):
		return WaiverExpired
	case t.Before(w.CreatedAt):
		return WaiverPending
	}
	return WaiverActive
}

const waiverColumns = `id, kind, target, scope, reason, granted_by, granted_roles, created_at, expires_at, revoked_at, revoked_by`

func scanWaiver(scan func(...any) error) (Waiver, error) {
	var (
		w         Waiver
		scope     []byte
		revokedBy sql.NullString
	)
	if err := scan(&w.ID, &w.Kind, &w.Target, &scope, &w.Reason, &w.GrantedBy, pq.Array(&w.GrantedRoles),
		&w.CreatedAt, &w.ExpiresAt, &w.RevokedAt, &revokedBy); err != nil {
		return Waiver{}, err
	}
	if err := json.Unmarshal(scope, &w.Scope); err != nil {
		return Waiver{}, fmt.Errorf("waiver %s: stored scope: %w", w.ID, err)
	}
	w.Scope = w.Scope.normalized()
	if w.GrantedRoles == nil {
		w.GrantedRoles = []string{}
	}
	w.RevokedBy = revokedBy.String
	return w, nil
}

// GrantWaiver stores a new waiver and returns it with its id. A zero CreatedAt means now.
// It checks what makes a waiver meaningful (a known kind, a target, a reason, a grantor, a
// scope naming something, an expiry after its creation) and wraps ErrInvalidWaiver when one
// is missing; who may grant, and for how long at most, is the caller's policy.
func (s *Store) GrantWaiver(ctx context.Context, w Waiver) (Waiver, error) {
	if w.CreatedAt.IsZero() {
		w.CreatedAt = time.Now()
	}
	w.CreatedAt = w.CreatedAt.UTC().Truncate(time.Microsecond)
	w.ExpiresAt = w.ExpiresAt.UTC().Truncate(time.Microsecond)
	w.Scope = w.Scope.normalized()
	if w.GrantedRoles == nil {
		w.GrantedRoles = []string{}
	}
	var probs []string
	if !slices.Contains(WaiverKinds, w.Kind) {
		probs = append(probs, fmt.Sprintf("kind %q is not one of %s", w.Kind, strings.Join(WaiverKinds, ", ")))
	}
	if strings.TrimSpace(w.Target) == "" {
		probs = append(probs, "target is empty")
	}
	if strings.TrimSpace(w.Reason) == "" {
		probs = append(probs, "reason is empty")
	}
	if w.GrantedBy == "" {
		probs = append(probs, "grantedBy is empty")
	}
	if w.Scope.Empty() {
		probs = append(probs, "scope names no runbook, environment or release")
	}
	if !w.ExpiresAt.After(w.CreatedAt) {
		probs = append(probs, "expiresAt is not after createdAt")
	}
	if len(probs) > 0 {
		return Waiver{}, fmt.Errorf("grant waiver: %w: %s", ErrInvalidWaiver, strings.Join(probs, "; "))
	}
	scope, err := json.Marshal(w.Scope)
	if err != nil {
		return Waiver{}, fmt.Errorf("grant waiver: %w", err)
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Waiver{}, fmt.Errorf("grant waiver: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	year := w.CreatedAt.Year()
	var n int
	if err := tx.QueryRowContext(ctx, `
		INSERT INTO waiver_ids (year, last) VALUES ($1, 1)
		ON CONFLICT (year) DO UPDATE SET last = waiver_ids.last + 1
		RETURNING last`, year).Scan(&n); err != nil {
		return Waiver{}, fmt.Errorf("grant waiver: number it: %w", err)
	}
	w.ID = fmt.Sprintf("WVR-%d-%03d", year, n)
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO waivers (id, kind, target, scope, reason, granted_by, granted_roles, created_at, expires_at)
		VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9)`,
		w.ID, w.Kind, w.Target, string(scope), w.Reason, w.GrantedBy, pq.Array(w.GrantedRoles), w.CreatedAt, w.ExpiresAt); err != nil {
		return Waiver{}, fmt.Errorf("grant waiver %s: %w", w.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return Waiver{}, fmt.Errorf("grant waiver %s: %w", w.ID, err)
	}
	return w, nil
}

// GetWaiver returns the waiver with the id, or an error wrapping ErrNotFound.
func (s *Store) GetWaiver(ctx context.Context, id string) (Waiver, error) {
	w, err := scanWaiver(s.db.QueryRowContext(ctx, `SELECT `+waiverColumns+` FROM waivers WHERE id = $1`, id).Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return Waiver{}, fmt.Errorf("get waiver %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Waiver{}, fmt.Errorf("get waiver %q: %w", id, err)
	}
	return w, nil
}

// WaiverFilter narrows a waiver listing; empty fields match everything.
type WaiverFilter struct {
	Kind   string
	Target string
	// ActiveAt keeps only the waivers active at that time (see Waiver.ActiveAt); zero keeps
	// every waiver.
	ActiveAt time.Time
	Limit    int
}

// ListWaivers returns the waivers matching f, newest first: f.Limit of them, 100 when
// unset, 1000 at most.
func (s *Store) ListWaivers(ctx context.Context, f WaiverFilter) ([]Waiver, error) {
	var w where
	w.eq("kind", f.Kind)
	w.eq("target", f.Target)
	if !f.ActiveAt.IsZero() {
		t := w.arg(f.ActiveAt)
		w.cond("created_at <= " + t + " AND expires_at > " + t + " AND (revoked_at IS NULL OR revoked_at > " + t + ")")
	}
	q := `SELECT ` + waiverColumns + ` FROM waivers` + w.sql() +
		` ORDER BY created_at DESC, id DESC LIMIT ` + w.arg(clamp(f.Limit, defaultAuditLimit, maxAuditLimit))
	return s.selectWaivers(ctx, "list waivers", q, w.args...)
}

// WaiverMatch asks for the waivers that let one release pass one calendar, gate or policy.
type WaiverMatch struct {
	Kind, Target                    string
	Runbook, Environment, ReleaseID string
	// At is the time asked about; zero means now.
	At time.Time
}

// ActiveWaivers returns the waivers of m.Kind for m.Target, active at m.At, whose scope
// covers the release; oldest first.
func (s *Store) ActiveWaivers(ctx context.Context, m WaiverMatch) ([]Waiver, error) {
	at := m.At
	if at.IsZero() {
		at = time.Now()
	}
	all, err := s.selectWaivers(ctx, fmt.Sprintf("find %s waivers for %q", m.Kind, m.Target), `
		SELECT `+waiverColumns+` FROM waivers
		WHERE kind = $1 AND target = $2
		  AND created_at <= $3 AND expires_at > $3 AND (revoked_at IS NULL OR revoked_at > $3)
		ORDER BY created_at, id`, m.Kind, m.Target, at)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, w := range all {
		if w.Scope.Matches(m.Runbook, m.Environment, m.ReleaseID) {
			out = append(out, w)
		}
	}
	return out, nil
}

func (s *Store) selectWaivers(ctx context.Context, what, q string, args ...any) ([]Waiver, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := []Waiver{}
	for rows.Next() {
		w, err := scanWaiver(rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// RevokeWaiver ends the waiver at at (now when zero), as by. A waiver that does not exist
// is an error wrapping ErrNotFound; one already revoked or expired, ErrWaiverInactive.
func (s *Store) RevokeWaiver(ctx context.Context, id, by string, at time.Time) (Waiver, error) {
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC().Truncate(time.Microsecond)
	w, err := scanWaiver(s.db.QueryRowContext(ctx, `
		UPDATE waivers SET revoked_at = $2, revoked_by = $3
		WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2
		RETURNING `+waiverColumns, id, at, by).Scan)
	if err == nil {
		return w, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Waiver{}, fmt.Errorf("revoke waiver %q: %w", id, err)
	}
	cur, err := s.GetWaiver(ctx, id)
	if err != nil {
		return Waiver{}, fmt.Errorf("revoke waiver %q: %w", id, err)
	}
	if cur.RevokedAt != nil {
		return cur, fmt.Errorf("revoke waiver %q: %w: %s revoked it at %s", id, ErrWaiverInactive, cur.RevokedBy, cur.RevokedAt.UTC().Format(time.RFC3339))
	}
	return cur, fmt.Errorf("revoke waiver %q: %w: it expired at %s", id, ErrWaiverInactive, cur.ExpiresAt.UTC().Format(time.RFC3339))
}
