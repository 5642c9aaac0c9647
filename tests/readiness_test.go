package tests

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/workflows"
)

const testPolicies = `
policies:
  - name: scan-before-start
    when: runbook.name == "policed"
    rule: governance.scanReports > 0
    message: attach a scan report before starting a release of policed
    at: [start]
`

func startWithCoverage(t *testing.T, runbook, version string, coverage float64) string {
	t.Helper()
	code, body, _ := call(t, http.MethodPost, "/api/v1/releases", ciToken, map[string]any{
		"runbook": runbook, "version": version,
		"change": map[string]any{"commit": "abc123", "coverage": coverage, "churn": 420},
	})
	require.Equal(t, http.StatusCreated, code, string(body))
	var res startResponse
	require.NoError(t, json.Unmarshal(body, &res))
	return res.ID
}

func attachReport(t *testing.T, id, file string) (int, []byte) {
	t.Helper()
	body, err := os.ReadFile("../integrations/scanreport/testdata/" + file)
	require.NoError(t, err)
	code, resp, _ := call(t, http.MethodPost, "/api/v1/releases/"+id+"/reports?name=image", ciToken, body)
	return code, resp
}

func TestReadiness_ScanGateWaitsForCIsReportAndFailsOnACriticalFinding(t *testing.T) {
	id := startWithCoverage(t, "scanned", "8.0.0", 91)
	st := waitFor(t, id, time.Minute, "checking readiness", phaseIs(workflows.PhaseChecking))
	require.NotNil(t, st.Risk, "the risk is scored before the gates run")

	// A report that is not one is refused with a message, and nothing is stored.
	code, body, hdr := call(t, http.MethodPost, "/api/v1/releases/"+id+"/reports", ciToken, `{"not": "a report"}`)
	require.Equal(t, http.StatusBadRequest, code, string(body))
	require.Equal(t, "application/problem+json", hdr.Get("Content-Type"))
	require.Contains(t, string(body), "SARIF")

	code, body = attachReport(t, id, "trivy-image.json")
	require.Equal(t, http.StatusCreated, code, string(body))
	require.Contains(t, string(body), `"critical":3`)

	st = waitFor(t, id, time.Minute, "failed readiness", phaseIs(workflows.PhaseFailed))
	require.Contains(t, st.Failure, "image-scan failed")
	require.Contains(t, st.Failure, "CVE-2023-45853")
	require.NoFileExists(t, filepath.Join(releaseDir(id), "ops.log"), "nothing deployed")
	gates := map[string]string{}
	for _, g := range st.Gates {
		gates[g.Name] = g.State
	}
	require.Equal(t, map[string]string{"image-scan": "failed", "coverage": "passed"}, gates)

	code, body, _ = call(t, http.MethodGet, "/api/v1/releases/"+id+"/gates", ciToken, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), "CVE-2024-24790", "the evidence is stored with the verdict")
}

func TestReadiness_AGateWaiverLetsTheNextReleaseThrough(t *testing.T) {
	id := workflows.ReleaseID("scanned", "8.0.1")
	code, body, _ := call(t, http.MethodPost, "/api/v1/waivers", aliceToken, map[string]any{
		"kind": "gate", "target": "image-scan", "scope": map[string]any{"releases": []string{id}},
		"reason": "base image fix ships next week; accepted by security (SEC-42)", "expiresAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	})
	require.Equal(t, http.StatusCreated, code, string(body))

	startWithCoverage(t, "scanned", "8.0.1", 91)
	code, body = attachReport(t, id, "trivy-image.json")
	require.Equal(t, http.StatusCreated, code, string(body))
	st := waitFor(t, id, 2*time.Minute, "success past the waived gate", phaseIs(workflows.PhaseSucceeded))
	for _, g := range st.Gates {
		if g.Name == "image-scan" {
			require.Equal(t, "waived", g.State)
			require.True(t, strings.HasPrefix(g.Waiver, "WVR-"), g.Waiver)
		}
	}
	code, body, _ = call(t, http.MethodGet, "/api/v1/audit?release="+id+"&action=waiver.use", ciToken, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), "image-scan", "the waiver's use is audited")
	saveHistory(t, id)
}

func TestPolicy_AReleaseBreakingAPolicyStopsWithItsName(t *testing.T) {
	res := startRelease(t, ciToken, "policed", "9.0.0")
	st := waitFor(t, res.ID, time.Minute, "rejected by policy", phaseIs(workflows.PhaseRejected))
	require.Contains(t, st.Failure, "policy scan-before-start: attach a scan report before starting a release of policed")
	require.NoFileExists(t, filepath.Join(releaseDir(res.ID), "ops.log"))
}

func TestDrills_OnlyThePeopleWhoRunThemRecordThem(t *testing.T) {
	drill := map[string]any{"component": "orders-db", "outcome": "passed", "drilledAt": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}
	code, body, _ := call(t, http.MethodPost, "/api/v1/drills", ciToken, drill)
	require.Equal(t, http.StatusForbidden, code, string(body))
	code, body, _ = call(t, http.MethodPost, "/api/v1/drills", aliceToken, drill)
	require.Equal(t, http.StatusCreated, code, string(body))
	code, body, _ = call(t, http.MethodGet, "/api/v1/drills/orders-db", ciToken, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"recordedBy":"alice"`)
}
