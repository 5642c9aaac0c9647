package workflows

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/analysis"
	"github.com/trainyard/trainyard/runbooks"
)

// stageOutcome is what a release would have heard from a stage: every progress signal, and
// how the stage ended.
type stageOutcome struct {
	Progress []TargetProgress `json:"progress"`
	Deployed []string         `json:"deployed"`
	Error    string           `json:"error,omitempty"`
}

// stageParent runs a StageWorkflow as a child, the way a release does, and collects its
// progress signals.
func stageParent(ctx workflow.Context, in StageInput) (stageOutcome, error) {
	ch := workflow.GetSignalChannel(ctx, SignalTargetProgress)
	var out stageOutcome
	drain := func() {
		var p TargetProgress
		for ch.ReceiveAsync(&p) {
			out.Progress = append(out.Progress, p)
			p = TargetProgress{}
		}
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: in.ReleaseID + "-" + in.Stage.Name, TaskQueue: TaskQueue})
	f := workflow.ExecuteChildWorkflow(cctx, StageWorkflow, in)
	for !f.IsReady() {
		_ = workflow.Await(ctx, func() bool { return f.IsReady() || ch.Len() > 0 })
		drain()
	}
	var res StageResult
	err := f.Get(ctx, &res)
	drain()
	out.Deployed = res.Deployed
	if err != nil {
		out.Error = errorMessage(err)
	}
	return out, nil
}

// stageEnv is a test environment running stages under stageParent, every activity mocked
// by the test.
type stageEnv struct {
	*testsuite.TestWorkflowEnvironment
	mu    sync.Mutex
	calls []string
}

func newStageEnv(t *testing.T) *stageEnv {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := &stageEnv{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment()}
	env.RegisterWorkflow(StageWorkflow)
	env.RegisterWorkflow(stageParent)
	env.RegisterActivity(&activities.Activities{})
	return env
}

// record notes an activity call as "Activity:target[:detail]".
func (e *stageEnv) record(call string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, call)
}

func (e *stageEnv) recorded() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

// onTarget mocks a target activity; fn's result is returned for every call.
func (e *stageEnv) onTarget(name string, fn func(req activities.TargetRequest) (activities.TargetResult, error)) {
	e.OnActivity(name, mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.TargetRequest) (activities.TargetResult, error) {
		detail := ""
		switch {
		case req.Switch:
			detail = ":switch"
		case req.Weight > 0:
			detail = fmt.Sprintf(":%d%%", req.Weight)
		case req.Target.Kind == runbooks.KindHardware:
			detail = fmt.Sprintf(":wave%d", req.Wave+1)
		}
		e.record(name + ":" + req.Target.Name + detail)
		return fn(req)
	})
}

func (e *stageEnv) run(t *testing.T, in StageInput) stageOutcome {
	t.Helper()
	e.ExecuteWorkflow(stageParent, in)
	require.True(t, e.IsWorkflowCompleted())
	require.NoError(t, e.GetWorkflowError())
	var out stageOutcome
	require.NoError(t, e.GetWorkflowResult(&out))
	return out
}

// states lists the progress of one target as "state" or "state@step/weight", in order.
func states(out stageOutcome, target string) []string {
	var s []string
	for _, p := range out.Progress {
		if p.Target != target {
			continue
		}
		switch {
		case p.Steps > 0:
			s = append(s, fmt.Sprintf("%s@%d/%d%%", p.State, p.Step, p.Weight))
		case p.DevicesTotal > 0:
			s = append(s, fmt.Sprintf("%s@%d/%d", p.State, p.DevicesDone, p.DevicesTotal))
		default:
			s = append(s, p.State)
		}
	}
	return s
}

func lastProgress(out stageOutcome, target string) TargetProgress {
	var last TargetProgress
	for _, p := range out.Progress {
		if p.Target == target {
			last = p
		}
	}
	return last
}

func succeed(req activities.TargetRequest) (activities.TargetResult, error) {
	return activities.TargetResult{Output: "ok " + req.Target.Name, Attempt: 1, Undo: req.Undo, Weight: req.Weight}, nil
}

func stageInput(stage runbooks.Stage) StageInput {
	return StageInput{ReleaseID: "release-shop-2.0.0", Runbook: "shop", Stage: stage, Version: "2.0.0", PreviousVersion: "1.0.0"}
}

func cmdTarget(name string) runbooks.Target {
	return runbooks.Target{Name: name, Kind: runbooks.KindCommand, Site: "dc1", Deploy: "deploy", Rollback: "rollback"}
}

var errorRate = runbooks.Analysis{Name: "error-rate", Provider: "prometheus", Query: "errors", SuccessCondition: "result.value < 0.01",
	Count: 3, Interval: runbooks.Duration(time.Minute)}

func TestStage_RollingDeploysTargetsInOrderAndTellsTheReleaseEach(t *testing.T) {
	t.Parallel()
	env := newStageEnv(t)
	env.onTarget("DeployTarget", succeed)

	out := env.run(t, stageInput(runbooks.Stage{Name: "staging", Targets: []runbooks.Target{cmdTarget("a"), cmdTarget("b")}}))

	require.Empty(t, out.Error)
	require.Equal(t, []string{"a", "b"}, out.Deployed)
	require.Equal(t, []string{"DeployTarget:a", "DeployTarget:b"}, env.recorded())
	require.Equal(t, []string{StateRunning, StateDeployed}, states(out, "a"))
	last := lastProgress(out, "b")
	require.Equal(t, "ok b", last.Output)
	require.Equal(t, int32(1), last.Attempts)
	require.NotNil(t, last.Undo, "a deployed target carries what its rollback needs")
}

func TestStage_ParallelRollingDeploysNAtATimeAndStartsNothingAfterAFailure(t *testing.T) {
	t.Parallel()
	env := newStageEnv(t)
	var mu sync.Mutex
	active, most := 0, 0
	env.onTarget("DeployTarget", func(req activities.TargetRequest) (activities.TargetResult, error) {
		mu.Lock()
		active++
		most = max(most, active)
		mu.Unlock()
		// Long enough for a third to start, if one could; d outlasts c's failure.
		pause := 50 * time.Millisecond
		if req.Target.Name == "d" {
			pause = 300 * time.Millisecond
		}
		time.Sleep(pause)
		mu.Lock()
		active--
		mu.Unlock()
		if req.Target.Name == "c" {
			return activities.TargetResult{}, temporal.NewNonRetryableApplicationError("command exited with status 1: boom", activities.ErrTypeCommandFailed, nil,
				activities.CommandFailure{ExitCode: 1, Output: "boom\n", Attempt: 1})
		}
		return succeed(req)
	})
	stage := runbooks.Stage{Name: "prod", Strategy: &runbooks.Strategy{Type: runbooks.StrategyRolling, MaxParallel: 2},
		Targets: []runbooks.Target{cmdTarget("a"), cmdTarget("b"), cmdTarget("c"), cmdTarget("d"), cmdTarget("e"), cmdTarget("f")}}

	out := env.run(t, stageInput(stage))

	require.Equal(t, 2, most, "two at a time, never more")
	require.Contains(t, out.Error, "stage prod, target c: command exited with status 1: boom")
	calls := env.recorded()
	require.Subset(t, calls, []string{"DeployTarget:a", "DeployTarget:b", "DeployTarget:c"})
	require.NotContains(t, calls, "DeployTarget:e", "nothing starts once a target failed")
	require.NotContains(t, calls, "DeployTarget:f")
	require.Equal(t, "boom\n", lastProgress(out, "c").Output)
	require.Equal(t, StateFailed, lastProgress(out, "c").State)
	require.Nil(t, lastProgress(out, "c").Undo, "a failed command changed nothing the release knows to undo")
}

func canaryStage(targets ...runbooks.Target) runbooks.Stage {
	return runbooks.Stage{Name: "production", Environment: "production", Targets: targets,
		Strategy: &runbooks.Strategy{Type: runbooks.StrategyCanary, Steps: []runbooks.CanaryStep{
			{Weight: 10, Pause: runbooks.Duration(5 * time.Minute), Analysis: "error-rate"},
			{Weight: 50, Analysis: "error-rate"},
			{Weight: 100},
		}}}
}

func argoTarget(name string) runbooks.Target {
	return runbooks.Target{Name: name, Kind: runbooks.KindArgoCD, ArgoCD: &runbooks.ArgoCDTarget{App: name}}
}

func TestStage_CanaryWalksTheStepsWithPausesAndAnalyses(t *testing.T) {
	t.Parallel()
	env := newStageEnv(t)
	env.OnActivity("CheckDrift", mock.Anything, mock.Anything).Return(activities.DriftResult{}, nil)
	env.onTarget("DeployTarget", func(req activities.TargetRequest) (activities.TargetResult, error) {
		return activities.TargetResult{Weight: req.Weight, Undo: &activities.Undo{ArgoCD: &activities.ArgoCDUndo{App: req.Target.Name, HistoryID: 7, HasHistory: true}}}, nil
	})
	env.onTarget("ShiftTraffic", func(req activities.TargetRequest) (activities.TargetResult, error) {
		require.NotNil(t, req.Undo.ArgoCD, "a step continues from the deploy's undo")
		return succeed(req)
	})
	var analyses []time.Time
	env.OnActivity("RunAnalysis", mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.AnalysisRequest) (activities.AnalysisResult, error) {
		require.Equal(t, "production", req.Stage.Name)
		require.Equal(t, "2.0.0", req.Release.Version)
		analyses = append(analyses, env.Now())
		return activities.AnalysisResult{Verdict: analysis.OutcomeSuccessful, Summary: "analysis error-rate successful"}, nil
	})
	in := stageInput(canaryStage(argoTarget("web")))
	in.Analyses = []runbooks.Analysis{errorRate}
	start := env.Now()

	out := env.run(t, in)

	require.Empty(t, out.Error)
	require.Equal(t, []string{"DeployTarget:web:10%", "ShiftTraffic:web:50%", "ShiftTraffic:web:100%"}, env.recorded())
	require.Equal(t, []string{"running@1/10%", "running@1/10%", "running@2/50%", "deployed@3/100%"}, states(out, "web"))
	require.Len(t, analyses, 2, "steps 1 and 2 name an analysis")
	require.GreaterOrEqual(t, analyses[0].Sub(start), 5*time.Minute, "step 1 pauses before its analysis")
	require.Equal(t, []string{"web"}, out.Deployed)
}

func TestStage_CanaryAnalysisFailureFailsTheStageBeforeTheNextWeight(t *testing.T) {
	t.Parallel()
	env := newStageEnv(t)
	env.onTarget("DeployTarget", succeed)
	env.onTarget("ShiftTraffic", succeed)
	env.OnActivity("RunAnalysis", mock.Anything, mock.Anything).Return(activities.AnalysisResult{
		Verdict: analysis.OutcomeFailed,
		Summary: "analysis error-rate failed: 2 of 3 measurements: 0 successful, 2 failed (limit 0), 0 inconclusive",
	}, nil)
	in := stageInput(canaryStage(cmdTarget("web")))
	in.Analyses = []runbooks.Analysis{errorRate}

	out := env.run(t, in)

	require.Equal(t, "stage production: canary step 1 of 3 (weight 10%): analysis error-rate failed: 2 of 3 measurements: 0 successful, 2 failed (limit 0), 0 inconclusive", out.Error)
	require.Equal(t, []string{"DeployTarget:web:10%"}, env.recorded(), "no weight after a failed analysis")
	last := lastProgress(out, "web")
	require.Equal(t, StateRunning, last.State)
	require.True(t, last.needsRollback(), "the canary at 10% must be rolled back")
}

func TestStage_CanaryAnalysisMissingFromTheInputFailsTheStage(t *testing.T) {
	t.Parallel()
	env := newStageEnv(t)
	env.onTarget("DeployTarget", succeed)

	out := env.run(t, stageInput(canaryStage(cmdTarget("web"))))

	require.Contains(t, out.Error, "analysis error-rate is not among the runbook's analyses given to the stage")
}

func TestStage_CanaryAnalysisWithBaselineGetsTheValueMeasuredBeforeTheDeploy(t *testing.T) {
	t.Parallel()
	env := newStageEnv(t)
	var order []string
	env.onTarget("DeployTarget", func(req activities.TargetRequest) (activities.TargetResult, error) {
		order = append(order, "deploy")
		return succeed(req)
	})
	env.onTarget("ShiftTraffic", succeed)
	env.OnActivity("CaptureBaselines", mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.BaselineRequest) (activities.BaselineResult, error) {
		order = append(order, "baseline")
		require.Len(t, req.Analyses, 1)
		return activities.BaselineResult{Baselines: []activities.Baseline{{Analysis: "error-rate", Value: 0.002}}}, nil
	})
	var got []*float64
	env.OnActivity("RunAnalysis", mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.AnalysisRequest) (activities.AnalysisResult, error) {
		got = append(got, req.Baseline)
		return activities.AnalysisResult{Verdict: analysis.OutcomeSuccessful}, nil
	})
	withBaseline := errorRate
	withBaseline.Baseline = true
	in := stageInput(canaryStage(cmdTarget("web")))
	in.Analyses = []runbooks.Analysis{withBaseline}

	out := env.run(t, in)

	require.Empty(t, out.Error)
	require.Equal(t, []string{"baseline", "deploy"}, order)
	require.Len(t, got, 2)
	require.InDelta(t, 0.002, *got[0], 1e-9)
}

func hardwareTarget() runbooks.Target {
	return runbooks.Target{Name: "fleet", Kind: runbooks.KindHardware, Site: "lab", Hardware: &runbooks.HardwareTarget{
		Inventory: "devices.json", Flash: "flash", Probe: "probe", MaxFailureRatio: 0.2,
		Waves: []runbooks.Wave{{Count: 1}, {Percent: 50}, {Rest: true}},
	}}
}

func flashed(ids ...string) *activities.Undo {
	u := &activities.Undo{Hardware: &activities.HardwareUndo{}}
	for _, id := range ids {
		u.Hardware.Devices = append(u.Hardware.Devices, activities.FlashedDevice{ID: id, Address: id + ":80", OK: id != "d3"})
	}
	return u
}

func TestStage_HardwareRunsWaveByWaveAndAWaveOverItsFailureRatioFailsTheTarget(t *testing.T) {
	t.Parallel()
	env := newStageEnv(t)
	env.onTarget("DeployTarget", func(req activities.TargetRequest) (activities.TargetResult, error) {
		switch req.Wave {
		case 0:
			require.Nil(t, req.Undo)
			return activities.TargetResult{Undo: flashed("d1"), Devices: &activities.DeviceProgress{Done: 1, Total: 4, Wave: 0, Waves: 3}}, nil
		default:
			require.Equal(t, flashed("d1"), req.Undo, "the next wave knows what the last one flashed")
			return activities.TargetResult{}, temporal.NewNonRetryableApplicationError(
				"deploy fleet: hardware rollout halted after wave 2: 1 of 2 devices failed (d3), more than the 0.2 allowed", activities.ErrTypeTargetFailed, nil,
				activities.TargetFailure{Undo: flashed("d1", "d2", "d3"), Devices: &activities.DeviceProgress{Done: 3, Failed: 1, Total: 4, Wave: 1, Waves: 3}, Output: "d3 failed: probe exited with status 1"})
		}
	})

	out := env.run(t, stageInput(runbooks.Stage{Name: "production", Targets: []runbooks.Target{hardwareTarget()}}))

	require.Equal(t, "stage production, target fleet: deploy fleet: hardware rollout halted after wave 2: 1 of 2 devices failed (d3), more than the 0.2 allowed", out.Error)
	require.Equal(t, []string{"DeployTarget:fleet:wave1", "DeployTarget:fleet:wave2"}, env.recorded(), "the third wave never starts")
	require.Equal(t, []string{"running", "running@1/4", "failed@3/4"}, states(out, "fleet"))
	last := lastProgress(out, "fleet")
	require.Equal(t, flashed("d1", "d2", "d3"), last.Undo, "the rollback flashes back every device the waves touched")
	require.Equal(t, 1, last.DevicesFailed)
	require.Contains(t, last.Output, "d3 failed")
}

func TestStage_HardwareDeploysEveryPlannedWave(t *testing.T) {
	t.Parallel()
	env := newStageEnv(t)
	env.onTarget("DeployTarget", func(req activities.TargetRequest) (activities.TargetResult, error) {
		done := []int{1, 2, 4}[req.Wave]
		ids := []string{"d1", "d2", "d3", "d4"}[:done]
		return activities.TargetResult{Undo: flashed(ids...), Devices: &activities.DeviceProgress{Done: done, Total: 4, Wave: req.Wave, Waves: 3}}, nil
	})

	out := env.run(t, stageInput(runbooks.Stage{Name: "production", Targets: []runbooks.Target{hardwareTarget()}}))

	require.Empty(t, out.Error)
	require.Equal(t, []string{"DeployTarget:fleet:wave1", "DeployTarget:fleet:wave2", "DeployTarget:fleet:wave3"}, env.recorded())
	require.Equal(t, []string{"running", "running@1/4", "running@2/4", "deployed@4/4"}, states(out, "fleet"))
}

func blueGreenStage(targets ...runbooks.Target) runbooks.Stage {
	return runbooks.Stage{Name: "production", Environment: "production", Targets: targets,
		Strategy: &runbooks.Strategy{Type: runbooks.StrategyBlueGreen, BlueGreen: &runbooks.BlueGreen{RollbackWindow: runbooks.Duration(time.Hour)}},
		Smoke:    []runbooks.HTTPCheck{{Name: "healthz", URL: "https://${TRAINYARD_SIDE}.shop.example/healthz"}}}
}

func greenDeploy(req activities.TargetRequest) (activities.TargetResult, error) {
	if req.Strategy != runbooks.StrategyBlueGreen || req.RollbackWindow != runbooks.Duration(time.Hour) {
		return activities.TargetResult{}, errors.New("the deploy is not told it is blue-green, with its window")
	}
	return activities.TargetResult{Undo: &activities.Undo{Side: activities.SideGreen, LiveSide: activities.SideBlue}}, nil
}

func TestStage_BlueGreenSmokeTestsTheIdleSideThenSwitches(t *testing.T) {
	t.Parallel()
	env := newStageEnv(t)
	env.onTarget("DeployTarget", greenDeploy)
	env.onTarget("ShiftTraffic", func(req activities.TargetRequest) (activities.TargetResult, error) {
		u := *req.Undo
		u.Switched = true
		return activities.TargetResult{Undo: &u}, nil
	})
	env.OnActivity("RunChecks", mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.ChecksRequest) (activities.ChecksResult, error) {
		env.record("RunChecks:" + req.Target + ":" + req.Vars["TRAINYARD_SIDE"])
		return activities.ChecksResult{Passed: true}, nil
	})

	out := env.run(t, stageInput(blueGreenStage(cmdTarget("web"))))

	require.Empty(t, out.Error)
	require.Equal(t, []string{"DeployTarget:web", "RunChecks:web:green", "ShiftTraffic:web:switch"}, env.recorded())
	last := lastProgress(out, "web")
	require.Equal(t, StateDeployed, last.State)
	require.Equal(t, activities.SideGreen, last.Side)
	require.True(t, last.Undo.Switched)
}

func TestStage_BlueGreenFailedSmokeTestFailsTheTargetBeforeTheSwitch(t *testing.T) {
	t.Parallel()
	env := newStageEnv(t)
	env.onTarget("DeployTarget", greenDeploy)
	env.onTarget("ShiftTraffic", succeed)
	env.OnActivity("RunChecks", mock.Anything, mock.Anything).Return(activities.ChecksResult{Passed: false, Results: []activities.CheckResult{
		{Name: "healthz", URL: "https://green.shop.example/healthz", Reason: "1 of 1 requests returned 503, want 200-399"}}}, nil)

	out := env.run(t, stageInput(blueGreenStage(cmdTarget("web"))))

	require.Equal(t, "stage production, target web: smoke test failed: check healthz (https://green.shop.example/healthz) failed: 1 of 1 requests returned 503, want 200-399", out.Error)
	require.Equal(t, []string{"DeployTarget:web"}, env.recorded(), "traffic never switches to a side that failed its smoke test")
	last := lastProgress(out, "web")
	require.Equal(t, StateFailed, last.State)
	require.Equal(t, activities.SideGreen, last.Undo.Side, "the rollback knows which side to tear down")
	require.False(t, last.Undo.Switched)
}

func TestStage_DriftFailsWarnsOrResyncsAsTheTargetSays(t *testing.T) {
	t.Parallel()
	cases := []struct {
		onDrift string
		calls   []string
		err     string
		warning string
	}{
		{onDrift: runbooks.DriftFail, calls: []string{"CheckDrift:web"},
			err: "stage staging, target web: drifted from what the last release left (onDrift: fail): argocd app web is OutOfSync: apps/Deployment/web OutOfSync"},
		{onDrift: "", calls: []string{"CheckDrift:web", "DeployTarget:web"}, warning: "drifted from what the last release left: argocd app web is OutOfSync"},
		{onDrift: runbooks.DriftResync, calls: []string{"CheckDrift:web", "ResyncTarget:web", "DeployTarget:web"}, warning: "drifted, resynced before deploying: argocd app web is OutOfSync"},
	}
	for _, tc := range cases {
		t.Run("onDrift "+tc.onDrift, func(t *testing.T) {
			t.Parallel()
			env := newStageEnv(t)
			env.OnActivity("CheckDrift", mock.Anything, mock.Anything).Return(func(_ context.Context, req activities.TargetRequest) (activities.DriftResult, error) {
				env.record("CheckDrift:" + req.Target.Name)
				return activities.DriftResult{Drifted: true, Detail: "argocd app web is OutOfSync: apps/Deployment/web OutOfSync"}, nil
			})
			env.onTarget("ResyncTarget", succeed)
			env.onTarget("DeployTarget", succeed)
			target := argoTarget("web")
			target.OnDrift = tc.onDrift

			out := env.run(t, stageInput(runbooks.Stage{Name: "staging", Targets: []runbooks.Target{target}}))

			require.Equal(t, tc.calls, env.recorded())
			if tc.err != "" {
				require.Equal(t, tc.err, out.Error)
				return
			}
			require.Empty(t, out.Error)
			require.Contains(t, lastProgress(out, "web").Warning, tc.warning)
		})
	}
}

func TestStage_CommandTargetWithoutDriftCommandIsNotChecked(t *testing.T) {
	t.Parallel()
	env := newStageEnv(t)
	env.onTarget("DeployTarget", succeed)

	env.run(t, stageInput(runbooks.Stage{Name: "staging", Targets: []runbooks.Target{cmdTarget("a")}}))

	require.Equal(t, []string{"DeployTarget:a"}, env.recorded())
}

func TestStage_ExitCriteriaMustPassBeforeTheStageIsDone(t *testing.T) {
	t.Parallel()
	env := newStageEnv(t)
	env.onTarget("DeployTarget", succeed)
	env.OnActivity("RunChecks", mock.Anything, mock.Anything).Return(activities.ChecksResult{Passed: false, Results: []activities.CheckResult{
		{Name: "checkout", URL: "https://shop.example/checkout", Reason: "1 of 1 requests got no response: connection refused"}}}, nil)
	stage := runbooks.Stage{Name: "production", Targets: []runbooks.Target{cmdTarget("a")},
		ExitCriteria: &runbooks.ExitCriteria{Checks: []runbooks.HTTPCheck{{Name: "checkout", URL: "https://shop.example/checkout"}}}}

	out := env.run(t, stageInput(stage))

	require.Equal(t, "stage production: exit criteria: check checkout (https://shop.example/checkout) failed: 1 of 1 requests got no response: connection refused", out.Error)
	require.Equal(t, StateDeployed, lastProgress(out, "a").State, "the target itself deployed; the release rolls it back")
}

func TestStage_CloudTargetsRunOnTheCloudQueueAndSiteTargetsOnTheirSite(t *testing.T) {
	t.Parallel()
	env := newStageEnv(t)
	var mu sync.Mutex
	queues := map[string]string{}
	env.OnActivity("DeployTarget", mock.Anything, mock.Anything).Return(func(ctx context.Context, req activities.TargetRequest) (activities.TargetResult, error) {
		mu.Lock()
		defer mu.Unlock()
		queues[req.Target.Name] = activityQueue(ctx)
		return activities.TargetResult{}, nil
	})
	env.OnActivity("CheckDrift", mock.Anything, mock.Anything).Return(activities.DriftResult{}, nil)
	stage := runbooks.Stage{Name: "s", Targets: []runbooks.Target{
		cmdTarget("cmd"), argoTarget("argo"), hardwareTarget(),
		{Name: "pipe", Kind: runbooks.KindSpinnaker, Spinnaker: &runbooks.SpinnakerTarget{Application: "a", Pipeline: "p"}},
		{Name: "flag", Kind: runbooks.KindFlag, Flag: &runbooks.FlagTarget{Flag: "f", Environment: "e"}},
	}}

	out := env.run(t, stageInput(stage))

	require.Empty(t, out.Error)
	require.Equal(t, map[string]string{
		"cmd": SiteTaskQueue("dc1"), "fleet": SiteTaskQueue("lab"),
		"argo": CloudTaskQueue, "pipe": CloudTaskQueue, "flag": CloudTaskQueue,
	}, queues)
}

func TestNewStageInput_CarriesAnalysesArtifactsAndTheReleaseVariable(t *testing.T) {
	t.Parallel()
	rb := runbooks.Runbook{
		Name:     "shop",
		Analyses: []runbooks.Analysis{errorRate},
		Scope: &runbooks.Scope{Components: []runbooks.Component{
			{Name: "web", Artifact: "registry.example/web@sha256:aaa"},
			{Name: "api", Artifact: "registry.example/api@sha256:bbb"},
		}},
		Stages: []runbooks.Stage{{Name: "staging", Environment: "staging"}, {Name: "production", Environment: "production"}},
	}
	in := ReleaseInput{ID: "release-shop-2.0.0", Runbook: rb, Version: "2.0.0", Requester: requester,
		Components: []Component{{Name: "web", Version: "2.0.0", Artifact: "registry.example/web@sha256:ccc"}}}

	got := newStageInput(in, rb.Stages[0], "1.0.0")

	require.Equal(t, []string{"registry.example/web@sha256:ccc", "registry.example/api@sha256:bbb"}, got.Artifacts, "the request's artifact wins over the runbook's")
	require.Equal(t, []runbooks.Analysis{errorRate}, got.Analyses)
	require.Equal(t, "1.0.0", got.PreviousVersion)
	require.Equal(t, "production", got.Release.Environment)
	require.Equal(t, "ci", got.Release.Requester)
	require.Equal(t, "registry.example/web@sha256:ccc", got.Release.Components[0].Artifact)
}

func TestTargetStatus_ApplyRolloutKeepsTheLatestUndo(t *testing.T) {
	t.Parallel()
	var ts TargetStatus
	first := &activities.Undo{Side: "green"}
	ts.applyRollout(TargetProgress{Step: 1, Steps: 3, Weight: 10, Side: "green", Undo: first})
	ts.applyRollout(TargetProgress{Step: 2, Steps: 3, Weight: 50, Side: "green"})
	require.Equal(t, TargetStatus{Step: 2, Steps: 3, Weight: 50, Side: "green", Undo: first}, ts)

	require.True(t, TargetProgress{State: StateDeployed}.needsRollback())
	require.True(t, TargetProgress{State: StateFailed, Undo: first}.needsRollback())
	require.False(t, TargetProgress{State: StateFailed}.needsRollback())
	require.False(t, TargetProgress{State: StateRunning}.needsRollback())
}

func TestProgressEvent_SaysWhatMovedOnce(t *testing.T) {
	t.Parallel()
	undo := &activities.Undo{}
	cases := []struct {
		p      TargetProgress
		before TargetStatus
		want   string
	}{
		{TargetProgress{Target: "web", State: StateRunning, Step: 2, Steps: 4, Weight: 25, Undo: undo}, TargetStatus{Step: 1, Weight: 5}, "web at canary step 2 of 4, weight 25%"},
		{TargetProgress{Target: "web", State: StateRunning, Step: 2, Steps: 4, Weight: 25, Undo: undo}, TargetStatus{Step: 2, Weight: 25}, ""},
		{TargetProgress{Target: "fleet", State: StateRunning, DevicesDone: 3, DevicesTotal: 10, DevicesFailed: 1}, TargetStatus{DevicesDone: 1}, "fleet: 3 of 10 devices flashed (1 failed)"},
		{TargetProgress{Target: "web", State: StateRunning, Side: "green", Undo: undo}, TargetStatus{}, "web: green side deployed, traffic not switched yet"},
		{TargetProgress{Target: "web", State: StateRunning, Warning: "drifted"}, TargetStatus{}, "web: drifted"},
		{TargetProgress{Target: "web", State: StateDeployed, Weight: 100}, TargetStatus{}, ""},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, progressEvent(tc.p, tc.before))
	}
}

func activityQueue(ctx context.Context) string { return activity.GetInfo(ctx).TaskQueue }
