package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/integrations/hardware"
	"github.com/trainyard/trainyard/internal/devicesim"
	"github.com/trainyard/trainyard/workflows"
)

func TestDeployClients_FindArgoCDServersByNameOrHost(t *testing.T) {
	t.Parallel()
	cfg := config.Rollout{
		ArgoCD: config.ArgoCD{
			ArgoCDServer: config.ArgoCDServer{URL: "https://argocd.example.com", Token: "a"},
			Servers:      map[string]config.ArgoCDServer{"eu": {URL: "https://argocd-eu.example.com:8443", Token: "b"}},
		},
		Spinnaker: config.Spinnaker{URL: "https://gate.example.com", Headers: map[string]string{"X-Spinnaker-User": "trainyard"}},
		Poll:      2 * time.Second,
	}

	d := deployClients(cfg)

	require.ElementsMatch(t, []string{"", "argocd.example.com", "eu", "argocd-eu.example.com"}, keys(d.ArgoCD))
	require.Same(t, d.ArgoCD[""], d.ArgoCD["argocd.example.com"])
	require.Same(t, d.ArgoCD["eu"], d.ArgoCD["argocd-eu.example.com"])
	require.NotNil(t, d.Spinnaker)
	require.Nil(t, d.Flags, "unleash has no url: its targets fail naming the keys")
	require.Equal(t, 2*time.Second, d.Poll)

	require.Empty(t, deployClients(config.Rollout{}).ArgoCD)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestTargetProgress_DrawsABarOfWhatTheTargetDid(t *testing.T) {
	t.Parallel()
	cases := []struct {
		t    workflows.TargetStatus
		want string
	}{
		{workflows.TargetStatus{Name: "web", State: workflows.StateRunning, Step: 2, Steps: 4, Weight: 25},
			"[#####---------------]  25%  prod/web  running, canary step 2 of 4, weight 25%"},
		{workflows.TargetStatus{Name: "fleet", State: workflows.StateFailed, DevicesDone: 3, DevicesFailed: 1, DevicesTotal: 4},
			"[###############-----]  75%  prod/fleet  failed, 3/4 devices (1 failed)"},
		{workflows.TargetStatus{Name: "web", State: workflows.StateDeployed, Side: "green"},
			"[####################] 100%  prod/web  deployed, green side"},
		{workflows.TargetStatus{Name: "api", State: workflows.StateRunning, Warning: "drifted"},
			"[--------------------]   0%  prod/api  running, warning: drifted"},
	}
	for _, tc := range cases {
		got, ok := targetProgress("prod", tc.t)
		require.True(t, ok)
		require.Equal(t, tc.want, got)
	}
	_, ok := targetProgress("prod", workflows.TargetStatus{Name: "web", State: workflows.StatePending})
	require.False(t, ok, "a target that has not started has no bar")
}

func TestPrintProgress_PrintsATargetOnlyWhenItMoves(t *testing.T) {
	t.Parallel()
	st := func(weight int) workflows.ReleaseStatus {
		return workflows.ReleaseStatus{Stages: []workflows.StageStatus{{Name: "prod", Targets: []workflows.TargetStatus{
			{Name: "web", State: workflows.StateRunning, Step: 1, Steps: 2, Weight: weight},
			{Name: "api", State: workflows.StatePending},
		}}}}
	}
	var out bytes.Buffer
	shown := map[string]string{}
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	printProgress(&out, st(10), shown, now)
	printProgress(&out, st(10), shown, now)
	printProgress(&out, st(50), shown, now)
	require.Equal(t, []string{
		"10:00:00  [##------------------]  10%  prod/web  running, canary step 1 of 2, weight 10%",
		"10:00:00  [##########----------]  50%  prod/web  running, canary step 1 of 2, weight 50%",
	}, strings.Split(strings.TrimSpace(out.String()), "\n"))
}

func TestStartDevices_WritesAnInventoryTheHardwareTargetReadsAndAppliesFaults(t *testing.T) {
	t.Parallel()
	inv := filepath.Join(t.TempDir(), "lab", "devices.json")
	var out bytes.Buffer

	fleet, err := startDevices(&out, devicesim.Options{Count: 3, Version: "1.0.0", IDPrefix: "ctl"}, inv, []string{"ctl-02"}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = fleet.Close() })

	devices, err := hardware.LoadInventory(t.Context(), inv, nil)
	require.NoError(t, err)
	require.Len(t, devices, 3)
	require.Equal(t, "ctl-01", devices[0].ID)
	require.Contains(t, out.String(), "3 simulated devices, inventory in "+inv)
	require.Contains(t, out.String(), "ctl-02  http://"+devices[1].Address+"  firmware 1.0.0")

	// The fault asked for: ctl-02 refuses to be flashed, ctl-01 takes it.
	for id, want := range map[string]int{"ctl-01": http.StatusOK, "ctl-02": http.StatusServiceUnavailable} {
		req, err := http.NewRequest(http.MethodPut, "http://"+fleet.Device(id).Address()+"/firmware", strings.NewReader("2.0.0"))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, want, resp.StatusCode, id)
	}
	require.Equal(t, "1.0.0", fleet.Version("ctl-02"))
}

func TestStartDevices_UnknownFaultyDeviceIsAnErrorAndStartsNothing(t *testing.T) {
	t.Parallel()
	inv := filepath.Join(t.TempDir(), "devices.json")
	_, err := startDevices(&bytes.Buffer{}, devicesim.Options{Count: 2}, inv, nil, []string{"device-07"})
	require.EqualError(t, err, "--break device-07: no such device (the devices are device-01, device-02)")
	_, statErr := os.Stat(inv)
	require.ErrorIs(t, statErr, os.ErrNotExist, "no inventory for devices that are not running")
}
