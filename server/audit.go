package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/trainyard/trainyard/store"
)

// Audit actions written by the HTTP API.
const (
	actionStart   = "release.start"
	actionApprove = "release.approve"
	actionReject  = "release.reject"
	actionAbort   = "release.abort"
	// actionDecide records an approval request so malformed that it says neither approve
	// nor reject: it is still an attempt, and attempts are audited.
	actionDecide = "release.decide"
)

// headerDevice is where a client names the device it runs on (a laptop's hostname, "ci",
// a Slack client). It is the caller's claim, recorded as said, not proof.
const headerDevice = "X-Trainyard-Device"

// maxDeviceChars bounds what is kept of headerDevice.
const maxDeviceChars = 200

// device is the caller's X-Trainyard-Device, made fit for the audit trail: valid UTF-8
// (PostgreSQL refuses anything else, and the row would be lost), no control characters, and
// at most maxDeviceChars characters.
func device(c *gin.Context) string {
	v := strings.TrimSpace(c.GetHeader(headerDevice))
	if v == "" {
		return ""
	}
	v = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(v, "\uFFFD"))
	if utf8.RuneCountInString(v) > maxDeviceChars {
		v = string([]rune(v)[:maxDeviceChars])
	}
	return v
}

// audit appends one row to the audit trail for the caller of c. A failed write is logged, not
// returned: the caller's action has already happened (or been refused) by then.
func (s *Server) audit(c *gin.Context, action, releaseID, outcome string, details map[string]any) {
	s.writeAudit(c, action, releaseID, outcome, details, s.deps.Store.AppendAudit)
}

// writeAudit builds the caller's audit event and hands it to write, which may store more in
// the same statement (RecordStart does).
func (s *Server) writeAudit(c *gin.Context, action, releaseID, outcome string, details map[string]any,
	write func(context.Context, store.AuditEvent) (int64, error)) {
	p := principal(c)
	s.metrics.actions.WithLabelValues(action, outcome).Inc()
	ev := store.AuditEvent{
		At:        s.now().UTC(),
		Actor:     p.Name,
		Roles:     p.Roles,
		SourceIP:  c.ClientIP(),
		UserAgent: c.Request.UserAgent(),
		Device:    device(c),
		Action:    action,
		ReleaseID: releaseID,
		Outcome:   outcome,
	}
	if len(details) > 0 {
		if b, err := json.Marshal(details); err == nil {
			ev.Details = b
		}
	}
	// The row must be written even when the caller hung up, which cancels the request's
	// context; it keeps the context's values but not its cancellation.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), auditTimeout)
	defer cancel()
	if _, err := write(ctx, ev); err != nil {
		s.log.ErrorContext(ctx, "audit write failed",
			slog.String("requestId", requestID(c)),
			slog.String("action", action),
			slog.String("releaseId", releaseID),
			slog.String("actor", p.Name),
			slog.String("outcome", outcome),
			slog.Any("error", err))
	}
}

func (s *Server) listAudit(c *gin.Context) {
	f := store.AuditFilter{
		ReleaseID: c.Query("release"),
		Actor:     c.Query("actor"),
		Action:    c.Query("action"),
	}
	var p *problem
	if f.Since, p = queryTime(c, "since"); p != nil {
		abortWithProblem(c, p)
		return
	}
	if f.Until, p = queryTime(c, "until"); p != nil {
		abortWithProblem(c, p)
		return
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		fail(c, http.StatusBadRequest, "until is before since; swap them")
		return
	}
	if f.Limit, p = queryLimit(c); p != nil {
		abortWithProblem(c, p)
		return
	}
	if v := c.Query("after"); v != "" {
		after, err := strconv.ParseInt(v, 10, 64)
		if err != nil || after < 1 {
			fail(c, http.StatusBadRequest, "after must be the id of an audit event (a whole number from 1), not "+strconv.Quote(v))
			return
		}
		f.After = after
	}
	events, err := s.deps.Store.ListAudit(c.Request.Context(), f)
	if errors.Is(err, store.ErrNotFound) {
		fail(c, http.StatusBadRequest, "after names no audit event: give the id of the last event of the page before")
		return
	}
	if err != nil {
		s.internal(c, "list audit events", err)
		return
	}
	if events == nil {
		events = []store.AuditEvent{}
	}
	c.JSON(http.StatusOK, gin.H{"events": events})
}

func queryTime(c *gin.Context, name string) (time.Time, *problem) {
	v := c.Query(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, newProblem(http.StatusBadRequest, name+" must be an RFC 3339 time such as 2026-01-02T15:04:05Z, not "+strconv.Quote(v))
	}
	return t, nil
}

// maxListLimit bounds one page of a listing.
const maxListLimit = 1000

func queryLimit(c *gin.Context) (int, *problem) {
	v := c.Query("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxListLimit {
		return 0, newProblem(http.StatusBadRequest, "limit must be a whole number from 1 to "+strconv.Itoa(maxListLimit)+", not "+strconv.Quote(v))
	}
	return n, nil
}

// internal answers 500 for a failure the caller cannot fix, and logs it with the request id
// the caller is shown.
func (s *Server) internal(c *gin.Context, what string, err error) {
	_ = c.Error(err)
	s.log.ErrorContext(c.Request.Context(), what+" failed", slog.String("requestId", requestID(c)), slog.Any("error", err))
	fail(c, http.StatusInternalServerError, "could not "+what+": "+err.Error()+"; if retrying does not help, give an operator the request id "+requestID(c))
}
