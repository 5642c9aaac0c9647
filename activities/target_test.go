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

// recordOps is a command.Fake that notes each command's operation and side, and fails the
// commands fail says.
func recordOps(fail func(spec command.Spec) *command.ExitError) *command.Fake {
	return &command.Fake{RunFunc: func(_ context.Context, spec command.Spec) (command.Result, error) {
		if fail != nil {
			if err := fail(spec); err != nil {
				return command.Result{ExitCode: err.ExitCode, Output: err.Output}, err
			}
		}
		return command.Result{Output: "ok\n"}, nil
	}}
}

func opsOf(fake *command.Fake) []string {
	var out []string
	for _, c := range fake.Calls() {
		e := envOf(c.Env)
		op := e["TRAINYARD_OPERATION"]
		if side := e["TRAINYARD_SIDE"]; side != "" {
			op += ":" + side + "/" + e["TRAINYARD_LIVE_SIDE"]
		}
		if w := e["TRAINYARD_WEIGHT"]; w != "" {
			op += ":" + w + "%"
		}
		if s := e["TRAINYARD_SWITCHED"]; s != "" {
			op += ":switched=" + s
		}
		out = append(out, op)
	}
	return out
}

func TestCommandBlueGreen_DeploysTheIdleSideSwitchesAndRemembersTheLiveOne(t *testing.T) {
	t.Parallel()
	fake := recordOps(nil)
	acts := &Activities{Runner: fake, WorkDir: t.TempDir()}
	req := targetRequest()
	req.Strategy, req.RollbackWindow = runbooks.StrategyBlueGreen, runbooks.Duration(time.Hour)

	// The first release finds blue live: it deploys green and switches to it.
	req.Undo = run(t, acts, acts.DeployTarget, req).Undo
	require.Equal(t, &Undo{Side: SideGreen, LiveSide: SideBlue}, req.Undo)
	req.Switch = true
	req.Undo = run(t, acts, acts.ShiftTraffic, req).Undo
	require.True(t, req.Undo.Switched)
	require.Equal(t, "1h0m0s", envOf(fake.Calls()[1].Env)["TRAINYARD_ROLLBACK_WINDOW"])

	// The next one finds green live and deploys blue; its rollback switches back to green.
	next := targetRequest()
	next.Strategy = runbooks.StrategyBlueGreen
	next.Undo = run(t, acts, acts.DeployTarget, next).Undo
	require.Equal(t, &Undo{Side: SideBlue, LiveSide: SideGreen}, next.Undo)
	next.Switch = true
	next.Undo = run(t, acts, acts.ShiftTraffic, next).Undo
	next.Switch = false
	run(t, acts, acts.RollbackTarget, next)

	require.Equal(t, []string{
		"deploy:green/blue", "switch:green/blue", "deploy:blue/green", "switch:blue/green", "rollback:blue/green:switched=true",
	}, opsOf(fake))
	again := targetRequest()
	again.Strategy = runbooks.StrategyBlueGreen
	require.Equal(t, SideBlue, run(t, acts, acts.DeployTarget, again).Undo.Side, "after the rollback green is live again, so blue is idle")
}

func TestCommandBlueGreen_AFailedSwitchLeavesTheLiveSideAsItWas(t *testing.T) {
	t.Parallel()
	fake := recordOps(func(spec command.Spec) *command.ExitError {
		if envOf(spec.Env)["TRAINYARD_OPERATION"] == OpSwitch {
			return &command.ExitError{ExitCode: 1, Output: "load balancer refused\n"}
		}
		return nil
	})
	acts := &Activities{Runner: fake, WorkDir: t.TempDir()}
	req := targetRequest()
	req.Strategy = runbooks.StrategyBlueGreen
	req.Undo = run(t, acts, acts.DeployTarget, req).Undo
	req.Switch = true

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.ShiftTraffic, req)
	require.Equal(t, ErrTypeCommandFailed, requireApplicationError(t, err).Type())

	req.Switch, req.Undo = false, nil
	require.Equal(t, SideGreen, run(t, acts, acts.DeployTarget, req).Undo.Side, "blue is still live")
}

func TestCommandCanary_StepsRunTheDeployCommandWithTheWeight(t *testing.T) {
	t.Parallel()
	fake := recordOps(nil)
	acts := &Activities{Runner: fake, WorkDir: t.TempDir()}
	req := targetRequest()
	req.Strategy, req.Weight = runbooks.StrategyCanary, 10
	res := run(t, acts, acts.DeployTarget, req)
	require.Equal(t, 10, res.Weight)
	req.Weight = 50
	run(t, acts, acts.ShiftTraffic, req)

	require.Equal(t, []string{"deploy:10%", "weight:50%"}, opsOf(fake))
	require.Equal(t, "./deploy.sh", fake.Calls()[1].Script, "the deploy command moves the weight")
}

func TestResyncTarget_RunsTheDeployCommandWithThePreviousVersion(t *testing.T) {
	t.Parallel()
	fake := recordOps(nil)
	acts := &Activities{Runner: fake, WorkDir: t.TempDir()}

	run(t, acts, acts.ResyncTarget, targetRequest())

	e := envOf(fake.Calls()[0].Env)
	require.Equal(t, OpResync, e["TRAINYARD_OPERATION"])
	require.Equal(t, "1.2.2", e["TRAINYARD_VERSION"])

	first := targetRequest()
	first.PreviousVersion = ""
	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.ResyncTarget, first)
	require.Contains(t, requireApplicationError(t, err).Message(), "no previous version to put back")
}

func TestShiftTraffic_KindsWithoutTrafficRefuse(t *testing.T) {
	t.Parallel()
	acts := &Activities{}
	req := spinnakerRequest()
	req.Weight = 10
	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.ShiftTraffic, req)
	require.Contains(t, requireApplicationError(t, err).Message(), "spinnaker targets take no canary weights (target shop-prod)")
}

func TestCheckDrift_CommandExitCodeSaysDriftedInSyncOrUnknown(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		exit    int
		drifted bool
		err     string
	}{
		{"in sync", 0, false, ""},
		{"drifted", 1, true, ""},
		{"could not tell", 2, false, "drift check of web-eu could not tell (command exited with status 2: nginx.conf: permission denied; exit 1 means drifted, 0 in sync)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			acts := &Activities{Runner: command.Shell{}, WorkDir: t.TempDir()}
			req := targetRequest()
			req.Target.Drift = map[int]string{
				0: `echo "matches $TRAINYARD_PREVIOUS_VERSION"`,
				1: `echo "nginx.conf differs from $TRAINYARD_PREVIOUS_VERSION"; exit 1`,
				2: `echo "nginx.conf: permission denied" >&2; exit 2`,
			}[tc.exit]

			val, err := newActivityEnv(t, acts).ExecuteActivity(acts.CheckDrift, req)

			if tc.err != "" {
				appErr := requireApplicationError(t, err)
				require.True(t, appErr.NonRetryable())
				require.Equal(t, tc.err, appErr.Message())
				return
			}
			require.NoError(t, err)
			var d DriftResult
			require.NoError(t, val.Get(&d))
			require.Equal(t, tc.drifted, d.Drifted)
			if tc.drifted {
				require.Equal(t, "the drift command says: nginx.conf differs from 1.2.2", d.Detail)
			}
		})
	}
}
