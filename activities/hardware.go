package activities

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"go.temporal.io/sdk/activity"

	"github.com/trainyard/trainyard/integrations/command"
	"github.com/trainyard/trainyard/integrations/hardware"
)

// HardwareUndo lists the devices a release flashed, passed or failed: the ones a rollback
// flashes back, and the ones a later wave or canary step leaves alone.
type HardwareUndo struct {
	Devices []FlashedDevice `json:"devices"`
}

// FlashedDevice is one device a release flashed.
type FlashedDevice struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	OK      bool   `json:"ok"`
}

// hardwareBeat is a hardware activity's heartbeat: the devices this call has finished, so a
// retry after a lost site worker skips them (hardware.Fleet.Resume) instead of flashing them
// twice.
type hardwareBeat struct {
	Done     map[string]bool `json:"done"`
	Finished int             `json:"finished"`
	Total    int             `json:"total"`
}

// defaultHardwareParallel is how many devices of a wave are flashed at once by default.
const defaultHardwareParallel = 4

// deployHardware flashes one step of a fleet: in a rolling stage the runbook's wave req.Wave
// (and any device of an earlier wave not flashed yet), in a canary stage the first
// req.Weight percent of the fleet in device id order. Devices flashed by earlier steps
// (req.Undo) are left alone. It halts, failing the target, when more of the step's devices
// fail than the target's maxFailureRatio allows.
func (a *Activities) deployHardware(ctx context.Context, req TargetRequest) (TargetResult, error) {
	h := req.Target.Hardware
	if h == nil {
		return TargetResult{}, badTarget(req, "hardware")
	}
	if a.Runner == nil {
		return TargetResult{}, misconfigured(req, "a site worker", "nothing: run `trainyard worker --site "+req.Target.Site+"` to serve it")
	}
	devices, err := hardware.LoadInventory(ctx, a.sitePath(req, h.Inventory), a.HTTP)
	if err != nil {
		return TargetResult{}, finalOrRetry(ctx, err, false, "deploy "+req.Target.Name, TargetFailure{Undo: req.Undo})
	}
	slices.SortFunc(devices, func(x, y hardware.Device) int { return strings.Compare(x.ID, y.ID) })

	progress := DeviceProgress{Total: len(devices), Wave: req.Wave}
	var want []hardware.Device
	if req.Weight > 0 {
		want = devices[:min(len(devices), max(1, (len(devices)*req.Weight+99)/100))]
	} else {
		plan, err := hardware.PlanWaves(devices, h.Waves)
		if err != nil {
			return TargetResult{}, finalOrRetry(ctx, err, false, "deploy "+req.Target.Name, TargetFailure{Undo: req.Undo})
		}
		progress.Waves = len(plan)
		for i := 0; i <= req.Wave && i < len(plan); i++ {
			want = append(want, plan[i]...)
		}
	}
	var flashed []FlashedDevice
	if req.Undo != nil && req.Undo.Hardware != nil {
		flashed = slices.Clone(req.Undo.Hardware.Devices)
	}
	var todo []hardware.Device
	for _, d := range want {
		if !slices.ContainsFunc(flashed, func(f FlashedDevice) bool { return f.ID == d.ID }) {
			todo = append(todo, d)
		}
	}

	beat := earlierBeat(ctx)
	extra := []string{"TRAINYARD_WAVE=" + strconv.Itoa(req.Wave+1)}
	rep, err := a.runFleet(ctx, req, OpDeploy, req.Version, extra, beat, func(f *hardware.Fleet, done map[string]bool, progress func(hardware.Progress)) (hardware.Report, error) {
		return f.Resume(ctx, [][]hardware.Device{todo}, done, progress)
	})
	for _, w := range rep.Waves {
		for _, d := range w.Devices {
			flashed = append(flashed, FlashedDevice{ID: d.ID, Address: d.Address, OK: d.OK})
		}
	}
	progress.Done = len(flashed)
	for _, f := range flashed {
		if !f.OK {
			progress.Failed++
		}
	}
	undo := &Undo{Hardware: &HardwareUndo{Devices: flashed}}
	res := TargetResult{Attempt: activity.GetInfo(ctx).Attempt, Undo: undo, Devices: &progress, Weight: req.Weight,
		Output: fleetSummary(rep, fmt.Sprintf("%d of %d devices flashed", progress.Done, progress.Total))}
	if err != nil {
		// The fleet ran one step as its one wave: say which of the runbook's it was.
		var halt *hardware.HaltError
		if errors.As(err, &halt) {
			where := fmt.Sprintf("wave %d of %d", req.Wave+1, progress.Waves)
			if req.Weight > 0 {
				where = fmt.Sprintf("canary weight %d%%", req.Weight)
			}
			err = fmt.Errorf("hardware rollout halted at %s: %d of %d devices failed (%s), more than the %g allowed",
				where, halt.Failed, halt.Total, listSome(halt.Devices, 10), halt.MaxFailureRatio)
		}
		// A halted wave, or a fleet that cannot run (no flash command): neither changes by
		// itself. An interrupted one is retried by finalOrRetry, resuming from the heartbeat.
		return res, finalOrRetry(ctx, err, false, "deploy "+req.Target.Name,
			TargetFailure{Undo: undo, Devices: &progress, Output: res.Output})
	}
	return res, nil
}

// rollbackHardware flashes the previous version back onto every device the release flashed,
// whatever the others do; the probe checks each.
func (a *Activities) rollbackHardware(ctx context.Context, req TargetRequest) (TargetResult, error) {
	if req.Undo == nil || req.Undo.Hardware == nil || len(req.Undo.Hardware.Devices) == 0 {
		return TargetResult{Output: "nothing to roll back: no device was flashed"}, nil
	}
	if req.Target.Hardware == nil {
		return TargetResult{}, badTarget(req, "hardware")
	}
	if a.Runner == nil {
		return TargetResult{}, misconfigured(req, "a site worker", "nothing: run `trainyard worker --site "+req.Target.Site+"` to serve it")
	}
	if req.PreviousVersion == "" {
		return TargetResult{}, finalError(fmt.Sprintf("roll back %s: this is the runbook's first release, so there is no previous firmware to flash back onto %d devices",
			req.Target.Name, len(req.Undo.Hardware.Devices)), TargetFailure{Undo: req.Undo})
	}
	devices := make([]hardware.Device, len(req.Undo.Hardware.Devices))
	for i, d := range req.Undo.Hardware.Devices {
		devices[i] = hardware.Device{ID: d.ID, Address: d.Address}
	}
	beat := earlierBeat(ctx)
	rep, err := a.runFleet(ctx, req, OpRollback, req.PreviousVersion, nil, beat, func(f *hardware.Fleet, done map[string]bool, progress func(hardware.Progress)) (hardware.Report, error) {
		return f.RunRollback(ctx, devices, done, progress)
	})
	res := TargetResult{Attempt: activity.GetInfo(ctx).Attempt, Undo: req.Undo,
		Output: fleetSummary(rep, fmt.Sprintf("%s flashed back onto %d devices", req.PreviousVersion, len(devices)))}
	if err != nil {
		// Devices that would not take the old firmware need a person; an interrupted
		// rollback is retried, resuming from the heartbeat.
		return res, finalOrRetry(ctx, err, false, "roll back "+req.Target.Name, TargetFailure{Undo: req.Undo, Output: res.Output})
	}
	return res, nil
}

// runFleet runs one fleet operation, heartbeating the devices it has finished. run gets the
// devices an earlier attempt finished (from beat) and the progress callback to pass on.
func (a *Activities) runFleet(ctx context.Context, req TargetRequest, op, version string, extraEnv []string, beat hardwareBeat,
	run func(f *hardware.Fleet, done map[string]bool, progress func(hardware.Progress)) (hardware.Report, error)) (hardware.Report, error) {
	h := req.Target.Hardware
	parallel := a.Deploy.HardwareParallel
	if parallel <= 0 {
		parallel = defaultHardwareParallel
	}
	f := &hardware.Fleet{
		Runner:          deviceRunner{Runner: a.Runner, dir: filepath.Join(a.WorkDir, req.Target.Site)},
		Flash:           h.Flash,
		Probe:           h.Probe,
		Env:             append(commandEnv(req, op, version, activity.GetInfo(ctx).Attempt), extraEnv...),
		Parallel:        parallel,
		Timeout:         req.Target.TimeoutOrDefault(),
		MaxFailureRatio: h.MaxFailureRatio,
	}
	// The fleet reads earlier's map while it runs and reports each device as it finishes
	// into seen; the heartbeat sends a copy of seen.
	earlier := maps.Clone(beat.Done)
	var mu sync.Mutex
	seen := maps.Clone(beat.Done)
	finished, total := beat.Finished, beat.Total
	stop := a.heartbeat(ctx, func() any {
		mu.Lock()
		defer mu.Unlock()
		return hardwareBeat{Done: maps.Clone(seen), Finished: finished, Total: total}
	})
	defer stop()
	a.logger().Info("flashing devices", "release", req.ReleaseID, "stage", req.Stage, "target", req.Target.Name, "operation", op, "version", version)
	return run(f, earlier, func(p hardware.Progress) {
		mu.Lock()
		defer mu.Unlock()
		seen[p.Device.ID] = p.Device.OK
		finished, total = p.Finished, p.Total
	})
}

// earlierBeat is what an earlier attempt of this activity reported.
func earlierBeat(ctx context.Context) hardwareBeat {
	var beat hardwareBeat
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &beat)
	}
	if beat.Done == nil {
		beat.Done = map[string]bool{}
	}
	return beat
}

// deviceRunner runs flash and probe scripts in the site's folder, with the device's id and
// address also as TRAINYARD_DEVICE and TRAINYARD_DEVICE_ADDRESS.
type deviceRunner struct {
	command.Runner
	dir string
}

func (r deviceRunner) Run(ctx context.Context, spec command.Spec, progress func(string)) (command.Result, error) {
	if spec.Dir == "" {
		spec.Dir = r.dir
	}
	env := slices.Clone(spec.Env)
	for _, kv := range spec.Env {
		if v, ok := strings.CutPrefix(kv, "DEVICE_ID="); ok {
			env = append(env, "TRAINYARD_DEVICE="+v)
		}
		if v, ok := strings.CutPrefix(kv, "DEVICE_ADDRESS="); ok {
			env = append(env, "TRAINYARD_DEVICE_ADDRESS="+v)
		}
	}
	spec.Env = env
	return r.Runner.Run(ctx, spec, progress)
}

// sitePath resolves a relative path of a site target against the site's folder, where its
// commands run.
func (a *Activities) sitePath(req TargetRequest, p string) string {
	if strings.Contains(p, "://") || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(a.WorkDir, req.Target.Site, p)
}

// fleetSummary is one line per device of a report, under head.
func fleetSummary(rep hardware.Report, head string) string {
	var b strings.Builder
	b.WriteString(head)
	for _, w := range rep.Waves {
		for _, d := range w.Devices {
			switch {
			case d.OK && d.Skipped:
				fmt.Fprintf(&b, "\n%s ok (earlier attempt)", d.ID)
			case d.OK:
				fmt.Fprintf(&b, "\n%s ok", d.ID)
			default:
				fmt.Fprintf(&b, "\n%s failed: %s", d.ID, d.Error)
			}
		}
	}
	return b.String()
}
