package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
)

// EnvironmentStore is the part of the store behind reservations and promotions; a
// *store.Store has it.
type EnvironmentStore interface {
	CreateReservation(ctx context.Context, r store.Reservation) (store.Reservation, error)
	ListReservations(ctx context.Context, environment string, since time.Time) ([]store.Reservation, error)
	CancelReservation(ctx context.Context, id int64, by string, at time.Time) (store.Reservation, error)
	Promotions(ctx context.Context, releaseID string) ([]store.Promotion, error)
}

const (
	actionReserve           = "reservation.create"
	actionCancelReservation = "reservation.cancel"
	// maxReservation bounds one slot: a reservation is for a test campaign, not a takeover.
	maxReservation = 14 * 24 * time.Hour
)

func (s *Server) environmentRoutes(api *gin.RouterGroup) {
	api.POST("/reservations", s.reserve)
	api.GET("/reservations", s.listReservations)
	api.DELETE("/reservations/:id", s.cancelReservation)
	api.GET("/releases/:id/promotions", s.promotions)
}

func (s *Server) environmentStore(c *gin.Context) EnvironmentStore {
	return storePart[EnvironmentStore](c, s.deps.Store, "reservations and promotions")
}

// storePart is the part of the store an endpoint needs (a *store.Store has every part), or
// nil after answering 503: a server built without it (a test's fake) serves the rest.
func storePart[T any](c *gin.Context, st Store, what string) T {
	part, ok := st.(T)
	if !ok {
		fail(c, http.StatusServiceUnavailable, what+" are not available on this server: its store lacks them; an operator should check its configuration")
	}
	return part
}

type reservationRequest struct {
	Environment string    `json:"environment"`
	Runbook     string    `json:"runbook"`
	Release     string    `json:"release"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Reason      string    `json:"reason"`
}

const reservationExample = `{"environment":"perf","runbook":"payments","start":"2026-12-01T09:00:00Z","end":"2026-12-01T17:00:00Z","reason":"Black Friday load test"}`

// reserve holds a shared environment for a runbook (or one release) during a slot: others'
// releases wait for its end before deploying there. The calendar admin roles may reserve.
func (s *Server) reserve(c *gin.Context) {
	details := map[string]any{}
	if !s.requireRole(c, actionReserve, "", s.govConfig().CalendarAdminRoles, "reserving an environment", details) {
		return
	}
	st := s.environmentStore(c)
	if st == nil {
		return
	}
	var req reservationRequest
	if p := decodeJSON(c, &req, reservationExample); p != nil {
		s.refuse(c, actionReserve, "", p, details)
		return
	}
	details["environment"], details["runbook"], details["release"] = req.Environment, req.Runbook, req.Release
	details["start"], details["end"], details["reservationReason"] = req.Start, req.End, req.Reason
	var probs []string
	if !runbooks.NamePattern.MatchString(req.Environment) {
		probs = append(probs, fmt.Sprintf("environment %q is not an environment name (lowercase letters, digits and dashes)", req.Environment))
	}
	if (req.Runbook == "") == (req.Release == "") {
		probs = append(probs, "name exactly one holder: runbook (its releases may deploy in the slot) or release (only that one)")
	}
	switch {
	case req.Start.IsZero() || req.End.IsZero():
		probs = append(probs, "start and end are required (RFC 3339)")
	case !req.End.After(req.Start):
		probs = append(probs, "end must be after start")
	case req.End.Sub(req.Start) > maxReservation:
		probs = append(probs, fmt.Sprintf("a slot may last %s at most", maxReservation))
	case !req.End.After(s.now()):
		probs = append(probs, "the slot has already ended")
	}
	if strings.TrimSpace(req.Reason) == "" {
		probs = append(probs, "reason is required: say what the environment is reserved for")
	}
	if len(probs) > 0 {
		s.refuse(c, actionReserve, "", newProblem(http.StatusBadRequest, strings.Join(probs, "; ")+"; as in "+reservationExample), details)
		return
	}
	r, err := st.CreateReservation(c.Request.Context(), store.Reservation{
		Environment: req.Environment, Runbook: req.Runbook, ReleaseID: req.Release,
		StartsAt: req.Start, EndsAt: req.End, Reason: req.Reason, CreatedBy: principal(c).Name,
	})
	if errors.Is(err, store.ErrOverlap) {
		s.refuse(c, actionReserve, "", newProblem(http.StatusConflict, err.Error()+"; pick another slot or cancel that reservation"), details)
		return
	}
	if err != nil {
		details["error"] = err.Error()
		s.audit(c, actionReserve, "", store.OutcomeFailed, details)
		s.internal(c, "store the reservation", err)
		return
	}
	details["reservationId"] = r.ID
	s.audit(c, actionReserve, "", store.OutcomeAllowed, details)
	c.JSON(http.StatusCreated, r)
}

func (s *Server) listReservations(c *gin.Context) {
	st := s.environmentStore(c)
	if st == nil {
		return
	}
	rs, err := st.ListReservations(c.Request.Context(), c.Query("environment"), s.now())
	if err != nil {
		s.internal(c, "list reservations", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"reservations": rs})
}

func (s *Server) cancelReservation(c *gin.Context) {
	details := map[string]any{"reservationId": c.Param("id")}
	if !s.requireRole(c, actionCancelReservation, "", s.govConfig().CalendarAdminRoles, "cancelling a reservation", details) {
		return
	}
	st := s.environmentStore(c)
	if st == nil {
		return
	}
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		s.refuse(c, actionCancelReservation, "", newProblem(http.StatusBadRequest, "the reservation id is a number, as GET /api/v1/reservations lists"), details)
		return
	}
	r, err := st.CancelReservation(c.Request.Context(), id, principal(c).Name, s.now())
	if errors.Is(err, store.ErrNotFound) {
		s.refuse(c, actionCancelReservation, "", newProblem(http.StatusNotFound, fmt.Sprintf("no active reservation #%d", id)), details)
		return
	}
	if err != nil {
		s.internal(c, "cancel the reservation", err)
		return
	}
	s.audit(c, actionCancelReservation, "", store.OutcomeAllowed, details)
	c.JSON(http.StatusOK, r)
}

func (s *Server) promotions(c *gin.Context) {
	st := s.environmentStore(c)
	if st == nil {
		return
	}
	ps, err := st.Promotions(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.internal(c, "list promotions", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"promotions": ps})
}

var labelKeyPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._/-]{0,62}$`)

// Label limits: labels describe a release, they are not a place for documents.
const (
	maxLabels     = 32
	maxLabelValue = 256
)

func checkLabels(labels map[string]string) *problem {
	if len(labels) > maxLabels {
		return newProblem(http.StatusBadRequest, fmt.Sprintf("%d labels is too many: keep at most %d", len(labels), maxLabels))
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch {
		case !labelKeyPattern.MatchString(k):
			return newProblem(http.StatusBadRequest, fmt.Sprintf("label key %q is not usable: use letters, digits, '.', '_', '/' or '-' (at most 63), such as sox or compliance/pci-scope", k))
		case len(labels[k]) > maxLabelValue:
			return newProblem(http.StatusBadRequest, fmt.Sprintf("label %s is %d bytes: keep values under %d", k, len(labels[k]), maxLabelValue))
		}
	}
	return nil
}

// checkResidency refuses a release whose stage declares a residency zone but deploys to a
// site of another zone, or of no known zone: data must not leave its zone, and a site the
// configuration does not place cannot be trusted to stay in it. Targets without a site
// (cloud APIs) are placed by their own configuration and not checked here.
func checkResidency(rb runbooks.Runbook, zones map[string]string) *problem {
	var probs []runbooks.Problem
	for i, st := range rb.Stages {
		if st.Residency == "" {
			continue
		}
		for j, t := range st.Targets {
			if t.Site == "" {
				continue
			}
			zone, ok := zones[t.Site]
			switch {
			case !ok:
				probs = append(probs, runbooks.Problem{Path: fmt.Sprintf("stages[%d].targets[%d].site", i, j),
					Msg: fmt.Sprintf("stage %s keeps data in %s, but site %s has no zone in governance.siteZones; an operator must place it", st.Name, st.Residency, t.Site)})
			case zone != st.Residency:
				probs = append(probs, runbooks.Problem{Path: fmt.Sprintf("stages[%d].targets[%d].site", i, j),
					Msg: fmt.Sprintf("stage %s keeps data in %s, but site %s is in %s", st.Name, st.Residency, t.Site, zone)})
			}
		}
	}
	if len(probs) == 0 {
		return nil
	}
	p := newProblem(http.StatusUnprocessableEntity, fmt.Sprintf("runbook %s would deploy outside a stage's residency zone: %s", rb.Name, probs[0].Msg))
	p.Problems = probs
	return p
}
