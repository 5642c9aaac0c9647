package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trainyard/trainyard/risk"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
	"github.com/trainyard/trainyard/workflows"
)

var (
	// versionPattern is what a release version looks like: it ends up in the workflow id.
	versionPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)
	// idempotencyKeyPattern is what an Idempotency-Key looks like: it becomes the workflow
	// id or part of an Update id.
	idempotencyKeyPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
)

const (
	headerIdempotencyKey = "Idempotency-Key"
	// maxTextLen bounds a comment or reason: it is stored in workflow history.
	maxTextLen = 4000
	// existingStatusTimeout bounds the status query that describes a release that was
	// already started; the answer is useful, not needed.
	existingStatusTimeout = 3 * time.Second
)

type startRequest struct {
	Runbook    string                `json:"runbook"`
	Version    string                `json:"version"`
	Components []workflows.Component `json:"components"`
	Change     workflows.Change      `json:"change"`
	// Labels are compliance metadata kept with the release (sox: "true", ticket: CHG-1).
	Labels map[string]string `json:"labels"`
}

type startResponse struct {
	ID            string `json:"id"`
	Runbook       string `json:"runbook"`
	Version       string `json:"version"`
	Phase         string `json:"phase,omitempty"`
	StatusURL     string `json:"statusUrl"`
	TemporalUIURL string `json:"temporalUiUrl"`
}

const startExample = `{"runbook":"hello","version":"1.2.3"}`

func (s *Server) startRelease(c *gin.Context) {
	a := httpActor(c)
	var req startRequest
	if p := decodeJSON(c, &req, startExample); p != nil {
		// A refused start is audited too: who tried to ship what, and why it was refused.
		s.auditAs(c.Request.Context(), a, actionStart, "", store.OutcomeDenied, map[string]any{
			"runbook": req.Runbook, "version": req.Version, "status": p.Status, "reason": p.Detail,
		})
		abortWithProblem(c, p)
		return
	}
	resp, created, p := s.startAs(c.Request.Context(), a, req, c.GetHeader(headerIdempotencyKey))
	if p != nil {
		if p.Status >= http.StatusInternalServerError {
			_ = c.Error(errors.New(p.Detail))
		}
		abortWithProblem(c, p)
		return
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	c.Header("Location", resp.StatusURL)
	c.JSON(status, resp)
}

// startAs starts a release for a after every check the API makes: the API and /release start
// both come here, so a release starts under the same rules and audit whichever way it was
// asked for. A refusal is audited and returned; created is false when the release existed.
func (s *Server) startAs(ctx context.Context, a actor, req startRequest, key string) (startResponse, bool, *problem) {
	refuse := func(p *problem) (startResponse, bool, *problem) {
		s.auditAs(ctx, a, actionStart, "", store.OutcomeDenied, map[string]any{
			"runbook": req.Runbook, "version": req.Version, "status": p.Status, "reason": p.Detail,
		})
		return startResponse{}, false, p
	}
	if p := checkStart(req, key); p != nil {
		return refuse(p)
	}
	rb, p := s.runbookFor(req.Runbook)
	if p != nil {
		return refuse(p)
	}
	if p := checkEnforceable(rb); p != nil {
		return refuse(p)
	}
	if p := checkResidency(rb, s.deps.Governance.Config.SiteZones); p != nil {
		return refuse(p)
	}
	if p := checkComponents(rb, req.Components); p != nil {
		return refuse(p)
	}

	id := workflows.ReleaseID(rb.Name, req.Version)
	if key != "" {
		id = "release-" + key
	}
	now := s.now().UTC()
	in := workflows.ReleaseInput{
		ID:          id,
		Runbook:     rb,
		RunbookHash: runbooks.Hash(rb),
		Version:     req.Version,
		Requester:   a.principal,
		Components:  req.Components,
		Change:      req.Change,
		RequestedAt: now,
		Impact:      s.impact(rb, req.Components),
		Labels:      req.Labels,
	}
	details := map[string]any{"runbook": rb.Name, "version": req.Version}
	if key != "" {
		details["idempotencyKey"] = key
	}

	created, err := s.deps.Engine.Start(ctx, in)
	if err != nil {
		details["error"] = err.Error()
		s.auditAs(ctx, a, actionStart, id, store.OutcomeFailed, details)
		return startResponse{}, false, s.internalProblem(ctx, a.requestID, "start the release workflow", err)
	}
	// The release row makes the release listable at once (the workflow writes it too, with
	// every phase change); it goes with the audit row, in one statement.
	rec := store.ReleaseRecord{
		ID: id, Runbook: rb.Name, Version: req.Version, Requester: in.Requester.Name,
		Phase: string(workflows.PhasePending), StartedAt: now, UpdatedAt: now,
	}

	resp := startResponse{ID: id, Runbook: rb.Name, Version: req.Version, StatusURL: s.statusURL(id), TemporalUIURL: s.temporalUIURL(id)}
	if created {
		resp.Phase = string(workflows.PhasePending)
	} else if existing, ok := s.statusOf(ctx, a.requestID, id); ok {
		// An Idempotency-Key names one request; the same key with another release is a
		// caller bug that would otherwise hand back the wrong release.
		if existing.Runbook != rb.Name || existing.Version != req.Version {
			details["reason"] = "idempotency key already used"
			s.auditAs(ctx, a, actionStart, id, store.OutcomeDenied, details)
			return startResponse{}, false, newProblem(http.StatusConflict, fmt.Sprintf("Idempotency-Key %q was already used for runbook %q version %q; use a new key for a different release", key, existing.Runbook, existing.Version))
		}
		resp.Phase = string(existing.Phase)
	}
	details["created"] = created
	s.writeAuditAs(ctx, a, actionStart, id, store.OutcomeAllowed, details, func(ctx context.Context, ev store.AuditEvent) (int64, error) {
		return s.deps.Store.RecordStart(ctx, rec, ev)
	})
	return resp, created, nil
}

// checkStart validates what can be checked without the catalog.
func checkStart(req startRequest, key string) *problem {
	bad := func(format string, args ...any) *problem {
		return newProblem(http.StatusBadRequest, fmt.Sprintf(format, args...))
	}
	switch {
	case req.Runbook == "":
		return bad(`runbook is required: send %s`, startExample)
	case !runbooks.NamePattern.MatchString(req.Runbook):
		return bad("runbook %q is not a runbook name: runbook names are lowercase letters, digits and dashes; list them with GET /api/v1/runbooks", req.Runbook)
	case req.Version == "":
		return bad(`version is required: send {"runbook":%q,"version":"1.2.3"}`, req.Runbook)
	case !versionPattern.MatchString(req.Version):
		return bad("version %q is not usable: start with a letter or digit, then use at most 127 letters, digits, '.', '_', '+' or '-' (for example 1.2.3 or 2026.01.15-rc1)", req.Version)
	case key != "" && !idempotencyKeyPattern.MatchString(key):
		return bad("the Idempotency-Key header %q is not usable: use 1 to 128 letters, digits, '.', '_', ':' or '-'", key)
	}
	seen := map[string]bool{}
	for i, comp := range req.Components {
		switch {
		case comp.Name == "":
			return bad("components[%d].name is required: send {\"name\":\"api\",\"version\":\"1.2.3\",\"artifact\":\"registry/api@sha256:...\"}", i)
		case seen[comp.Name]:
			return bad("component %q is listed twice; list each component once", comp.Name)
		}
		seen[comp.Name] = true
	}
	if req.Change.Churn < 0 {
		return bad("change.churn must not be negative")
	}
	if p := checkLabels(req.Labels); p != nil {
		return p
	}
	if req.Change.Coverage < 0 || req.Change.Coverage > 100 {
		return bad("change.coverage is a percentage from 0 to 100, not %v", req.Change.Coverage)
	}
	return nil
}

// impact scores what a release touches from the catalog's dependency mapping. A catalog that
// cannot be read scores only the runbook itself: the release still starts, and the CAB
// threshold judges it on its own tier and data.
func (s *Server) impact(rb runbooks.Runbook, comps []workflows.Component) *risk.Impact {
	all, err := s.deps.Catalog.All()
	if err != nil {
		s.log.Warn("impact without the full catalog", slog.Any("error", err))
	}
	names := make([]string, 0, len(comps))
	for _, c := range comps {
		names = append(names, c.Name)
	}
	if len(names) == 0 && rb.Scope != nil {
		for _, c := range rb.Scope.Components {
			names = append(names, c.Name)
		}
	}
	im := risk.ScoreImpact(all, rb, names)
	return &im
}

// runbookFor loads the named runbook, or says which runbooks exist and which files are
// broken (the one the caller wants may be among them).
func (s *Server) runbookFor(name string) (runbooks.Runbook, *problem) {
	rb, err := s.deps.Catalog.Get(name)
	if err == nil {
		return rb, nil
	}
	if !errors.Is(err, runbooks.ErrNotFound) {
		s.log.Error("read runbooks failed", slog.Any("error", err))
		return rb, newProblem(http.StatusInternalServerError, "could not read the runbooks: "+err.Error()+"; an operator should check the runbooks folder")
	}
	all, allErr := s.deps.Catalog.All()
	names := make([]string, len(all))
	for i, r := range all {
		names[i] = r.Name
	}
	known := "there are no valid runbooks"
	if len(names) > 0 {
		known = "known runbooks: " + strings.Join(names, ", ")
	}
	problems := catalogProblems(allErr)
	if len(problems) > 0 {
		p := newProblem(http.StatusBadRequest, fmt.Sprintf("no valid runbook is named %q (%s); some runbook files are invalid and may be the one you mean: fix the problems listed", name, known))
		p.Type, p.Title, p.Problems = problemTypeInvalidRunbook, "Invalid runbook", problems
		return rb, p
	}
	return rb, newProblem(http.StatusBadRequest, fmt.Sprintf("no runbook is named %q; %s", name, known))
}

func (s *Server) statusURL(id string) string {
	return s.deps.PublicURL + "/api/v1/releases/" + url.PathEscape(id)
}

func (s *Server) temporalUIURL(id string) string {
	return s.deps.TemporalUIURL + "/namespaces/" + url.PathEscape(s.deps.Namespace) + "/workflows/" + url.PathEscape(id)
}

// existingStatus asks a release that was already started what it is.
func (s *Server) existingStatus(c *gin.Context, id string) (workflows.ReleaseStatus, bool) {
	return s.statusOf(c.Request.Context(), requestID(c), id)
}

// statusOf asks a release what it is, briefly: the answer is useful, not needed.
func (s *Server) statusOf(ctx context.Context, reqID, id string) (workflows.ReleaseStatus, bool) {
	ctx, cancel := context.WithTimeout(ctx, existingStatusTimeout)
	defer cancel()
	st, err := s.deps.Engine.Status(ctx, id)
	if err != nil {
		s.log.WarnContext(ctx, "status of existing release unavailable", slog.String("requestId", reqID), slog.String("releaseId", id), slog.Any("error", err))
		return st, false
	}
	return st, true
}

func (s *Server) listReleases(c *gin.Context) {
	f := store.ReleaseFilter{
		Runbook:     c.Query("runbook"),
		Phase:       c.Query("phase"),
		Environment: c.Query("environment"),
	}
	if f.Phase != "" && !knownPhase(f.Phase) {
		names := make([]string, len(workflows.Phases))
		for i, p := range workflows.Phases {
			names[i] = string(p)
		}
		fail(c, http.StatusBadRequest, fmt.Sprintf("phase %q is not a phase; use one of %s", f.Phase, strings.Join(names, ", ")))
		return
	}
	var p *problem
	if f.Limit, p = queryLimit(c); p != nil {
		abortWithProblem(c, p)
		return
	}
	list, err := s.deps.Store.ListReleases(c.Request.Context(), f)
	if err != nil {
		s.internal(c, "list releases", err)
		return
	}
	if list == nil {
		list = []store.ReleaseRecord{}
	}
	c.JSON(http.StatusOK, gin.H{"releases": list})
}

func knownPhase(v string) bool {
	for _, p := range workflows.Phases {
		if string(p) == v {
			return true
		}
	}
	return false
}

type statusLinks struct {
	Self       string `json:"self"`
	TemporalUI string `json:"temporalUi"`
}

// statusResponse keeps the status fields at the top level, as the status query returns
// them, and adds links.
type statusResponse struct {
	workflows.ReleaseStatus
	Links statusLinks `json:"links"`
}

func (s *Server) releaseStatus(c *gin.Context) {
	id := c.Param("id")
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.statusTimeout)
	defer cancel()
	st, err := s.deps.Engine.Status(ctx, id)
	if err != nil {
		s.engineFailure(ctx, c, id, "read the release status", err)
		return
	}
	c.JSON(http.StatusOK, statusResponse{
		ReleaseStatus: st,
		Links:         statusLinks{Self: s.statusURL(id), TemporalUI: s.temporalUIURL(id)},
	})
}

// engineFailure answers for an Engine error that is not a refusal.
func (s *Server) engineFailure(ctx context.Context, c *gin.Context, id, what string, err error) {
	p := s.engineProblem(ctx, c.Request.Context(), requestID(c), id, what, err)
	if p.Status >= http.StatusInternalServerError {
		_ = c.Error(err)
	}
	abortWithProblem(c, p)
}

// engineProblem says what went wrong with a call to the engine that is not a refusal. ctx
// is the call's own (with its timeout), parent the caller's: a call that ran out of time while
// its caller still waited is a release that did not answer.
func (s *Server) engineProblem(ctx, parent context.Context, reqID, id, what string, err error) *problem {
	switch {
	case errors.Is(err, ErrReleaseNotFound):
		return newProblem(http.StatusNotFound, fmt.Sprintf("no release has id %q; list releases with GET /api/v1/releases", id))
	case ctx.Err() != nil && parent.Err() == nil:
		s.log.WarnContext(parent, "release did not answer in time", slog.String("requestId", reqID), slog.String("releaseId", id), slog.Any("error", err))
		return newProblem(http.StatusGatewayTimeout, fmt.Sprintf("release %q did not answer in time; check that a trainyard worker is running, then retry (a retried decision applies once)", id))
	default:
		return s.internalProblem(parent, reqID, what, err)
	}
}

// internalProblem is the answer to a failure the caller cannot fix, logged with the request
// id the caller is shown.
func (s *Server) internalProblem(ctx context.Context, reqID, what string, err error) *problem {
	s.log.ErrorContext(ctx, what+" failed", slog.String("requestId", reqID), slog.Any("error", err))
	return newProblem(http.StatusInternalServerError, "could not "+what+": "+err.Error()+"; if retrying does not help, give an operator the request id "+reqID)
}

// Approvals and aborts.

type decisionRequest struct {
	Gate     string `json:"gate"`
	Decision string `json:"decision"`
	Comment  string `json:"comment"`
	// AcknowledgePreMortem: the approver read the release's expected failure modes.
	AcknowledgePreMortem bool `json:"acknowledgePreMortem"`
}

const decisionExample = `{"gate":"production","decision":"approve","comment":"checked the canary"}`

func (s *Server) decide(c *gin.Context) {
	id := c.Param("id")
	a := httpActor(c)
	var req decisionRequest
	if p := decodeJSON(c, &req, decisionExample); p != nil {
		s.refuse(c, actionDecide, id, p, nil)
		return
	}
	res, p := s.decideAs(c.Request.Context(), a, id, req, c.GetHeader(headerIdempotencyKey))
	if p != nil {
		abortWithProblem(c, p)
		return
	}
	c.JSON(http.StatusOK, res)
}

// decideAs sends a's approval or rejection of a gate: the API and Slack's buttons both come
// here, so a decision is checked, named (its Update ID) and audited alike whichever way it
// came. A refusal is audited; the problem's Reason is the release's refusal type, if any.
func (s *Server) decideAs(ctx context.Context, a actor, id string, req decisionRequest, key string) (workflows.ApprovalResult, *problem) {
	action := actionDecide
	switch req.Decision {
	case "approve":
		action = actionApprove
	case "reject":
		action = actionReject
	}
	details := map[string]any{"gate": req.Gate, "decision": req.Decision}
	if req.Comment != "" {
		details["comment"] = req.Comment
	}
	if p := checkDecision(req); p != nil {
		return workflows.ApprovalResult{}, s.refuseAs(ctx, a, action, id, p, details)
	}
	if key != "" && !idempotencyKeyPattern.MatchString(key) {
		return workflows.ApprovalResult{}, s.refuseAs(ctx, a, action, id, newProblem(http.StatusBadRequest, fmt.Sprintf("the Idempotency-Key header %q is not usable: use 1 to 128 letters, digits, '.', '_', ':' or '-'", key)), details)
	}

	updateID := decisionUpdateID(req.Decision, req.Gate, a.principal.Name, key)
	details["updateId"] = updateID
	ar := workflows.ApprovalRequest{Gate: req.Gate, Actor: a.principal, Comment: req.Comment, AcknowledgePreMortem: req.AcknowledgePreMortem}

	uctx, cancel := context.WithTimeout(ctx, s.updateTimeout)
	defer cancel()
	var res workflows.ApprovalResult
	var err error
	if req.Decision == "approve" {
		res, err = s.deps.Engine.Approve(uctx, id, updateID, ar)
	} else {
		res, err = s.deps.Engine.Reject(uctx, id, updateID, ar)
	}
	if err != nil {
		return res, s.updateProblem(uctx, ctx, a, action, id, details, err)
	}
	details["state"], details["approvals"], details["required"] = res.State, res.Approvals, res.Required
	s.auditAs(ctx, a, action, id, store.OutcomeAllowed, details)
	return res, nil
}

func checkDecision(req decisionRequest) *problem {
	bad := func(format string, args ...any) *problem {
		return newProblem(http.StatusBadRequest, fmt.Sprintf(format, args...))
	}
	switch {
	case req.Gate == "":
		return bad("gate is required: name the approval gate, as in %s (GET the release to see its gates)", decisionExample)
	case !runbooks.NamePattern.MatchString(req.Gate):
		return bad("gate %q is not a gate name; GET the release to see its gates", req.Gate)
	case req.Decision == "":
		return bad(`decision is required: send "approve" or "reject", as in %s`, decisionExample)
	case req.Decision != "approve" && req.Decision != "reject":
		return bad(`decision must be "approve" or "reject", not %q`, req.Decision)
	case req.Decision == "reject" && strings.TrimSpace(req.Comment) == "":
		return bad(`a rejection needs a comment saying why: send {"gate":%q,"decision":"reject","comment":"..."}`, req.Gate)
	case len(req.Comment) > maxTextLen:
		return bad("the comment is %d bytes; keep it under %d", len(req.Comment), maxTextLen)
	}
	return nil
}

// decisionUpdateID names the Update of one person's decision on one gate, so a retried call
// or a double click applies once. The release is implied: Update ids are per workflow.
func decisionUpdateID(decision, gate, actor, key string) string {
	id := decision + "/" + gate + "/" + actor
	if key != "" {
		id += "/" + key
	}
	return id
}

type abortRequest struct {
	Reason string `json:"reason"`
}

const abortExample = `{"reason":"error rate is climbing in production"}`

func (s *Server) abort(c *gin.Context) {
	id := c.Param("id")
	var req abortRequest
	if p := decodeJSON(c, &req, abortExample); p != nil {
		s.refuse(c, actionAbort, id, p, nil)
		return
	}
	res, p := s.abortAs(c.Request.Context(), httpActor(c), id, req.Reason, c.GetHeader(headerIdempotencyKey))
	if p != nil {
		abortWithProblem(c, p)
		return
	}
	c.JSON(http.StatusAccepted, res)
}

// abortAs sends a's abort with reason: the API and Slack both come here.
func (s *Server) abortAs(ctx context.Context, a actor, id, reason, key string) (workflows.AbortResult, *problem) {
	details := map[string]any{"reason": reason}
	switch {
	case strings.TrimSpace(reason) == "":
		return workflows.AbortResult{}, s.refuseAs(ctx, a, actionAbort, id, newProblem(http.StatusBadRequest, "reason is required: say why the release must stop, as in "+abortExample), details)
	case len(reason) > maxTextLen:
		return workflows.AbortResult{}, s.refuseAs(ctx, a, actionAbort, id, newProblem(http.StatusBadRequest, fmt.Sprintf("the reason is %d bytes; keep it under %d", len(reason), maxTextLen)), details)
	case key != "" && !idempotencyKeyPattern.MatchString(key):
		return workflows.AbortResult{}, s.refuseAs(ctx, a, actionAbort, id, newProblem(http.StatusBadRequest, fmt.Sprintf("the Idempotency-Key header %q is not usable: use 1 to 128 letters, digits, '.', '_', ':' or '-'", key)), details)
	}
	updateID := "abort/" + a.principal.Name
	if key != "" {
		updateID += "/" + key
	}
	details["updateId"] = updateID

	uctx, cancel := context.WithTimeout(ctx, s.updateTimeout)
	defer cancel()
	res, err := s.deps.Engine.Abort(uctx, id, updateID, workflows.AbortRequest{Actor: a.principal, Reason: reason})
	if err != nil {
		return res, s.updateProblem(uctx, ctx, a, actionAbort, id, details, err)
	}
	details["phase"] = res.Phase
	s.auditAs(ctx, a, actionAbort, id, store.OutcomeAllowed, details)
	return res, nil
}

// operateAs sends a's operator Update (pause, resume, rollback, fix-forward), audited as
// action. The caller names the Update: each pause is its own, a rollback is one per person.
func (s *Server) operateAs(ctx context.Context, a actor, id, update, action, updateID, reason string) (workflows.OperatorResult, *problem) {
	details := map[string]any{"reason": reason, "updateId": updateID}
	if len(reason) > maxTextLen {
		return workflows.OperatorResult{}, s.refuseAs(ctx, a, action, id, newProblem(http.StatusBadRequest, fmt.Sprintf("the reason is %d bytes; keep it under %d", len(reason), maxTextLen)), details)
	}
	uctx, cancel := context.WithTimeout(ctx, s.updateTimeout)
	defer cancel()
	res, err := s.deps.Engine.Operate(uctx, id, updateID, update, workflows.OperatorRequest{Actor: a.principal, Reason: reason})
	if err != nil {
		return res, s.updateProblem(uctx, ctx, a, action, id, details, err)
	}
	details["phase"], details["paused"] = res.Phase, res.Paused
	s.auditAs(ctx, a, action, id, store.OutcomeAllowed, details)
	return res, nil
}

// refuse audits a denied attempt and answers with p.
func (s *Server) refuse(c *gin.Context, action, id string, p *problem, details map[string]any) {
	abortWithProblem(c, s.refuseAs(c.Request.Context(), httpActor(c), action, id, p, details))
}

// refuseAs audits a's denied attempt and returns p.
func (s *Server) refuseAs(ctx context.Context, a actor, action, id string, p *problem, details map[string]any) *problem {
	if details == nil {
		details = map[string]any{}
	}
	details["reason"] = p.Detail
	details["status"] = p.Status
	s.auditAs(ctx, a, action, id, store.OutcomeDenied, details)
	return p
}

// refusalStatus maps a workflow's refusal to the HTTP status that says the same.
var refusalStatus = map[string]int{
	workflows.ErrTypeForbidden: http.StatusForbidden,
	workflows.ErrTypeNotFound:  http.StatusNotFound,
	workflows.ErrTypeConflict:  http.StatusConflict,
	workflows.ErrTypeInvalid:   http.StatusBadRequest,
}

// updateProblem audits an Update the engine did not apply and says why. ctx is the Update's
// context, parent the caller's (see engineProblem).
func (s *Server) updateProblem(ctx, parent context.Context, a actor, action, id string, details map[string]any, err error) *problem {
	var refused *RefusedError
	switch {
	case errors.As(err, &refused):
		p := newProblem(http.StatusConflict, refused.Message)
		// A refusal without one of the agreed types (a validator returning a bare error)
		// is still a refusal of this request in the release's present state.
		if status, ok := refusalStatus[refused.Type]; ok {
			p = newProblem(status, refused.Message)
			p.Reason = refused.Type
		}
		details["refusal"] = refused.Type
		return s.refuseAs(parent, a, action, id, p, details)
	case errors.Is(err, ErrReleaseNotFound):
		return s.refuseAs(parent, a, action, id, newProblem(http.StatusNotFound, fmt.Sprintf("no release has id %q; list releases with GET /api/v1/releases", id)), details)
	default:
		details["error"] = err.Error()
		s.auditAs(parent, a, action, id, store.OutcomeFailed, details)
		return s.engineProblem(ctx, parent, a.requestID, id, "send the "+strings.TrimPrefix(action, "release.")+" to the release", err)
	}
}

// actor is who asks for something, and through what, as the audit trail records it: an API
// caller (source address, user agent, device) or a Slack user (user and team ids).
type actor struct {
	principal workflows.Principal
	sourceIP  string
	userAgent string
	device    string
	slackUser string
	slackTeam string
	// requestID ties the answer and the log lines to one request.
	requestID string
}

// httpActor is the authenticated caller of an API request.
func httpActor(c *gin.Context) actor {
	return actor{
		principal: principal(c), sourceIP: c.ClientIP(), userAgent: c.Request.UserAgent(),
		device: device(c), requestID: requestID(c),
	}
}

// auditAs appends one row to the audit trail for a. A failed write is logged, not returned:
// the action has already happened (or been refused) by then.
func (s *Server) auditAs(ctx context.Context, a actor, action, releaseID, outcome string, details map[string]any) {
	s.writeAuditAs(ctx, a, action, releaseID, outcome, details, s.deps.Store.AppendAudit)
}

// writeAuditAs builds a's audit event and hands it to write, which may store more in the same
// statement (RecordStart does).
func (s *Server) writeAuditAs(ctx context.Context, a actor, action, releaseID, outcome string, details map[string]any,
	write func(context.Context, store.AuditEvent) (int64, error)) {
	s.metrics.actions.WithLabelValues(action, outcome).Inc()
	ev := store.AuditEvent{
		At:        s.now().UTC(),
		Actor:     a.principal.Name,
		Roles:     a.principal.Roles,
		SourceIP:  a.sourceIP,
		UserAgent: a.userAgent,
		Device:    a.device,
		SlackUser: a.slackUser,
		SlackTeam: a.slackTeam,
		Action:    action,
		ReleaseID: releaseID,
		Outcome:   outcome,
	}
	if len(details) > 0 {
		if b, err := json.Marshal(details); err == nil {
			ev.Details = b
		}
	}
	// The row must be written even when the caller hung up, which cancels its context; it
	// keeps the context's values but not its cancellation.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if _, err := write(wctx, ev); err != nil {
		s.log.ErrorContext(wctx, "audit write failed",
			slog.String("requestId", a.requestID),
			slog.String("action", action),
			slog.String("releaseId", releaseID),
			slog.String("actor", a.principal.Name),
			slog.String("outcome", outcome),
			slog.Any("error", err))
	}
}
