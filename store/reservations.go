package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrOverlap is wrapped by CreateReservation when the slot overlaps another reservation of
// the environment.
var ErrOverlap = errors.New("overlaps another reservation")

// Reservation holds an environment for a runbook or one release during a time slot.
type Reservation struct {
	ID          int64      `json:"id" db:"id"`
	Environment string     `json:"environment" db:"environment"`
	Runbook     string     `json:"runbook,omitempty" db:"runbook"`
	ReleaseID   string     `json:"releaseId,omitempty" db:"release_id"`
	StartsAt    time.Time  `json:"startsAt" db:"starts_at"`
	EndsAt      time.Time  `json:"endsAt" db:"ends_at"`
	Reason      string     `json:"reason" db:"reason"`
	CreatedBy   string     `json:"createdBy" db:"created_by"`
	CreatedAt   time.Time  `json:"createdAt" db:"created_at"`
	CancelledAt *time.Time `json:"cancelledAt,omitempty" db:"cancelled_at"`
	CancelledBy *string    `json:"cancelledBy,omitempty" db:"cancelled_by"`
}

// Holder names who the reservation is for.
func (r Reservation) Holder() string {
	if r.ReleaseID != "" {
		return "release " + r.ReleaseID
	}
	return "runbook " + r.Runbook
}

// Covers reports whether a release of runbook with id releaseID may use the environment
// during the reservation.
func (r Reservation) Covers(runbook, releaseID string) bool {
	if r.ReleaseID != "" {
		return r.ReleaseID == releaseID
	}
	return r.Runbook == runbook
}

const reservationColumns = `id, environment, runbook, release_id, starts_at, ends_at, reason, created_by, created_at, cancelled_at, cancelled_by`

// CreateReservation stores a reservation. Slots of one environment may not overlap: two
// holders cannot both have it.
func (s *Store) CreateReservation(ctx context.Context, r Reservation) (Reservation, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return r, fmt.Errorf("reserve %s: %w", r.Environment, err)
	}
	defer func() { _ = tx.Rollback() }()
	// Serialise reservations of one environment so two overlapping ones cannot both pass.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext('reservation:' || $1))`, r.Environment); err != nil {
		return r, fmt.Errorf("reserve %s: %w", r.Environment, err)
	}
	var other Reservation
	err = tx.GetContext(ctx, &other, `SELECT `+reservationColumns+` FROM reservations
		WHERE environment = $1 AND cancelled_at IS NULL AND starts_at < $3 AND ends_at > $2
		ORDER BY starts_at LIMIT 1`, r.Environment, r.StartsAt, r.EndsAt)
	switch {
	case err == nil:
		return r, fmt.Errorf("reserve %s: %w: #%d holds it for %s from %s to %s", r.Environment, ErrOverlap, other.ID, other.Holder(),
			other.StartsAt.UTC().Format(time.RFC3339), other.EndsAt.UTC().Format(time.RFC3339))
	case !errors.Is(err, sql.ErrNoRows):
		return r, fmt.Errorf("reserve %s: %w", r.Environment, err)
	}
	if err := tx.GetContext(ctx, &r, `INSERT INTO reservations (environment, runbook, release_id, starts_at, ends_at, reason, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+reservationColumns,
		r.Environment, r.Runbook, r.ReleaseID, r.StartsAt, r.EndsAt, storable(strings.TrimSpace(r.Reason)), r.CreatedBy); err != nil {
		return r, fmt.Errorf("reserve %s: %w", r.Environment, err)
	}
	if err := tx.Commit(); err != nil {
		return r, fmt.Errorf("reserve %s: %w", r.Environment, err)
	}
	return r, nil
}

// ListReservations returns the environment's reservations (all environments when empty)
// that end after since, soonest first; cancelled ones are left out.
func (s *Store) ListReservations(ctx context.Context, environment string, since time.Time) ([]Reservation, error) {
	out := []Reservation{}
	err := s.db.SelectContext(ctx, &out, `SELECT `+reservationColumns+` FROM reservations
		WHERE ($1 = '' OR environment = $1) AND cancelled_at IS NULL AND ends_at > $2
		ORDER BY starts_at, id`, environment, since)
	if err != nil {
		return nil, fmt.Errorf("list reservations: %w", err)
	}
	return out, nil
}

// CancelReservation ends a reservation early; an unknown or already cancelled one wraps
// ErrNotFound.
func (s *Store) CancelReservation(ctx context.Context, id int64, by string, at time.Time) (Reservation, error) {
	var r Reservation
	err := s.db.GetContext(ctx, &r, `UPDATE reservations SET cancelled_at = $2, cancelled_by = $3
		WHERE id = $1 AND cancelled_at IS NULL RETURNING `+reservationColumns, id, at, by)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("cancel reservation %d: %w (or already cancelled)", id, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("cancel reservation %d: %w", id, err)
	}
	return r, nil
}

// ReservationWait says whether a reservation keeps a release out of an environment now.
type ReservationWait struct {
	Blocked bool      `json:"blocked"`
	ID      int64     `json:"id,omitempty"`
	Holder  string    `json:"holder,omitempty"`
	Until   time.Time `json:"until,omitempty"`
	Reason  string    `json:"reason,omitempty"`
}

// ReservationStatus answers whether a release of runbook with id releaseID may deploy to
// environment at at: not while another holder's reservation is active.
func (s *Store) ReservationStatus(ctx context.Context, environment, runbook, releaseID string, at time.Time) (ReservationWait, error) {
	active := []Reservation{}
	if err := s.db.SelectContext(ctx, &active, `SELECT `+reservationColumns+` FROM reservations
		WHERE environment = $1 AND cancelled_at IS NULL AND starts_at <= $2 AND ends_at > $2
		ORDER BY starts_at`, environment, at); err != nil {
		return ReservationWait{}, fmt.Errorf("reservations of %s: %w", environment, err)
	}
	for _, r := range active {
		if !r.Covers(runbook, releaseID) {
			return ReservationWait{Blocked: true, ID: r.ID, Holder: r.Holder(), Until: r.EndsAt, Reason: r.Reason}, nil
		}
	}
	return ReservationWait{}, nil
}

// Promotion is one component a stage of a release promoted.
type Promotion struct {
	ReleaseID   string    `json:"releaseId" db:"release_id"`
	Stage       string    `json:"stage" db:"stage"`
	Environment string    `json:"environment" db:"environment"`
	Component   string    `json:"component" db:"component"`
	Version     string    `json:"version" db:"version"`
	Artifact    string    `json:"artifact" db:"artifact"`
	PromotedAt  time.Time `json:"promotedAt" db:"promoted_at"`
}

// RecordPromotions stores what a stage promoted; a retried write changes nothing.
func (s *Store) RecordPromotions(ctx context.Context, ps []Promotion) error {
	for _, p := range ps {
		if _, err := s.db.ExecContext(ctx, `INSERT INTO promotions (release_id, stage, environment, component, version, artifact, promoted_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (release_id, stage, component) DO NOTHING`,
			p.ReleaseID, p.Stage, p.Environment, p.Component, p.Version, p.Artifact, p.PromotedAt); err != nil {
			return fmt.Errorf("record promotion of %s to %s: %w", p.Component, p.Stage, err)
		}
	}
	return nil
}

// Promotions returns what a release promoted, stage by stage.
func (s *Store) Promotions(ctx context.Context, releaseID string) ([]Promotion, error) {
	out := []Promotion{}
	if err := s.db.SelectContext(ctx, &out, `SELECT release_id, stage, environment, component, version, artifact, promoted_at
		FROM promotions WHERE release_id = $1 ORDER BY promoted_at, stage, component`, releaseID); err != nil {
		return nil, fmt.Errorf("promotions of %s: %w", releaseID, err)
	}
	return out, nil
}
