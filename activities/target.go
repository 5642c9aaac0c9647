package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/trainyard/trainyard/integrations/command"
	"github.com/trainyard/trainyard/runbooks"
)

// TargetRequest asks a site worker to deploy or roll back one target.
type TargetRequest struct {
	ReleaseID       string          `json:"releaseId"`
	Runbook         string          `json:"runbook"`
	Stage           string          `json:"stage"`
	Environment     string          `json:"environment,omitempty"`
	Target          runbooks.Target `json:"target"`
	Version         string          `json:"version"`
	PreviousVersion string          `json:"previousVersion,omitempty"`
}

// TargetResult is what the command left behind.
type TargetResult struct {
	Output   string        `json:"output"`
	ExitCode int           `json:"exitCode"`
	Duration time.Duration `json:"duration"`
	Attempt  int32         `json:"attempt"`
}

// Error types the workflow branches on.
const (
	// ErrTypeCommandFailed: the command ran and failed (non-zero exit or its own timeout).
	// Running it again would deploy twice, so it is not retried.
	ErrTypeCommandFailed = "CommandFailed"
)

// CommandFailure is the detail attached to a CommandFailed error.
type CommandFailure struct {
	ExitCode int    `json:"exitCode"`
	TimedOut bool   `json:"timedOut"`
	Output   string `json:"output"`
	Attempt  int32  `json:"attempt"`
}

// DeployTarget runs a target's deploy command on this site.
func (a *Activities) DeployTarget(ctx context.Context, req TargetRequest) (TargetResult, error) {
	return a.runTarget(ctx, "deploy", req.Target.Deploy, req)
}

// RollbackTarget runs a target's rollback command on this site.
func (a *Activities) RollbackTarget(ctx context.Context, req TargetRequest) (TargetResult, error) {
	return a.runTarget(ctx, "rollback", req.Target.Rollback, req)
}

func (a *Activities) runTarget(ctx context.Context, op, script string, req TargetRequest) (TargetResult, error) {
	info := activity.GetInfo(ctx)
	log := a.logger().With("release", req.ReleaseID, "stage", req.Stage, "target", req.Target.Name, "operation", op, "attempt", info.Attempt)
	if a.Runner == nil {
		return TargetResult{}, temporal.NewNonRetryableApplicationError("this worker has no command runner: run `trainyard worker --site "+req.Target.Site+"`", "Misconfigured", nil)
	}
	spec := command.Spec{
		Script:  script,
		Dir:     filepath.Join(a.WorkDir, req.Target.Site),
		Timeout: req.Target.TimeoutOrDefault(),
		Env: []string{
			"TRAINYARD_RELEASE=" + req.ReleaseID,
			"TRAINYARD_RUNBOOK=" + req.Runbook,
			"TRAINYARD_STAGE=" + req.Stage,
			"TRAINYARD_ENVIRONMENT=" + req.Environment,
			"TRAINYARD_TARGET=" + req.Target.Name,
			"TRAINYARD_SITE=" + req.Target.Site,
			"TRAINYARD_OPERATION=" + op,
			"TRAINYARD_VERSION=" + req.Version,
			"TRAINYARD_PREVIOUS_VERSION=" + req.PreviousVersion,
			"TRAINYARD_ATTEMPT=" + strconv.Itoa(int(info.Attempt)),
		},
	}

	// Heartbeat while the command runs: a lost worker is noticed within the heartbeat
	// timeout, and a cancelled release reaches the command through ctx.
	var mu sync.Mutex
	last := ""
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(a.heartbeatEvery())
		defer t.Stop()
		for {
			mu.Lock()
			line := last
			mu.Unlock()
			activity.RecordHeartbeat(ctx, line)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	log.Info("running command")
	res, err := a.Runner.Run(ctx, spec, func(line string) {
		mu.Lock()
		last = line
		mu.Unlock()
	})
	close(stop)
	wg.Wait()

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
