package hardware

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/trainyard/trainyard/integrations/command"
	"github.com/trainyard/trainyard/internal/devicesim"
	"github.com/trainyard/trainyard/runbooks"
)

// The scripts a runbook would give for the simulated devices: flash really changes the
// device; probe checks it is healthy and runs the version asked for. --noproxy keeps a
// proxy in the environment away from loopback.
const (
	flashScript = `curl -fsS --noproxy '*' -X PUT --data "$TRAINYARD_VERSION" "http://$DEVICE_ADDRESS/firmware"`
	probeScript = `curl -fsS --noproxy '*' "http://$DEVICE_ADDRESS/health" &&
test "$(curl -fsS --noproxy '*' "http://$DEVICE_ADDRESS/version")" = "$TRAINYARD_VERSION"`
)

// lab starts n simulated devices and loads them the way a site worker does: through an
// inventory file.
func lab(t *testing.T, n int) (*devicesim.Fleet, []Device) {
	t.Helper()
	_, err := exec.LookPath("curl")
	require.NoError(t, err, "the hardware rollout tests flash simulated devices with curl; install it (apt-get install curl)")
	sim, err := devicesim.Start(n)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sim.Close()) })
	path := filepath.Join(t.TempDir(), "inventory.json")
	require.NoError(t, sim.WriteInventory(path))
	devices, err := LoadInventory(context.Background(), path, nil)
	require.NoError(t, err)
	require.Len(t, devices, n)
	return sim, devices
}

func shellFleet(version string, ratio float64) *Fleet {
	return &Fleet{
		Runner: command.Shell{}, Flash: flashScript, Probe: probeScript,
		Env: []string{"TRAINYARD_VERSION=" + version}, Parallel: 2, Timeout: 30 * time.Second,
		MaxFailureRatio: ratio,
	}
}

func plan(t *testing.T, devices []Device, waves ...runbooks.Wave) [][]Device {
	t.Helper()
	p, err := PlanWaves(devices, waves)
	require.NoError(t, err)
	return p
}

func TestRun_FlashesAndProbesEveryWave(t *testing.T) {
	t.Parallel()
	sim, devices := lab(t, 5)
	waves := plan(t, devices, runbooks.Wave{Count: 1}, runbooks.Wave{Percent: 50}, runbooks.Wave{Rest: true})
	var progress []Progress

	rep, err := shellFleet("2.0.0", 0).Run(context.Background(), waves, func(p Progress) { progress = append(progress, p) })

	require.NoError(t, err)
	require.Len(t, rep.Waves, 3)
	for _, d := range devices {
		require.Equal(t, "2.0.0", sim.Version(d.ID), d.ID)
		require.Equal(t, 1, sim.Device(d.ID).Flashes(), d.ID)
	}
	for _, w := range rep.Waves {
		for _, d := range w.Devices {
			require.True(t, d.OK, "%s: %s", d.ID, d.Error)
			require.Contains(t, d.Output, "2.0.0", "the device's answer is kept")
		}
	}
	require.Len(t, progress, 5)
	for i, p := range progress {
		require.Equal(t, i+1, p.Finished)
		require.Equal(t, 5, p.Total)
		require.Equal(t, 3, p.Waves)
	}
	require.Equal(t, "device-01", progress[0].Device.ID, "the first wave is the lowest id")
}

func TestRun_FailureRatioDecidesWhetherTheRolloutGoesOn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		breakFlash []string // unhealthy after flashing: the probe fails
		refuse     []string // refuse the flash: the flash fails
		ratio      float64
		haltWave   int // -1: no halt
		failed     []string
	}{
		{name: "a failure in wave 2 over the ratio halts before wave 3", breakFlash: []string{"device-03"}, ratio: 0.25, haltWave: 1, failed: []string{"device-03"}},
		{name: "a refused flash counts as a failure", refuse: []string{"device-02"}, ratio: 0, haltWave: 1, failed: []string{"device-02"}},
		{name: "failures within the ratio go on", breakFlash: []string{"device-03"}, ratio: 0.5, haltWave: -1, failed: []string{"device-03"}},
		{name: "a failing first device halts at once", refuse: []string{"device-01"}, ratio: 0.5, haltWave: 0, failed: []string{"device-01"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sim, devices := lab(t, 6)
			for _, id := range tt.breakFlash {
				sim.BreakOnFlash(id)
			}
			for _, id := range tt.refuse {
				sim.RefuseFlash(id)
			}
			// Waves: device-01 | device-02, device-03 | device-04…06.
			waves := plan(t, devices, runbooks.Wave{Count: 1}, runbooks.Wave{Count: 2}, runbooks.Wave{Rest: true})

			rep, err := shellFleet("2.0.0", tt.ratio).Run(context.Background(), waves, nil)

			var failed []string
			for _, w := range rep.Waves {
				for _, d := range w.Devices {
					if !d.OK {
						failed = append(failed, d.ID)
						require.NotEmpty(t, d.Error)
					}
				}
			}
			require.Equal(t, tt.failed, failed)
			if tt.haltWave < 0 {
				require.NoError(t, err)
				require.Len(t, rep.Waves, 3)
				require.Equal(t, "2.0.0", sim.Version("device-06"))
				return
			}
			var halt *HaltError
			require.ErrorAs(t, err, &halt)
			require.Equal(t, tt.haltWave, halt.Wave)
			require.Equal(t, tt.failed, halt.Devices)
			require.Equal(t, len(waves[tt.haltWave]), halt.Total)
			require.Len(t, rep.Waves, tt.haltWave+1)
			for _, later := range waves[tt.haltWave+1:] {
				for _, d := range later {
					require.Zero(t, sim.Device(d.ID).Flashes(), "%s is in a later wave and must not be touched", d.ID)
					require.Equal(t, devicesim.DefaultVersion, sim.Version(d.ID))
				}
			}
		})
	}
}

func TestRun_ExplainsWhyADeviceFailed(t *testing.T) {
	t.Parallel()
	sim, devices := lab(t, 3)
	sim.BreakOnFlash("device-02")
	sim.RefuseFlash("device-03")

	rep, err := shellFleet("2.0.0", 1).Run(context.Background(), [][]Device{devices}, nil)

	require.NoError(t, err, "a ratio of 1 never halts")
	got := map[string]DeviceResult{}
	for _, d := range rep.Waves[0].Devices {
		got[d.ID] = d
	}
	require.True(t, got["device-01"].OK)
	require.Contains(t, got["device-02"].Error, "probe exited with status 22", "curl -f exits 22 on an HTTP error")
	require.Contains(t, got["device-02"].Error, "503")
	require.Contains(t, got["device-03"].Error, "flash exited with status 22")
	require.Equal(t, devicesim.DefaultVersion, sim.Version("device-03"))
}

func TestResume_NeverReflashesADeviceAnEarlierAttemptDid(t *testing.T) {
	t.Parallel()
	sim, devices := lab(t, 4)
	waves := plan(t, devices, runbooks.Wave{Count: 1}, runbooks.Wave{Rest: true})
	f := shellFleet("2.0.0", 0)
	f.Parallel = 1

	// The first attempt dies after two devices: what its heartbeats recorded is all a retry has.
	ctx, cancel := context.WithCancel(context.Background())
	done := map[string]bool{}
	_, err := f.Run(ctx, waves, func(p Progress) {
		done[p.Device.ID] = p.Device.OK
		if len(done) == 2 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, map[string]bool{"device-01": true, "device-02": true}, done)
	require.Zero(t, sim.Device("device-03").Flashes())

	rep, err := f.Resume(context.Background(), waves, done, nil)

	require.NoError(t, err)
	for _, d := range devices {
		require.Equal(t, 1, sim.Device(d.ID).Flashes(), "%s flashed once over both attempts", d.ID)
		require.Equal(t, "2.0.0", sim.Version(d.ID))
	}
	require.True(t, rep.Waves[0].Devices[0].Skipped)
	require.True(t, rep.Waves[1].Devices[0].Skipped, "device-02")
	require.False(t, rep.Waves[1].Devices[1].Skipped, "device-03")
}

func TestResume_AnEarlierFailureStillCountsAgainstItsWave(t *testing.T) {
	t.Parallel()
	sim, devices := lab(t, 4)
	waves := plan(t, devices, runbooks.Wave{Count: 2}, runbooks.Wave{Rest: true})

	_, err := shellFleet("2.0.0", 0).Resume(context.Background(), waves, map[string]bool{"device-02": false}, nil)

	var halt *HaltError
	require.ErrorAs(t, err, &halt)
	require.Equal(t, HaltError{Wave: 0, Failed: 1, Total: 2, Devices: []string{"device-02"}}, *halt)
	require.Zero(t, sim.Device("device-02").Flashes(), "not flashed again")
	require.Equal(t, 1, sim.Device("device-01").Flashes())
	require.Zero(t, sim.Device("device-03").Flashes())
}

func TestRunRollback_FlashesThePreviousVersionBackOnTheDevicesTouched(t *testing.T) {
	t.Parallel()
	sim, devices := lab(t, 5)
	sim.BreakOnFlash("device-02")
	waves := plan(t, devices, runbooks.Wave{Count: 1}, runbooks.Wave{Count: 2}, runbooks.Wave{Rest: true})
	rep, err := shellFleet("2.0.0", 0).Run(context.Background(), waves, nil)
	var halt *HaltError
	require.ErrorAs(t, err, &halt)
	require.Equal(t, []string{"device-01", "device-02", "device-03"}, ids(rep.Devices()))

	back, err := shellFleet(devicesim.DefaultVersion, 0).RunRollback(context.Background(), rep.Devices(), nil, nil)

	require.NoError(t, err)
	require.Len(t, back.Waves[0].Devices, 3)
	for _, id := range []string{"device-01", "device-02", "device-03"} {
		require.Equal(t, devicesim.DefaultVersion, sim.Version(id))
		require.Equal(t, 2, sim.Device(id).Flashes())
		require.True(t, sim.Device(id).Healthy(), "rolling back heals %s", id)
	}
	require.Zero(t, sim.Device("device-04").Flashes())
}

func TestRunRollback_TriesEveryDeviceAndNamesThoseItCouldNotPutBack(t *testing.T) {
	t.Parallel()
	sim, devices := lab(t, 3)
	sim.RefuseFlash("device-01")

	rep, err := shellFleet("0.9.0", 0).RunRollback(context.Background(), devices, map[string]bool{"device-03": true, "device-02": false}, nil)

	var rb *RollbackError
	require.ErrorAs(t, err, &rb)
	require.Equal(t, []string{"device-01"}, rb.Failed)
	require.Equal(t, 3, rb.Total)
	require.Equal(t, "0.9.0", sim.Version("device-02"), "a device that failed before is tried again")
	require.Zero(t, sim.Device("device-03").Flashes(), "a device already put back is skipped")
	require.Len(t, rep.Waves[0].Devices, 3)
}

func TestRun_RunsUpToParallelDevicesAtOnce(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	inFlight, most := 0, 0
	both := make(chan struct{})
	runner := &command.Fake{RunFunc: func(ctx context.Context, spec command.Spec) (command.Result, error) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		if inFlight == 2 {
			select {
			case <-both:
			default:
				close(both)
			}
		}
		mu.Unlock()
		defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		// Each flash waits until two run together: with one at a time this never ends.
		select {
		case <-both:
			return command.Result{}, nil
		case <-ctx.Done():
			return command.Result{}, ctx.Err()
		}
	}}
	f := &Fleet{Runner: runner, Flash: "flash", Parallel: 2}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	rep, err := f.Run(ctx, [][]Device{fleet(4)}, nil)

	require.NoError(t, err, "two devices never ran at once")
	require.Len(t, rep.Waves[0].Devices, 4)
	require.Equal(t, 2, most)
}

func TestRun_ScriptsGetTheDeviceAndTheEnv(t *testing.T) {
	t.Parallel()
	runner := &command.Fake{}
	f := &Fleet{Runner: runner, Flash: "flash", Probe: "probe", Env: []string{"TRAINYARD_VERSION=2.0.0", "DEVICE_ID=spoofed"}, Timeout: time.Minute}

	_, err := f.Run(context.Background(), [][]Device{{{ID: "cam-01", Address: "10.0.0.1:22"}}}, nil)

	require.NoError(t, err)
	calls := runner.Calls()
	require.Len(t, calls, 2)
	require.Equal(t, []string{"flash", "probe"}, []string{calls[0].Script, calls[1].Script})
	for _, c := range calls {
		require.Equal(t, time.Minute, c.Timeout)
		require.Contains(t, c.Env, "TRAINYARD_VERSION=2.0.0")
		require.Equal(t, "DEVICE_ID=cam-01", c.Env[len(c.Env)-2], "the device's own id comes last, so it wins")
		require.Equal(t, "DEVICE_ADDRESS=10.0.0.1:22", c.Env[len(c.Env)-1])
	}
}

func TestRun_ATimedOutProbeFailsTheDevice(t *testing.T) {
	t.Parallel()
	f := &Fleet{Runner: command.Shell{}, Flash: "echo flashed", Probe: "echo probing; sleep 30", Timeout: 200 * time.Millisecond, MaxFailureRatio: 1}

	rep, err := f.Run(context.Background(), [][]Device{{{ID: "cam-01", Address: "x"}}}, nil)

	require.NoError(t, err)
	d := rep.Waves[0].Devices[0]
	require.False(t, d.OK)
	require.Equal(t, "probe timed out after 200ms: probing", d.Error)
	require.Contains(t, d.Output, "flashed")
}

func TestFleet_RefusesABadConfiguration(t *testing.T) {
	t.Parallel()
	waves := [][]Device{fleet(2)}
	tests := []struct {
		name  string
		fleet Fleet
		waves [][]Device
		want  string
	}{
		{name: "no runner", fleet: Fleet{Flash: "x"}, waves: waves, want: "no command runner"},
		{name: "no flash", fleet: Fleet{Runner: &command.Fake{}, Flash: " "}, waves: waves, want: "no flash command"},
		{name: "ratio over one", fleet: Fleet{Runner: &command.Fake{}, Flash: "x", MaxFailureRatio: 1.5}, waves: waves, want: "between 0 and 1"},
		{name: "device twice", fleet: Fleet{Runner: &command.Fake{}, Flash: "x"}, waves: [][]Device{fleet(2), fleet(1)}, want: `"dev-01" is planned twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.fleet.Run(context.Background(), tt.waves, nil)
			require.ErrorContains(t, err, tt.want)
			var halt *HaltError
			require.False(t, errors.As(err, &halt))
		})
	}
}

func ids(ds []Device) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}
