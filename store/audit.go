package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lib/pq"
)

// AppendAudit adds e to the audit trail and returns its id. A zero e.At means now; empty
// e.Details means {}. Each call is a new event: the trail records attempts, repeats too.
//
// It is one statement, so one round trip: the database's insert trigger chains the row (it
// takes the chain's lock, reads the head's hash, draws the id and computes the row's hash;
// see migrations/00002_audit_chain.sql). The lock is held until the statement's transaction
// commits, so appends take turns, each holding it from its head read to its commit.
//
// Text PostgreSQL cannot store (invalid UTF-8, NUL) is stored with U+FFFD in its place: a
// caller must not be able to keep an action out of the trail with a crafted User-Agent, path
// or comment.
func (s *Store) AppendAudit(ctx context.Context, e AuditEvent) (int64, error) {
	return s.appendAudit(ctx, "", nil, e)
}

// RecordStart writes a started release's row (unless it exists) and the audit event of its
// start in one statement: one round trip on the API's hottest path, and never one without
// the other.
func (s *Store) RecordStart(ctx context.Context, r ReleaseRecord, e AuditEvent) (int64, error) {
	ensure := `WITH ensured AS (
		INSERT INTO releases (id, runbook, version, requester, phase, environment, failure, seq, started_at, updated_at, ended_at)
		VALUES ($13, $14, $15, $16, $17, $18, $19, $20, COALESCE($21::timestamptz, now()), now(), $22)
		ON CONFLICT (id) DO NOTHING)
	`
	args := []any{r.ID, r.Runbook, r.Version, r.Requester, r.Phase, r.Environment, r.Failure, r.Seq, nullTime(r.StartedAt), r.EndedAt}
	id, err := s.appendAudit(ctx, ensure, args, e)
	if err != nil {
		return 0, fmt.Errorf("record start of release %q: %w", r.ID, err)
	}
	return id, nil
}

// appendAudit inserts e, after the data-modifying WITH clause prefix (whose parameters,
// extra, are numbered from $13) when given.
func (s *Store) appendAudit(ctx context.Context, prefix string, extra []any, e AuditEvent) (int64, error) {
	details := storableJSON(bytes.TrimSpace(e.Details))
	if len(details) == 0 || string(details) == "null" {
		details = []byte("{}")
	}
	roles := make([]string, len(e.Roles))
	for i, r := range e.Roles {
		roles[i] = storable(r)
	}
	var releaseID sql.NullString
	if e.ReleaseID != "" {
		releaseID = sql.NullString{String: storable(e.ReleaseID), Valid: true}
	}
	args := append([]any{
		nullTime(e.At), storable(e.Actor), pq.Array(roles), storable(e.SourceIP), storable(e.UserAgent),
		storable(e.SlackUser), storable(e.SlackTeam), storable(e.Device), storable(e.Action), releaseID,
		storable(e.Outcome), string(details),
	}, extra...)
	var id int64
	err := s.db.QueryRowContext(ctx, prefix+`
		INSERT INTO audit_events (at, actor, roles, source_ip, user_agent, slack_user, slack_team, device, action, release_id, outcome, details)
		VALUES (COALESCE($1::timestamptz, now()), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb)
		RETURNING id`, args...).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("append audit event %q by %q: %w", e.Action, e.Actor, err)
	}
	return id, nil
}

// storable is s as a PostgreSQL text value can hold it: invalid UTF-8 and NUL become U+FFFD.
func storable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// storableJSON is JSON text jsonb accepts: jsonb refuses invalid UTF-8 and the escape \u0000,
// so a document with either is decoded (which replaces invalid UTF-8), has NUL replaced in
// its strings and keys, and is encoded again. Anything else, invalid JSON included (the
// database refuses it), is returned as is.
func storableJSON(b []byte) []byte {
	if utf8.Valid(b) && !bytes.Contains(b, []byte(`\u0000`)) {
		return b
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return b
	}
	out, err := json.Marshal(storableValue(v))
	if err != nil {
		return b
	}
	return out
}

func storableValue(v any) any {
	switch x := v.(type) {
	case string:
		return storable(x)
	case []any:
		for i := range x {
			x[i] = storableValue(x[i])
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[storable(k)] = storableValue(val)
		}
		return out
	default:
		return v
	}
}

// auditColumns are read in the order scanAudit scans them. details is read as jsonb's text,
// which is what the chain hashes.
const auditColumns = `id, at, actor, roles, source_ip, user_agent, slack_user, slack_team, device,
	action, release_id, outcome, details::text, prev_hash, hash`

// ListAudit returns the audit events matching f, oldest first (by time, then id): f.Limit of
// them, 100 when unset, 1000 at most. Since is inclusive, Until exclusive. To read the next
// page, set f.After to the id of the last event of this one. An f.After that names no event
// is an error wrapping ErrNotFound.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	var w where
	w.eq("release_id", f.ReleaseID)
	w.eq("actor", f.Actor)
	w.eq("action", f.Action)
	if !f.Since.IsZero() {
		w.cond("at >= " + w.arg(f.Since))
	}
	if !f.Until.IsZero() {
		w.cond("at < " + w.arg(f.Until))
	}
	if f.After > 0 {
		// No row for the id makes the comparison NULL, so no rows: told apart below.
		w.cond("(at, id) > (SELECT c.at, c.id FROM audit_events c WHERE c.id = " + w.arg(f.After) + ")")
	}
	q := `SELECT ` + auditColumns + ` FROM audit_events` + w.sql() +
		` ORDER BY at, id LIMIT ` + w.arg(clamp(f.Limit, defaultAuditLimit, maxAuditLimit))
	out, err := s.queryAudit(ctx, q, w.args...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	if len(out) == 0 && f.After > 0 {
		var exists bool
		if err := s.db.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM audit_events WHERE id = $1)`, f.After); err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		if !exists {
			return nil, fmt.Errorf("list audit events after id %d: no event has that id: %w", f.After, ErrNotFound)
		}
	}
	return out, nil
}

func (s *Store) queryAudit(ctx context.Context, q string, args ...any) ([]AuditEvent, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []AuditEvent{}
	for rows.Next() {
		var (
			e                         AuditEvent
			roles                     []sql.NullString
			releaseID, prevHash, hash sql.NullString
			details                   string
		)
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, pq.Array(&roles), &e.SourceIP, &e.UserAgent,
			&e.SlackUser, &e.SlackTeam, &e.Device, &e.Action, &releaseID, &e.Outcome, &details,
			&prevHash, &hash); err != nil {
			return nil, err
		}
		e.Roles = make([]string, len(roles))
		for i, r := range roles {
			e.Roles[i] = r.String
		}
		e.ReleaseID, e.PrevHash, e.Hash = releaseID.String, prevHash.String, hash.String
		e.Details = json.RawMessage(details)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// auditEncodingVersion opens every canonical encoding, so a future encoding cannot be
// mistaken for this one.
const auditEncodingVersion = "trainyard-audit-v1"

// auditTimeLayout is how the canonical encoding writes an event's time (always UTC): RFC
// 3339 with microseconds, PostgreSQL's precision.
const auditTimeLayout = "2006-01-02T15:04:05.000000Z"

// AuditCanonical is the canonical encoding of event e chained after the row whose hash is
// prevHash: the bytes its hash is taken of. It is the Go half of a pair: the database computes
// the same bytes (audit_event_canonical in migrations/00002_audit_chain.sql) when it writes a
// row, and the two must agree byte for byte.
//
// The encoding is the UTF-8 of "trainyard-audit-v1\n" followed by, for each field in this
// order, <n>:<value>\n where n is the value's length in Unicode code points, in decimal:
//
//	prev_hash, id (decimal), at (UTC, as 2006-01-02T15:04:05.000000Z), actor,
//	roles (each role as <n>:<role>, concatenated, no separator), source_ip, user_agent,
//	slack_user, slack_team, device, action, release_id ("" when none), outcome,
//	details (the text PostgreSQL gives for the jsonb value)
//
// Length prefixes make the encoding unambiguous whatever the values contain. Lengths count
// code points, not bytes, so they agree with the database whatever its server encoding. e's
// fields are used as the database returns them: Details must be jsonb's text form of the
// value (as ListAudit returns it), not the text a caller sent, which jsonb normalises.
func AuditCanonical(prevHash string, e AuditEvent) []byte {
	var roles []byte
	for _, r := range e.Roles {
		roles = appendLengthPrefixed(roles, r)
	}
	b := make([]byte, 0, 256+len(e.Details)+len(e.UserAgent))
	b = append(b, auditEncodingVersion+"\n"...)
	for _, f := range []string{
		prevHash,
		strconv.FormatInt(e.ID, 10),
		e.At.UTC().Format(auditTimeLayout),
		e.Actor,
		string(roles),
		e.SourceIP,
		e.UserAgent,
		e.SlackUser,
		e.SlackTeam,
		e.Device,
		e.Action,
		e.ReleaseID,
		e.Outcome,
		string(e.Details),
	} {
		b = appendLengthPrefixed(b, f)
		b = append(b, '\n')
	}
	return b
}

func appendLengthPrefixed(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(utf8.RuneCountInString(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

// AuditHash is the hash of event e chained after prevHash: the lowercase hex SHA-256 of
// AuditCanonical(prevHash, e).
func AuditHash(prevHash string, e AuditEvent) string {
	sum := sha256.Sum256(AuditCanonical(prevHash, e))
	return hex.EncodeToString(sum[:])
}

// Kinds of chain break.
const (
	// BreakHashMismatch: the row's fields no longer give its hash; it was changed after it
	// was written.
	BreakHashMismatch = "hash mismatch"
	// BreakLink: the row's prev_hash is not the hash of the row before it; a row was removed
	// or inserted there, or the row before was rewritten along with its hash.
	BreakLink = "broken link"
	// BreakUnchained: a row without a hash after the chain began; it was written with the
	// chain's trigger disabled.
	BreakUnchained = "missing hash"
)

// ChainBreak is a row where the chain does not hold.
type ChainBreak struct {
	ID   int64  `json:"id"`
	Kind string `json:"kind"`
	// Want is what the row should hold (the computed hash, or the previous row's hash), Got
	// what it holds (its hash, or its prev_hash).
	Want string `json:"want,omitempty"`
	Got  string `json:"got,omitempty"`
}

func (b ChainBreak) String() string {
	switch b.Kind {
	case BreakHashMismatch:
		return fmt.Sprintf("row %d: %s: its fields hash to %s but it holds %s (changed after it was written)", b.ID, b.Kind, b.Want, b.Got)
	case BreakLink:
		if b.Want == "" {
			return fmt.Sprintf("row %d: %s: its prev_hash is %s but no chained row is left before it (the rows before it were removed)", b.ID, b.Kind, b.Got)
		}
		return fmt.Sprintf("row %d: %s: its prev_hash is %s but the row before it hashes to %s (a row was removed, inserted or rewritten there)", b.ID, b.Kind, b.Got, b.Want)
	default:
		return fmt.Sprintf("row %d: %s: written after the chain began but not chained (the chain's trigger was off)", b.ID, b.Kind)
	}
}

// VerifyReport is what VerifyAudit found.
type VerifyReport struct {
	// Checked counts the rows of the chain checked, broken ones included.
	Checked int64 `json:"checked"`
	// BeforeChain counts the rows written before the chain began (before migration 2), which
	// have no hash and are not protected by it; LastBeforeChain is the id of the last one.
	BeforeChain     int64 `json:"beforeChain"`
	LastBeforeChain int64 `json:"lastBeforeChain,omitempty"`
	// FirstID and LastID bound the chain; LastHash is its head, the value to keep elsewhere
	// to detect a later rewrite or truncation of the tail.
	FirstID  int64  `json:"firstId,omitempty"`
	LastID   int64  `json:"lastId,omitempty"`
	LastHash string `json:"lastHash,omitempty"`
	// Broken counts the rows where the chain does not hold; FirstBroken is the first of them.
	Broken      int64       `json:"broken"`
	FirstBroken *ChainBreak `json:"firstBroken,omitempty"`
}

// OK reports an unbroken chain.
func (r VerifyReport) OK() bool { return r.Broken == 0 }

// verifyPage is how many rows VerifyAudit reads at a time.
const verifyPage = 1000

// VerifyAudit walks the audit trail in id order, recomputes each row's hash and checks that
// it links to the row before. Rows before the first row with a hash were written before the
// chain existed: they are counted, not failed. It reads in pages, so a large trail does not
// sit in memory; rows appended meanwhile are checked too.
func (s *Store) VerifyAudit(ctx context.Context) (VerifyReport, error) {
	var (
		r       VerifyReport
		head    string // hash of the last chained row
		started bool
		after   int64
	)
	broken := func(b ChainBreak) {
		r.Broken++
		if r.FirstBroken == nil {
			r.FirstBroken = &b
		}
	}
	for {
		page, err := s.queryAudit(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2`, after, verifyPage)
		if err != nil {
			return r, fmt.Errorf("verify audit trail after id %d: %w", after, err)
		}
		for _, e := range page {
			after = e.ID
			if e.Hash == "" {
				if !started {
					r.BeforeChain++
					r.LastBeforeChain = e.ID
					continue
				}
				r.Checked++
				broken(ChainBreak{ID: e.ID, Kind: BreakUnchained})
				// The trigger chains the next row after this one, as after a start.
				head = ""
				continue
			}
			if !started {
				started, r.FirstID = true, e.ID
			}
			r.Checked++
			if e.PrevHash != head {
				broken(ChainBreak{ID: e.ID, Kind: BreakLink, Want: head, Got: e.PrevHash})
			} else if want := AuditHash(e.PrevHash, e); want != e.Hash {
				broken(ChainBreak{ID: e.ID, Kind: BreakHashMismatch, Want: want, Got: e.Hash})
			}
			// Go on from what the row holds, so one changed row is reported once, not as a
			// break of every row after it.
			head, r.LastID, r.LastHash = e.Hash, e.ID, e.Hash
		}
		if len(page) < verifyPage {
			return r, nil
		}
		if err := ctx.Err(); err != nil {
			return r, fmt.Errorf("verify audit trail: %w", err)
		}
	}
}
