package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
	"github.com/trainyard/trainyard/workflows"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

const (
	ciToken       = "ci-secret-token-1"
	approverToken = "alice-secret-token-2"
)

const helloRunbook = `name: hello
description: says hello
approvals:
  - name: production
    before: prod
    roles: [approver]
stages:
  - name: staging
    environment: staging
    targets:
      - name: web-staging
        kind: command
        site: local
        deploy: echo deploy
        rollback: echo rollback
  - name: prod
    environment: production
    targets:
      - name: web-prod
        kind: command
        site: local
        deploy: echo deploy
        rollback: echo rollback
`

// fakeEngine is an Engine whose behaviour each test sets; unset methods succeed.
type fakeEngine struct {
	mu      sync.Mutex
	started []workflows.ReleaseInput

	StartFunc   func(ctx context.Context, in workflows.ReleaseInput) (bool, error)
	StatusFunc  func(ctx context.Context, id string) (workflows.ReleaseStatus, error)
	ApproveFunc func(ctx context.Context, id, updateID string, req workflows.ApprovalRequest) (workflows.ApprovalResult, error)
	RejectFunc  func(ctx context.Context, id, updateID string, req workflows.ApprovalRequest) (workflows.ApprovalResult, error)
	OperateFunc func(ctx context.Context, id, updateID, update string, req workflows.OperatorRequest) (workflows.OperatorResult, error)
	AbortFunc   func(ctx context.Context, id, updateID string, req workflows.AbortRequest) (workflows.AbortResult, error)
	PingFunc    func(ctx context.Context) error
}

func (f *fakeEngine) Start(ctx context.Context, in workflows.ReleaseInput) (bool, error) {
	f.mu.Lock()
	f.started = append(f.started, in)
	f.mu.Unlock()
	if f.StartFunc != nil {
		return f.StartFunc(ctx, in)
	}
	return true, nil
}

func (f *fakeEngine) startCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.started)
}

func (f *fakeEngine) Status(ctx context.Context, id string) (workflows.ReleaseStatus, error) {
	if f.StatusFunc != nil {
		return f.StatusFunc(ctx, id)
	}
	return workflows.ReleaseStatus{ID: id}, nil
}

func (f *fakeEngine) Approve(ctx context.Context, id, updateID string, req workflows.ApprovalRequest) (workflows.ApprovalResult, error) {
	if f.ApproveFunc != nil {
		return f.ApproveFunc(ctx, id, updateID, req)
	}
	return workflows.ApprovalResult{Gate: req.Gate, State: workflows.GateApproved, Approvals: 1, Required: 1}, nil
}

func (f *fakeEngine) Reject(ctx context.Context, id, updateID string, req workflows.ApprovalRequest) (workflows.ApprovalResult, error) {
	if f.RejectFunc != nil {
		return f.RejectFunc(ctx, id, updateID, req)
	}
	return workflows.ApprovalResult{Gate: req.Gate, State: workflows.GateRejected, Required: 1}, nil
}

func (f *fakeEngine) Abort(ctx context.Context, id, updateID string, req workflows.AbortRequest) (workflows.AbortResult, error) {
	if f.AbortFunc != nil {
		return f.AbortFunc(ctx, id, updateID, req)
	}
	return workflows.AbortResult{Phase: workflows.PhaseRollingBack}, nil
}

func (f *fakeEngine) Operate(ctx context.Context, id, updateID, update string, req workflows.OperatorRequest) (workflows.OperatorResult, error) {
	if f.OperateFunc != nil {
		return f.OperateFunc(ctx, id, updateID, update, req)
	}
	return workflows.OperatorResult{Phase: workflows.PhaseDeploying}, nil
}

func (f *fakeEngine) Ping(ctx context.Context) error {
	if f.PingFunc != nil {
		return f.PingFunc(ctx)
	}
	return nil
}

// fakeStore is a Store that keeps audit rows in memory; unset methods succeed.
type fakeStore struct {
	mu     sync.Mutex
	audits []store.AuditEvent
	ensure []store.ReleaseRecord

	ListReleasesFunc func(ctx context.Context, f store.ReleaseFilter) ([]store.ReleaseRecord, error)
	ListAuditFunc    func(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error)
	PingFunc         func(ctx context.Context) error
}

func (f *fakeStore) RecordStart(ctx context.Context, rec store.ReleaseRecord, ev store.AuditEvent) (int64, error) {
	f.mu.Lock()
	f.ensure = append(f.ensure, rec)
	f.mu.Unlock()
	return f.AppendAudit(ctx, ev)
}

func (f *fakeStore) ListReleases(ctx context.Context, filter store.ReleaseFilter) ([]store.ReleaseRecord, error) {
	if f.ListReleasesFunc != nil {
		return f.ListReleasesFunc(ctx, filter)
	}
	return nil, nil
}

func (f *fakeStore) AppendAudit(ctx context.Context, ev store.AuditEvent) (int64, error) {
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audits = append(f.audits, ev)
	return int64(len(f.audits)), nil
}

func (f *fakeStore) ListAudit(ctx context.Context, filter store.AuditFilter) ([]store.AuditEvent, error) {
	if f.ListAuditFunc != nil {
		return f.ListAuditFunc(ctx, filter)
	}
	return nil, nil
}

func (f *fakeStore) Ping(ctx context.Context) error {
	if f.PingFunc != nil {
		return f.PingFunc(ctx)
	}
	return nil
}

func (f *fakeStore) auditRows() []store.AuditEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.AuditEvent(nil), f.audits...)
}

// syncBuffer is a bytes.Buffer safe for a logger written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type harness struct {
	engine  *fakeEngine
	store   *fakeStore
	logs    *syncBuffer
	srv     *Server
	handler http.Handler
	dir     string
}

func newHarness(t *testing.T, files map[string]string) *harness {
	t.Helper()
	dir := t.TempDir()
	if files == nil {
		files = map[string]string{"hello.yaml": helloRunbook}
	}
	for name, body := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600))
	}
	h := &harness{engine: &fakeEngine{}, store: &fakeStore{}, logs: &syncBuffer{}, dir: dir}
	srv := New(Deps{
		Engine: h.engine,
		Store:  h.store,
		Auth: config.NewAuthenticator([]config.Principal{
			{Name: "ci", Roles: []string{"deployer"}, Token: ciToken},
			{Name: "alice", Roles: []string{"approver"}, Token: approverToken},
		}),
		Catalog:       runbooks.Catalog{Dir: dir},
		PublicURL:     "https://trainyard.example/",
		TemporalUIURL: "http://temporal-ui.example",
		Namespace:     "default",
		Logger:        slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	srv.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	h.srv, h.handler = srv, srv.Handler()
	return h
}

type call struct {
	method, path, token, body string
	header                    map[string]string
}

func (h *harness) do(t *testing.T, c call) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "trainyard-test/1")
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	return rec
}

// requireProblem checks an RFC 9457 answer and returns it.
func requireProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, path string) problem {
	t.Helper()
	require.Equal(t, status, rec.Code, rec.Body.String())
	require.Equal(t, problemContentType, rec.Header().Get("Content-Type"))
	var p problem
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &p))
	require.Equal(t, status, p.Status)
	require.NotEmpty(t, p.Type)
	require.NotEmpty(t, p.Title)
	require.NotEmpty(t, p.Detail)
	require.Equal(t, path, p.Instance)
	return p
}

func TestStartRelease_CreatesThenReturnsExisting(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	seen := map[string]bool{}
	h.engine.StartFunc = func(_ context.Context, in workflows.ReleaseInput) (bool, error) {
		created := !seen[in.ID]
		seen[in.ID] = true
		return created, nil
	}
	h.engine.StatusFunc = func(_ context.Context, id string) (workflows.ReleaseStatus, error) {
		return workflows.ReleaseStatus{ID: id, Runbook: "hello", Version: "1.2.3", Phase: workflows.PhaseDeploying}, nil
	}
	body := `{"runbook":"hello","version":"1.2.3","components":[{"name":"api","version":"1.2.3","artifact":"reg/api@sha256:abababababababababababababababababababababababababababababababab"}],"change":{"commit":"abc123","authors":["bob"],"churn":12,"coverage":81.5}}`

	first := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases", token: ciToken, body: body})
	require.Equal(t, http.StatusCreated, first.Code, first.Body.String())
	second := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases", token: ciToken, body: body})
	require.Equal(t, http.StatusOK, second.Code, second.Body.String())

	for _, rec := range []*httptest.ResponseRecorder{first, second} {
		var got startResponse
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
		require.Equal(t, "release-hello-1.2.3", got.ID)
		require.Equal(t, "https://trainyard.example/api/v1/releases/release-hello-1.2.3", got.StatusURL)
		require.Equal(t, "http://temporal-ui.example/namespaces/default/workflows/release-hello-1.2.3", got.TemporalUIURL)
		require.Equal(t, got.StatusURL, rec.Header().Get("Location"))
	}
	var existing startResponse
	require.NoError(t, json.Unmarshal(second.Body.Bytes(), &existing))
	require.Equal(t, "deploying", existing.Phase)

	in := h.engine.started[0]
	require.Equal(t, "hello", in.Runbook.Name)
	require.Len(t, in.Runbook.Stages, 2, "the input carries a snapshot of the runbook")
	require.Equal(t, workflows.Principal{Name: "ci", Roles: []string{"deployer"}}, in.Requester)
	require.Equal(t, []workflows.Component{{Name: "api", Version: "1.2.3", Artifact: "reg/api@sha256:abababababababababababababababababababababababababababababababab"}}, in.Components)
	require.Equal(t, runbooks.Hash(in.Runbook), in.RunbookHash, "the release records the content hash of the runbook it runs")
	require.True(t, strings.HasPrefix(in.RunbookHash, "sha256:"))
	require.Equal(t, workflows.Change{Commit: "abc123", Authors: []string{"bob"}, Churn: 12, Coverage: 81.5}, in.Change)
	require.Equal(t, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), in.RequestedAt)

	require.Len(t, h.store.ensure, 2)
	require.Equal(t, "pending", h.store.ensure[0].Phase)
	audits := h.store.auditRows()
	require.Len(t, audits, 2)
	for i, created := range []bool{true, false} {
		require.Equal(t, actionStart, audits[i].Action)
		require.Equal(t, store.OutcomeAllowed, audits[i].Outcome)
		require.Equal(t, "release-hello-1.2.3", audits[i].ReleaseID)
		var details map[string]any
		require.NoError(t, json.Unmarshal(audits[i].Details, &details))
		require.Equal(t, created, details["created"])
		require.Equal(t, "1.2.3", details["version"])
	}
}

func TestStartRelease_IdempotencyKeyNamesTheRelease(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases", token: ciToken,
		body: `{"runbook":"hello","version":"1.2.3"}`, header: map[string]string{"Idempotency-Key": "ci-build-42"}})
	require.Equal(t, http.StatusCreated, rec.Code, rec.Body.String())
	require.Equal(t, "release-ci-build-42", h.engine.started[0].ID)
}

func TestStartRelease_IdempotencyKeyReusedForAnotherVersionConflicts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.engine.StartFunc = func(context.Context, workflows.ReleaseInput) (bool, error) { return false, nil }
	h.engine.StatusFunc = func(_ context.Context, id string) (workflows.ReleaseStatus, error) {
		return workflows.ReleaseStatus{ID: id, Runbook: "hello", Version: "1.0.0"}, nil
	}
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases", token: ciToken,
		body: `{"runbook":"hello","version":"1.2.3"}`, header: map[string]string{"Idempotency-Key": "k1"}})
	p := requireProblem(t, rec, http.StatusConflict, "/api/v1/releases")
	require.Contains(t, p.Detail, `"1.0.0"`)
}

func TestStartRelease_RefusesBadRequestsWithoutStarting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		body   string
		header map[string]string
		status int
		detail string
	}{
		{name: "malformed JSON", body: "{\"runbook\":\"hello\",\n \"version\": 1.2.3}", status: 400, detail: "line 2"},
		{name: "truncated JSON", body: `{"runbook":"hello"`, status: 400, detail: "ends in the middle"},
		{name: "empty body", body: "", status: 400, detail: "body is empty"},
		{name: "unknown field", body: `{"runbook":"hello","version":"1.2.3","verison":"x"}`, status: 400, detail: `unknown field "verison"`},
		{name: "wrong type", body: `{"runbook":"hello","version":123}`, status: 400, detail: `field "version" must be a string`},
		{name: "missing runbook", body: `{"version":"1.2.3"}`, status: 400, detail: "runbook is required"},
		{name: "missing version", body: `{"runbook":"hello"}`, status: 400, detail: `version is required: send {"runbook":"hello","version":"1.2.3"}`},
		{name: "bad version", body: `{"runbook":"hello","version":"1.2.3 beta"}`, status: 400, detail: `version "1.2.3 beta" is not usable`},
		{name: "unknown runbook", body: `{"runbook":"goodbye","version":"1.2.3"}`, status: 400, detail: "known runbooks: hello"},
		{name: "component without name", body: `{"runbook":"hello","version":"1.2.3","components":[{"version":"1"}]}`, status: 400, detail: "components[0].name is required"},
		{name: "bad idempotency key", body: `{"runbook":"hello","version":"1.2.3"}`, header: map[string]string{"Idempotency-Key": "a b"}, status: 400, detail: "Idempotency-Key"},
		{name: "body over 1 MiB", body: `{"runbook":"hello","version":"1.2.3","change":{"commit":"` + strings.Repeat("a", maxBodyBytes) + `"}}`, status: 413, detail: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases", token: ciToken, body: tt.body, header: tt.header})
			p := requireProblem(t, rec, tt.status, "/api/v1/releases")
			require.Contains(t, p.Detail, tt.detail)
			require.Zero(t, h.engine.startCalls(), "Engine.Start must not be called")
			require.Empty(t, h.store.ensure)
			audits := h.store.auditRows()
			if tt.status == http.StatusRequestEntityTooLarge {
				// Refused by the body limit before authentication: there is no one to name.
				require.Empty(t, audits)
				return
			}
			require.Len(t, audits, 1, "a refused start is audited")
			require.Equal(t, store.OutcomeDenied, audits[0].Outcome)
			require.Equal(t, "ci", audits[0].Actor)
			require.Contains(t, string(audits[0].Details), "reason")
		})
	}
}

func TestStartRelease_BodyOverLimitWithoutContentLengthIs413(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	big := `{"runbook":"hello","version":"1.2.3","change":{"commit":"` + strings.Repeat("a", maxBodyBytes) + `"}}`
	req := httptest.NewRequest(http.MethodPost, "/api/v1/releases", strings.NewReader(big))
	req.ContentLength = -1 // as with chunked encoding: only reading finds out
	req.Header.Set("Authorization", "Bearer "+ciToken)
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	requireProblem(t, rec, http.StatusRequestEntityTooLarge, "/api/v1/releases")
	require.Zero(t, h.engine.startCalls())
}

func TestStartRelease_InvalidRunbookFileListsProblems(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{
		"hello.yaml":  helloRunbook,
		"broken.yaml": "name: broken\nstages:\n  - name: one\n    targets:\n      - name: t\n        kind: command\n        site: local\n        deploy: x\n",
	})
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases", token: ciToken, body: `{"runbook":"broken","version":"1.0.0"}`})
	p := requireProblem(t, rec, http.StatusBadRequest, "/api/v1/releases")
	require.Equal(t, problemTypeInvalidRunbook, p.Type)
	require.NotEmpty(t, p.Problems)
	require.Equal(t, "broken.yaml", p.Problems[0].File)
	require.Positive(t, p.Problems[0].Line)
	require.Zero(t, h.engine.startCalls())
}

func TestAPI_RequiresAValidBearerToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header string
	}{
		{name: "no token", header: ""},
		{name: "unknown token", header: "Bearer not-a-real-token"},
		{name: "basic auth", header: "Basic " + ciToken},
		{name: "empty bearer", header: "Bearer "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases", body: `{"runbook":"hello","version":"1.2.3"}`,
				header: map[string]string{"Authorization": tt.header}})
			requireProblem(t, rec, http.StatusUnauthorized, "/api/v1/releases")
			require.True(t, strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer"))
			require.Zero(t, h.engine.startCalls())
		})
	}
}

func TestHealthz_AnswersWithoutToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	rec := h.do(t, call{method: http.MethodGet, path: "/healthz"})
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"status":"ok"}`, rec.Body.String())
}

func TestReadyz_NamesTheDependencyThatIsDown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	rec := h.do(t, call{method: http.MethodGet, path: "/readyz"})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	h.store.PingFunc = func(context.Context) error { return errors.New("dial tcp db:5432: refused") }
	rec = h.do(t, call{method: http.MethodGet, path: "/readyz"})
	p := requireProblem(t, rec, http.StatusServiceUnavailable, "/readyz")
	require.Contains(t, p.Detail, "database")
	require.NotContains(t, p.Detail, "temporal")
	require.Equal(t, map[string]string{"temporal": "ok", "database": "down"}, p.Checks)
}

func TestDecide_RefusedForbiddenAnswers403AndAuditsDenied(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.engine.ApproveFunc = func(context.Context, string, string, workflows.ApprovalRequest) (workflows.ApprovalResult, error) {
		return workflows.ApprovalResult{}, &RefusedError{Type: workflows.ErrTypeForbidden, Message: "ci may not approve production: it needs the role approver"}
	}
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases/release-hello-1.2.3/approvals", token: ciToken,
		body: `{"gate":"production","decision":"approve","comment":"ok"}`})
	p := requireProblem(t, rec, http.StatusForbidden, "/api/v1/releases/release-hello-1.2.3/approvals")
	require.Contains(t, p.Detail, "needs the role approver")

	audits := h.store.auditRows()
	require.Len(t, audits, 1)
	a := audits[0]
	require.Equal(t, actionApprove, a.Action)
	require.Equal(t, store.OutcomeDenied, a.Outcome)
	require.Equal(t, "ci", a.Actor)
	require.Equal(t, []string{"deployer"}, a.Roles)
	require.Equal(t, "release-hello-1.2.3", a.ReleaseID)
	require.Equal(t, "192.0.2.1", a.SourceIP)
	require.Equal(t, "trainyard-test/1", a.UserAgent)
	require.Contains(t, string(a.Details), "needs the role approver")
}

func TestDecide_MapsEngineErrorsToStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		err     error
		status  int
		outcome string
	}{
		{name: "forbidden", err: &RefusedError{Type: workflows.ErrTypeForbidden, Message: "no"}, status: 403, outcome: store.OutcomeDenied},
		{name: "no such gate", err: &RefusedError{Type: workflows.ErrTypeNotFound, Message: "no gate"}, status: 404, outcome: store.OutcomeDenied},
		{name: "wrong state", err: &RefusedError{Type: workflows.ErrTypeConflict, Message: "release has ended"}, status: 409, outcome: store.OutcomeDenied},
		{name: "invalid", err: &RefusedError{Type: workflows.ErrTypeInvalid, Message: "bad"}, status: 400, outcome: store.OutcomeDenied},
		{name: "untyped refusal", err: &RefusedError{Type: "*errors.errorString", Message: "nope"}, status: 409, outcome: store.OutcomeDenied},
		{name: "unknown release", err: ErrReleaseNotFound, status: 404, outcome: store.OutcomeDenied},
		{name: "engine down", err: errors.New("connection refused"), status: 500, outcome: store.OutcomeFailed},
		{name: "worker not answering", err: context.DeadlineExceeded, status: 504, outcome: store.OutcomeFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			h.engine.ApproveFunc = func(ctx context.Context, _, _ string, _ workflows.ApprovalRequest) (workflows.ApprovalResult, error) {
				if errors.Is(tt.err, context.DeadlineExceeded) {
					<-ctx.Done() // the real engine blocks until the update deadline
				}
				return workflows.ApprovalResult{}, tt.err
			}
			// The real engine blocks until the update deadline when no worker answers; a
			// short deadline keeps the test fast.
			h.srv.updateTimeout = 20 * time.Millisecond
			rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases/r1/approvals", token: approverToken,
				body: `{"gate":"production","decision":"approve"}`})
			requireProblem(t, rec, tt.status, "/api/v1/releases/r1/approvals")
			audits := h.store.auditRows()
			require.Len(t, audits, 1)
			require.Equal(t, tt.outcome, audits[0].Outcome)
			require.Equal(t, "alice", audits[0].Actor)
		})
	}
}

func TestDecide_RejectWithoutCommentIs400(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	called := false
	h.engine.RejectFunc = func(context.Context, string, string, workflows.ApprovalRequest) (workflows.ApprovalResult, error) {
		called = true
		return workflows.ApprovalResult{}, nil
	}
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases/r1/approvals", token: approverToken,
		body: `{"gate":"production","decision":"reject","comment":"  "}`})
	p := requireProblem(t, rec, http.StatusBadRequest, "/api/v1/releases/r1/approvals")
	require.Contains(t, p.Detail, "needs a comment")
	require.False(t, called)
	audits := h.store.auditRows()
	require.Len(t, audits, 1)
	require.Equal(t, actionReject, audits[0].Action)
	require.Equal(t, store.OutcomeDenied, audits[0].Outcome)
}

func TestDecide_RefusesIncompleteRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, detail string
	}{
		{name: "no gate", body: `{"decision":"approve"}`, detail: "gate is required"},
		{name: "no decision", body: `{"gate":"production"}`, detail: "decision is required"},
		{name: "odd decision", body: `{"gate":"production","decision":"maybe"}`, detail: `"approve" or "reject"`},
		{name: "malformed", body: `{"gate":`, detail: "ends in the middle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases/r1/approvals", token: approverToken, body: tt.body})
			p := requireProblem(t, rec, http.StatusBadRequest, "/api/v1/releases/r1/approvals")
			require.Contains(t, p.Detail, tt.detail)
			audits := h.store.auditRows()
			require.Len(t, audits, 1, "every attempt is audited")
			require.Equal(t, store.OutcomeDenied, audits[0].Outcome)
		})
	}
}

func TestDecide_RepeatedCallUsesTheSameUpdateID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	var ids []string
	var reqs []workflows.ApprovalRequest
	h.engine.ApproveFunc = func(_ context.Context, id, updateID string, req workflows.ApprovalRequest) (workflows.ApprovalResult, error) {
		require.Equal(t, "r1", id)
		ids = append(ids, updateID)
		reqs = append(reqs, req)
		return workflows.ApprovalResult{Gate: req.Gate, State: workflows.GateApproved, Approvals: 1, Required: 1}, nil
	}
	body := `{"gate":"production","decision":"approve","comment":"lgtm"}`
	for range 2 {
		rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases/r1/approvals", token: approverToken, body: body})
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.JSONEq(t, `{"gate":"production","state":"approved","approvals":1,"required":1}`, rec.Body.String())
	}
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases/r1/approvals", token: approverToken, body: body,
		header: map[string]string{"Idempotency-Key": "click-7"}})
	require.Equal(t, http.StatusOK, rec.Code)

	require.Equal(t, []string{"approve/production/alice", "approve/production/alice", "approve/production/alice/click-7"}, ids)
	require.Equal(t, workflows.ApprovalRequest{Gate: "production", Actor: workflows.Principal{Name: "alice", Roles: []string{"approver"}}, Comment: "lgtm"}, reqs[0])
	for _, a := range h.store.auditRows() {
		require.Equal(t, actionApprove, a.Action)
		require.Equal(t, store.OutcomeAllowed, a.Outcome)
	}
}

func TestAbort_RequiresReasonAndAnswers202(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	var gotID string
	var gotReq workflows.AbortRequest
	h.engine.AbortFunc = func(_ context.Context, _, updateID string, req workflows.AbortRequest) (workflows.AbortResult, error) {
		gotID, gotReq = updateID, req
		return workflows.AbortResult{Phase: workflows.PhaseRollingBack}, nil
	}
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases/r1/abort", token: approverToken, body: `{}`})
	p := requireProblem(t, rec, http.StatusBadRequest, "/api/v1/releases/r1/abort")
	require.Contains(t, p.Detail, "reason is required")
	require.Empty(t, gotID)

	rec = h.do(t, call{method: http.MethodPost, path: "/api/v1/releases/r1/abort", token: approverToken, body: `{"reason":"errors rising"}`})
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	require.JSONEq(t, `{"phase":"rolling_back"}`, rec.Body.String())
	require.Equal(t, "abort/alice", gotID)
	require.Equal(t, "errors rising", gotReq.Reason)
	require.Equal(t, "alice", gotReq.Actor.Name)

	audits := h.store.auditRows()
	require.Len(t, audits, 2)
	require.Equal(t, []string{store.OutcomeDenied, store.OutcomeAllowed}, []string{audits[0].Outcome, audits[1].Outcome})
	require.Equal(t, actionAbort, audits[1].Action)
}

func TestAbort_EndedReleaseIs409(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.engine.AbortFunc = func(context.Context, string, string, workflows.AbortRequest) (workflows.AbortResult, error) {
		return workflows.AbortResult{}, &RefusedError{Type: workflows.ErrTypeConflict, Message: "release has ended"}
	}
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases/r1/abort", token: approverToken, body: `{"reason":"x"}`})
	p := requireProblem(t, rec, http.StatusConflict, "/api/v1/releases/r1/abort")
	require.Equal(t, "release has ended", p.Detail)
	require.Equal(t, workflows.ErrTypeConflict, p.Reason)
}

func TestLogs_NeverContainTheToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.engine.StatusFunc = func(context.Context, string) (workflows.ReleaseStatus, error) {
		panic("boom")
	}
	h.do(t, call{method: http.MethodPost, path: "/api/v1/releases", token: ciToken, body: `{"runbook":"hello","version":"1.2.3"}`})
	h.do(t, call{method: http.MethodPost, path: "/api/v1/releases/r1/approvals", token: approverToken, body: `{"gate":"production","decision":"approve"}`})
	h.do(t, call{method: http.MethodGet, path: "/api/v1/releases/r1", token: approverToken})
	h.do(t, call{method: http.MethodGet, path: "/api/v1/releases", token: "wrong-secret-token"})

	logs := h.logs.String()
	require.Contains(t, logs, `"msg":"http request"`)
	require.Contains(t, logs, `"principal":"alice"`)
	require.Contains(t, logs, "panic in handler")
	for _, secret := range []string{ciToken, approverToken, "wrong-secret-token"} {
		require.NotContains(t, logs, secret)
	}
}

func TestRecovery_PanicAnswers500Problem(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.engine.StatusFunc = func(context.Context, string) (workflows.ReleaseStatus, error) {
		panic("boom")
	}
	rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/releases/r1", token: ciToken})
	p := requireProblem(t, rec, http.StatusInternalServerError, "/api/v1/releases/r1")
	require.Contains(t, p.Detail, p.RequestID)
}

func TestRequestID_EchoesCallersOrMakesOne(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	rec := h.do(t, call{method: http.MethodGet, path: "/healthz", header: map[string]string{"X-Request-ID": "abc-123"}})
	require.Equal(t, "abc-123", rec.Header().Get("X-Request-ID"))
	rec = h.do(t, call{method: http.MethodGet, path: "/healthz", header: map[string]string{"X-Request-ID": "bad id\nforged log line"}})
	require.Regexp(t, `^[0-9a-f]{24}$`, rec.Header().Get("X-Request-ID"))
	require.NotContains(t, h.logs.String(), "forged")
}

func TestReleaseStatus_KeepsStatusFieldsAtTopLevelWithLinks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.engine.StatusFunc = func(_ context.Context, id string) (workflows.ReleaseStatus, error) {
		if id != "release-hello-1.2.3" {
			return workflows.ReleaseStatus{}, ErrReleaseNotFound
		}
		return workflows.ReleaseStatus{ID: id, Runbook: "hello", Version: "1.2.3", Phase: workflows.PhaseDeploying,
			Stages: []workflows.StageStatus{{Name: "staging", State: workflows.StateRunning}}}, nil
	}
	rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/releases/release-hello-1.2.3", token: ciToken})
	require.Equal(t, http.StatusOK, rec.Code)
	var got map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Equal(t, "deploying", got["phase"])
	require.Equal(t, "hello", got["runbook"])
	require.Equal(t, map[string]any{
		"self":       "https://trainyard.example/api/v1/releases/release-hello-1.2.3",
		"temporalUi": "http://temporal-ui.example/namespaces/default/workflows/release-hello-1.2.3",
	}, got["links"])

	rec = h.do(t, call{method: http.MethodGet, path: "/api/v1/releases/nope", token: ciToken})
	p := requireProblem(t, rec, http.StatusNotFound, "/api/v1/releases/nope")
	require.Contains(t, p.Detail, `"nope"`)
}

func TestListReleases_PassesFiltersAndRefusesUnknownPhase(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	var got store.ReleaseFilter
	h.store.ListReleasesFunc = func(_ context.Context, f store.ReleaseFilter) ([]store.ReleaseRecord, error) {
		got = f
		return nil, nil
	}
	rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/releases?runbook=hello&phase=deploying&environment=prod&limit=5", token: ciToken})
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"releases":[]}`, rec.Body.String())
	require.Equal(t, store.ReleaseFilter{Runbook: "hello", Phase: "deploying", Environment: "prod", Limit: 5}, got)

	rec = h.do(t, call{method: http.MethodGet, path: "/api/v1/releases?phase=done", token: ciToken})
	p := requireProblem(t, rec, http.StatusBadRequest, "/api/v1/releases")
	require.Contains(t, p.Detail, "succeeded")

	rec = h.do(t, call{method: http.MethodGet, path: "/api/v1/releases?limit=lots", token: ciToken})
	requireProblem(t, rec, http.StatusBadRequest, "/api/v1/releases")
}

func TestListAudit_ParsesFiltersAndRefusesBadTimes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	var got store.AuditFilter
	h.store.ListAuditFunc = func(_ context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
		got = f
		return []store.AuditEvent{{ID: 1, Actor: "alice", Action: actionApprove, Outcome: store.OutcomeAllowed}}, nil
	}
	rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/audit?release=r1&actor=alice&action=release.approve&since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z&limit=10", token: ciToken})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, store.AuditFilter{ReleaseID: "r1", Actor: "alice", Action: actionApprove,
		Since: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Limit: 10}, got)
	require.Contains(t, rec.Body.String(), `"events":[{`)

	rec = h.do(t, call{method: http.MethodGet, path: "/api/v1/audit?since=yesterday", token: ciToken})
	p := requireProblem(t, rec, http.StatusBadRequest, "/api/v1/audit")
	require.Contains(t, p.Detail, "RFC 3339")
}

func TestValidateRunbook_ReportsProblemsWithLineNumbers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	bad := "name: Bad_Name\nstages:\n  - name: one\n    targets:\n      - name: t\n        kind: command\n        site: local\n        deploy: echo\n"
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/runbooks/validate", token: ciToken, body: bad,
		header: map[string]string{"Content-Type": "application/yaml"}})
	p := requireProblem(t, rec, http.StatusUnprocessableEntity, "/api/v1/runbooks/validate")
	require.Equal(t, problemTypeInvalidRunbook, p.Type)
	lines := map[string]int{}
	for _, pr := range p.Problems {
		require.Equal(t, "request", pr.File)
		lines[pr.Path] = pr.Line
	}
	require.Equal(t, 1, lines["name"])
	require.Equal(t, 5, lines["stages[0].targets[0].rollback"], "a missing field is reported at its parent")

	rec = h.do(t, call{method: http.MethodPost, path: "/api/v1/runbooks/validate", token: ciToken, body: "name: x\n  stages: [\n",
		header: map[string]string{"Content-Type": "text/plain"}})
	p = requireProblem(t, rec, http.StatusUnprocessableEntity, "/api/v1/runbooks/validate")
	require.Positive(t, p.Problems[0].Line)

	rec = h.do(t, call{method: http.MethodPost, path: "/api/v1/runbooks/validate", token: ciToken, body: helloRunbook,
		header: map[string]string{"Content-Type": "application/yaml"}})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), `"valid":true`)

	rec = h.do(t, call{method: http.MethodPost, path: "/api/v1/runbooks/validate", token: ciToken, body: helloRunbook,
		header: map[string]string{"Content-Type": "application/json"}})
	requireProblem(t, rec, http.StatusUnsupportedMediaType, "/api/v1/runbooks/validate")
}

func TestListRunbooks_ShowsInvalidFilesAlongsideValidOnes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"hello.yaml": helloRunbook, "typo.yaml": "name: typo\nstagez: []\n"})
	rec := h.do(t, call{method: http.MethodGet, path: "/api/v1/runbooks", token: ciToken})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var got struct {
		Runbooks []runbookSummary   `json:"runbooks"`
		Problems []runbooks.Problem `json:"problems"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Len(t, got.Runbooks, 1)
	require.Equal(t, "hello", got.Runbooks[0].Name)
	require.Equal(t, []string{"staging", "prod"}, got.Runbooks[0].Stages)
	require.Equal(t, "production", got.Runbooks[0].Approvals[0].Name)
	require.NotEmpty(t, got.Problems)
	var typo *runbooks.Problem
	for i, p := range got.Problems {
		if strings.Contains(p.Msg, "stagez") {
			typo = &got.Problems[i]
		}
	}
	require.NotNil(t, typo, "the misspelt key is reported: %+v", got.Problems)
	require.Equal(t, "typo.yaml", typo.File)
	require.Equal(t, 2, typo.Line)
}

func TestUnknownRoute_AnswersProblem(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	requireProblem(t, h.do(t, call{method: http.MethodGet, path: "/api/v2/releases", token: ciToken}), http.StatusNotFound, "/api/v2/releases")
	requireProblem(t, h.do(t, call{method: http.MethodDelete, path: "/healthz"}), http.StatusMethodNotAllowed, "/healthz")
}

func TestHTTPServer_SetsTimeouts(t *testing.T) {
	t.Parallel()
	hs := newHarness(t, nil).srv.HTTPServer("127.0.0.1:0")
	require.Positive(t, hs.ReadHeaderTimeout)
	require.Positive(t, hs.ReadTimeout)
	require.Greater(t, hs.WriteTimeout, updateTimeout)
	require.Positive(t, hs.IdleTimeout)
}

func TestStartRelease_RefusesRunbookWithUnenforcedParts(t *testing.T) {
	t.Parallel()
	const flagBlueGreen = `name: hello
stages:
  - name: production
    environment: production
    strategy: {type: blueGreen, blueGreen: {rollbackWindow: 1h}}
    targets:
      - {name: fw, kind: flag, flag: {flag: new-ui, environment: production}}
`
	h := newHarness(t, map[string]string{"hello.yaml": flagBlueGreen})
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases", token: ciToken, body: `{"runbook":"hello","version":"1.0.0"}`})
	p := requireProblem(t, rec, http.StatusUnprocessableEntity, "/api/v1/releases")
	require.Contains(t, p.Detail, "no second side")
	require.Equal(t, "stages[0].targets[0]", p.Problems[0].Path)
	require.Zero(t, h.engine.startCalls(), "nothing may start")
	require.Equal(t, store.OutcomeDenied, h.store.auditRows()[0].Outcome)
}

func TestStartRelease_RefusesArtifactNotPinnedByDigest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases", token: ciToken,
		body: `{"runbook":"hello","version":"1.0.0","components":[{"name":"api","artifact":"registry.example/api:1.0.0"}]}`})
	p := requireProblem(t, rec, http.StatusBadRequest, "/api/v1/releases")
	require.Contains(t, p.Detail, "not pinned by digest")
	require.Zero(t, h.engine.startCalls())
}

func TestStartRelease_HoldsComponentsToTheRunbooksScope(t *testing.T) {
	t.Parallel()
	digest := "@sha256:" + strings.Repeat("ab", 32)
	scoped := strings.Replace(helloRunbook, "name: hello", "name: hello\nscope:\n  components:\n    - {name: api, artifact: reg/api"+digest+"}\n    - {name: ui, artifact: reg/ui:latest, allowTag: true}", 1)
	cases := []struct {
		name, components string
		status           int
		says             string
	}{
		{"undeclared component", `[{"name":"worker","artifact":"reg/worker` + digest + `"}]`, http.StatusBadRequest, `does not ship a component`},
		{"declared and pinned", `[{"name":"api","artifact":"reg/api` + digest + `"}]`, http.StatusCreated, ""},
		{"tag allowed by the runbook", `[{"name":"ui","artifact":"reg/ui:1.2"}]`, http.StatusCreated, ""},
		{"tag not allowed", `[{"name":"api","artifact":"reg/api:1.2"}]`, http.StatusBadRequest, "not pinned by digest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, map[string]string{"hello.yaml": scoped})
			rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases", token: ciToken,
				body: `{"runbook":"hello","version":"1.0.0","components":` + tc.components + `}`})
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			require.Contains(t, rec.Body.String(), tc.says)
		})
	}
}

func TestMetrics_CountRequestsByRouteAndAuditedActionsByOutcome(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.do(t, call{method: http.MethodPost, path: "/api/v1/releases", token: ciToken, body: `{"runbook":"hello","version":"1.0.0"}`})
	h.do(t, call{method: http.MethodPost, path: "/api/v1/releases", token: ciToken, body: `{"runbook":"hello"}`})
	h.do(t, call{method: http.MethodGet, path: "/api/v1/releases/release-hello-1.0.0", token: ciToken})

	rec := h.do(t, call{method: http.MethodGet, path: "/metrics"})
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	require.Contains(t, body, `trainyard_http_requests_total{code="201",method="POST",route="/api/v1/releases"} 1`)
	require.Contains(t, body, `trainyard_http_requests_total{code="400",method="POST",route="/api/v1/releases"} 1`)
	require.Contains(t, body, `route="/api/v1/releases/:id"`, "a route pattern, not one series per release")
	require.NotContains(t, body, "release-hello-1.0.0")
	require.Contains(t, body, `trainyard_actions_total{action="release.start",outcome="allowed"} 1`)
	require.Contains(t, body, `trainyard_actions_total{action="release.start",outcome="denied"} 1`)
	require.Contains(t, body, "go_goroutines")
}
