package activities

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/trainyard/trainyard/integrations/command"
	"github.com/trainyard/trainyard/runbooks"
)

// newActivityEnv is a test activity environment with acts registered.
func newActivityEnv(t *testing.T, acts *Activities) *testsuite.TestActivityEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	return env
}

func targetRequest() TargetRequest {
	return TargetRequest{
		ReleaseID:       "release-shop-1.2.3",
		Runbook:         "shop",
		Stage:           "production",
		Environment:     "production",
		Version:         "1.2.3",
		PreviousVersion: "1.2.2",
		Target: runbooks.Target{
			Name:     "web-eu",
			Kind:     runbooks.KindCommand,
			Site:     "dc1",
			Deploy:   "./deploy.sh",
			Rollback: "./rollback.sh",
			Timeout:  runbooks.Duration(90 * time.Second),
		},
	}
}

// envOf turns KEY=value pairs into a map.
func envOf(pairs []string) map[string]string {
	m := map[string]string{}
	for _, kv := range pairs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// requireApplicationError returns the *temporal.ApplicationError inside err.
func requireApplicationError(t *testing.T, err error) *temporal.ApplicationError {
	t.Helper()
	require.Error(t, err)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	return appErr
}

func TestTargetActivities_RunTheTargetScriptWithReleaseEnvironmentInSiteDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		run    func(acts *Activities) any
		op     string
		script string
	}{
		{name: "deploy", run: func(a *Activities) any { return a.DeployTarget }, op: "deploy", script: "./deploy.sh"},
		{name: "rollback", run: func(a *Activities) any { return a.RollbackTarget }, op: "rollback", script: "./rollback.sh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := &command.Fake{RunFunc: func(context.Context, command.Spec) (command.Result, error) {
				return command.Result{Output: "done\n", Duration: 2 * time.Second}, nil
			}}
			acts := &Activities{Runner: fake, WorkDir: "/srv/trainyard/sites"}
			env := newActivityEnv(t, acts)

			val, err := env.ExecuteActivity(tt.run(acts), targetRequest())
			require.NoError(t, err)
			var res TargetResult
			require.NoError(t, val.Get(&res))
			require.Equal(t, TargetResult{Output: "done\n", Duration: 2 * time.Second, Attempt: 1}, res)

			calls := fake.Calls()
			require.Len(t, calls, 1)
			spec := calls[0]
			require.Equal(t, tt.script, spec.Script)
			require.Equal(t, filepath.Join("/srv/trainyard/sites", "dc1"), spec.Dir)
			require.Equal(t, 90*time.Second, spec.Timeout)
			require.Equal(t, map[string]string{
				"TRAINYARD_RELEASE":          "release-shop-1.2.3",
				"TRAINYARD_RUNBOOK":          "shop",
				"TRAINYARD_STAGE":            "production",
				"TRAINYARD_ENVIRONMENT":      "production",
				"TRAINYARD_TARGET":           "web-eu",
				"TRAINYARD_SITE":             "dc1",
				"TRAINYARD_OPERATION":        tt.op,
				"TRAINYARD_VERSION":          "1.2.3",
				"TRAINYARD_PREVIOUS_VERSION": "1.2.2",
				"TRAINYARD_ATTEMPT":          "1",
			}, envOf(spec.Env))
		})
	}
}

func TestDeployTarget_UsesDefaultTimeoutWhenTargetHasNone(t *testing.T) {
	t.Parallel()
	fake := &command.Fake{}
	acts := &Activities{Runner: fake}
	req := targetRequest()
	req.Target.Timeout = 0

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.DeployTarget, req)
	require.NoError(t, err)
	require.Len(t, fake.Calls(), 1)
	require.Equal(t, runbooks.DefaultTargetTimeout, fake.Calls()[0].Timeout)
}

func TestTargetActivities_RealShellSeesReleaseEnvironmentAndRunsInSiteDir(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(acts *Activities) any
		op   string
	}{
		{name: "deploy", run: func(a *Activities) any { return a.DeployTarget }, op: "deploy"},
		{name: "rollback", run: func(a *Activities) any { return a.RollbackTarget }, op: "rollback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			workDir := t.TempDir()
			acts := &Activities{Runner: command.Shell{}, WorkDir: workDir}
			req := targetRequest()
			script := `env | grep '^TRAINYARD_' > seen.env; echo "ran in $(pwd -P)"`
			req.Target.Deploy, req.Target.Rollback = script, script

			val, err := newActivityEnv(t, acts).ExecuteActivity(tt.run(acts), req)
			require.NoError(t, err)
			var res TargetResult
			require.NoError(t, val.Get(&res))

			siteDir, err := filepath.EvalSymlinks(filepath.Join(workDir, "dc1"))
			require.NoError(t, err, "the site folder was created")
			require.Equal(t, "ran in "+siteDir+"\n", res.Output)
			require.Equal(t, 0, res.ExitCode)
			require.Equal(t, int32(1), res.Attempt)

			f, err := os.Open(filepath.Join(siteDir, "seen.env"))
			require.NoError(t, err, "the command wrote seen.env in WorkDir/<site>")
			defer f.Close()
			var lines []string
			for sc := bufio.NewScanner(f); sc.Scan(); {
				lines = append(lines, sc.Text())
			}
			seen := envOf(lines)
			for k, v := range map[string]string{
				"TRAINYARD_RELEASE":          "release-shop-1.2.3",
				"TRAINYARD_VERSION":          "1.2.3",
				"TRAINYARD_PREVIOUS_VERSION": "1.2.2",
				"TRAINYARD_TARGET":           "web-eu",
				"TRAINYARD_ATTEMPT":          "1",
				"TRAINYARD_OPERATION":        tt.op,
			} {
				require.Equal(t, v, seen[k], k)
			}
		})
	}
}

func TestDeployTarget_NonZeroExitIsNonRetryableCommandFailed(t *testing.T) {
	t.Parallel()
	out := "pulling image\nerror: image reg/web:1.2.3 not found\n\n"
	fake := &command.Fake{RunFunc: func(context.Context, command.Spec) (command.Result, error) {
		return command.Result{ExitCode: 2, Output: out}, &command.ExitError{ExitCode: 2, Output: out}
	}}
	acts := &Activities{Runner: fake}

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.DeployTarget, targetRequest())
	appErr := requireApplicationError(t, err)
	require.Equal(t, ErrTypeCommandFailed, appErr.Type())
	require.True(t, appErr.NonRetryable())
	require.Equal(t, "command exited with status 2: error: image reg/web:1.2.3 not found", appErr.Message())

	var detail CommandFailure
	require.NoError(t, appErr.Details(&detail))
	require.Equal(t, CommandFailure{ExitCode: 2, Output: out, Attempt: 1}, detail)
}

func TestDeployTarget_RealShellFailureCarriesLastLineAndOutput(t *testing.T) {
	t.Parallel()
	acts := &Activities{Runner: command.Shell{}, WorkDir: t.TempDir()}
	req := targetRequest()
	req.Target.Deploy = `echo "installing $TRAINYARD_VERSION"; echo "health check failed: 503" >&2; exit 4`

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.DeployTarget, req)
	appErr := requireApplicationError(t, err)
	require.Equal(t, ErrTypeCommandFailed, appErr.Type())
	require.True(t, appErr.NonRetryable())
	require.True(t, strings.HasSuffix(appErr.Message(), ": health check failed: 503"), appErr.Message())

	var detail CommandFailure
	require.NoError(t, appErr.Details(&detail))
	require.Equal(t, 4, detail.ExitCode)
	require.False(t, detail.TimedOut)
	require.Equal(t, "installing 1.2.3\nhealth check failed: 503\n", detail.Output)
	require.Equal(t, int32(1), detail.Attempt)
}

func TestDeployTarget_RealShellTimeoutIsCommandFailedAndTimedOut(t *testing.T) {
	t.Parallel()
	acts := &Activities{Runner: command.Shell{}, WorkDir: t.TempDir()}
	req := targetRequest()
	req.Target.Deploy = "echo waiting for rollout; sleep 30"
	req.Target.Timeout = runbooks.Duration(300 * time.Millisecond)

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.DeployTarget, req)
	appErr := requireApplicationError(t, err)
	require.Equal(t, ErrTypeCommandFailed, appErr.Type())
	require.True(t, appErr.NonRetryable())
	require.Equal(t, "command timed out: waiting for rollout", appErr.Message())
	var detail CommandFailure
	require.NoError(t, appErr.Details(&detail))
	require.True(t, detail.TimedOut)
}

func TestDeployTarget_RunnerErrorIsRetryableAndNamesTarget(t *testing.T) {
	t.Parallel()
	fake := &command.Fake{RunFunc: func(context.Context, command.Spec) (command.Result, error) {
		return command.Result{}, errors.New("start /bin/sh: resource temporarily unavailable")
	}}
	acts := &Activities{Runner: fake}

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.RollbackTarget, targetRequest())
	appErr := requireApplicationError(t, err)
	require.False(t, appErr.NonRetryable(), "a command that never ran may be retried")
	require.NotEqual(t, ErrTypeCommandFailed, appErr.Type())
	require.Equal(t, "rollback of web-eu: start /bin/sh: resource temporarily unavailable", appErr.Message())
}

func TestTargetActivities_WithoutRunnerAreMisconfigured(t *testing.T) {
	t.Parallel()
	acts := &Activities{}
	for name, fn := range map[string]any{"deploy": acts.DeployTarget, "rollback": acts.RollbackTarget} {
		_, err := newActivityEnv(t, acts).ExecuteActivity(fn, targetRequest())
		appErr := requireApplicationError(t, err)
		require.Equal(t, "Misconfigured", appErr.Type(), name)
		require.True(t, appErr.NonRetryable(), name)
		require.Contains(t, appErr.Message(), "trainyard worker --site dc1", name)
	}
}
