package activities

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/integrations/command"
	"github.com/trainyard/trainyard/internal/devicesim"
	"github.com/trainyard/trainyard/runbooks"
)

// The scripts a lab's runbook would give: curl against the simulated devices.
const (
	flashScript = `curl -fsS -X PUT --data "$TRAINYARD_VERSION" "http://$DEVICE_ADDRESS/firmware"`
	probeScript = `curl -fsS "http://$TRAINYARD_DEVICE_ADDRESS/health" && test "$(curl -fsS "http://$DEVICE_ADDRESS/version")" = "$TRAINYARD_VERSION"`
)

// lab starts n simulated devices at 1.2.2 and activities whose site "lab" holds their
// inventory, as inventory.json in the site's folder.
func lab(t *testing.T, n int) (*Activities, *devicesim.Fleet) {
	t.Helper()
	fleet, err := devicesim.StartWith(devicesim.Options{Count: n, Version: "1.2.2"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = fleet.Close() })
	work := t.TempDir()
	require.NoError(t, fleet.WriteInventory(filepath.Join(work, "lab", "inventory.json")))
	return &Activities{Runner: command.Shell{}, WorkDir: work, Deploy: DeployClients{HardwareParallel: 2}}, fleet
}

func hardwareRequest(ratio float64) TargetRequest {
	req := targetRequest()
	req.Target = runbooks.Target{Name: "controllers", Kind: runbooks.KindHardware, Site: "lab", Timeout: runbooks.Duration(30 * time.Second),
		Hardware: &runbooks.HardwareTarget{
			Inventory: "inventory.json", Flash: flashScript, Probe: probeScript, MaxFailureRatio: ratio,
			Waves: []runbooks.Wave{{Count: 1}, {Percent: 50}, {Rest: true}},
		}}
	return req
}

func versions(fleet *devicesim.Fleet) []string {
	var out []string
	for _, d := range fleet.Devices() {
		out = append(out, fleet.Version(d.ID))
	}
	return out
}

func TestHardware_WavesFlashTheFleetOneStepAtATime(t *testing.T) {
	t.Parallel()
	acts, fleet := lab(t, 4)
	req := hardwareRequest(0)

	wantVersions := [][]string{
		{"1.2.3", "1.2.2", "1.2.2", "1.2.2"},
		{"1.2.3", "1.2.3", "1.2.3", "1.2.2"},
		{"1.2.3", "1.2.3", "1.2.3", "1.2.3"},
	}
	for wave, want := range wantVersions {
		req.Wave = wave
		res := run(t, acts, acts.DeployTarget, req)
		require.Equal(t, want, versions(fleet), "after wave %d", wave+1)
		require.Equal(t, 3, res.Devices.Waves)
		require.Equal(t, 4, res.Devices.Total)
		req.Undo = res.Undo
	}
	require.Len(t, req.Undo.Hardware.Devices, 4)
	for _, d := range fleet.Devices() {
		require.Equal(t, 1, fleet.Device(d.ID).Flashes(), "%s flashed once", d.ID)
	}
}

func TestHardware_AWaveOverItsFailureRatioHaltsAndKeepsTheDevicesToUndo(t *testing.T) {
	t.Parallel()
	acts, fleet := lab(t, 4)
	fleet.BreakOnFlash("device-03")
	req := hardwareRequest(0.25)
	req.Undo = run(t, acts, acts.DeployTarget, req).Undo
	req.Wave = 1

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.DeployTarget, req)

	appErr := requireApplicationError(t, err)
	require.Equal(t, ErrTypeTargetFailed, appErr.Type())
	require.Equal(t, "deploy controllers: hardware rollout halted at wave 2 of 3: 1 of 2 devices failed (device-03), more than the 0.25 allowed", appErr.Message())
	var fail TargetFailure
	require.NoError(t, appErr.Details(&fail))
	require.Equal(t, []FlashedDevice{
		{ID: "device-01", Address: fleet.Devices()[0].Address, OK: true},
		{ID: "device-02", Address: fleet.Devices()[1].Address, OK: true},
		{ID: "device-03", Address: fleet.Devices()[2].Address, OK: false},
	}, fail.Undo.Hardware.Devices)
	require.Equal(t, &DeviceProgress{Done: 3, Failed: 1, Total: 4, Wave: 1, Waves: 3}, fail.Devices)
	require.Contains(t, fail.Output, "device-03 failed: probe exited with status 22")
	require.Equal(t, "1.2.2", fleet.Version("device-04"), "the last wave never starts")
}

func TestHardware_RetryResumesFromTheHeartbeatWithoutReflashing(t *testing.T) {
	t.Parallel()
	acts, fleet := lab(t, 3)
	req := hardwareRequest(0)
	req.Wave = 2
	env := newActivityEnv(t, acts)
	// A site worker lost mid-wave had finished device-02 and heartbeated it.
	env.SetHeartbeatDetails(hardwareBeat{Done: map[string]bool{"device-02": true}, Finished: 1, Total: 3})

	val, err := env.ExecuteActivity(acts.DeployTarget, req)

	require.NoError(t, err)
	var res TargetResult
	require.NoError(t, val.Get(&res))
	require.Equal(t, 0, fleet.Device("device-02").Flashes(), "not flashed twice")
	require.Equal(t, 1, fleet.Device("device-01").Flashes())
	require.Len(t, res.Undo.Hardware.Devices, 3, "the earlier attempt's device is still the release's to undo")
	require.Contains(t, res.Output, "device-02 ok (earlier attempt)")
}

func TestHardware_CanaryWeightFlashesThatShareOfTheFleet(t *testing.T) {
	t.Parallel()
	acts, fleet := lab(t, 4)
	req := hardwareRequest(0)
	req.Strategy, req.Weight = runbooks.StrategyCanary, 25
	req.Undo = run(t, acts, acts.DeployTarget, req).Undo
	require.Equal(t, []string{"1.2.3", "1.2.2", "1.2.2", "1.2.2"}, versions(fleet))

	req.Weight = 60
	res := run(t, acts, acts.ShiftTraffic, req)

	require.Equal(t, []string{"1.2.3", "1.2.3", "1.2.3", "1.2.2"}, versions(fleet), "60% of 4 is 3 devices")
	require.Equal(t, 3, res.Devices.Done)
}

func TestHardware_RollbackFlashesThePreviousVersionBackOntoTheDevicesTouched(t *testing.T) {
	t.Parallel()
	acts, fleet := lab(t, 3)
	req := hardwareRequest(0)
	req.Undo = run(t, acts, acts.DeployTarget, req).Undo
	require.Equal(t, []string{"1.2.3", "1.2.2", "1.2.2"}, versions(fleet))

	res := run(t, acts, acts.RollbackTarget, req)

	require.Equal(t, []string{"1.2.2", "1.2.2", "1.2.2"}, versions(fleet))
	require.Equal(t, 0, fleet.Device("device-02").Flashes(), "only the devices the release flashed")
	require.Contains(t, res.Output, "1.2.2 flashed back onto 1 devices")
}

func TestHardware_RollbackOfAFirstReleaseHasNoFirmwareToGoBackTo(t *testing.T) {
	t.Parallel()
	acts, _ := lab(t, 1)
	req := hardwareRequest(0)
	req.Undo = &Undo{Hardware: &HardwareUndo{Devices: []FlashedDevice{{ID: "device-01", Address: "127.0.0.1:1", OK: true}}}}
	req.PreviousVersion = ""

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.RollbackTarget, req)

	require.Contains(t, requireApplicationError(t, err).Message(), "no previous firmware to flash back onto 1 devices")
}

func TestHardware_MissingInventoryFailsNamingIt(t *testing.T) {
	t.Parallel()
	acts, _ := lab(t, 1)
	req := hardwareRequest(0)
	req.Target.Hardware.Inventory = "missing.json"

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.DeployTarget, req)

	appErr := requireApplicationError(t, err)
	require.True(t, appErr.NonRetryable())
	require.Contains(t, appErr.Message(), filepath.Join("lab", "missing.json"))
}
