package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trainyard/trainyard/store"
	"github.com/trainyard/trainyard/workflows"
)

// IncidentStore is the part of the store the incident endpoints use (reports, markers,
// circuit breakers); a *store.Store has it. Apart from Store so that test fakes need not.
type IncidentStore interface {
	GetIncident(ctx context.Context, releaseID string) (store.Incident, error)
	IncidentSeries(ctx context.Context, releaseID string) ([]store.Series, error)
	ListMarkers(ctx context.Context, f store.MarkerFilter) ([]store.Marker, error)
	ListBreakers(ctx context.Context, f store.BreakerFilter) ([]store.CircuitBreaker, error)
	OpenBreaker(ctx context.Context, scope, name string) (store.CircuitBreaker, error)
	ClearBreaker(ctx context.Context, scope, name, by, reason string, at time.Time) (store.CircuitBreaker, error)
}

// Audit actions of the incident endpoints.
const (
	actionRollback     = "release.rollback"
	actionFixForward   = "release.fix-forward"
	actionBreakerClear = "circuit-breaker.clear"
)

// breakerNamePattern is what a circuit breaker's name (a runbook or an environment) looks like.
var breakerNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

const rollbackExample = `{"reason":"checkout errors doubled after the deploy"}`

func (s *Server) incidentRoutes(api *gin.RouterGroup) {
	// The rollback authority's order (until the stabilization window ends) or decision on a
	// breach: once per person, and the reason goes into the incident report.
	api.POST("/releases/:id/rollback", s.operate(operation{update: workflows.UpdateRollback, action: actionRollback,
		reasonRequired: true, example: rollbackExample, oncePerPerson: true}))
	api.POST("/releases/:id/fix-forward", s.operate(operation{update: workflows.UpdateFixForward, action: actionFixForward,
		reasonRequired: true, example: rollbackExample, oncePerPerson: true}))
	api.GET("/releases/:id/report", s.incidentReport)
	api.GET("/markers", s.listMarkers)
	api.GET("/circuit-breakers", s.listBreakers)
	api.POST("/circuit-breakers/:scope/:name/clear", s.clearBreaker)
}

func (s *Server) incidentStore() IncidentStore {
	st, _ := s.deps.Store.(IncidentStore)
	return st
}

func (s *Server) requireIncidentStore(c *gin.Context) IncidentStore {
	return storePart[IncidentStore](c, s.deps.Store, "markers and circuit breakers")
}

func (s *Server) listMarkers(c *gin.Context) {
	st := s.requireIncidentStore(c)
	if st == nil {
		return
	}
	f := store.MarkerFilter{Runbook: c.Query("runbook"), Environment: c.Query("environment"), ReleaseID: c.Query("release")}
	var p *problem
	if f.Since, p = queryTime(c, "since"); p != nil {
		abortWithProblem(c, p)
		return
	}
	if f.Limit, p = queryLimit(c); p != nil {
		abortWithProblem(c, p)
		return
	}
	markers, err := st.ListMarkers(c.Request.Context(), f)
	if err != nil {
		s.internal(c, "list markers", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"markers": markers})
}

func (s *Server) listBreakers(c *gin.Context) {
	st := s.requireIncidentStore(c)
	if st == nil {
		return
	}
	f := store.BreakerFilter{}
	switch v := c.Query("all"); v {
	case "", "false":
	case "true":
		f.All = true
	default:
		fail(c, http.StatusBadRequest, "all must be true or false, not "+strconv.Quote(v))
		return
	}
	var p *problem
	if f.Limit, p = queryLimit(c); p != nil {
		abortWithProblem(c, p)
		return
	}
	list, err := st.ListBreakers(c.Request.Context(), f)
	if err != nil {
		s.internal(c, "list circuit breakers", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"circuitBreakers": list})
}

// clearBreaker lets the releases a circuit breaker holds go on. Only someone holding one of
// the roles the breaker names (the tripping runbook's rollbackAuthority; the governance
// waiver roles when it named none) may; every attempt is audited.
func (s *Server) clearBreaker(c *gin.Context) {
	scope, name := c.Param("scope"), c.Param("name")
	details := map[string]any{"scope": scope, "name": name}
	st := s.requireIncidentStore(c)
	if st == nil {
		return
	}
	if scope != store.BreakerRunbook && scope != store.BreakerEnvironment {
		s.refuse(c, actionBreakerClear, "", newProblem(http.StatusBadRequest, fmt.Sprintf("scope %q is not a circuit breaker scope; use runbook or environment", scope)), details)
		return
	}
	if !breakerNamePattern.MatchString(name) {
		s.refuse(c, actionBreakerClear, "", newProblem(http.StatusBadRequest, fmt.Sprintf("%q is not a runbook or environment name; list open breakers with GET /api/v1/circuit-breakers", name)), details)
		return
	}
	var req operatorRequest
	if p := decodeJSON(c, &req, rollbackExample); p != nil {
		s.refuse(c, actionBreakerClear, "", p, details)
		return
	}
	details["reason"] = req.Reason
	switch {
	case strings.TrimSpace(req.Reason) == "":
		s.refuse(c, actionBreakerClear, "", newProblem(http.StatusBadRequest, `reason is required: say why releases may go on again, as in {"reason":"fixed in 2.0.1, error rate back to normal"}`), details)
		return
	case len(req.Reason) > maxTextLen:
		s.refuse(c, actionBreakerClear, "", newProblem(http.StatusBadRequest, fmt.Sprintf("the reason is %d bytes; keep it under %d", len(req.Reason), maxTextLen)), details)
		return
	}
	ctx := c.Request.Context()
	b, err := st.OpenBreaker(ctx, scope, name)
	if errors.Is(err, store.ErrNotFound) {
		s.refuse(c, actionBreakerClear, "", newProblem(http.StatusNotFound, fmt.Sprintf("no circuit breaker %s/%s is open; list open breakers with GET /api/v1/circuit-breakers", scope, name)), details)
		return
	}
	if err != nil {
		s.internal(c, "read the circuit breaker", err)
		return
	}
	roles := b.Roles
	if len(roles) == 0 {
		roles = s.govConfig().WaiverRoles
	}
	if !s.requireRole(c, actionBreakerClear, b.ReleaseID, roles, "clearing circuit breaker "+scope+"/"+name, details) {
		return
	}
	p := principal(c)
	cleared, err := st.ClearBreaker(ctx, scope, name, p.Name, req.Reason, s.now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		s.refuse(c, actionBreakerClear, b.ReleaseID, newProblem(http.StatusConflict, fmt.Sprintf("circuit breaker %s/%s was cleared meanwhile", scope, name)), details)
		return
	}
	if err != nil {
		details["error"] = err.Error()
		s.audit(c, actionBreakerClear, b.ReleaseID, store.OutcomeFailed, details)
		s.internal(c, "clear the circuit breaker", err)
		return
	}
	details["trippedBy"] = b.ReleaseID
	s.audit(c, actionBreakerClear, b.ReleaseID, store.OutcomeAllowed, details)
	c.JSON(http.StatusOK, cleared)
}

// incidentReport answers GET /releases/:id/report with the release's incident report in
// Markdown: the live status when the release answers, else the status kept with its incident.
func (s *Server) incidentReport(c *gin.Context) {
	id := c.Param("id")
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.statusTimeout)
	defer cancel()
	st, statusErr := s.deps.Engine.Status(ctx, id)
	in := incidentEvidence{}
	if ist := s.incidentStore(); ist != nil {
		rctx := c.Request.Context()
		inc, err := ist.GetIncident(rctx, id)
		switch {
		case err == nil:
			in.incident = &inc
		case !errors.Is(err, store.ErrNotFound):
			s.internal(c, "read the incident", err)
			return
		}
		if in.series, err = ist.IncidentSeries(rctx, id); err != nil {
			s.internal(c, "read the incident's metrics", err)
			return
		}
		if in.markers, err = ist.ListMarkers(rctx, store.MarkerFilter{ReleaseID: id, Limit: maxListLimit}); err != nil {
			s.internal(c, "read the release's markers", err)
			return
		}
	}
	if statusErr != nil {
		if in.incident == nil || len(in.incident.Status) == 0 || json.Unmarshal(in.incident.Status, &st) != nil {
			s.engineFailure(ctx, c, id, "read the release status", statusErr)
			return
		}
		in.stored = true
	}
	c.Data(http.StatusOK, "text/markdown; charset=utf-8", []byte(renderReport(st, in)))
}

// incidentEvidence is what the store keeps of a release's incident.
type incidentEvidence struct {
	incident *store.Incident
	series   []store.Series
	markers  []store.Marker
	// stored is set when the status came from the store (the release did not answer).
	stored bool
}

// maxReportOutput is how much of a command's output the report quotes: its end, where the
// error is.
const maxReportOutput = 2000

// renderReport writes the incident report (docs/incidents.md explains how to read it).
func renderReport(st workflows.ReleaseStatus, in incidentEvidence) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Incident report: release %s\n\n", st.ID)
	if in.stored {
		w("_The release did not answer; this report is built from the status kept with its incident at %s._\n\n", stamp(in.incident.UpdatedAt))
	}
	w("| | |\n|---|---|\n")
	row := func(k, v string) {
		if v != "" {
			w("| %s | %s |\n", k, cell(v))
		}
	}
	row("Runbook", st.Runbook)
	version := st.Version
	if st.PreviousVersion != "" {
		version += " (previous: " + st.PreviousVersion + ")"
	}
	row("Version", version)
	row("Requested by", st.Requester.Name)
	row("Outcome", string(st.Phase))
	row("Environment", st.Environment)
	row("Started", stamp(st.StartedAt))
	if st.EndedAt != nil {
		row("Ended", fmt.Sprintf("%s (%s after the start)", stamp(*st.EndedAt), dur(st.EndedAt.Sub(st.StartedAt))))
	}
	row("Failure", st.Failure)
	w("\n")

	writeBreach(w, st)
	writeDecisions(w, st)
	writeActions(w, st, in.markers)
	writeMetrics(w, st, in.series)
	writeOutputs(w, st)

	w("## Timeline\n\n| At | Event |\n|---|---|\n")
	for _, e := range st.Timeline {
		w("| %s | %s |\n", stamp(e.At), cell(e.Message))
	}
	return b.String()
}

func writeBreach(w func(string, ...any), st workflows.ReleaseStatus) {
	w("## What breached\n\n")
	br := st.Breach
	if br == nil {
		switch {
		case st.Phase == workflows.PhaseSucceeded:
			w("Nothing: the release stayed healthy through its stabilization window.\n\n")
		case st.Failure != "":
			w("No stabilization check breached. The release ended %s: %s\n\n", st.Phase, st.Failure)
		default:
			w("Nothing has breached so far.\n\n")
		}
	} else {
		w("**%s** (%s) breached at %s: %s\n\n", br.Check, br.Kind, stamp(br.At), br.Message)
		switch {
		case br.OnBreach == workflows.OnBreachPage && br.PagedAt != nil:
			w("The runbook says `onBreach: page`: the rollback authority was paged at %s.", stamp(*br.PagedAt))
			if d := br.Decision; d != nil {
				w(" %s decided **%s** at %s (%s after the page): %s", d.Actor, d.Decision, stamp(d.At), dur(d.At.Sub(*br.PagedAt)), d.Comment)
			} else {
				w(" No decision yet.")
			}
			w("\n\n")
		default:
			w("The runbook says `onBreach: rollback`: the rollback started at once.\n\n")
		}
	}
	if len(st.Checks) > 0 {
		w("### Checks at the last evaluation\n\n| Check | Kind | Value | Limit | OK | Message |\n|---|---|---|---|---|---|\n")
		for _, c := range st.Checks {
			ok := "yes"
			if !c.OK {
				ok = "**no**"
			}
			w("| %s | %s | %s | %s | %s | %s |\n", cell(c.Name), c.Kind, value(c.Value), cell(c.Limit), ok, cell(c.Message))
		}
		w("\n")
	}
	if len(st.Baselines) > 0 {
		w("### Baselines (before the release touched production)\n\n| Analysis | Value | Measured at |\n|---|---|---|\n")
		for _, bl := range st.Baselines {
			v := value(bl.Value)
			if bl.Error != "" {
				v = "not measured: " + bl.Error
			}
			w("| %s | %s | %s |\n", cell(bl.Analysis), cell(v), stamp(bl.At))
		}
		w("\n")
	}
}

// writeDecisions lists who decided what: approvals, the decision on a breach, a rollback
// order. Aborts and pauses are in the timeline.
func writeDecisions(w func(string, ...any), st workflows.ReleaseStatus) {
	type decision struct {
		on string
		d  workflows.Decision
	}
	var all []decision
	for _, a := range st.Approvals {
		for _, d := range a.Decisions {
			all = append(all, decision{"approval " + a.Gate, d})
		}
	}
	if st.Breach != nil && st.Breach.Decision != nil {
		all = append(all, decision{"breach of " + st.Breach.Check, *st.Breach.Decision})
	}
	if o := st.Rollback; o != nil && o.OrderedBy != nil && (st.Breach == nil || st.Breach.Decision == nil ||
		st.Breach.Decision.Actor != o.OrderedBy.Actor || !st.Breach.Decision.At.Equal(o.OrderedBy.At)) {
		all = append(all, decision{"rollback", *st.Rollback.OrderedBy})
	}
	slices.SortStableFunc(all, func(a, b decision) int { return a.d.At.Compare(b.d.At) })
	w("## Decisions\n\n")
	if len(all) == 0 {
		w("Nobody decided anything on this release (aborts and pauses, if any, are in the timeline).\n\n")
		return
	}
	w("| At | Who | Roles | On | Decision | Comment |\n|---|---|---|---|---|---|\n")
	for _, x := range all {
		w("| %s | %s | %s | %s | %s | %s |\n", stamp(x.d.At), cell(x.d.Actor), cell(strings.Join(x.d.Roles, ", ")), cell(x.on), x.d.Decision, cell(x.d.Comment))
	}
	w("\n")
}

func writeActions(w func(string, ...any), st workflows.ReleaseStatus, markers []store.Marker) {
	w("## Actions and their durations\n\n")
	if len(markers) > 0 {
		w("| Action | Stage | Environment | Started | Ended | Took | Outcome |\n|---|---|---|---|---|---|---|\n")
		for _, m := range markers {
			ended, took := "running", ""
			if m.EndedAt != nil {
				ended, took = stamp(*m.EndedAt), dur(m.EndedAt.Sub(m.StartedAt))
			}
			w("| %s | %s | %s | %s | %s | %s | %s |\n", m.Action, cell(m.Stage), cell(m.Environment), stamp(m.StartedAt), ended, took, m.Outcome)
		}
		w("\n")
	}
	rb := st.Rollback
	if rb == nil {
		if len(markers) == 0 {
			w("No deploy or rollback was recorded.\n\n")
		}
		return
	}
	w("Rollback (scope %s) started %s", rb.Scope, stamp(rb.StartedAt))
	if st.Breach != nil {
		w(", %s after the breach", dur(rb.StartedAt.Sub(st.Breach.At)))
	}
	if rb.EndedAt != nil {
		w(", took %s", dur(rb.EndedAt.Sub(rb.StartedAt)))
	}
	switch {
	case rb.Budget > 0 && rb.BudgetExceededAt != nil:
		w("; **over its budget of %s** (escalated at %s)", rb.Budget, stamp(*rb.BudgetExceededAt))
	case rb.Budget > 0:
		w("; within its budget of %s", rb.Budget)
	}
	w(".\n\n| Undo | Stage | Started | Took | State | Error |\n|---|---|---|---|---|---|\n")
	for _, s := range rb.Steps {
		took := "running"
		if s.EndedAt != nil {
			took = dur(s.EndedAt.Sub(s.StartedAt))
		}
		w("| %s | %s | %s | %s | %s | %s |\n", cell(s.Target), cell(s.Stage), stamp(s.StartedAt), took, s.State, cell(s.Error))
	}
	w("\n")
	if len(rb.CircuitBreakers) > 0 {
		w("Circuit breakers tripped: %s. Further releases wait until someone with authority clears them (`POST /api/v1/circuit-breakers/{scope}/{name}/clear`).\n\n",
			strings.Join(rb.CircuitBreakers, ", "))
	}
}

// sparks draws a series in eight levels.
var sparks = []rune("▁▂▃▄▅▆▇█")

func writeMetrics(w func(string, ...any), st workflows.ReleaseStatus, series []store.Series) {
	if len(series) == 0 {
		return
	}
	var at time.Time
	if st.Breach != nil {
		at = st.Breach.At
	}
	w("## Metrics around the breach\n\n")
	for _, se := range series {
		w("### %s\n\n```promql\n%s\n```\n\n", se.Name, strings.TrimSpace(se.Query))
		w("From %s to %s, every %s.", stamp(se.From), stamp(se.To), dur(se.Step))
		if se.Error != "" {
			w(" No values: %s\n\n", se.Error)
			continue
		}
		if len(se.Points) == 0 {
			w(" No values.\n\n")
			continue
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, p := range se.Points {
			if !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) {
				lo, hi = min(lo, p.Value), max(hi, p.Value)
			}
		}
		last := se.Points[len(se.Points)-1]
		if lo > hi {
			w(" No numbers (no traffic in the range?).\n\n")
			continue
		}
		w(" Lowest %s, highest %s, last %s.\n\n", num(lo), num(hi), num(last.Value))
		var line strings.Builder
		for _, p := range se.Points {
			switch {
			case math.IsNaN(p.Value) || math.IsInf(p.Value, 0):
				line.WriteRune(' ')
			case hi == lo:
				line.WriteRune(sparks[0])
			default:
				line.WriteRune(sparks[int((p.Value-lo)/(hi-lo)*float64(len(sparks)-1)+0.5)])
			}
		}
		w("`%s`\n\n", line.String())
		// The values just before and after the breach.
		i := len(se.Points) - 1
		if !at.IsZero() {
			i = slices.IndexFunc(se.Points, func(p store.Point) bool { return !p.At.Before(at) })
			if i < 0 {
				i = len(se.Points) - 1
			}
		}
		from, to := max(0, i-6), min(len(se.Points), i+6)
		w("| At | Value |\n|---|---|\n")
		for j := from; j < to; j++ {
			mark := ""
			if j == i && !at.IsZero() {
				mark = " ← breach"
			}
			w("| %s | %s%s |\n", stamp(se.Points[j].At), num(se.Points[j].Value), mark)
		}
		w("\n")
	}
}

func writeOutputs(w func(string, ...any), st workflows.ReleaseStatus) {
	header := false
	block := func(title, errText, output string) {
		if strings.TrimSpace(output) == "" && errText == "" {
			return
		}
		if !header {
			w("## Command outputs\n\n")
			header = true
		}
		w("### %s\n\n", title)
		if errText != "" {
			w("Error: %s\n\n", errText)
		}
		if out := strings.TrimRight(output, "\n"); out != "" {
			if len(out) > maxReportOutput {
				out = "…" + out[len(out)-maxReportOutput:]
			}
			w("```text\n%s\n```\n\n", strings.ReplaceAll(out, "```", "'''"))
		}
	}
	for _, s := range st.Stages {
		for _, t := range s.Targets {
			block(fmt.Sprintf("%s / %s (%s)", s.Name, t.Name, t.State), t.Error, t.Output)
		}
	}
	if st.Rollback != nil {
		for _, s := range st.Rollback.Steps {
			block(fmt.Sprintf("%s / %s: rollback (%s)", s.Stage, s.Target, s.State), "", s.Output)
		}
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func dur(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// num writes a value in four significant digits; NaN and ±Inf as Prometheus does.
func num(v float64) string {
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func value(v *float64) string {
	if v == nil {
		return "unknown"
	}
	return num(*v)
}

// cell makes text fit a Markdown table cell: one line, pipes escaped.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
