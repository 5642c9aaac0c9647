package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/store"
	"github.com/trainyard/trainyard/workflows"
)

func TestPause_NeedsAReasonAndSendsTheUpdate(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	var updates, ids []string
	h.engine.OperateFunc = func(_ context.Context, _, updateID, update string, req workflows.OperatorRequest) (workflows.OperatorResult, error) {
		updates, ids = append(updates, update), append(ids, updateID)
		require.Equal(t, "alice", req.Actor.Name)
		return workflows.OperatorResult{Phase: workflows.PhaseDeploying, Paused: update == workflows.UpdatePause}, nil
	}
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases/r1/pause", token: approverToken, body: `{}`})
	p := requireProblem(t, rec, http.StatusBadRequest, "/api/v1/releases/r1/pause")
	require.Contains(t, p.Detail, "reason is required")

	rec = h.do(t, call{method: http.MethodPost, path: "/api/v1/releases/r1/pause", token: approverToken, body: `{"reason":"wait for the payments team"}`})
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	require.JSONEq(t, `{"phase":"deploying","paused":true}`, rec.Body.String())
	rec = h.do(t, call{method: http.MethodPost, path: "/api/v1/releases/r1/resume", token: approverToken})
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())

	require.Equal(t, []string{workflows.UpdatePause, workflows.UpdateResume}, updates)
	require.True(t, strings.HasPrefix(ids[0], "pause/alice/"))
	require.NotEqual(t, strings.TrimPrefix(ids[0], "pause/"), strings.TrimPrefix(ids[1], "resume/"), "each request is its own Update")
	audits := h.store.auditRows()
	require.Equal(t, []string{actionPause, actionPause, actionResume}, []string{audits[0].Action, audits[1].Action, audits[2].Action})
	require.Equal(t, store.OutcomeDenied, audits[0].Outcome)
}

func TestPause_RefusedByTheReleaseIs403AndAudited(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.engine.OperateFunc = func(context.Context, string, string, string, workflows.OperatorRequest) (workflows.OperatorResult, error) {
		return workflows.OperatorResult{}, &RefusedError{Type: workflows.ErrTypeForbidden, Message: "alice cannot pause this release"}
	}
	rec := h.do(t, call{method: http.MethodPost, path: "/api/v1/releases/r1/pause", token: approverToken, body: `{"reason":"x"}`})
	requireProblem(t, rec, http.StatusForbidden, "/api/v1/releases/r1/pause")
	require.Equal(t, store.OutcomeDenied, h.store.auditRows()[0].Outcome)
}
