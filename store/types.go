package store

import (
	"encoding/json"
	"time"
)

// ReleaseRecord is the store's row for a release. The workflow owns it: it writes each phase
// change through an activity, with a sequence number that only grows.
type ReleaseRecord struct {
	ID          string     `json:"id" db:"id"`
	Runbook     string     `json:"runbook" db:"runbook"`
	Version     string     `json:"version" db:"version"`
	Requester   string     `json:"requester" db:"requester"`
	Phase       string     `json:"phase" db:"phase"`
	Environment string     `json:"environment" db:"environment"`
	Failure     string     `json:"failure,omitempty" db:"failure"`
	Seq         int64      `json:"seq" db:"seq"`
	StartedAt   time.Time  `json:"startedAt" db:"started_at"`
	UpdatedAt   time.Time  `json:"updatedAt" db:"updated_at"`
	EndedAt     *time.Time `json:"endedAt,omitempty" db:"ended_at"`
}

// DecisionRecord is one approval or rejection of a gate.
type DecisionRecord struct {
	ReleaseID string    `json:"releaseId" db:"release_id"`
	Gate      string    `json:"gate" db:"gate"`
	Actor     string    `json:"actor" db:"actor"`
	Decision  string    `json:"decision" db:"decision"`
	Comment   string    `json:"comment" db:"comment"`
	DecidedAt time.Time `json:"decidedAt" db:"decided_at"`
}

// ReleaseFilter narrows a release listing; empty fields match everything.
type ReleaseFilter struct {
	Runbook     string
	Phase       string
	Environment string
	Limit       int
}

// AuditEvent is one row of the append-only audit trail: a human or system action, allowed
// or denied. PrevHash and Hash are set by the database when the row is written (see
// AuditHash); what a caller puts in them is ignored.
type AuditEvent struct {
	ID        int64     `json:"id" db:"id"`
	At        time.Time `json:"at" db:"at"`
	Actor     string    `json:"actor" db:"actor"`
	Roles     []string  `json:"roles" db:"-"`
	SourceIP  string    `json:"sourceIp,omitempty" db:"source_ip"`
	UserAgent string    `json:"userAgent,omitempty" db:"user_agent"`
	// SlackUser and SlackTeam say who acted in Slack, and in which workspace.
	SlackUser string `json:"slackUser,omitempty" db:"slack_user"`
	SlackTeam string `json:"slackTeam,omitempty" db:"slack_team"`
	// Device is what the client said it runs on (X-Trainyard-Device); the caller's claim.
	Device    string          `json:"device,omitempty" db:"device"`
	Action    string          `json:"action" db:"action"`
	ReleaseID string          `json:"releaseId,omitempty" db:"release_id"`
	Outcome   string          `json:"outcome" db:"outcome"`
	Details   json.RawMessage `json:"details,omitempty" db:"details"`
	// PrevHash is the Hash of the row before this one, "" for the first row of the chain.
	PrevHash string `json:"prevHash" db:"prev_hash"`
	// Hash chains this row to the one before it; "" for rows written before the chain began.
	Hash string `json:"hash" db:"hash"`
}

// Audit outcomes.
const (
	OutcomeAllowed = "allowed"
	OutcomeDenied  = "denied"
	OutcomeFailed  = "failed"
)

// AuditFilter narrows an audit listing; empty fields match everything.
type AuditFilter struct {
	ReleaseID string
	Actor     string
	Action    string
	Since     time.Time
	Until     time.Time
	// After continues a listing: only events that come after the event with this id in the
	// listing's order (at, then id). Zero starts at the beginning.
	After int64
	Limit int
}
