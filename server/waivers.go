package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
)

type waiverRequest struct {
	Kind      string            `json:"kind"`
	Target    string            `json:"target"`
	Scope     store.WaiverScope `json:"scope"`
	Reason    string            `json:"reason"`
	ExpiresAt time.Time         `json:"expiresAt"`
}

const waiverExample = `{"kind":"freeze","target":"holidays","scope":{"runbooks":["payments"],"environments":["production"]},"reason":"fix for the checkout outage, INC-4711","expiresAt":"2026-12-27T00:00:00Z"}`

// waiverView is a waiver with its state now.
type waiverView struct {
	store.Waiver
	State string `json:"state"`
}

func (s *Server) viewWaiver(w store.Waiver) waiverView {
	return waiverView{Waiver: w, State: w.State(s.now())}
}

// waiverReleaseID is the release a waiver is about, for the audit row: its one release.
func waiverReleaseID(sc store.WaiverScope) string {
	if len(sc.Releases) == 1 {
		return sc.Releases[0]
	}
	return ""
}

func (s *Server) grantWaiver(c *gin.Context) {
	cfg := s.govConfig()
	var req waiverRequest
	details := map[string]any{}
	if !s.requireRole(c, actionWaiverGrant, "", cfg.WaiverRoles, "granting a waiver", details) {
		return
	}
	st := s.govStore(c)
	if st == nil {
		return
	}
	if p := decodeJSON(c, &req, waiverExample); p != nil {
		s.refuse(c, actionWaiverGrant, "", p, details)
		return
	}
	releaseID := waiverReleaseID(req.Scope)
	// "reason" is why a grant was refused; the waiver's own reason is "waiverReason".
	details["kind"], details["target"], details["scope"], details["waiverReason"] = req.Kind, req.Target, req.Scope, req.Reason
	if !req.ExpiresAt.IsZero() {
		details["expiresAt"] = req.ExpiresAt.UTC().Format(time.RFC3339)
	}
	refuse := func(p *problem) {
		if p.Status >= http.StatusInternalServerError {
			details["error"] = p.Detail
			s.audit(c, actionWaiverGrant, releaseID, store.OutcomeFailed, details)
			abortWithProblem(c, p)
			return
		}
		s.refuse(c, actionWaiverGrant, releaseID, p, details)
	}
	now := s.now()
	if p := s.checkWaiver(c, st, req, now, cfg.MaxWaiver); p != nil {
		refuse(p)
		return
	}
	p := principal(c)
	w, err := st.GrantWaiver(c.Request.Context(), store.Waiver{
		Kind: req.Kind, Target: req.Target, Scope: req.Scope, Reason: strings.TrimSpace(req.Reason),
		GrantedBy: p.Name, GrantedRoles: p.Roles, CreatedAt: now, ExpiresAt: req.ExpiresAt,
	})
	if errors.Is(err, store.ErrInvalidWaiver) {
		refuse(newProblem(http.StatusBadRequest, err.Error()))
		return
	}
	if err != nil {
		details["error"] = err.Error()
		s.audit(c, actionWaiverGrant, releaseID, store.OutcomeFailed, details)
		s.internal(c, "store the waiver", err)
		return
	}
	details["waiver"] = w.ID
	s.audit(c, actionWaiverGrant, releaseID, store.OutcomeAllowed, details)
	c.Header("Location", s.deps.PublicURL+"/api/v1/waivers/"+url.PathEscape(w.ID))
	c.JSON(http.StatusCreated, s.viewWaiver(w))
}

// checkWaiver validates a grant against the request's own sense and the server's policy.
func (s *Server) checkWaiver(c *gin.Context, st GovernanceStore, req waiverRequest, now time.Time, maxWaiver time.Duration) *problem {
	bad := func(format string, args ...any) *problem {
		return newProblem(http.StatusBadRequest, fmt.Sprintf(format, args...))
	}
	switch {
	case req.Kind == "":
		return bad("kind is required: freeze, gate or policy, as in %s", waiverExample)
	case !slices.Contains(store.WaiverKinds, req.Kind):
		return bad("kind %q is not a kind of waiver: use freeze, gate or policy", req.Kind)
	case req.Target == "":
		return bad("target is required: the calendar, gate or policy waived, as in %s", waiverExample)
	case !runbooks.NamePattern.MatchString(req.Target):
		return bad("target %q is not a calendar, gate or policy name (lowercase letters, digits and dashes)", req.Target)
	case strings.TrimSpace(req.Reason) == "":
		return bad("reason is required: say why these releases may pass, for the audit trail (an incident or change number helps)")
	case len(req.Reason) > maxTextLen:
		return bad("the reason is %d bytes; keep it under %d", len(req.Reason), maxTextLen)
	case req.ExpiresAt.IsZero():
		return bad("expiresAt is required: an RFC 3339 time at most %s ahead, such as %s; a waiver always ends", formatDuration(maxWaiver), now.Add(24*time.Hour).UTC().Format(time.RFC3339))
	case !req.ExpiresAt.After(now):
		return bad("expiresAt %s is not in the future", req.ExpiresAt.UTC().Format(time.RFC3339))
	case req.ExpiresAt.After(now.Add(maxWaiver)):
		return bad("expiresAt %s is more than %s ahead (governance.maxWaiver): expire it by %s, and grant a new waiver if more time is needed",
			req.ExpiresAt.UTC().Format(time.RFC3339), formatDuration(maxWaiver), now.Add(maxWaiver).UTC().Format(time.RFC3339))
	case req.Scope.Empty():
		return bad("scope must name at least one runbook, environment or release: a waiver for everything is a change to the %s, not a waiver", req.Kind)
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"runbooks", req.Scope.Runbooks}, {"environments", req.Scope.Environments}, {"releases", req.Scope.Releases}} {
		for i, v := range l.list {
			if strings.TrimSpace(v) == "" || len(v) > 200 {
				return bad("scope.%s[%d] %q is not a %s name", l.key, i, v, strings.TrimSuffix(l.key, "s"))
			}
		}
	}
	if req.Kind == store.WaiverKindFreeze {
		if _, ok := s.deps.Governance.Calendars.Get(req.Target); ok {
			return nil
		}
		if _, err := st.GetCalendar(c.Request.Context(), req.Target); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return bad("no freeze calendar is named %q; GET /api/v1/calendars lists them", req.Target)
			}
			return newProblem(http.StatusInternalServerError, "could not read the calendar: "+err.Error())
		}
	}
	return nil
}

// formatDuration writes whole days as days ("7 days"), anything else as Go does.
func formatDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		n := int(d / (24 * time.Hour))
		if n == 1 {
			return "1 day"
		}
		return fmt.Sprintf("%d days", n)
	}
	return d.String()
}

func (s *Server) listWaivers(c *gin.Context) {
	st := s.govStore(c)
	if st == nil {
		return
	}
	f := store.WaiverFilter{Kind: c.Query("kind"), Target: c.Query("target")}
	switch v := c.Query("active"); v {
	case "", "false":
	case "true":
		f.ActiveAt = s.now()
	default:
		fail(c, http.StatusBadRequest, "active must be true or false, not "+fmt.Sprintf("%q", v))
		return
	}
	if f.Kind != "" && !slices.Contains(store.WaiverKinds, f.Kind) {
		fail(c, http.StatusBadRequest, fmt.Sprintf("kind %q is not a kind of waiver: use freeze, gate or policy", f.Kind))
		return
	}
	var p *problem
	if f.Limit, p = queryLimit(c); p != nil {
		abortWithProblem(c, p)
		return
	}
	list, err := st.ListWaivers(c.Request.Context(), f)
	if err != nil {
		s.internal(c, "list waivers", err)
		return
	}
	out := make([]waiverView, len(list))
	for i, w := range list {
		out[i] = s.viewWaiver(w)
	}
	c.JSON(http.StatusOK, gin.H{"waivers": out})
}

func (s *Server) getWaiver(c *gin.Context) {
	st := s.govStore(c)
	if st == nil {
		return
	}
	id := c.Param("id")
	w, err := st.GetWaiver(c.Request.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		fail(c, http.StatusNotFound, fmt.Sprintf("no waiver has id %q; list them with GET /api/v1/waivers", id))
		return
	}
	if err != nil {
		s.internal(c, "read the waiver", err)
		return
	}
	c.JSON(http.StatusOK, s.viewWaiver(w))
}

type revokeRequest struct {
	Reason string `json:"reason"`
}

const revokeExample = `{"reason":"the fix shipped"}`

func (s *Server) revokeWaiver(c *gin.Context) {
	id := c.Param("id")
	details := map[string]any{"waiver": id}
	if !s.requireRole(c, actionWaiverRevoke, "", s.govConfig().WaiverRoles, "revoking a waiver", details) {
		return
	}
	st := s.govStore(c)
	if st == nil {
		return
	}
	// The body is optional: a revocation must never be held up by paperwork.
	var req revokeRequest
	body, p := readBody(c)
	if p == nil && len(bytes.TrimSpace(body)) > 0 {
		c.Request.Body = io.NopCloser(bytes.NewReader(body))
		p = decodeJSON(c, &req, revokeExample)
	}
	if p == nil && len(req.Reason) > maxTextLen {
		p = newProblem(http.StatusBadRequest, fmt.Sprintf("the reason is %d bytes; keep it under %d", len(req.Reason), maxTextLen))
	}
	if p != nil {
		s.refuse(c, actionWaiverRevoke, "", p, details)
		return
	}
	// "reason" is why a revocation was refused; the revoker's own reason is "revokeReason".
	if req.Reason != "" {
		details["revokeReason"] = req.Reason
	}
	w, err := st.RevokeWaiver(c.Request.Context(), id, principal(c).Name, s.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.refuse(c, actionWaiverRevoke, "", newProblem(http.StatusNotFound, fmt.Sprintf("no waiver has id %q; list them with GET /api/v1/waivers", id)), details)
		return
	case errors.Is(err, store.ErrWaiverInactive):
		_, why, _ := strings.Cut(err.Error(), store.ErrWaiverInactive.Error()+": ")
		s.refuse(c, actionWaiverRevoke, waiverReleaseID(w.Scope), newProblem(http.StatusConflict, fmt.Sprintf("waiver %s is not active, there is nothing to revoke: %s", id, why)), details)
		return
	case err != nil:
		details["error"] = err.Error()
		s.audit(c, actionWaiverRevoke, "", store.OutcomeFailed, details)
		s.internal(c, "revoke the waiver", err)
		return
	}
	details["kind"], details["target"] = w.Kind, w.Target
	s.audit(c, actionWaiverRevoke, waiverReleaseID(w.Scope), store.OutcomeAllowed, details)
	c.JSON(http.StatusOK, s.viewWaiver(w))
}
