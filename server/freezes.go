package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/freeze"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
)

// Governance is what the freeze calendar and waiver endpoints need.
type Governance struct {
	// Store keeps the API calendars and the waivers. When nil, Deps.Store serves if it has
	// these methods too (a *store.Store does); with neither, the endpoints answer 503.
	Store GovernanceStore
	// Calendars are the calendar files, the reviewed source; nil means none.
	Calendars *freeze.Catalog
	// Config says who may change calendars and grant waivers, and for how long at most;
	// empty fields take config.DefaultGovernance's values.
	Config config.Governance
}

// GovernanceStore is the part of the store the calendar and waiver endpoints use. It is
// apart from Store so that a server without governance (and its tests' fakes) need not
// implement it.
type GovernanceStore interface {
	ListCalendars(ctx context.Context) ([]store.CalendarRecord, error)
	GetCalendar(ctx context.Context, name string) (store.CalendarRecord, error)
	PutCalendar(ctx context.Context, cal freeze.Calendar, actor string) (store.CalendarRecord, bool, error)
	DeleteCalendar(ctx context.Context, name string) error
	GrantWaiver(ctx context.Context, w store.Waiver) (store.Waiver, error)
	GetWaiver(ctx context.Context, id string) (store.Waiver, error)
	ListWaivers(ctx context.Context, f store.WaiverFilter) ([]store.Waiver, error)
	RevokeWaiver(ctx context.Context, id, by string, at time.Time) (store.Waiver, error)
}

// Audit actions of the calendar and waiver endpoints (store.ActionWaiverUse is written by
// the store when a waiver lets a release through).
const (
	actionCalendarPut    = "calendar.put"
	actionCalendarDelete = "calendar.delete"
	actionWaiverGrant    = "waiver.grant"
	actionWaiverRevoke   = "waiver.revoke"
)

// problemTypeInvalidCalendar marks a 400 whose "problems" member lists what to fix in a
// calendar, field by field.
const problemTypeInvalidCalendar = "tag:trainyard.dev,2026:invalid-calendar"

// governanceRoutes adds the calendar, freeze and waiver endpoints to the API group.
func (s *Server) governanceRoutes(api *gin.RouterGroup) {
	api.GET("/calendars", s.listCalendars)
	api.GET("/calendars/:name", s.getCalendar)
	api.PUT("/calendars/:name", s.putCalendar)
	api.DELETE("/calendars/:name", s.deleteCalendar)
	api.GET("/freeze", s.freezeQuery)
	api.POST("/waivers", s.grantWaiver)
	api.GET("/waivers", s.listWaivers)
	api.GET("/waivers/:id", s.getWaiver)
	api.POST("/waivers/:id/revoke", s.revokeWaiver)
}

// govStore is the governance store, or nil after answering 503.
func (s *Server) govStore(c *gin.Context) GovernanceStore {
	if st := s.deps.Governance.Store; st != nil {
		return st
	}
	if st, ok := s.deps.Store.(GovernanceStore); ok {
		return st
	}
	fail(c, http.StatusServiceUnavailable, "freeze calendars and waivers are not available on this server: it has no governance store; an operator should check its configuration")
	return nil
}

// govConfig is the governance configuration with defaults filled in.
func (s *Server) govConfig() config.Governance {
	g, def := s.deps.Governance.Config, config.DefaultGovernance()
	if len(g.CalendarAdminRoles) == 0 {
		g.CalendarAdminRoles = def.CalendarAdminRoles
	}
	if len(g.WaiverRoles) == 0 {
		g.WaiverRoles = def.WaiverRoles
	}
	if g.MaxWaiver <= 0 {
		g.MaxWaiver = def.MaxWaiver
	}
	return g
}

// requireRole refuses (403, audited) a caller without one of roles.
func (s *Server) requireRole(c *gin.Context, action, releaseID string, roles []string, what string, details map[string]any) bool {
	p := principal(c)
	if p.HasAnyRole(roles) {
		return true
	}
	held := "no roles"
	if len(p.Roles) > 0 {
		held = "roles " + strings.Join(p.Roles, ", ")
	}
	s.refuse(c, action, releaseID, newProblem(http.StatusForbidden, fmt.Sprintf(
		"%s needs one of the roles %s; %s holds %s. Ask someone who holds one of them, or an operator to change the server's governance configuration",
		what, strings.Join(roles, ", "), p.Name, held)), details)
	return false
}

// calendarView is a calendar as the API shows it: where it comes from, and its definition.
type calendarView struct {
	Name string `json:"name"`
	// Source is "file" (the reviewed source) or "api".
	Source string `json:"source"`
	File   string `json:"file,omitempty"`
	// Shadowed marks an API calendar that a file of the same name overrides.
	Shadowed  bool            `json:"shadowed,omitempty"`
	CreatedBy string          `json:"createdBy,omitempty"`
	CreatedAt time.Time       `json:"createdAt,omitzero"`
	UpdatedBy string          `json:"updatedBy,omitempty"`
	UpdatedAt time.Time       `json:"updatedAt,omitzero"`
	Calendar  freeze.Calendar `json:"calendar"`
}

func fileView(fc freeze.FileCalendar) calendarView {
	return calendarView{Name: fc.Calendar.Name, Source: store.CalendarSourceFile, File: fc.File, Calendar: fc.Calendar}
}

func apiView(rec store.CalendarRecord) calendarView {
	return calendarView{
		Name: rec.Calendar.Name, Source: store.CalendarSourceAPI, Calendar: rec.Calendar,
		CreatedBy: rec.CreatedBy, CreatedAt: rec.CreatedAt, UpdatedBy: rec.UpdatedBy, UpdatedAt: rec.UpdatedAt,
	}
}

func (s *Server) listCalendars(c *gin.Context) {
	st := s.govStore(c)
	if st == nil {
		return
	}
	recs, err := st.ListCalendars(c.Request.Context())
	if err != nil {
		s.internal(c, "list calendars", err)
		return
	}
	files := s.deps.Governance.Calendars
	out := []calendarView{}
	for _, fc := range files.All() {
		out = append(out, fileView(fc))
	}
	for _, rec := range recs {
		v := apiView(rec)
		_, v.Shadowed = files.Get(rec.Calendar.Name)
		out = append(out, v)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	problems := files.Problems()
	if problems == nil {
		problems = []string{}
	}
	c.JSON(http.StatusOK, gin.H{"calendars": out, "problems": problems})
}

func (s *Server) getCalendar(c *gin.Context) {
	name := c.Param("name")
	files := s.deps.Governance.Calendars
	if fc, ok := files.Get(name); ok {
		c.JSON(http.StatusOK, fileView(fc))
		return
	}
	if why := files.Broken(name); why != nil {
		fail(c, http.StatusNotFound, fmt.Sprintf("calendar %q is claimed by a broken file in %s, so it cannot be shown or evaluated, and releases naming it stop: fix the file (%v)", name, files.Dir(), why))
		return
	}
	st := s.govStore(c)
	if st == nil {
		return
	}
	rec, err := st.GetCalendar(c.Request.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		fail(c, http.StatusNotFound, fmt.Sprintf("no calendar is named %q; GET /api/v1/calendars lists them", name))
		return
	}
	if err != nil {
		s.internal(c, "read the calendar", err)
		return
	}
	c.JSON(http.StatusOK, apiView(rec))
}

const calendarExample = `{"timeZone":"Europe/Berlin","windows":[{"name":"friday-afternoon","rrule":"FREQ=WEEKLY;BYDAY=FR;BYHOUR=16","duration":"64h","scope":{"environments":["production"]}}]}`

// fileConflict answers 409 when files define name (or a broken file claims it): files are
// the reviewed source, and the API does not override or remove them.
func (s *Server) fileConflict(name string) *problem {
	files := s.deps.Governance.Calendars
	if fc, ok := files.Get(name); ok {
		return newProblem(http.StatusConflict, fmt.Sprintf(
			"calendar %q is defined by the file %s, the reviewed source: change it there, through review, or choose another name", name, fc.File))
	}
	if why := files.Broken(name); why != nil {
		return newProblem(http.StatusConflict, fmt.Sprintf(
			"calendar %q is claimed by a broken file in %s, the reviewed source: fix or remove that file, or choose another name (%v)", name, files.Dir(), why))
	}
	return nil
}

func (s *Server) putCalendar(c *gin.Context) {
	name := c.Param("name")
	details := map[string]any{"calendar": name}
	if !s.requireRole(c, actionCalendarPut, "", s.govConfig().CalendarAdminRoles, "changing a freeze calendar", details) {
		return
	}
	st := s.govStore(c)
	if st == nil {
		return
	}
	if !freeze.NamePattern.MatchString(name) {
		s.refuse(c, actionCalendarPut, "", newProblem(http.StatusBadRequest, fmt.Sprintf("%q is not a calendar name: use lowercase letters, digits and dashes (at most 64), as in PUT /api/v1/calendars/holidays", name)), details)
		return
	}
	if p := s.fileConflict(name); p != nil {
		s.refuse(c, actionCalendarPut, "", p, details)
		return
	}
	var cal freeze.Calendar
	if p := decodeJSON(c, &cal, calendarExample); p != nil {
		s.refuse(c, actionCalendarPut, "", p, details)
		return
	}
	switch cal.Name {
	case "":
		cal.Name = name
	case name:
	default:
		s.refuse(c, actionCalendarPut, "", newProblem(http.StatusBadRequest, fmt.Sprintf("the body names calendar %q but the path names %q; leave name out of the body or make them agree", cal.Name, name)), details)
		return
	}
	if err := cal.Validate(); err != nil {
		s.refuse(c, actionCalendarPut, "", invalidCalendarProblem(err), details)
		return
	}
	rec, created, err := st.PutCalendar(c.Request.Context(), cal, principal(c).Name)
	if errors.Is(err, store.ErrInvalidCalendar) {
		s.refuse(c, actionCalendarPut, "", invalidCalendarProblem(err), details)
		return
	}
	if err != nil {
		details["error"] = err.Error()
		s.audit(c, actionCalendarPut, "", store.OutcomeFailed, details)
		s.internal(c, "store the calendar", err)
		return
	}
	// The definition as stored: the trail says what the calendar was from then on.
	details["created"], details["definition"] = created, cal
	s.audit(c, actionCalendarPut, "", store.OutcomeAllowed, details)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		c.Header("Location", s.deps.PublicURL+"/api/v1/calendars/"+url.PathEscape(name))
	}
	c.JSON(status, apiView(rec))
}

// invalidCalendarProblem lists a calendar's problems, each with its field path.
func invalidCalendarProblem(err error) *problem {
	var inv *freeze.InvalidError
	if !errors.As(err, &inv) {
		return newProblem(http.StatusBadRequest, err.Error())
	}
	lines := make([]string, len(inv.Problems))
	p := newProblem(http.StatusBadRequest, "")
	p.Type, p.Title = problemTypeInvalidCalendar, "Invalid calendar"
	for i, pr := range inv.Problems {
		lines[i] = pr.String()
		p.Problems = append(p.Problems, runbooks.Problem{Path: pr.Path, Msg: pr.Msg})
	}
	p.Detail = fmt.Sprintf("the calendar has %d problem(s); fix them and send it again: %s", len(lines), strings.Join(lines, "; "))
	return p
}

func (s *Server) deleteCalendar(c *gin.Context) {
	name := c.Param("name")
	details := map[string]any{"calendar": name}
	if !s.requireRole(c, actionCalendarDelete, "", s.govConfig().CalendarAdminRoles, "deleting a freeze calendar", details) {
		return
	}
	st := s.govStore(c)
	if st == nil {
		return
	}
	ctx := c.Request.Context()
	_, shadowed := s.deps.Governance.Calendars.Get(name)
	// A runbook naming a calendar that no longer exists has its releases stopped: say so
	// first. A shadowed API copy is not what those runbooks use, and may go.
	if !shadowed {
		if users := s.runbooksNaming(name); len(users) > 0 {
			if _, err := st.GetCalendar(ctx, name); err == nil {
				s.refuse(c, actionCalendarDelete, "", newProblem(http.StatusConflict, fmt.Sprintf(
					"runbooks %s name calendar %q in their freezes, and their releases would stop once it is gone: take it out of those runbooks first", strings.Join(users, ", "), name)), details)
				return
			}
		}
	}
	err := st.DeleteCalendar(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		if p := s.fileConflict(name); p != nil {
			s.refuse(c, actionCalendarDelete, "", p, details)
			return
		}
		s.refuse(c, actionCalendarDelete, "", newProblem(http.StatusNotFound, fmt.Sprintf("no calendar is named %q; GET /api/v1/calendars lists them", name)), details)
		return
	}
	if err != nil {
		details["error"] = err.Error()
		s.audit(c, actionCalendarDelete, "", store.OutcomeFailed, details)
		s.internal(c, "delete the calendar", err)
		return
	}
	if shadowed {
		details["shadowed"] = true
	}
	s.audit(c, actionCalendarDelete, "", store.OutcomeAllowed, details)
	c.Status(http.StatusNoContent)
}

// runbooksNaming lists the runbooks whose freezes name the calendar.
func (s *Server) runbooksNaming(calendar string) []string {
	if s.deps.Catalog == nil {
		return nil
	}
	all, _ := s.deps.Catalog.All() // broken files are reported elsewhere
	var out []string
	for _, rb := range all {
		for _, f := range rb.Freezes {
			if f == calendar {
				out = append(out, rb.Name)
				break
			}
		}
	}
	return out
}

// freezeEntry is one calendar freezing the subject of GET /freeze.
type freezeEntry struct {
	Calendar string    `json:"calendar"`
	Source   string    `json:"source"`
	Window   string    `json:"window"`
	Until    time.Time `json:"until"`
	// AppliesToRunbook is set when the runbook is known: whether it names this calendar.
	AppliesToRunbook *bool `json:"appliesToRunbook,omitempty"`
	// Waiver is the id of an active waiver that lets the subject through this calendar.
	Waiver string `json:"waiver,omitempty"`
}

type freezeResponse struct {
	At      time.Time      `json:"at"`
	Subject freeze.Subject `json:"subject"`
	Release string         `json:"release,omitempty"`
	// Frozen and Until: whether a release of the subject would be held, and until when
	// (considering the runbook's calendars when the runbook is known, otherwise every
	// calendar), leaving out calendars an active waiver lets it through.
	Frozen  bool          `json:"frozen"`
	Until   time.Time     `json:"until,omitzero"`
	Freezes []freezeEntry `json:"freezes"`
	// RunbookCalendars are the runbook's freezes, when the runbook is known; missing ones
	// exist nowhere, and a release of the runbook stops on them.
	RunbookCalendars []string `json:"runbookCalendars,omitempty"`
	MissingCalendars []string `json:"missingCalendars,omitempty"`
	// Problems are calendars that cannot be evaluated (broken files, stale definitions).
	Problems []string `json:"problems"`
}

// freezeQuery answers which calendars freeze a subject at a time, and until when. It only
// asks: a waiver it finds is shown, not used (use is audited when a release passes).
func (s *Server) freezeQuery(c *gin.Context) {
	st := s.govStore(c)
	if st == nil {
		return
	}
	at, p := queryTime(c, "at")
	if p != nil {
		abortWithProblem(c, p)
		return
	}
	if at.IsZero() {
		at = s.now()
	}
	subj := freeze.Subject{Environment: c.Query("environment"), Runbook: c.Query("runbook")}
	tierSet := c.Query("tier") != ""
	if tierSet {
		n, err := strconv.Atoi(c.Query("tier"))
		if err != nil || n < 1 {
			fail(c, http.StatusBadRequest, "tier must be a whole number from 1 (most critical), not "+strconv.Quote(c.Query("tier")))
			return
		}
		subj.Tier = n
	}
	resp := freezeResponse{At: at, Release: c.Query("release"), Freezes: []freezeEntry{}, Problems: []string{}}
	var named map[string]bool
	if subj.Runbook != "" && s.deps.Catalog != nil {
		if rb, err := s.deps.Catalog.Get(subj.Runbook); err == nil {
			named = map[string]bool{}
			for _, f := range rb.Freezes {
				named[f] = true
			}
			resp.RunbookCalendars = append([]string{}, rb.Freezes...)
			if !tierSet {
				subj.Tier = rb.Tier
			}
		}
	}
	resp.Subject = subj

	ctx := c.Request.Context()
	type candidate struct {
		name, source string
		sched        *freeze.Schedule
	}
	files := s.deps.Governance.Calendars
	var cands []candidate
	known := map[string]bool{}
	for _, fc := range files.All() {
		cands = append(cands, candidate{fc.Calendar.Name, store.CalendarSourceFile, fc.Schedule})
		known[fc.Calendar.Name] = true
	}
	resp.Problems = append(resp.Problems, files.Problems()...)
	recs, err := st.ListCalendars(ctx)
	if err != nil {
		s.internal(c, "list calendars", err)
		return
	}
	for _, rec := range recs {
		name := rec.Calendar.Name
		if known[name] || files.Broken(name) != nil {
			continue // the file is the reviewed source
		}
		known[name] = true
		sched, err := rec.Calendar.Compile()
		if err != nil {
			resp.Problems = append(resp.Problems, err.Error())
			continue
		}
		cands = append(cands, candidate{name, store.CalendarSourceAPI, sched})
	}
	for _, name := range resp.RunbookCalendars {
		if !known[name] {
			resp.MissingCalendars = append(resp.MissingCalendars, name)
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].name < cands[j].name })

	for _, cd := range cands {
		frozen, until, window := cd.sched.FrozenAt(at, subj)
		if !frozen {
			continue
		}
		e := freezeEntry{Calendar: cd.name, Source: cd.source, Window: window, Until: until}
		if named != nil {
			applies := named[cd.name]
			e.AppliesToRunbook = &applies
		}
		ws, err := st.ListWaivers(ctx, store.WaiverFilter{Kind: store.WaiverKindFreeze, Target: cd.name, ActiveAt: at})
		if err != nil {
			s.internal(c, "list waivers", err)
			return
		}
		for _, w := range ws {
			if w.Scope.Matches(subj.Runbook, subj.Environment, resp.Release) {
				e.Waiver = w.ID
			}
		}
		resp.Freezes = append(resp.Freezes, e)
		if (e.AppliesToRunbook == nil || *e.AppliesToRunbook) && e.Waiver == "" {
			resp.Frozen = true
			if until.After(resp.Until) {
				resp.Until = until
			}
		}
	}
	c.JSON(http.StatusOK, resp)
}

// The store is the production GovernanceStore (found through Deps.Store when
// Governance.Store is nil).
var _ GovernanceStore = (*store.Store)(nil)
