package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/workflows"
)

// TestAudit_ExportFindsEveryHumanActionOfARelease answers an auditor's question with the
// real binary: who started release X, who tried to approve it and who did, when and from
// where; and the trail's chain is intact.
func TestAudit_ExportFindsEveryHumanActionOfARelease(t *testing.T) {
	res := startRelease(t, ciToken, "shop", "5.0.0-audit")
	waitFor(t, res.ID, time.Minute, "waiting for approval", phaseIs(workflows.PhaseAwaitingApproval))
	approvals := "/api/v1/releases/" + res.ID + "/approvals"
	code, body, _ := call(t, http.MethodPost, approvals, outsiderToken, map[string]string{"gate": "prod-signoff", "decision": "approve"})
	require.Equal(t, http.StatusForbidden, code, string(body))

	// alice names her device, as a client may.
	req, err := http.NewRequest(http.MethodPost, sys.apiURL+approvals, strings.NewReader(`{"gate":"prod-signoff","decision":"approve","comment":"canary clean"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Trainyard-Device", "alice-laptop")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	export := exec.Command(sys.bin, "audit", "export", "--release", res.ID, "--format", "json", "--api", sys.apiURL, "--token", ciToken)
	export.Env = sys.env
	var stderr bytes.Buffer
	export.Stderr = &stderr
	out, err := export.Output()
	require.NoError(t, err, stderr.String())

	type event struct {
		ID                                 int64
		At                                 time.Time
		Actor, Action, Outcome, SourceIP   string
		ReleaseID, Device, UserAgent, Hash string
		Details                            map[string]any
	}
	var events []event
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var e event
		require.NoError(t, json.Unmarshal(sc.Bytes(), &e), sc.Text())
		events = append(events, e)
	}
	require.NoError(t, sc.Err())
	find := func(actor, action, outcome string) event {
		t.Helper()
		for _, e := range events {
			if e.Actor == actor && e.Action == action && e.Outcome == outcome {
				return e
			}
		}
		t.Fatalf("no %s %s %s in the export:\n%s", actor, action, outcome, out)
		return event{}
	}
	start := find("ci", "release.start", "allowed")
	refused := find("mallory", "release.approve", "denied")
	approved := find("alice", "release.approve", "allowed")
	for _, e := range []event{start, refused, approved} {
		require.Equal(t, res.ID, e.ReleaseID)
		require.Equal(t, "127.0.0.1", e.SourceIP, "%+v", e)
		require.Regexp(t, `^[0-9a-f]{64}$`, e.Hash)
		require.WithinDuration(t, time.Now(), e.At, 5*time.Minute)
	}
	require.Equal(t, "alice-laptop", approved.Device)
	require.Equal(t, "canary clean", approved.Details["comment"])
	require.Less(t, start.ID, refused.ID)
	require.Less(t, refused.ID, approved.ID)
	require.Equal(t, "Exported "+strconv.Itoa(len(events))+" audit events.\n", stderr.String())

	verify := exec.Command(sys.bin, "audit", "verify")
	verify.Env = append(sys.env, "TRAINYARD_CONFIG="+sys.cfgPath)
	report, err := verify.CombinedOutput()
	require.NoError(t, err, "%s", report)
	require.Regexp(t, `Result\s+intact`, string(report))
	m := regexp.MustCompile(`checked (\d+) rows`).FindSubmatch(report)
	require.NotNil(t, m, "%s", report)
	checked, err := strconv.Atoi(string(m[1]))
	require.NoError(t, err)
	require.GreaterOrEqual(t, checked, 3, "%s", report)
}
