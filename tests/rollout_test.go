package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/internal/devicesim"
	"github.com/trainyard/trainyard/workflows"
)

// The lab's devices are flashed and probed with curl, as a real lab's scripts would be.
const (
	labFlash = `curl -fsS -X PUT --data "$TRAINYARD_VERSION" "http://$DEVICE_ADDRESS/firmware"`
	labProbe = `curl -fsS "http://$DEVICE_ADDRESS/health" && test "$(curl -fsS "http://$DEVICE_ADDRESS/version")" = "$TRAINYARD_VERSION"`
	// labInventory is where the lab's site worker finds its inventory: relative to the
	// site's folder, <site.workDir>/lab.
	labInventory = "rollout-devices.json"
)

// rolloutRunbook releases to an on-prem site (two command targets, two at a time) and then
// to a hardware lab (three simulated devices: one, then the rest, halting when more than 40%
// of a wave fails). The two stages are two regions; once stages with after: run in parallel
// (the release DAG), the lab stage can name no predecessor and run alongside on-prem.
func rolloutRunbook() string {
	target := func(name string) string {
		return `      - {name: ` + name + `, kind: command, site: e2e, timeout: 1m, heartbeat: 5s, deploy: *deploy, rollback: *rollback}
`
	}
	return scripts() + `name: rollout
stages:
  - name: onprem
    environment: production
    region: dc-east
    strategy: {type: rolling, maxParallel: 2}
    targets:
` + target("onprem-a") + target("onprem-b") + `  - name: lab
    environment: production
    region: plant-7
    targets:
      - name: controllers
        kind: hardware
        site: lab
        timeout: 1m
        heartbeat: 5s
        hardware:
          inventory: ` + labInventory + `
          flash: '` + labFlash + `'
          probe: '` + labProbe + `'
          waves: [{count: 1}, {rest: true}]
          maxFailureRatio: 0.4
`
}

// startLab starts three simulated devices at 1.0.0 and writes their inventory where the lab
// site worker reads it.
func startLab(t *testing.T) *devicesim.Fleet {
	t.Helper()
	fleet, err := devicesim.StartWith(devicesim.Options{Count: 3, Version: "1.0.0", IDPrefix: "ctl"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = fleet.Close() })
	require.NoError(t, fleet.WriteInventory(filepath.Join(sys.siteDir, "lab", labInventory)))
	return fleet
}

func firmware(fleet *devicesim.Fleet) []string {
	var out []string
	for _, d := range fleet.Devices() {
		out = append(out, fleet.Version(d.ID))
	}
	return out
}

func target(st workflows.ReleaseStatus, name string) workflows.TargetStatus {
	for _, s := range st.Stages {
		for _, t := range s.Targets {
			if t.Name == name {
				return t
			}
		}
	}
	return workflows.TargetStatus{}
}

// TestRollout_OnPremAndHardwareLabThroughTwoSiteWorkers releases through two site workers,
// each its own process: the on-prem site runs command targets, the lab flashes simulated
// devices wave by wave. A second release breaks a device in the lab's last wave: the wave
// halts, and the rollback flashes the previous firmware back and undoes the on-prem targets.
func TestRollout_OnPremAndHardwareLabThroughTwoSiteWorkers(t *testing.T) {
	fleet := startLab(t)

	first := startRelease(t, ciToken, "rollout", "1.1.0")
	st := waitFor(t, first.ID, 2*time.Minute, "success", phaseIs(workflows.PhaseSucceeded))
	require.Equal(t, []string{"1.1.0", "1.1.0", "1.1.0"}, firmware(fleet))
	for _, d := range fleet.Devices() {
		require.Equal(t, 1, fleet.Device(d.ID).Flashes(), "%s flashed once", d.ID)
	}
	for _, name := range []string{"onprem-a", "onprem-b"} {
		require.Equal(t, workflows.StateDeployed, target(st, name).State)
		require.Equal(t, []string{"1.1.0"}, readLines(t, filepath.Join(releaseDir(first.ID), name+".version")))
	}
	ctl := target(st, "controllers")
	require.Equal(t, workflows.StateDeployed, ctl.State)
	require.Equal(t, 3, ctl.DevicesDone, "the status shows the fleet's progress")
	require.Equal(t, 3, ctl.DevicesTotal)
	require.Contains(t, ctl.Output, "3 of 3 devices flashed")

	// The next release breaks ctl-03, in the last wave of two: 50% of it fails, over 40%.
	fleet.BreakOnFlash("ctl-03")
	second := startRelease(t, ciToken, "rollout", "1.2.0")
	st = waitFor(t, second.ID, 3*time.Minute, "rolled back", phaseIs(workflows.PhaseRolledBack))
	require.Equal(t, "1.1.0", st.PreviousVersion)
	require.Contains(t, st.Failure, "hardware rollout halted at wave 2 of 2: 1 of 2 devices failed (ctl-03), more than the 0.4 allowed")
	ctl = target(st, "controllers")
	require.Equal(t, workflows.StateRolledBack, ctl.State, "the halted fleet is rolled back too: %s", ctl.Error)
	require.Equal(t, []string{"1.1.0", "1.1.0", "1.1.0"}, firmware(fleet), "every device flashed back to the previous release")
	for _, name := range []string{"onprem-a", "onprem-b"} {
		require.Equal(t, workflows.StateRolledBack, target(st, name).State)
		require.Equal(t, []string{"1.1.0"}, readLines(t, filepath.Join(releaseDir(second.ID), name+".version")))
	}
	ops := readLines(t, filepath.Join(releaseDir(second.ID), "ops.log"))
	require.Len(t, ops, 8, "two deploys and two rollbacks, as op-target pairs: %v", ops)
	require.Equal(t, []string{"rollback", "rollback"}, []string{ops[4], ops[6]}, "the on-prem targets are rolled back after the lab")
	saveHistory(t, first.ID)
	saveHistory(t, second.ID)
}

// TestRollout_HardwareTargetRunsOnlyOnItsSiteWorker checks the routing: the lab's devices
// are flashed by the lab's site worker process, never by the on-prem one.
func TestRollout_HardwareTargetRunsOnlyOnItsSiteWorker(t *testing.T) {
	startLab(t)
	res := startRelease(t, ciToken, "rollout", "1.5.0")
	waitFor(t, res.ID, 2*time.Minute, "success", phaseIs(workflows.PhaseSucceeded))

	lab, err := os.ReadFile(filepath.Join(sys.logDir, "lab.log"))
	require.NoError(t, err)
	site, err := os.ReadFile(filepath.Join(sys.logDir, "site.log"))
	require.NoError(t, err)
	flashing := fmt.Sprintf(`"release":%q`, res.ID)
	require.True(t, strings.Contains(string(lab), "flashing devices") && strings.Contains(string(lab), flashing), "the lab worker flashed the devices")
	require.NotContains(t, string(site), "flashing devices")
}
