package tests

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/workflows"
)

func putCalendar(t *testing.T, name string, window map[string]any) {
	t.Helper()
	code, body, _ := call(t, http.MethodPut, "/api/v1/calendars/"+name, aliceToken, map[string]any{
		"timeZone": "UTC", "windows": []map[string]any{window},
	})
	require.Contains(t, []int{http.StatusOK, http.StatusCreated}, code, string(body))
}

func TestFreeze_ReleaseWaitsOutAFrozenStageThenDeploys(t *testing.T) {
	now := time.Now().UTC()
	putCalendar(t, "e2e-window", map[string]any{
		"name": "maintenance", "start": now.Add(-time.Minute).Format(time.RFC3339), "end": now.Add(25 * time.Second).Format(time.RFC3339),
		"scope": map[string]any{"environments": []string{"production"}},
	})
	res := startRelease(t, ciToken, "frozen", "6.0.0")

	st := waitFor(t, res.ID, time.Minute, "frozen before production", phaseIs(workflows.PhaseFrozen))
	require.Equal(t, workflows.StateSucceeded, st.Stages[0].State, "staging is not in the freeze's scope")
	require.Contains(t, st.FreezeReason, "e2e-window")
	require.NotNil(t, st.FrozenUntil)

	st = waitFor(t, res.ID, 2*time.Minute, "success after the window", phaseIs(workflows.PhaseSucceeded))
	require.Equal(t, workflows.StateDeployed, st.Stages[1].Targets[0].State)
}

func TestFreeze_WaiverLetsOneReleaseThroughAndItsUseIsAudited(t *testing.T) {
	putCalendar(t, "e2e-forever", map[string]any{"name": "forever", "start": "2020-01-01", "end": "2099-12-31"})
	id := workflows.ReleaseID("waived", "7.0.0")

	// Without the role, no waiver; the refusal is audited.
	waiver := map[string]any{
		"kind": "freeze", "target": "e2e-forever", "scope": map[string]any{"releases": []string{id}},
		"reason": "hotfix for INC-1", "expiresAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	}
	code, body, _ := call(t, http.MethodPost, "/api/v1/waivers", ciToken, waiver)
	require.Equal(t, http.StatusForbidden, code, string(body))
	code, body, _ = call(t, http.MethodPost, "/api/v1/waivers", aliceToken, waiver)
	require.Equal(t, http.StatusCreated, code, string(body))
	var granted struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(body, &granted))

	res := startRelease(t, ciToken, "waived", "7.0.0")
	st := waitFor(t, res.ID, 2*time.Minute, "success through the freeze", phaseIs(workflows.PhaseSucceeded))
	var named bool
	for _, e := range st.Timeline {
		named = named || strings.Contains(e.Message, granted.ID)
	}
	require.True(t, named, "the timeline names the waiver: %+v", st.Timeline)

	code, body, _ = call(t, http.MethodGet, "/api/v1/audit?release="+res.ID, ciToken, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	require.Contains(t, string(body), `"action":"waiver.use"`)

	// Another release of the same runbook is not covered and waits.
	other := startRelease(t, ciToken, "waived", "7.0.1")
	st = waitFor(t, other.ID, time.Minute, "frozen", phaseIs(workflows.PhaseFrozen))
	require.Contains(t, st.FreezeReason, "e2e-forever")
	code, body, _ = call(t, http.MethodPost, "/api/v1/releases/"+other.ID+"/abort", ciToken, map[string]string{"reason": "not waived"})
	require.Equal(t, http.StatusAccepted, code, string(body))
	waitFor(t, other.ID, time.Minute, "aborted", phaseIs(workflows.PhaseAborted))
}
