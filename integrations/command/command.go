// Package command runs a target's deploy and rollback shell commands on a site worker. It
// knows nothing of Temporal: the activity around it heartbeats and retries.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Spec is one command to run.
type Spec struct {
	// Script is run by /bin/sh -c, so runbooks can use pipes, conditionals and variables.
	Script string
	// Dir is the working directory; created when missing.
	Dir string
	// Env is added to the worker's own environment (KEY=value).
	Env []string
	// Timeout bounds the run; the process group is killed when it passes.
	Timeout time.Duration
}

// Result is what a finished command left behind.
type Result struct {
	ExitCode int           `json:"exitCode"`
	Output   string        `json:"output"`
	Duration time.Duration `json:"duration"`
}

// ExitError is returned when the command ran and exited non-zero or was killed by its
// timeout. Retrying will usually not help; callers decide.
type ExitError struct {
	ExitCode int
	TimedOut bool
	Output   string
}

func (e *ExitError) Error() string {
	if e.TimedOut {
		return "command timed out"
	}
	return fmt.Sprintf("command exited with status %d", e.ExitCode)
}

// Runner runs commands. Progress receives each chunk of output as it arrives, for heartbeats.
type Runner interface {
	Run(ctx context.Context, spec Spec, progress func(tail string)) (Result, error)
}

// MaxOutput is how much of a command's combined output is kept: the last bytes, where the
// error usually is. It also keeps workflow histories small.
const MaxOutput = 16 << 10

// Shell is the real Runner: /bin/sh in a process group of its own, killed whole on timeout,
// on cancellation, and when the worker process dies.
type Shell struct {
	// Shell is the interpreter; /bin/sh when empty.
	Shell string
}

// Run starts the command and waits for it.
func (s Shell) Run(ctx context.Context, spec Spec, progress func(string)) (Result, error) {
	if spec.Dir != "" {
		if err := os.MkdirAll(spec.Dir, 0o755); err != nil {
			return Result{}, fmt.Errorf("create working directory: %w", err)
		}
	}
	if spec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, spec.Timeout)
		defer cancel()
	}
	shell := s.Shell
	if shell == "" {
		shell = "/bin/sh"
	}
	cmd := exec.Command(shell, "-c", spec.Script)
	cmd.Dir = spec.Dir
	cmd.Env = append(os.Environ(), spec.Env...)
	out := &tailBuffer{max: MaxOutput, onWrite: progress}
	cmd.Stdout = out
	cmd.Stderr = out
	// A command must not outlive the worker that runs it: if the worker is killed, Temporal
	// retries the step elsewhere and two copies must not run at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("start %s: %w", shell, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	var waitErr error
	select {
	case waitErr = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case waitErr = <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			waitErr = <-done
		}
	}
	res := Result{Output: out.String(), Duration: time.Since(start), ExitCode: exitCode(waitErr)}
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return res, &ExitError{ExitCode: res.ExitCode, TimedOut: true, Output: res.Output}
	case ctx.Err() != nil:
		return res, ctx.Err()
	case waitErr != nil:
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			return res, &ExitError{ExitCode: res.ExitCode, Output: res.Output}
		}
		return res, fmt.Errorf("run command: %w", waitErr)
	}
	return res, nil
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	max     int
	dropped bool
	onWrite func(string)
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
		t.dropped = true
	}
	t.mu.Unlock()
	if t.onWrite != nil {
		t.onWrite(LastLine(string(p)))
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dropped {
		return "[earlier output dropped]\n" + t.buf.String()
	}
	return t.buf.String()
}

// LastLine is the last non-blank line of out, trimmed and cut to 300 bytes: usually the
// command's own account of what it is doing, or of why it failed.
func LastLine(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			if len(l) > 300 {
				l = l[:300] + "…"
			}
			return l
		}
	}
	return ""
}
