package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trainyard/trainyard/integrations/scanreport"
	"github.com/trainyard/trainyard/store"
)

// ReadinessStore is the part of the store the readiness endpoints use; a *store.Store has
// it. Apart from Store so that servers without readiness (and test fakes) need not.
type ReadinessStore interface {
	AttachReport(ctx context.Context, r store.ScanReport) (store.ScanReport, error)
	Reports(ctx context.Context, releaseID string) ([]store.ScanReport, error)
	GateResults(ctx context.Context, releaseID string) ([]store.GateResult, error)
	RecordDrill(ctx context.Context, d store.Drill) (store.Drill, error)
	LastPassedDrill(ctx context.Context, component string) (store.Drill, error)
}

const (
	reportsRoute = "/api/v1/releases/:id/reports"
	// maxReportBytes bounds one scan report: a Trivy report of a large image with every
	// vulnerability listed runs to a few megabytes.
	maxReportBytes = 32 << 20

	actionReportAttach = "report.attach"
	actionDrillRecord  = "drill.record"
)

// drillRoles may record restore drills: the people who run them.
var drillRoles = []string{"sre", "release-manager", "dba"}

var reportNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (s *Server) readinessRoutes(api *gin.RouterGroup) {
	api.POST("/releases/:id/reports", s.attachReport)
	api.GET("/releases/:id/reports", s.listReports)
	api.GET("/releases/:id/gates", s.gateResults)
	api.POST("/drills", s.recordDrill)
	api.GET("/drills/:component", s.lastDrill)
}

func (s *Server) readinessStore(c *gin.Context) ReadinessStore {
	return storePart[ReadinessStore](c, s.deps.Store, "scan reports and restore drills")
}

// reportView is a stored report without its body, with what the parser found in it.
type reportView struct {
	store.ScanReport
	Counts map[string]int `json:"counts,omitempty"`
}

// attachReport stores a SARIF or Trivy JSON report CI produced for a release. The body is
// the report itself; ?name= names it (default: the format). A report that does not parse is
// refused, so the gate never meets it for the first time mid-release.
func (s *Server) attachReport(c *gin.Context) {
	id := c.Param("id")
	name := c.DefaultQuery("name", "")
	details := map[string]any{"name": name}
	st := s.readinessStore(c)
	if st == nil {
		return
	}
	if name != "" && !reportNameRE.MatchString(name) {
		s.refuse(c, actionReportAttach, id, newProblem(http.StatusBadRequest,
			fmt.Sprintf("report name %q is not usable: use letters, digits, dots, dashes and underscores (at most 64), such as image-scan", name)), details)
		return
	}
	body, p := readBody(c)
	if p != nil {
		s.refuse(c, actionReportAttach, id, p, details)
		return
	}
	parsed, err := scanreport.Parse(body)
	if err != nil {
		s.refuse(c, actionReportAttach, id, newProblem(http.StatusBadRequest, "the report cannot be read: "+err.Error()+
			"; send the SARIF 2.1.0 or Trivy JSON file as the request body"), details)
		return
	}
	if _, ok := s.existingStatus(c, id); !ok {
		if c.IsAborted() {
			return
		}
		s.refuse(c, actionReportAttach, id, newProblem(http.StatusNotFound, fmt.Sprintf("no release %q: start it first, then attach its reports", id)), details)
		return
	}
	if name == "" {
		name = parsed.Format
	}
	v := scanreport.Evaluate(parsed, scanreport.Critical+1, nil)
	rep, err := st.AttachReport(c.Request.Context(), store.ScanReport{
		ReleaseID: id, Name: name, Format: parsed.Format, Tool: parsed.Tool, Findings: len(parsed.Findings),
		Body: body, UploadedBy: principal(c).Name,
	})
	if err != nil {
		details["error"] = err.Error()
		s.audit(c, actionReportAttach, id, store.OutcomeFailed, details)
		s.internal(c, "store the report", err)
		return
	}
	details["name"], details["format"], details["tool"], details["findings"], details["reportId"] = name, parsed.Format, parsed.Tool, len(parsed.Findings), rep.ID
	s.audit(c, actionReportAttach, id, store.OutcomeAllowed, details)
	c.JSON(http.StatusCreated, reportView{ScanReport: rep, Counts: v.Counts})
}

func (s *Server) listReports(c *gin.Context) {
	st := s.readinessStore(c)
	if st == nil {
		return
	}
	reps, err := st.Reports(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.internal(c, "list reports", err)
		return
	}
	out := make([]reportView, 0, len(reps))
	for _, r := range reps {
		v := reportView{ScanReport: r}
		if parsed, err := scanreport.Parse(r.Body); err == nil {
			v.Counts = scanreport.Evaluate(parsed, scanreport.Critical+1, nil).Counts
		}
		out = append(out, v)
	}
	c.JSON(http.StatusOK, gin.H{"reports": out})
}

func (s *Server) gateResults(c *gin.Context) {
	st := s.readinessStore(c)
	if st == nil {
		return
	}
	rs, err := st.GateResults(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.internal(c, "list gate results", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"gates": rs})
}

type drillRequest struct {
	Component string    `json:"component"`
	Outcome   string    `json:"outcome"`
	DrilledAt time.Time `json:"drilledAt"`
	Notes     string    `json:"notes"`
}

const drillExample = `{"component": "orders-db", "outcome": "passed", "drilledAt": "2026-11-20T09:30:00Z", "notes": "restored last night's backup to a scratch cluster in 14 minutes"}`

// recordDrill records a restore drill someone ran, which drValidation gates accept.
func (s *Server) recordDrill(c *gin.Context) {
	details := map[string]any{}
	if !s.requireRole(c, actionDrillRecord, "", drillRoles, "recording a restore drill", details) {
		return
	}
	st := s.readinessStore(c)
	if st == nil {
		return
	}
	var req drillRequest
	if p := decodeJSON(c, &req, drillExample); p != nil {
		s.refuse(c, actionDrillRecord, "", p, details)
		return
	}
	details["component"], details["outcome"], details["drilledAt"] = req.Component, req.Outcome, req.DrilledAt
	var probs []string
	if strings.TrimSpace(req.Component) == "" {
		probs = append(probs, "component is required: name the component whose data was restored, as the runbook's scope names it")
	}
	if req.Outcome != store.DrillPassed && req.Outcome != store.DrillFailed {
		probs = append(probs, fmt.Sprintf("outcome %q is not passed or failed", req.Outcome))
	}
	switch {
	case req.DrilledAt.IsZero():
		probs = append(probs, "drilledAt is required: when the restore was checked (RFC 3339)")
	case req.DrilledAt.After(s.now().Add(5 * time.Minute)):
		probs = append(probs, "drilledAt is in the future: give the time the drill ran")
	}
	if len(probs) > 0 {
		s.refuse(c, actionDrillRecord, "", newProblem(http.StatusBadRequest, strings.Join(probs, "; ")), details)
		return
	}
	d, err := st.RecordDrill(c.Request.Context(), store.Drill{
		Component: req.Component, Outcome: req.Outcome, DrilledAt: req.DrilledAt, Notes: req.Notes, RecordedBy: principal(c).Name,
	})
	if err != nil {
		details["error"] = err.Error()
		s.audit(c, actionDrillRecord, "", store.OutcomeFailed, details)
		s.internal(c, "record the drill", err)
		return
	}
	details["drillId"] = d.ID
	s.audit(c, actionDrillRecord, "", store.OutcomeAllowed, details)
	c.JSON(http.StatusCreated, d)
}

func (s *Server) lastDrill(c *gin.Context) {
	st := s.readinessStore(c)
	if st == nil {
		return
	}
	d, err := st.LastPassedDrill(c.Request.Context(), c.Param("component"))
	if errors.Is(err, store.ErrNotFound) {
		fail(c, http.StatusNotFound, fmt.Sprintf("no passed restore drill of %q is recorded; record one with POST /api/v1/drills", c.Param("component")))
		return
	}
	if err != nil {
		s.internal(c, "find the last drill", err)
		return
	}
	c.JSON(http.StatusOK, d)
}
