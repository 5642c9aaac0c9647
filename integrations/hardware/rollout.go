package hardware

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/trainyard/trainyard/integrations/command"
)

// MaxDeviceOutput is how much of a device's flash and probe output a report keeps: the
// last bytes. Reports go into workflow history, once per device.
const MaxDeviceOutput = 4 << 10

// Fleet flashes devices wave by wave with the runbook's scripts.
type Fleet struct {
	Runner command.Runner
	// Flash installs the release on one device; Probe (optional) checks it afterwards.
	// Both are shell scripts run with DEVICE_ID and DEVICE_ADDRESS set, on top of Env.
	Flash, Probe string
	// Env is added to every script's environment (KEY=value): which version to flash
	// (TRAINYARD_VERSION), the release's facts.
	Env []string
	// Parallel is how many devices of a wave are flashed at once; 1 when below 1.
	Parallel int
	// Timeout bounds each script run; none when zero.
	Timeout time.Duration
	// MaxFailureRatio is the share of a wave (0 to 1) that may fail before the rollout
	// halts: 0 halts on the first failed device, 0.25 lets one device in four fail.
	MaxFailureRatio float64
}

// Progress is sent after each device finishes (or is skipped as done): what a heartbeat
// records so a retry can Resume.
type Progress struct {
	// Wave is the index of the device's wave in the waves run; Waves how many there are.
	Wave, Waves int
	Device      DeviceResult
	// Finished counts the devices finished so far, skipped ones included, of Total.
	Finished, Total int
}

// Report is what a rollout did, wave by wave; waves never started are absent.
type Report struct {
	Waves []WaveReport `json:"waves"`
}

// WaveReport is one wave's devices, in the wave's order; a device a cancelled rollout never
// reached is absent.
type WaveReport struct {
	Index   int            `json:"index"`
	Devices []DeviceResult `json:"devices"`
}

// DeviceResult is one device's outcome.
type DeviceResult struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// OK is true when the flash and the probe exited 0.
	OK bool `json:"ok"`
	// Skipped is true when a previous attempt did this device (see Resume); OK is then
	// that attempt's outcome.
	Skipped bool `json:"skipped,omitempty"`
	// Output is the tail of the scripts' combined output.
	Output string `json:"output,omitempty"`
	// Error says why the device failed: which script, its exit status or timeout, and the
	// last line it printed.
	Error string `json:"error,omitempty"`
}

// Devices are the devices the report covers, in the order they were planned: those a
// rollback has to flash back.
func (r Report) Devices() []Device {
	var out []Device
	for _, w := range r.Waves {
		for _, d := range w.Devices {
			out = append(out, Device{ID: d.ID, Address: d.Address})
		}
	}
	return out
}

// Done is every device of the report by id, true for those that passed: the map Resume
// and RunRollback take.
func (r Report) Done() map[string]bool {
	done := map[string]bool{}
	for _, w := range r.Waves {
		for _, d := range w.Devices {
			done[d.ID] = d.OK
		}
	}
	return done
}

// HaltError stops a rollout when more of a wave failed than MaxFailureRatio allows; later
// waves were not touched. Retrying will not help: it needs a person, or a rollback.
type HaltError struct {
	// Wave is the index of the wave that failed.
	Wave            int
	Failed, Total   int
	MaxFailureRatio float64
	// Devices are the ids of the devices that failed.
	Devices []string
}

func (e *HaltError) Error() string {
	return fmt.Sprintf("hardware rollout halted after wave %d: %d of %d devices failed (%s), more than the %g allowed",
		e.Wave+1, e.Failed, e.Total, listIDs(e.Devices), e.MaxFailureRatio)
}

// RollbackError is a rollback that could not put every device back.
type RollbackError struct {
	Failed []string
	Total  int
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("hardware rollback failed on %d of %d devices (%s)", len(e.Failed), e.Total, listIDs(e.Failed))
}

func listIDs(ids []string) string {
	if len(ids) > 10 {
		return strings.Join(ids[:10], ", ") + fmt.Sprintf(" and %d more", len(ids)-10)
	}
	return strings.Join(ids, ", ")
}

// Run flashes and probes waves in order; see Resume.
func (f *Fleet) Run(ctx context.Context, waves [][]Device, progress func(Progress)) (Report, error) {
	return f.Resume(ctx, waves, nil, progress)
}

// Resume runs waves in order, skipping the devices in done: the ids a previous attempt
// finished, true for those that passed (Report.Done, or what its Progress reported). A
// skipped device counts in its wave's failure ratio with its earlier outcome, so a retried
// activity neither re-flashes a device nor forgets a failure. Within a wave up to Parallel
// devices run at once, each its flash and then, when that passed, its probe. After each
// wave, a failed share above MaxFailureRatio stops the rollout with *HaltError.
//
// progress, when not nil, is called after each device, never concurrently. When ctx ends
// no new device starts; the report holds what finished and the error is ctx's.
func (f *Fleet) Resume(ctx context.Context, waves [][]Device, done map[string]bool, progress func(Progress)) (Report, error) {
	if err := f.validate(); err != nil {
		return Report{}, err
	}
	total, err := countDevices(waves)
	if err != nil {
		return Report{}, err
	}
	run := &runState{total: total, waves: len(waves), progress: progress}
	var rep Report
	for i, wave := range waves {
		results, err := f.runWave(ctx, run, i, wave, done)
		rep.Waves = append(rep.Waves, WaveReport{Index: i, Devices: results})
		if err != nil {
			return rep, fmt.Errorf("hardware rollout wave %d of %d: %w", i+1, len(waves), err)
		}
		var failed []string
		for _, r := range results {
			if !r.OK {
				failed = append(failed, r.ID)
			}
		}
		if len(wave) > 0 && float64(len(failed))/float64(len(wave)) > f.MaxFailureRatio {
			return rep, &HaltError{Wave: i, Failed: len(failed), Total: len(wave), MaxFailureRatio: f.MaxFailureRatio, Devices: failed}
		}
	}
	return rep, nil
}

// RunRollback flashes devices back with the same scripts (Env names the version to go
// back to) as one wave, trying every device whatever the others do. Devices done[id] is
// true for (put back by a previous attempt) are skipped; failed ones are tried again. When
// any device fails the error is *RollbackError.
func (f *Fleet) RunRollback(ctx context.Context, devices []Device, done map[string]bool, progress func(Progress)) (Report, error) {
	if err := f.validate(); err != nil {
		return Report{}, err
	}
	if _, err := countDevices([][]Device{devices}); err != nil {
		return Report{}, err
	}
	ok := map[string]bool{}
	for id, passed := range done {
		if passed {
			ok[id] = true
		}
	}
	run := &runState{total: len(devices), waves: 1, progress: progress}
	results, err := f.runWave(ctx, run, 0, devices, ok)
	rep := Report{Waves: []WaveReport{{Index: 0, Devices: results}}}
	if err != nil {
		return rep, fmt.Errorf("hardware rollback: %w", err)
	}
	var failed []string
	for _, r := range results {
		if !r.OK {
			failed = append(failed, r.ID)
		}
	}
	if len(failed) > 0 {
		return rep, &RollbackError{Failed: failed, Total: len(devices)}
	}
	return rep, nil
}

func (f *Fleet) validate() error {
	switch {
	case f.Runner == nil:
		return errors.New("hardware rollout: no command runner is configured")
	case strings.TrimSpace(f.Flash) == "":
		return errors.New("hardware rollout: the target has no flash command")
	case math.IsNaN(f.MaxFailureRatio) || f.MaxFailureRatio < 0 || f.MaxFailureRatio > 1:
		return fmt.Errorf("hardware rollout: maxFailureRatio must be between 0 and 1, not %g", f.MaxFailureRatio)
	}
	return nil
}

func countDevices(waves [][]Device) (int, error) {
	seen := map[string]bool{}
	for i, w := range waves {
		for _, d := range w {
			if d.ID == "" {
				return 0, fmt.Errorf("hardware rollout: a device of wave %d has no id", i+1)
			}
			if seen[d.ID] {
				return 0, fmt.Errorf("hardware rollout: device %q is planned twice", d.ID)
			}
			seen[d.ID] = true
		}
	}
	return len(seen), nil
}

// runState is what the waves of one run share: the progress count and its callback.
type runState struct {
	mu              sync.Mutex
	finished, total int
	waves           int
	progress        func(Progress)
}

func (s *runState) report(wave int, r DeviceResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finished++
	if s.progress != nil {
		s.progress(Progress{Wave: wave, Waves: s.waves, Device: r, Finished: s.finished, Total: s.total})
	}
}

// runWave runs one wave's devices, up to Parallel at once, and returns the results of the
// devices that finished, in the wave's order.
func (f *Fleet) runWave(ctx context.Context, run *runState, index int, wave []Device, done map[string]bool) ([]DeviceResult, error) {
	results := make([]DeviceResult, len(wave))
	finished := make([]bool, len(wave))
	sem := make(chan struct{}, max(1, f.Parallel))
	var wg sync.WaitGroup
	for i, d := range wave {
		if ok, was := done[d.ID]; was {
			results[i], finished[i] = DeviceResult{ID: d.ID, Address: d.Address, OK: ok, Skipped: true}, true
			run.report(index, results[i])
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		// Checked after taking a slot too: a device finishing may have ended ctx.
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r, err := f.device(ctx, d)
			if err != nil {
				return // interrupted: neither passed nor failed
			}
			results[i], finished[i] = r, true
			run.report(index, r)
		}()
	}
	wg.Wait()
	out := make([]DeviceResult, 0, len(wave))
	for i, r := range results {
		if finished[i] {
			out = append(out, r)
		}
	}
	if err := ctx.Err(); err != nil {
		return out, err
	}
	return out, nil
}

// device flashes and probes one device. The error is ctx's when it ended mid-way; the
// device's own failures are in the result.
func (f *Fleet) device(ctx context.Context, d Device) (DeviceResult, error) {
	env := append(slices.Clone(f.Env), "DEVICE_ID="+d.ID, "DEVICE_ADDRESS="+d.Address)
	r := DeviceResult{ID: d.ID, Address: d.Address}
	var out strings.Builder
	for _, step := range []struct{ name, script string }{{"flash", f.Flash}, {"probe", f.Probe}} {
		if strings.TrimSpace(step.script) == "" {
			continue
		}
		res, err := f.Runner.Run(ctx, command.Spec{Script: step.script, Env: env, Timeout: f.Timeout}, nil)
		out.WriteString(res.Output)
		if err != nil && ctx.Err() != nil {
			return r, ctx.Err()
		}
		if err != nil {
			r.Output, r.Error = tail(out.String()), stepError(step.name, err, res.Output, f.Timeout)
			return r, nil
		}
	}
	r.OK, r.Output = true, tail(out.String())
	return r, nil
}

func stepError(step string, err error, output string, timeout time.Duration) string {
	var msg string
	var ee *command.ExitError
	switch {
	case errors.As(err, &ee) && ee.TimedOut:
		msg = fmt.Sprintf("%s timed out after %s", step, timeout)
	case errors.As(err, &ee):
		msg = fmt.Sprintf("%s exited with status %d", step, ee.ExitCode)
	default:
		msg = fmt.Sprintf("%s: %v", step, err)
	}
	if last := command.LastLine(output); last != "" {
		msg += ": " + last
	}
	return msg
}

func tail(s string) string {
	if len(s) <= MaxDeviceOutput {
		return s
	}
	cut := len(s) - MaxDeviceOutput
	for cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut++
	}
	return "[earlier output dropped]\n" + s[cut:]
}
