package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/trainyard/trainyard/integrations/argocd"
	"github.com/trainyard/trainyard/integrations/command"
	"github.com/trainyard/trainyard/integrations/flags"
	"github.com/trainyard/trainyard/integrations/spinnaker"
	"github.com/trainyard/trainyard/runbooks"
)

// TargetRequest asks a worker to deploy, shift, check or roll back one target. Command and
// hardware targets are served by the site worker of their site, the others by the main worker.
type TargetRequest struct {
	ReleaseID       string          `json:"releaseId"`
	Runbook         string          `json:"runbook"`
	Stage           string          `json:"stage"`
	Environment     string          `json:"environment,omitempty"`
	Target          runbooks.Target `json:"target"`
	Version         string          `json:"version"`
	PreviousVersion string          `json:"previousVersion,omitempty"`
	// Strategy is the stage's strategy type; rolling when empty.
	Strategy string `json:"strategy,omitempty"`
	// Weight is the share of traffic (1 to 100) a canary deploy or ShiftTraffic sets.
	Weight int `json:"weight,omitempty"`
	// Switch makes ShiftTraffic move a blue-green target's traffic to the side it deployed.
	Switch bool `json:"switch,omitempty"`
	// Wave is the hardware wave a rolling deploy runs, 0 first.
	Wave int `json:"wave,omitempty"`
	// RollbackWindow is how long a blue-green stage keeps the old side after switching.
	RollbackWindow runbooks.Duration `json:"rollbackWindow,omitempty"`
	// Artifacts are the artifact references (repo@sha256:...) of the release's components:
	// an argocd target's image is set to the one of the same image.
	Artifacts []string `json:"artifacts,omitempty"`
	// Undo is what the target's earlier steps left: a later step continues from it, and
	// RollbackTarget undoes it. The stage workflow passes the last result's Undo.
	Undo *Undo `json:"undo,omitempty"`
}

// TargetResult is what an operation on a target left behind.
type TargetResult struct {
	Output   string        `json:"output"`
	ExitCode int           `json:"exitCode"`
	Duration time.Duration `json:"duration"`
	Attempt  int32         `json:"attempt"`
	// Undo is everything a rollback of the target needs, as it stands after this operation
	// (nil for a plain command target: its rollback command knows).
	Undo *Undo `json:"undo,omitempty"`
	// Weight is the share of traffic the target now gives the new version, when it has one.
	Weight int `json:"weight,omitempty"`
	// Devices is a hardware target's progress.
	Devices *DeviceProgress `json:"devices,omitempty"`
}

// DeviceProgress is how far a hardware target's fleet is.
type DeviceProgress struct {
	// Done counts the devices flashed so far (passed or failed), Failed those that failed, of
	// Total in the inventory.
	Done   int `json:"done"`
	Failed int `json:"failed,omitempty"`
	Total  int `json:"total"`
	// Wave is the index of the wave just run, of Waves planned (rolling stages).
	Wave  int `json:"wave"`
	Waves int `json:"waves,omitempty"`
}

// Undo is what a target's deploy changed, kept by the workflow and handed back to
// RollbackTarget (and to the target's later steps). Only the part of the target's kind is set.
type Undo struct {
	// Side is the blue-green side the release deployed, LiveSide the one serving before it;
	// Switched is set once traffic moved to Side.
	Side     string `json:"side,omitempty"`
	LiveSide string `json:"liveSide,omitempty"`
	Switched bool   `json:"switched,omitempty"`

	ArgoCD    *ArgoCDUndo    `json:"argocd,omitempty"`
	Spinnaker *SpinnakerUndo `json:"spinnaker,omitempty"`
	Flag      *FlagUndo      `json:"flag,omitempty"`
	Hardware  *HardwareUndo  `json:"hardware,omitempty"`
}

// Error types the workflow branches on.
const (
	// ErrTypeCommandFailed: the command ran and failed (non-zero exit or its own timeout).
	// Running it again would deploy twice, so it is not retried.
	ErrTypeCommandFailed = "CommandFailed"
	// ErrTypeTargetFailed: the deploy system said no in a way retrying will not change (a
	// sync that failed, a pipeline that ended TERMINAL, a hardware wave over its failure
	// ratio). The details are a TargetFailure.
	ErrTypeTargetFailed = "TargetFailed"
	// ErrTypeMisconfigured: this worker cannot serve the request (a system not configured,
	// no command runner); retrying on the same worker will not help.
	ErrTypeMisconfigured = "Misconfigured"
)

// CommandFailure is the detail attached to a CommandFailed error.
type CommandFailure struct {
	ExitCode int    `json:"exitCode"`
	TimedOut bool   `json:"timedOut"`
	Output   string `json:"output"`
	Attempt  int32  `json:"attempt"`
}

// TargetFailure is the detail attached to a TargetFailed error. Its JSON is a superset of
// CommandFailure's, so the workflow reads either into it.
type TargetFailure struct {
	Output  string `json:"output,omitempty"`
	Attempt int32  `json:"attempt,omitempty"`
	// Undo is what the failed operation changed that a rollback must undo: the devices of a
	// halted wave, an argocd app pointed at the new version.
	Undo    *Undo           `json:"undo,omitempty"`
	Devices *DeviceProgress `json:"devices,omitempty"`
}

// DeployClients are the systems cloud targets deploy through (config rollout.*); a nil one is
// not configured, and a target needing it fails naming the keys to set.
type DeployClients struct {
	// ArgoCD holds an Argo CD per server name a target's argocd.server may give; "" is the
	// default server (rollout.argocd.url).
	ArgoCD    map[string]argocd.Apps
	Spinnaker spinnaker.Pipelines
	Flags     flags.Manager
	// Poll is how often a sync, pipeline or analysis is looked at; DefaultPoll when zero.
	Poll time.Duration
	// HardwareParallel is how many devices of a wave are flashed at once; 4 when zero.
	HardwareParallel int
}

// DefaultPoll is how often a running sync or pipeline is looked at.
const DefaultPoll = 5 * time.Second

func (d DeployClients) poll() time.Duration {
	if d.Poll > 0 {
		return d.Poll
	}
	return DefaultPoll
}

// Operations a target's commands see in TRAINYARD_OPERATION.
const (
	OpDeploy   = "deploy"
	OpRollback = "rollback"
	OpWeight   = "weight"
	OpSwitch   = "switch"
	OpResync   = "resync"
	OpDrift    = "drift"
)

// Blue-green sides.
const (
	SideBlue  = "blue"
	SideGreen = "green"
)

// DeployTarget deploys the release's version to a target, as its kind says: a command, an
// Argo CD sync, a Spinnaker pipeline, a feature flag, or a wave of a device fleet.
func (a *Activities) DeployTarget(ctx context.Context, req TargetRequest) (TargetResult, error) {
	switch req.Target.Kind {
	case runbooks.KindCommand, "":
		return a.deployCommand(ctx, req)
	case runbooks.KindArgoCD:
		return a.deployArgoCD(ctx, req)
	case runbooks.KindSpinnaker:
		return a.deploySpinnaker(ctx, req)
	case runbooks.KindFlag:
		return a.deployFlag(ctx, req)
	case runbooks.KindHardware:
		return a.deployHardware(ctx, req)
	}
	return TargetResult{}, unknownKind(req)
}

// ShiftTraffic moves a deployed target's traffic: to req.Weight percent (a canary step), or,
// with req.Switch, to the blue-green side its deploy installed.
func (a *Activities) ShiftTraffic(ctx context.Context, req TargetRequest) (TargetResult, error) {
	if req.Weight == 0 && !req.Switch {
		return TargetResult{}, temporal.NewNonRetryableApplicationError("shift traffic of "+req.Target.Name+": neither a weight nor a switch was asked for", ErrTypeTargetFailed, nil)
	}
	switch req.Target.Kind {
	case runbooks.KindCommand, "":
		return a.shiftCommand(ctx, req)
	case runbooks.KindArgoCD:
		return a.shiftArgoCD(ctx, req)
	case runbooks.KindFlag:
		if req.Switch {
			break
		}
		return a.shiftFlag(ctx, req)
	case runbooks.KindHardware:
		if req.Switch {
			break
		}
		return a.deployHardware(ctx, req)
	}
	what := "canary weights"
	if req.Switch {
		what = "a blue-green switch"
	}
	return TargetResult{}, temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("%s targets take no %s (target %s)", req.Target.Kind, what, req.Target.Name), ErrTypeTargetFailed, nil)
}

// RollbackTarget undoes what the target's deploy did, from req.Undo: the rollback command,
// an Argo CD sync back to the previous deployment, the pipeline with the previous version,
// the flag's previous state, or the previous firmware on the devices flashed.
func (a *Activities) RollbackTarget(ctx context.Context, req TargetRequest) (TargetResult, error) {
	switch req.Target.Kind {
	case runbooks.KindCommand, "":
		return a.rollbackCommand(ctx, req)
	case runbooks.KindArgoCD:
		return a.rollbackArgoCD(ctx, req)
	case runbooks.KindSpinnaker:
		return a.rollbackSpinnaker(ctx, req)
	case runbooks.KindFlag:
		return a.rollbackFlag(ctx, req)
	case runbooks.KindHardware:
		return a.rollbackHardware(ctx, req)
	}
	return TargetResult{}, unknownKind(req)
}

// ResyncTarget puts back what the last release left on a target that drifted (onDrift:
// resync): an Argo CD sync to what git says, or the deploy command with
// TRAINYARD_OPERATION=resync and the previous version.
func (a *Activities) ResyncTarget(ctx context.Context, req TargetRequest) (TargetResult, error) {
	switch req.Target.Kind {
	case runbooks.KindCommand, "":
		if req.PreviousVersion == "" {
			return TargetResult{}, temporal.NewNonRetryableApplicationError(
				"resync "+req.Target.Name+": this is the runbook's first release, so there is no previous version to put back", ErrTypeTargetFailed, nil)
		}
		return a.runCommand(ctx, OpResync, req.Target.Deploy, req.PreviousVersion, req, nil)
	case runbooks.KindArgoCD:
		return a.resyncArgoCD(ctx, req)
	}
	return TargetResult{}, temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("%s targets cannot be resynced (target %s)", req.Target.Kind, req.Target.Name), ErrTypeTargetFailed, nil)
}

func unknownKind(req TargetRequest) error {
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("target %s has kind %q, which this worker does not know: upgrade it", req.Target.Name, req.Target.Kind), ErrTypeMisconfigured, nil)
}

// deployCommand runs the deploy command. In a blue-green stage it first picks the idle side:
// the one this site's worker did not last switch to.
func (a *Activities) deployCommand(ctx context.Context, req TargetRequest) (TargetResult, error) {
	var undo *Undo
	if req.Strategy == runbooks.StrategyBlueGreen {
		live, err := a.liveSide(req)
		if err != nil {
			return TargetResult{}, err
		}
		undo = &Undo{Side: otherSide(live), LiveSide: live}
		req.Undo = undo
	}
	res, err := a.runCommand(ctx, OpDeploy, req.Target.Deploy, req.Version, req, nil)
	res.Undo, res.Weight = undo, req.Weight
	return res, err
}

// shiftCommand runs the deploy command again to move traffic: TRAINYARD_OPERATION=weight
// with TRAINYARD_WEIGHT, or switch with TRAINYARD_SIDE.
func (a *Activities) shiftCommand(ctx context.Context, req TargetRequest) (TargetResult, error) {
	if !req.Switch {
		res, err := a.runCommand(ctx, OpWeight, req.Target.Deploy, req.Version, req, nil)
		res.Undo, res.Weight = req.Undo, req.Weight
		return res, err
	}
	if req.Undo == nil || req.Undo.Side == "" {
		return TargetResult{}, temporal.NewNonRetryableApplicationError("switch "+req.Target.Name+": its deploy recorded no side to switch to", ErrTypeTargetFailed, nil)
	}
	res, err := a.runCommand(ctx, OpSwitch, req.Target.Deploy, req.Version, req, nil)
	if err != nil {
		return res, err
	}
	undo := *req.Undo
	undo.Switched = true
	res.Undo = &undo
	if err := a.recordLiveSide(req, undo.Side); err != nil {
		return res, err
	}
	return res, nil
}

// rollbackCommand runs the rollback command; a blue-green target that had switched records
// its old side as live again.
func (a *Activities) rollbackCommand(ctx context.Context, req TargetRequest) (TargetResult, error) {
	res, err := a.runCommand(ctx, OpRollback, req.Target.Rollback, req.Version, req, nil)
	if err != nil || req.Undo == nil || !req.Undo.Switched || req.Undo.LiveSide == "" {
		return res, err
	}
	return res, a.recordLiveSide(req, req.Undo.LiveSide)
}

// sideFile is where a site worker keeps the side a blue-green command target serves from.
func (a *Activities) sideFile(req TargetRequest) string {
	return filepath.Join(a.WorkDir, req.Target.Site, ".trainyard", "sides", req.Target.Name)
}

// liveSide is the side the target serves from: the last one switched to, blue at first.
func (a *Activities) liveSide(req TargetRequest) (string, error) {
	b, err := os.ReadFile(a.sideFile(req))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return SideBlue, nil
	case err != nil:
		return "", fmt.Errorf("read the live side of %s: %w", req.Target.Name, err)
	}
	switch side := strings.TrimSpace(string(b)); side {
	case SideBlue, SideGreen:
		return side, nil
	default:
		return "", temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the live side of %s recorded in %s is %q, not blue or green: fix or remove the file", req.Target.Name, a.sideFile(req), side), ErrTypeMisconfigured, nil)
	}
}

func (a *Activities) recordLiveSide(req TargetRequest, side string) error {
	path := a.sideFile(req)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("record the live side of %s: %w", req.Target.Name, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(side+"\n"), 0o644); err != nil {
		return fmt.Errorf("record the live side of %s: %w", req.Target.Name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("record the live side of %s: %w", req.Target.Name, err)
	}
	return nil
}

func otherSide(side string) string {
	if side == SideGreen {
		return SideBlue
	}
	return SideGreen
}

// commandEnv is what a target's commands see: the release's facts, and the strategy's.
func commandEnv(req TargetRequest, op, version string, attempt int32) []string {
	env := []string{
		"TRAINYARD_RELEASE=" + req.ReleaseID,
		"TRAINYARD_RUNBOOK=" + req.Runbook,
		"TRAINYARD_STAGE=" + req.Stage,
		"TRAINYARD_ENVIRONMENT=" + req.Environment,
		"TRAINYARD_TARGET=" + req.Target.Name,
		"TRAINYARD_SITE=" + req.Target.Site,
		"TRAINYARD_OPERATION=" + op,
		"TRAINYARD_VERSION=" + version,
		"TRAINYARD_PREVIOUS_VERSION=" + req.PreviousVersion,
		"TRAINYARD_ATTEMPT=" + strconv.Itoa(int(attempt)),
	}
	if req.Weight > 0 {
		env = append(env, "TRAINYARD_WEIGHT="+strconv.Itoa(req.Weight))
	}
	if u := req.Undo; u != nil && u.Side != "" {
		env = append(env, "TRAINYARD_SIDE="+u.Side, "TRAINYARD_LIVE_SIDE="+u.LiveSide)
		if op == OpRollback {
			env = append(env, "TRAINYARD_SWITCHED="+strconv.FormatBool(u.Switched))
		}
	}
	if req.RollbackWindow > 0 {
		env = append(env, "TRAINYARD_ROLLBACK_WINDOW="+req.RollbackWindow.String())
	}
	return env
}

// runCommand runs one of a target's scripts on this site, heartbeating its last output line.
// extraEnv is added to the release's environment.
func (a *Activities) runCommand(ctx context.Context, op, script, version string, req TargetRequest, extraEnv []string) (TargetResult, error) {
	info := activity.GetInfo(ctx)
	log := a.logger().With("release", req.ReleaseID, "stage", req.Stage, "target", req.Target.Name, "operation", op, "attempt", info.Attempt)
	if a.Runner == nil {
		return TargetResult{}, temporal.NewNonRetryableApplicationError("this worker has no command runner: run `trainyard worker --site "+req.Target.Site+"`", ErrTypeMisconfigured, nil)
	}
	spec := command.Spec{
		Script:  script,
		Dir:     filepath.Join(a.WorkDir, req.Target.Site),
		Timeout: req.Target.TimeoutOrDefault(),
		Env:     append(commandEnv(req, op, version, info.Attempt), extraEnv...),
	}

	// Heartbeat while the command runs: a lost worker is noticed within the heartbeat
	// timeout, and a cancelled release reaches the command through ctx.
	var mu sync.Mutex
	last := ""
	stop := a.heartbeat(ctx, func() any {
		mu.Lock()
		defer mu.Unlock()
		return last
	})
	log.Info("running command")
	res, err := a.Runner.Run(ctx, spec, func(line string) {
		mu.Lock()
		last = line
		mu.Unlock()
	})
	stop()

	out := TargetResult{Output: res.Output, ExitCode: res.ExitCode, Duration: res.Duration, Attempt: info.Attempt}
	var exitErr *command.ExitError
	switch {
	case errors.As(err, &exitErr):
		log.Warn("command failed", "exit_code", exitErr.ExitCode, "timed_out", exitErr.TimedOut, "duration", res.Duration)
		msg := err.Error()
		if line := command.LastLine(res.Output); line != "" {
			msg += ": " + line
		}
		return out, temporal.NewNonRetryableApplicationError(msg, ErrTypeCommandFailed, err, CommandFailure{
			ExitCode: exitErr.ExitCode, TimedOut: exitErr.TimedOut, Output: res.Output, Attempt: info.Attempt,
		})
	case err != nil:
		log.Warn("command did not complete", "error", err)
		return out, fmt.Errorf("%s of %s: %w", op, req.Target.Name, err)
	}
	log.Info("command succeeded", "duration", res.Duration)
	return out, nil
}

// heartbeat records details() now and every HeartbeatEvery until the returned stop is
// called, so a long operation is known alive between its own progress reports.
func (a *Activities) heartbeat(ctx context.Context, details func() any) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(a.heartbeatEvery())
		defer t.Stop()
		for {
			activity.RecordHeartbeat(ctx, details())
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// finalOrRetry turns a deploy system's error into what Temporal should do with it: a plain
// error is retried by the activity's retry policy; a final one fails the target with detail.
func finalOrRetry(ctx context.Context, err error, retryable bool, msg string, detail TargetFailure) error {
	detail.Attempt = activity.GetInfo(ctx).Attempt
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", msg, ctx.Err())
	}
	if retryable {
		return fmt.Errorf("%s: %w", msg, err)
	}
	return temporal.NewNonRetryableApplicationError(msg+": "+err.Error(), ErrTypeTargetFailed, err, detail)
}

// finalError fails a target in a way retrying will not change.
func finalError(msg string, detail TargetFailure) error {
	return temporal.NewNonRetryableApplicationError(msg, ErrTypeTargetFailed, nil, detail)
}

// misconfigured fails a target whose system this worker has no client for, naming the keys.
func misconfigured(req TargetRequest, system, keys string) error {
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("target %s deploys through %s, which is not configured on this worker: set %s", req.Target.Name, system, keys), ErrTypeMisconfigured, nil)
}

// releaseVars are the variables runbook strings (argocd.revision, spinnaker.parameters,
// check URLs) may use as $NAME or ${NAME}; version is the one being installed.
func releaseVars(req TargetRequest, version string) map[string]string {
	v := map[string]string{
		"TRAINYARD_RELEASE": req.ReleaseID, "TRAINYARD_RUNBOOK": req.Runbook, "TRAINYARD_STAGE": req.Stage,
		"TRAINYARD_ENVIRONMENT": req.Environment, "TRAINYARD_TARGET": req.Target.Name, "TRAINYARD_VERSION": version,
		"TRAINYARD_PREVIOUS_VERSION": req.PreviousVersion,
	}
	if req.Undo != nil && req.Undo.Side != "" {
		v["TRAINYARD_SIDE"], v["TRAINYARD_LIVE_SIDE"] = req.Undo.Side, req.Undo.LiveSide
	}
	return v
}

// expand replaces $NAME and ${NAME} of vars in s; other $ signs stay as written.
func expand(s string, vars map[string]string) string {
	return os.Expand(s, func(name string) string {
		if v, ok := vars[name]; ok {
			return v
		}
		return "${" + name + "}"
	})
}

func (a *Activities) heartbeatEvery() time.Duration {
	if a.HeartbeatEvery > 0 {
		return a.HeartbeatEvery
	}
	return time.Second
}

func (a *Activities) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return slog.Default()
}
