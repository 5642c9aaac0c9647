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

func TestLock_OneReleaseAtATimeInAnEnvironment(t *testing.T) {
	first := startRelease(t, ciToken, "auto", "20.0.0-slow")
	waitFor(t, first.ID, 2*time.Minute, "deploying production", func(s workflows.ReleaseStatus) bool {
		return s.CurrentStage == "production" && s.Phase == workflows.PhaseDeploying
	})

	second := startRelease(t, ciToken, "lockstep", "1.0.0")
	st := waitFor(t, second.ID, time.Minute, "queued behind the first", phaseIs(workflows.PhaseQueued))
	require.Equal(t, &workflows.LockStatus{Environment: "production", Holder: first.ID, Position: 1}, st.Lock)
	require.Equal(t, workflows.StateSucceeded, st.Stages[0].State, "staging was free")

	waitFor(t, first.ID, 2*time.Minute, "the first succeeds", phaseIs(workflows.PhaseSucceeded))
	st = waitFor(t, second.ID, 2*time.Minute, "the second succeeds after it", phaseIs(workflows.PhaseSucceeded))
	require.Nil(t, st.Lock)
	firstEnd := status(t, first.ID).EndedAt
	require.NotNil(t, firstEnd)
	require.True(t, st.Stages[1].Targets[0].DeployedAt.After(*firstEnd), "production deployed only after the first release ended")
	saveHistory(t, second.ID)
}

func TestReservation_AReleaseWaitsOutAnotherRunbooksSlotAndPromotionsAreRecorded(t *testing.T) {
	now := time.Now().UTC()
	res := map[string]any{
		"environment": "production", "runbook": "bench", "start": now.Add(-time.Minute).Format(time.RFC3339),
		"end": now.Add(20 * time.Second).Format(time.RFC3339), "reason": "load test of the bench runbook",
	}
	code, body, _ := call(t, http.MethodPost, "/api/v1/reservations", ciToken, res)
	require.Equal(t, http.StatusForbidden, code, "only release managers reserve: %s", body)
	code, body, _ = call(t, http.MethodPost, "/api/v1/reservations", aliceToken, res)
	require.Equal(t, http.StatusCreated, code, string(body))
	code, body, _ = call(t, http.MethodPost, "/api/v1/reservations", aliceToken, res)
	require.Equal(t, http.StatusConflict, code, "overlapping slots are refused: %s", body)

	rel := startRelease(t, ciToken, "lockstep", "2.0.0")
	st := waitFor(t, rel.ID, time.Minute, "waiting out the reservation", func(s workflows.ReleaseStatus) bool {
		return s.Phase == workflows.PhaseQueued && s.Reservation != nil
	})
	require.Equal(t, "runbook bench", st.Reservation.Holder)
	waitFor(t, rel.ID, 2*time.Minute, "success after the slot", phaseIs(workflows.PhaseSucceeded))

	code, body, _ = call(t, http.MethodGet, "/api/v1/releases/"+rel.ID+"/promotions", ciToken, nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var got struct {
		Promotions []struct{ Stage, Artifact string }
	}
	require.NoError(t, json.Unmarshal(body, &got))
	require.Len(t, got.Promotions, 2, "one component, two stages")
	require.Equal(t, got.Promotions[0].Artifact, got.Promotions[1].Artifact, "the same digest in every stage")
	require.True(t, strings.Contains(got.Promotions[0].Artifact, "@sha256:"))
}

// Two regions after staging deploy at once, on two site workers: each region's command waits
// for the other's to be running, so the release succeeds only if the stages overlap.
func TestGraph_TwoRegionsDeployAtOnceOnTwoSiteWorkers(t *testing.T) {
	res := startRelease(t, ciToken, "regions", "1.0.0")
	st := waitFor(t, res.ID, 3*time.Minute, "success", phaseIs(workflows.PhaseSucceeded))
	for _, s := range st.Stages {
		require.Equal(t, workflows.StateSucceeded, s.State, s.Name)
	}
	require.Contains(t, st.Stages[1].Targets[0].Output, "alongside us-a")
	require.Contains(t, st.Stages[2].Targets[0].Output, "alongside eu-a")
	saveHistory(t, res.ID)
}
