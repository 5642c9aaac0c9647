package apiclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/apiclient"
	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/server"
	"github.com/trainyard/trainyard/store"
	"github.com/trainyard/trainyard/workflows"
)

// engine is a server.Engine that remembers which releases exist.
type engine struct {
	started map[string]workflows.ReleaseInput
}

func (e *engine) Start(_ context.Context, in workflows.ReleaseInput) (bool, error) {
	if _, ok := e.started[in.ID]; ok {
		return false, nil
	}
	e.started[in.ID] = in
	return true, nil
}

func (e *engine) Status(_ context.Context, id string) (workflows.ReleaseStatus, error) {
	in, ok := e.started[id]
	if !ok {
		return workflows.ReleaseStatus{}, server.ErrReleaseNotFound
	}
	return workflows.ReleaseStatus{ID: id, Runbook: in.Runbook.Name, Version: in.Version, Phase: workflows.PhasePending, Requester: in.Requester}, nil
}

func (e *engine) Approve(_ context.Context, _, _ string, req workflows.ApprovalRequest) (workflows.ApprovalResult, error) {
	if req.Actor.Name == "ci" {
		return workflows.ApprovalResult{}, &server.RefusedError{Type: workflows.ErrTypeForbidden, Message: "ci may not approve"}
	}
	return workflows.ApprovalResult{Gate: req.Gate, State: workflows.GateApproved, Approvals: 1, Required: 1}, nil
}

func (e *engine) Reject(_ context.Context, _, _ string, req workflows.ApprovalRequest) (workflows.ApprovalResult, error) {
	return workflows.ApprovalResult{Gate: req.Gate, State: workflows.GateRejected, Required: 1}, nil
}

func (e *engine) Abort(context.Context, string, string, workflows.AbortRequest) (workflows.AbortResult, error) {
	return workflows.AbortResult{Phase: workflows.PhaseRollingBack}, nil
}

func (e *engine) Operate(context.Context, string, string, string, workflows.OperatorRequest) (workflows.OperatorResult, error) {
	return workflows.OperatorResult{Phase: workflows.PhaseDeploying}, nil
}

func (e *engine) Ping(context.Context) error { return nil }

type auditStore struct{ events []store.AuditEvent }

func (s *auditStore) RecordStart(ctx context.Context, _ store.ReleaseRecord, ev store.AuditEvent) (int64, error) {
	return s.AppendAudit(ctx, ev)
}
func (s *auditStore) ListReleases(context.Context, store.ReleaseFilter) ([]store.ReleaseRecord, error) {
	return []store.ReleaseRecord{{ID: "release-hello-1.0.0", Runbook: "hello", Version: "1.0.0", Phase: "pending"}}, nil
}
func (s *auditStore) AppendAudit(_ context.Context, ev store.AuditEvent) (int64, error) {
	s.events = append(s.events, ev)
	return int64(len(s.events)), nil
}
func (s *auditStore) ListAudit(_ context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	var out []store.AuditEvent
	for _, ev := range s.events {
		if f.Actor == "" || ev.Actor == f.Actor {
			out = append(out, ev)
		}
	}
	return out, nil
}
func (s *auditStore) Ping(context.Context) error { return nil }

const hello = `name: hello
approvals:
  - {name: production, before: prod, roles: [approver]}
stages:
  - name: prod
    targets:
      - {name: web, kind: command, site: local, deploy: echo d, rollback: echo r}
`

// TestClient_RoundTripsWithTheServer runs the client against the real handler, so the wire
// format of both sides is checked together.
func TestClient_RoundTripsWithTheServer(t *testing.T) {
	gin.SetMode(gin.TestMode)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hello.yaml"), []byte(hello), 0o600))
	srv := server.New(server.Deps{
		Engine: &engine{started: map[string]workflows.ReleaseInput{}},
		Store:  &auditStore{},
		Auth: config.NewAuthenticator([]config.Principal{
			{Name: "ci", Roles: []string{"deployer"}, Token: "ci-token-123"},
			{Name: "alice", Roles: []string{"approver"}, Token: "alice-token-123"},
		}),
		Catalog:       runbooks.Catalog{Dir: dir},
		PublicURL:     "http://trainyard.test",
		TemporalUIURL: "http://ui.test",
	})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	ctx := context.Background()
	ci := apiclient.New(ts.URL, "ci-token-123", ts.Client())
	alice := apiclient.New(ts.URL+"/", "alice-token-123", nil)

	req := apiclient.StartRequest{Runbook: "hello", Version: "1.0.0", Components: []workflows.Component{{Name: "web", Version: "1.0.0"}}}
	resp, created, err := ci.StartRelease(ctx, req, "")
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, "release-hello-1.0.0", resp.ID)
	require.Equal(t, "http://trainyard.test/api/v1/releases/release-hello-1.0.0", resp.StatusURL)
	require.Equal(t, "http://ui.test/namespaces/default/workflows/release-hello-1.0.0", resp.TemporalUIURL)

	_, created, err = ci.StartRelease(ctx, req, "")
	require.NoError(t, err)
	require.False(t, created)

	_, _, err = ci.StartRelease(ctx, apiclient.StartRequest{Runbook: "hello"}, "")
	p, ok := apiclient.AsProblem(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, http.StatusBadRequest, p.Status)
	require.Contains(t, p.Detail, "version is required")

	st, err := ci.Status(ctx, resp.ID)
	require.NoError(t, err)
	require.Equal(t, workflows.PhasePending, st.Phase)
	require.Equal(t, "ci", st.Requester.Name)

	_, err = ci.Status(ctx, "nope")
	p, ok = apiclient.AsProblem(err)
	require.True(t, ok)
	require.Equal(t, http.StatusNotFound, p.Status)

	_, err = ci.Decide(ctx, resp.ID, apiclient.DecisionRequest{Gate: "production", Decision: apiclient.DecisionApprove})
	p, ok = apiclient.AsProblem(err)
	require.True(t, ok)
	require.Equal(t, http.StatusForbidden, p.Status)
	require.Equal(t, "Forbidden: ci may not approve", p.Error())

	res, err := alice.Decide(ctx, resp.ID, apiclient.DecisionRequest{Gate: "production", Decision: apiclient.DecisionApprove, Comment: "ok"})
	require.NoError(t, err)
	require.Equal(t, workflows.GateApproved, res.State)

	ab, err := alice.Abort(ctx, resp.ID, "stop")
	require.NoError(t, err)
	require.Equal(t, workflows.PhaseRollingBack, ab.Phase)

	list, err := ci.ListReleases(ctx, apiclient.ListOptions{Runbook: "hello", Limit: 10})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "release-hello-1.0.0", list[0].ID)

	rbs, err := ci.Runbooks(ctx)
	require.NoError(t, err)
	require.Equal(t, "hello", rbs.Runbooks[0].Name)
	require.Equal(t, []string{"prod"}, rbs.Runbooks[0].Stages)

	_, err = ci.ValidateRunbook(ctx, []byte("name: x\nstages: []\n"))
	p, ok = apiclient.AsProblem(err)
	require.True(t, ok)
	require.Equal(t, http.StatusUnprocessableEntity, p.Status)
	require.NotEmpty(t, p.Problems)
	require.Equal(t, "request", p.Problems[0].File)
	require.Positive(t, p.Problems[0].Line)

	events, err := ci.Audit(ctx, apiclient.AuditOptions{Actor: "alice", Since: time.Now().Add(-time.Hour)})
	require.NoError(t, err)
	require.Len(t, events, 2)
	require.Equal(t, "release.approve", events[0].Action)
	require.Equal(t, "allowed", events[0].Outcome)

	_, err = apiclient.New(ts.URL, "wrong-token", nil).Runbooks(ctx)
	p, ok = apiclient.AsProblem(err)
	require.True(t, ok)
	require.Equal(t, http.StatusUnauthorized, p.Status)
}

func TestClient_NonProblemErrorStillBecomesAProblem(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "Bearer tok", r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>upstream down</html>"))
	}))
	t.Cleanup(ts.Close)
	_, err := apiclient.New(ts.URL, "tok", nil).Status(context.Background(), "r1")
	p, ok := apiclient.AsProblem(err)
	require.True(t, ok)
	require.Equal(t, http.StatusBadGateway, p.Status)
	require.Equal(t, "Bad Gateway", p.Title)
	require.Contains(t, p.Detail, "upstream down")
}

func TestClient_SendsIdempotencyKey(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "build-7", r.Header.Get("Idempotency-Key"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"id":"release-build-7","phase":"deploying"}`))
	}))
	t.Cleanup(ts.Close)
	resp, created, err := apiclient.New(ts.URL, "tok", nil).StartRelease(context.Background(), apiclient.StartRequest{Runbook: "hello", Version: "1"}, "build-7")
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, "deploying", resp.Phase)
}

// pagedStore lists its events as the store does: in order, after an id, a page at a time.
type pagedStore struct {
	auditStore
	calls []store.AuditFilter
}

func (s *pagedStore) ListAudit(_ context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	s.calls = append(s.calls, f)
	out := []store.AuditEvent{}
	started := f.After == 0
	for _, ev := range s.events {
		if !started {
			started = ev.ID == f.After
			continue
		}
		if (f.Actor == "" || ev.Actor == f.Actor) && len(out) < f.Limit {
			out = append(out, ev)
		}
	}
	return out, nil
}

func TestClient_AuditAllPagesThroughEveryEvent(t *testing.T) {
	gin.SetMode(gin.TestMode)
	st := &pagedStore{}
	for i := range 7 {
		actor := "alice"
		if i%3 == 0 {
			actor = "bob"
		}
		st.events = append(st.events, store.AuditEvent{ID: int64(10 + i), Actor: actor, Action: "release.approve",
			Outcome: "allowed", Device: "laptop", Hash: fmt.Sprintf("h%d", i)})
	}
	srv := server.New(server.Deps{
		Engine:  &engine{started: map[string]workflows.ReleaseInput{}},
		Store:   st,
		Auth:    config.NewAuthenticator([]config.Principal{{Name: "auditor", Roles: []string{"auditor"}, Token: "auditor-token-1"}}),
		Catalog: runbooks.Catalog{Dir: t.TempDir()},
	})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	c := apiclient.New(ts.URL, "auditor-token-1", nil)
	ctx := context.Background()

	tests := []struct {
		name      string
		opts      apiclient.AuditOptions
		wantIDs   []int64
		wantPages int
	}{
		{name: "pages of 3", opts: apiclient.AuditOptions{Limit: 3}, wantIDs: []int64{10, 11, 12, 13, 14, 15, 16}, wantPages: 3},
		{name: "a page that comes out full asks once more", opts: apiclient.AuditOptions{Limit: 7}, wantIDs: []int64{10, 11, 12, 13, 14, 15, 16}, wantPages: 2},
		{name: "default page", opts: apiclient.AuditOptions{}, wantIDs: []int64{10, 11, 12, 13, 14, 15, 16}, wantPages: 1},
		{name: "filtered", opts: apiclient.AuditOptions{Actor: "alice", Limit: 2}, wantIDs: []int64{11, 12, 14, 15}, wantPages: 3},
		{name: "after an id", opts: apiclient.AuditOptions{After: 13, Limit: 2}, wantIDs: []int64{14, 15, 16}, wantPages: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st.calls = nil
			var ids []int64
			err := c.AuditAll(ctx, tt.opts, func(ev apiclient.AuditEvent) error {
				ids = append(ids, ev.ID)
				require.Equal(t, "laptop", ev.Device)
				require.Equal(t, fmt.Sprintf("h%d", ev.ID-10), ev.Hash)
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, tt.wantIDs, ids)
			require.Len(t, st.calls, tt.wantPages)
			for i, f := range st.calls[1:] {
				require.Equal(t, ids[(i+1)*st.calls[0].Limit-1], f.After, "page %d continues after the last id", i+2)
			}
		})
	}

	stop := errors.New("enough")
	n := 0
	err := c.AuditAll(ctx, apiclient.AuditOptions{Limit: 2}, func(apiclient.AuditEvent) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 3, n)
}
