package spinnaker

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// Fake is a Spinnaker Gate for tests, on an httptest.Server: pipelines configured in
// memory, answering the part of Gate's API Client uses the way Gate does.
//
//   - POST /pipelines/{application}/{pipelineNameOrId}: 202 {"ref": "/pipelines/<id>"};
//     404 "Unable to trigger pipeline ... Pipeline configuration not found" for an unknown
//     pipeline, 400 "Required parameter <name> is missing"
//   - GET /pipelines/{id}: the execution as Orca renders it; 404 "Pipeline not found (id: <id>)"
//   - PUT /pipelines/{id}/cancel?reason=: 200 with no body
//
// Errors are Spring's {"timestamp", "status", "error", "message", "path"}. With SetToken,
// requests need "Authorization: Bearer <token>" (401 otherwise); with RequireHeader, that
// header too (403 otherwise, as Fiat answers a user without permission).
//
// An execution runs over reads: the first reads show it RUNNING with its stages starting in
// order; the FakePipeline's Polls-th read shows it ended: SUCCEEDED, or TERMINAL at its
// FailStage with that stage's context holding the error as Orca's exception handler writes it.
type Fake struct {
	srv *httptest.Server

	mu         sync.Mutex
	token      string
	headers    map[string]string
	pipelines  []FakePipeline
	executions map[string]*fakeExecution
	triggers   []FakeTrigger
	inject     []fakeAnswer
	requests   []FakeRequest
	seq        int
}

// FakePipeline is a pipeline configuration of a Fake.
type FakePipeline struct {
	Application string
	Name        string
	// ID is the pipeline config's id; derived from the name when empty.
	ID string
	// Stages run in order; one "Deploy" stage of type deployManifest when empty.
	Stages []FakeStage
	// Required are parameters without a default a trigger must give.
	Required []string
	// Polls is how many reads of an execution it takes to end; 3 when zero.
	Polls int
	// FailStage names the stage that fails, ending the execution TERMINAL.
	FailStage string
	// FailMessage is the failing stage's error, in context.exception.details.errors.
	FailMessage string
	// FailContext, when set, is the failing stage's whole context instead.
	FailContext map[string]any
}

// FakeStage is a stage of a FakePipeline.
type FakeStage struct {
	Name, Type string
}

// FakeTrigger is a trigger a Fake received.
type FakeTrigger struct {
	Application, Pipeline, ExecutionID string
	Type, User                         string
	Parameters                         map[string]string
}

// FakeRequest is one request a Fake received.
type FakeRequest struct {
	Method, Path, Query string
}

type fakeAnswer struct {
	status  int
	message string
}

type fakeExecution struct {
	id         string
	pipeline   FakePipeline
	trigger    FakeTrigger
	reads      int
	status     Status
	stages     []Status
	canceledBy string
	reason     string
	started    time.Time
}

// NewFake starts a Fake; Close stops it.
func NewFake() *Fake {
	f := &Fake{executions: map[string]*fakeExecution{}, headers: map[string]string{}}
	f.srv = httptest.NewServer(f)
	return f
}

// URL is Gate's base URL.
func (f *Fake) URL() string { return f.srv.URL }

// Close shuts the server down.
func (f *Fake) Close() { f.srv.Close() }

// Client is a Client of the Fake with the credentials it requires.
func (f *Fake) Client() *Client {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &Client{BaseURL: f.srv.URL, HTTP: f.srv.Client(), Token: f.token, Headers: maps.Clone(f.headers)}
}

// SetToken makes the Fake require a bearer token.
func (f *Fake) SetToken(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.token = token
}

// RequireHeader makes the Fake require a header (X-Spinnaker-User, a session Cookie).
func (f *Fake) RequireHeader(name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.headers[name] = value
}

// AddPipeline adds a pipeline configuration.
func (f *Fake) AddPipeline(p FakePipeline) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.ID == "" {
		p.ID = "cfg-" + strings.ToLower(strings.ReplaceAll(p.Name, " ", "-"))
	}
	if len(p.Stages) == 0 {
		p.Stages = []FakeStage{{Name: "Deploy", Type: "deployManifest"}}
	}
	if p.Polls <= 0 {
		p.Polls = 3
	}
	f.pipelines = append(f.pipelines, p)
}

// FailNext makes the next authenticated request answer status with Gate's error body.
func (f *Fake) FailNext(status int, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject = append(f.inject, fakeAnswer{status: status, message: message})
}

// Triggers returns the triggers received, oldest first.
func (f *Fake) Triggers() []FakeTrigger {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.triggers)
	for i := range out {
		out[i].Parameters = maps.Clone(out[i].Parameters)
	}
	return out
}

// Requests returns the requests received, oldest first.
func (f *Fake) Requests() []FakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// ServeHTTP answers one request.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, FakeRequest{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery})

	if f.token != "" {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(f.token)) != 1 {
			springError(w, r, http.StatusUnauthorized, "Full authentication is required to access this resource")
			return
		}
	}
	for k, v := range f.headers {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(k)), []byte(v)) != 1 {
			springError(w, r, http.StatusForbidden, "Access denied to application")
			return
		}
	}
	if len(f.inject) > 0 {
		a := f.inject[0]
		f.inject = f.inject[1:]
		springError(w, r, a.status, a.message)
		return
	}

	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 3 && parts[0] == "pipelines" && r.Method == http.MethodPost:
		f.trigger(w, r, parts[1], parts[2], body)
	case len(parts) == 2 && parts[0] == "pipelines" && r.Method == http.MethodGet:
		e, ok := f.executions[parts[1]]
		if !ok {
			springError(w, r, http.StatusNotFound, fmt.Sprintf("Pipeline not found (id: %s)", parts[1]))
			return
		}
		e.advance()
		writeJSON(w, http.StatusOK, e.render())
	case len(parts) == 3 && parts[0] == "pipelines" && parts[2] == "cancel" && r.Method == http.MethodPut:
		e, ok := f.executions[parts[1]]
		if !ok {
			springError(w, r, http.StatusNotFound, fmt.Sprintf("Pipeline not found (id: %s)", parts[1]))
			return
		}
		e.cancel(r.Header.Get("X-Spinnaker-User"), r.URL.Query().Get("reason"))
		w.WriteHeader(http.StatusOK)
	default:
		springError(w, r, http.StatusNotFound, "No handler found for "+r.Method+" "+r.URL.Path)
	}
}

func (f *Fake) trigger(w http.ResponseWriter, r *http.Request, application, pipeline string, body []byte) {
	var in struct {
		Type       string            `json:"type"`
		User       string            `json:"user"`
		Parameters map[string]string `json:"parameters"`
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			springError(w, r, http.StatusBadRequest, "JSON parse error: "+err.Error())
			return
		}
	}
	i := slices.IndexFunc(f.pipelines, func(p FakePipeline) bool {
		return p.Application == application && (p.Name == pipeline || p.ID == pipeline)
	})
	if i < 0 {
		springError(w, r, http.StatusNotFound, fmt.Sprintf(
			"Unable to trigger pipeline (application: %s, pipelineNameOrId: %s). Error: Pipeline configuration not found (id: %s)", application, pipeline, pipeline))
		return
	}
	p := f.pipelines[i]
	for _, name := range p.Required {
		if _, ok := in.Parameters[name]; !ok {
			springError(w, r, http.StatusBadRequest, fmt.Sprintf("Required parameter %s is missing", name))
			return
		}
	}
	if in.User == "" {
		in.User = r.Header.Get("X-Spinnaker-User")
	}
	if in.User == "" {
		in.User = "anonymous"
	}
	f.seq++
	id := fmt.Sprintf("01J%023d", f.seq)
	t := FakeTrigger{Application: application, Pipeline: p.Name, ExecutionID: id, Type: in.Type, User: in.User, Parameters: maps.Clone(in.Parameters)}
	f.triggers = append(f.triggers, t)
	f.executions[id] = &fakeExecution{id: id, pipeline: p, trigger: t, status: StatusNotStarted,
		stages: make([]Status, len(p.Stages)), started: time.Now().UTC()}
	for j := range f.executions[id].stages {
		f.executions[id].stages[j] = StatusNotStarted
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"ref": "/pipelines/" + id})
}

// advance carries the execution one read further.
func (e *fakeExecution) advance() {
	if e.status.Complete() {
		return
	}
	e.reads++
	n := len(e.stages)
	fail := slices.IndexFunc(e.pipeline.Stages, func(s FakeStage) bool { return s.Name == e.pipeline.FailStage })
	if e.reads >= e.pipeline.Polls {
		for i := range e.stages {
			switch {
			case fail >= 0 && i == fail:
				e.stages[i] = StatusTerminal
			case fail >= 0 && i > fail:
				e.stages[i] = StatusNotStarted
			default:
				e.stages[i] = StatusSucceeded
			}
		}
		e.status = StatusSucceeded
		if fail >= 0 {
			e.status = StatusTerminal
		}
		return
	}
	// The stage running now, spread over the reads before the last.
	cur := min((e.reads-1)*n/max(e.pipeline.Polls-1, 1), n-1)
	if fail >= 0 {
		cur = min(cur, fail)
	}
	for i := range e.stages {
		switch {
		case i < cur:
			e.stages[i] = StatusSucceeded
		case i == cur:
			e.stages[i] = StatusRunning
		default:
			e.stages[i] = StatusNotStarted
		}
	}
	e.status = StatusRunning
}

func (e *fakeExecution) cancel(user, reason string) {
	if e.status.Complete() {
		return
	}
	if user == "" {
		user = "anonymous"
	}
	e.status, e.canceledBy, e.reason = StatusCanceled, user, reason
	for i, s := range e.stages {
		if s == StatusRunning {
			e.stages[i] = StatusCanceled
		}
	}
}

func (e *fakeExecution) render() map[string]any {
	ms := e.started.UnixMilli()
	var stages []any
	for i, s := range e.pipeline.Stages {
		context := map[string]any{}
		if e.stages[i] == StatusTerminal {
			switch {
			case e.pipeline.FailContext != nil:
				context = e.pipeline.FailContext
			default:
				context = map[string]any{"exception": map[string]any{
					"exceptionType": "RuntimeException", "shouldRetry": false, "operation": s.Type,
					"timestamp": ms, "details": map[string]any{"error": "Unexpected Task Failure", "errors": []string{e.pipeline.FailMessage}},
				}}
			}
		}
		st := map[string]any{
			"id": fmt.Sprintf("%s-stage-%d", e.id, i+1), "refId": fmt.Sprint(i + 1), "type": s.Type, "name": s.Name,
			"status": e.stages[i], "context": context, "requisiteStageRefIds": []string{},
		}
		if i > 0 {
			st["requisiteStageRefIds"] = []string{fmt.Sprint(i)}
		}
		if e.stages[i] != StatusNotStarted {
			st["startTime"] = ms
		}
		stages = append(stages, st)
	}
	out := map[string]any{
		"id": e.id, "type": "PIPELINE", "application": e.trigger.Application, "name": e.pipeline.Name,
		"pipelineConfigId": e.pipeline.ID, "status": e.status, "buildTime": ms, "startTime": ms,
		"canceled": e.status == StatusCanceled, "canceledBy": nil, "cancellationReason": nil,
		"stages":  stages,
		"trigger": map[string]any{"type": e.trigger.Type, "user": e.trigger.User, "parameters": e.trigger.Parameters},
	}
	if e.status == StatusCanceled {
		out["canceledBy"], out["cancellationReason"] = e.canceledBy, e.reason
	}
	if e.status.Complete() {
		out["endTime"] = ms
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// springError writes the error body Spring Boot renders for Gate.
func springError(w http.ResponseWriter, r *http.Request, status int, message string) {
	writeJSON(w, status, map[string]any{
		"timestamp": time.Now().UTC().Format(time.RFC3339), "status": status,
		"error": http.StatusText(status), "message": message, "path": r.URL.Path,
	})
}
