package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/trainyard/trainyard/workflows"
)

type startResponse struct {
	ID            string `json:"id"`
	StatusURL     string `json:"statusUrl"`
	TemporalUIURL string `json:"temporalUiUrl"`
}

func startRelease(t *testing.T, token, runbook, version string) startResponse {
	t.Helper()
	code, body, _ := call(t, http.MethodPost, "/api/v1/releases", token, map[string]any{
		"runbook": runbook, "version": version,
		"components": []map[string]string{{"name": "web", "version": version, "artifact": "registry.example/web@sha256:" + strings.Repeat("a", 64)}},
		"change":     map[string]any{"commit": "abc123", "authors": []string{"dev@example.com"}},
	})
	require.Equal(t, http.StatusCreated, code, string(body))
	var res startResponse
	require.NoError(t, json.Unmarshal(body, &res))
	return res
}

func releaseDir(id string) string { return filepath.Join(sys.siteDir, "e2e", id) }

func TestRelease_SucceedsThroughTheAPI(t *testing.T) {
	res := startRelease(t, ciToken, "shop", "1.0.0")
	require.Equal(t, workflows.ReleaseID("shop", "1.0.0"), res.ID)
	require.Contains(t, res.StatusURL, "/api/v1/releases/"+res.ID)
	require.Contains(t, res.TemporalUIURL, "/namespaces/default/workflows/"+res.ID)

	// Starting the same release again gives back the one that exists.
	code, body, _ := call(t, http.MethodPost, "/api/v1/releases", ciToken, map[string]string{"runbook": "shop", "version": "1.0.0"})
	require.Equal(t, http.StatusOK, code, string(body))
	var again startResponse
	require.NoError(t, json.Unmarshal(body, &again))
	require.Equal(t, res.ID, again.ID)

	st := waitFor(t, res.ID, time.Minute, "waiting for approval", phaseIs(workflows.PhaseAwaitingApproval))
	require.Equal(t, workflows.StateSucceeded, st.Stages[0].State)
	require.Equal(t, workflows.GateWaiting, st.Approvals[0].State)

	decide := func(token string, body map[string]string) (int, []byte) {
		code, b, _ := call(t, http.MethodPost, "/api/v1/releases/"+res.ID+"/approvals", token, body)
		return code, b
	}
	// Someone without the role, and the requester, are refused; nothing changes.
	code, body = decide(outsiderToken, map[string]string{"gate": "prod-signoff", "decision": "approve"})
	require.Equal(t, http.StatusForbidden, code, string(body))
	require.Contains(t, string(body), "release-manager")
	require.Empty(t, status(t, res.ID).Approvals[0].Decisions)

	// Approve twice (a retried call): applied once.
	for range 2 {
		code, body = decide(aliceToken, map[string]string{"gate": "prod-signoff", "decision": "approve", "comment": "ship it"})
		require.Equal(t, http.StatusOK, code, string(body))
	}

	st = waitFor(t, res.ID, 2*time.Minute, "success", phaseIs(workflows.PhaseSucceeded))
	require.Len(t, st.Approvals[0].Decisions, 1)
	require.Equal(t, "alice", st.Approvals[0].Decisions[0].Actor)
	require.Empty(t, st.Failure)
	for _, stage := range st.Stages {
		for _, target := range stage.Targets {
			require.Equal(t, workflows.StateDeployed, target.State, target.Name)
			require.Contains(t, target.Output, "deployed 1.0.0 to "+target.Name)
			// The commands really ran, once each.
			dir := releaseDir(res.ID)
			require.Equal(t, []string{"1.0.0"}, readLines(t, filepath.Join(dir, target.Name+".version")))
			require.Equal(t, []string{"done"}, readLines(t, filepath.Join(dir, target.Name+".done")))
		}
	}

	// Temporal has one release workflow with a child per stage and the search attributes.
	ctx := context.Background()
	desc, err := sys.temporal.Client().DescribeWorkflow(ctx, res.ID, "")
	require.NoError(t, err)
	fields := desc.RawResponse.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()
	for attr, want := range map[string]string{
		workflows.AttrRunbook: "shop", workflows.AttrVersion: "1.0.0",
		workflows.AttrPhase: "succeeded", workflows.AttrEnvironment: "production",
	} {
		require.Contains(t, fields, attr)
		require.Contains(t, string(fields[attr].GetData()), want, attr)
	}
	for _, stage := range []string{"staging", "production"} {
		child, err := sys.temporal.Client().DescribeWorkflow(ctx, res.ID+"-"+stage, "")
		require.NoError(t, err, stage)
		require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, child.RawResponse.GetWorkflowExecutionInfo().GetStatus())
		require.Equal(t, "StageWorkflow", child.RawResponse.GetWorkflowExecutionInfo().GetType().GetName())
	}

	// The store saw the release end, and the audit trail has the refusals and the approval.
	code, body, _ = call(t, http.MethodGet, "/api/v1/releases?runbook=shop&phase=succeeded", ciToken, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), res.ID)
	code, body, _ = call(t, http.MethodGet, "/api/v1/audit?release="+res.ID, ciToken, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var audit struct {
		Events []struct {
			Actor, Action, Outcome string
		} `json:"events"`
	}
	require.NoError(t, json.Unmarshal(body, &audit))
	var seen []string
	for _, e := range audit.Events {
		seen = append(seen, e.Actor+" "+e.Action+" "+e.Outcome)
	}
	require.Contains(t, seen, "ci release.start allowed")
	require.Contains(t, seen, "mallory release.approve denied")
	require.Contains(t, seen, "alice release.approve allowed")

	saveHistory(t, res.ID)
}

func TestRelease_RequesterCannotApproveOwnRelease(t *testing.T) {
	res := startRelease(t, managerToken, "shop", "1.0.5")
	waitFor(t, res.ID, time.Minute, "waiting for approval", phaseIs(workflows.PhaseAwaitingApproval))
	code, body, _ := call(t, http.MethodPost, "/api/v1/releases/"+res.ID+"/approvals", managerToken,
		map[string]string{"gate": "prod-signoff", "decision": "approve"})
	require.Equal(t, http.StatusForbidden, code, string(body))
	require.Contains(t, string(body), "separation of duties")

	code, body, _ = call(t, http.MethodPost, "/api/v1/releases/"+res.ID+"/approvals", aliceToken,
		map[string]string{"gate": "prod-signoff", "decision": "reject", "comment": "freeze week"})
	require.Equal(t, http.StatusOK, code, string(body))
	st := waitFor(t, res.ID, time.Minute, "rejection", phaseIs(workflows.PhaseRejected))
	require.Contains(t, st.Failure, "freeze week")
	require.Equal(t, []string{"deploy stg-a", "deploy stg-b", "rollback stg-b", "rollback stg-a"}, opsLog(t, res.ID))
}

func TestRelease_DeployFailureRollsBackInReverse(t *testing.T) {
	res := startRelease(t, ciToken, "shop", "2.0.0-broken")
	waitFor(t, res.ID, time.Minute, "waiting for approval", phaseIs(workflows.PhaseAwaitingApproval))
	code, body, _ := call(t, http.MethodPost, "/api/v1/releases/"+res.ID+"/approvals", aliceToken,
		map[string]string{"gate": "prod-signoff", "decision": "approve"})
	require.Equal(t, http.StatusOK, code, string(body))

	st := waitFor(t, res.ID, 2*time.Minute, "rollback", phaseIs(workflows.PhaseRolledBack))
	require.Contains(t, st.Failure, "prod-b")
	require.Equal(t, []string{
		"deploy stg-a", "deploy stg-b", "deploy prod-a", "deploy prod-b",
		"rollback prod-a", "rollback stg-b", "rollback stg-a",
	}, opsLog(t, res.ID))
	prodB := st.Stages[1].Targets[1]
	require.Equal(t, workflows.StateFailed, prodB.State)
	require.Contains(t, prodB.Output, "health check failed")
	restored := st.PreviousVersion
	if restored == "" {
		restored = "none"
	}
	for _, name := range []string{"stg-a", "stg-b", "prod-a"} {
		// Rollback put back the version of the runbook's last successful release.
		require.Equal(t, []string{restored}, readLines(t, filepath.Join(releaseDir(res.ID), name+".version")), name)
	}
	saveHistory(t, res.ID)
}

func TestCrash_MainWorkerKilledDuringDeploy_ReleaseCompletesAndEachDeployRanOnce(t *testing.T) {
	res := startRelease(t, ciToken, "auto", "3.0.0-slow")
	// stg-b is deploying on the site worker while the main worker dies.
	waitForFile(t, filepath.Join(releaseDir(res.ID), "stg-b.running"), time.Minute)
	sys.kill(t, "worker")
	require.NoError(t, sys.start("worker"))

	waitFor(t, res.ID, 3*time.Minute, "success after the main worker restarted", phaseIs(workflows.PhaseSucceeded))
	for _, name := range []string{"stg-a", "stg-b", "prod-a", "prod-b"} {
		require.Equal(t, []string{"1"}, readLines(t, filepath.Join(releaseDir(res.ID), name+".attempts")), name)
		require.Equal(t, []string{"done"}, readLines(t, filepath.Join(releaseDir(res.ID), name+".done")), name)
	}
}

func TestCrash_SiteWorkerKilledDuringDeploy_DeployIsRetriedAndFinishedTargetsAreNot(t *testing.T) {
	res := startRelease(t, ciToken, "auto", "4.0.0-hang")
	dir := releaseDir(res.ID)
	// stg-a hangs on its first attempt: kill the site worker under it.
	waitForFile(t, filepath.Join(dir, "stg-a.running.1"), time.Minute)
	sys.kill(t, "site")
	require.NoError(t, sys.start("site"))

	st := waitFor(t, res.ID, 3*time.Minute, "success after the site worker restarted", phaseIs(workflows.PhaseSucceeded))
	// The interrupted deploy ran again, as attempt 2, and finished once.
	require.Equal(t, []string{"1", "2"}, readLines(t, filepath.Join(dir, "stg-a.attempts")))
	require.Equal(t, []string{"done"}, readLines(t, filepath.Join(dir, "stg-a.done")))
	require.Equal(t, int32(2), st.Stages[0].Targets[0].Attempts)
	// Targets after it ran once each.
	for _, name := range []string{"stg-b", "prod-a", "prod-b"} {
		require.Equal(t, []string{"1"}, readLines(t, filepath.Join(dir, name+".attempts")), name)
	}
}

func TestCrash_SiteWorkerKilledAfterATargetFinished_ThatTargetIsNotRunAgain(t *testing.T) {
	res := startRelease(t, ciToken, "auto", "4.1.0-slow")
	dir := releaseDir(res.ID)
	waitForFile(t, filepath.Join(dir, "stg-b.running"), time.Minute)
	sys.kill(t, "site")
	require.NoError(t, sys.start("site"))

	waitFor(t, res.ID, 3*time.Minute, "success after the site worker restarted", phaseIs(workflows.PhaseSucceeded))
	require.Equal(t, []string{"1"}, readLines(t, filepath.Join(dir, "stg-a.attempts")), "stg-a finished before the kill")
	require.Equal(t, []string{"1", "2"}, readLines(t, filepath.Join(dir, "stg-b.attempts")))
	require.Equal(t, []string{"done"}, readLines(t, filepath.Join(dir, "stg-b.done")))
}

func TestAPI_BadRequestsStartNothing(t *testing.T) {
	before := listCount(t)
	cases := []struct {
		name  string
		token string
		body  any
		code  int
		says  string
	}{
		{"no token", "", map[string]string{"runbook": "shop", "version": "9.0.0"}, http.StatusUnauthorized, "token"},
		{"bad token", "nope-nope-nope", map[string]string{"runbook": "shop", "version": "9.0.0"}, http.StatusUnauthorized, "token"},
		{"malformed JSON", ciToken, `{"runbook": "shop",`, http.StatusBadRequest, "JSON"},
		{"missing version", ciToken, map[string]string{"runbook": "shop"}, http.StatusBadRequest, "version"},
		{"unknown runbook", ciToken, map[string]string{"runbook": "nope", "version": "9.0.0"}, http.StatusBadRequest, "shop"},
		{"body over 1 MiB", ciToken, `{"runbook":"shop","version":"9.0.0","change":{"commit":"` + strings.Repeat("a", 1<<20) + `"}}`, http.StatusRequestEntityTooLarge, "1 MiB"},
	}
	for _, tc := range cases {
		code, body, hdr := call(t, http.MethodPost, "/api/v1/releases", tc.token, tc.body)
		require.Equal(t, tc.code, code, "%s: %s", tc.name, body)
		require.Equal(t, "application/problem+json", strings.Split(hdr.Get("Content-Type"), ";")[0], tc.name)
		require.Contains(t, strings.ToLower(string(body)), strings.ToLower(tc.says), tc.name)
	}
	require.Equal(t, before, listCount(t), "a bad request started a release")
	_, err := sys.temporal.Client().DescribeWorkflow(context.Background(), workflows.ReleaseID("shop", "9.0.0"), "")
	require.Error(t, err, "a bad request started a workflow")
}

func listCount(t *testing.T) int {
	code, body, _ := call(t, http.MethodGet, "/api/v1/releases?limit=500", ciToken, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var list struct {
		Releases []json.RawMessage `json:"releases"`
	}
	require.NoError(t, json.Unmarshal(body, &list))
	return len(list.Releases)
}

func opsLog(t *testing.T, id string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(releaseDir(id), "ops.log"))
	require.NoError(t, err)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}
