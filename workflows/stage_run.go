package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/analysis"
	"github.com/trainyard/trainyard/runbooks"
)

// stageRun is one stage since versionRollout. Only the workflow's own coroutines touch it.
type stageRun struct {
	ctx       workflow.Context
	in        StageInput
	log       log.Logger
	parent    *workflow.Execution
	targets   []*targetRun
	baselines map[string]float64
	res       StageResult
	// Progress signals are sent without waiting for each (a round trip through the server
	// apiece); lastOf and lastUndo keep their order where it matters: each target's in the
	// order sent, and those that make a target one to roll back in deploy order. pending are
	// all sent, which the stage waits for before it ends.
	lastOf   map[string]workflow.Future
	lastUndo workflow.Future
	pending  []workflow.Future
}

// targetRun is where one target of the stage stands.
type targetRun struct {
	def runbooks.Target
	// undo is what the target's operations changed so far (non-nil once one succeeded).
	undo        *activities.Undo
	step, steps int
	weight      int
	devices     *activities.DeviceProgress
	side        string
	warning     string
	output      string
	attempts    int32
}

func newStageRun(ctx workflow.Context, in StageInput) *stageRun {
	s := &stageRun{ctx: ctx, in: in, log: workflow.GetLogger(ctx), parent: workflow.GetInfo(ctx).ParentWorkflowExecution,
		baselines: map[string]float64{}, lastOf: map[string]workflow.Future{}}
	for _, t := range in.Stage.Targets {
		s.targets = append(s.targets, &targetRun{def: t})
	}
	return s
}

func (s *stageRun) strategy() runbooks.Strategy {
	if s.in.Stage.Strategy == nil {
		return runbooks.Strategy{Type: runbooks.StrategyRolling}
	}
	return *s.in.Stage.Strategy
}

func (s *stageRun) run() (StageResult, error) {
	err := s.deployAll()
	// The release must have every target's progress before it learns the stage ended.
	for _, f := range s.pending {
		s.settle(s.ctx, f)
	}
	return s.res, err
}

func (s *stageRun) deployAll() error {
	if err := s.captureBaselines(); err != nil {
		return err
	}
	var err error
	switch st := s.strategy(); st.Type {
	case runbooks.StrategyCanary:
		err = s.canary(st.Steps)
	case runbooks.StrategyBlueGreen:
		err = s.blueGreen()
	default:
		err = s.rolling(st.MaxParallel)
	}
	if err == nil {
		err = s.exitCriteria()
	}
	return err
}

// rolling deploys the targets in order, up to maxParallel at once. After a failure no new
// target starts; those already deploying finish, so the release knows what to undo.
func (s *stageRun) rolling(maxParallel int) error {
	n := max(1, maxParallel)
	running := 0
	var firstErr error
	for _, t := range s.targets {
		if err := workflow.Await(s.ctx, func() bool { return running < n || firstErr != nil }); err != nil && firstErr == nil {
			firstErr = err
		}
		if firstErr != nil {
			break
		}
		running++
		workflow.Go(s.ctx, func(ctx workflow.Context) {
			defer func() { running-- }()
			if err := s.deploy(ctx, t, 0); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			s.done(ctx, t)
		})
	}
	// Disconnected: even a cancelled stage waits for its targets' activities to stop.
	wctx, _ := workflow.NewDisconnectedContext(s.ctx)
	_ = workflow.Await(wctx, func() bool { return running == 0 })
	return firstErr
}

// canary deploys every target at the first step's weight (each smoke-tested), then walks the
// steps: set each target's weight, pause, run the step's analysis. A failed analysis fails
// the stage, and the release rolls back.
func (s *stageRun) canary(steps []runbooks.CanaryStep) error {
	if len(steps) == 0 {
		return s.stageFailed("a canary strategy needs steps")
	}
	for _, t := range s.targets {
		t.step, t.steps = 1, len(steps)
		if err := s.deploy(s.ctx, t, steps[0].Weight); err != nil {
			return err
		}
		s.toldDeployed(t)
	}
	for i, step := range steps {
		where := fmt.Sprintf("canary step %d of %d (weight %d%%)", i+1, len(steps), step.Weight)
		for _, t := range s.targets {
			if i > 0 {
				t.step = i + 1
				req := s.request(t)
				req.Weight = step.Weight
				out, err := s.exec(s.ctx, t, acts.ShiftTraffic, req)
				if err != nil {
					return s.targetFailed(s.ctx, t, err, where+": ")
				}
				s.took(t, out)
				t.weight = step.Weight
			}
			switch {
			case step.Weight == 100:
				s.done(s.ctx, t)
			case i > 0:
				s.tell(s.ctx, t, StateRunning)
			}
		}
		if step.Pause > 0 {
			if err := workflow.Sleep(s.ctx, step.Pause.D()); err != nil {
				return err
			}
		}
		if step.Analysis != "" {
			if err := s.analyse(step.Analysis, where); err != nil {
				return err
			}
		}
	}
	return nil
}

// blueGreen deploys every target's idle side and smoke-tests it, then switches each to it.
// The old side is the targets' to keep for the rollback window (TRAINYARD_ROLLBACK_WINDOW).
func (s *stageRun) blueGreen() error {
	for _, t := range s.targets {
		if err := s.deploy(s.ctx, t, 0); err != nil {
			return err
		}
		s.toldDeployed(t)
	}
	for _, t := range s.targets {
		req := s.request(t)
		req.Switch = true
		out, err := s.exec(s.ctx, t, acts.ShiftTraffic, req)
		if err != nil {
			return s.targetFailed(s.ctx, t, err, "switch to the "+t.side+" side: ")
		}
		s.took(t, out)
		s.done(s.ctx, t)
	}
	return nil
}

// deploy checks a target for drift, deploys it (a rolling hardware target wave by wave) and
// smoke-tests it. weight is a canary's first weight, 0 otherwise.
func (s *stageRun) deploy(ctx workflow.Context, t *targetRun, weight int) error {
	t.weight = weight
	s.tell(ctx, t, StateRunning)
	if err := s.drift(ctx, t); err != nil {
		return err
	}
	req := s.request(t)
	req.Weight = weight
	for wave := 0; ; wave++ {
		req.Wave, req.Undo = wave, t.undo
		out, err := s.exec(ctx, t, acts.DeployTarget, req)
		if err != nil {
			return s.targetFailed(ctx, t, err, "")
		}
		s.took(t, out)
		if t.def.Kind != runbooks.KindHardware || weight > 0 || out.Devices == nil || wave+1 >= out.Devices.Waves {
			break
		}
		s.tell(ctx, t, StateRunning)
	}
	if len(s.in.Stage.Smoke) > 0 {
		// Told first: the release must know the target has something to undo before a
		// failed smoke test stops the stage.
		s.tell(ctx, t, StateRunning)
		return s.smoke(ctx, t)
	}
	return nil
}

// toldDeployed tells the release that a target deployed but not yet at full traffic (a
// canary's first weight, a blue-green idle side) has something to undo, unless its smoke test
// already did.
func (s *stageRun) toldDeployed(t *targetRun) {
	if len(s.in.Stage.Smoke) == 0 {
		s.tell(s.ctx, t, StateRunning)
	}
}

// done marks a target deployed, with its full traffic.
func (s *stageRun) done(ctx workflow.Context, t *targetRun) {
	s.res.Deployed = append(s.res.Deployed, t.def.Name)
	s.tell(ctx, t, StateDeployed)
}

// drift compares an argocd target, or a command target with a drift command, with what the
// last release left, and does what its onDrift says.
func (s *stageRun) drift(ctx workflow.Context, t *targetRun) error {
	if t.def.Kind != runbooks.KindArgoCD && (t.def.Kind != runbooks.KindCommand || t.def.Drift == "") {
		return nil
	}
	var d activities.DriftResult
	if err := workflow.ExecuteActivity(targetActivityContext(ctx, t.def), acts.CheckDrift, s.request(t)).Get(ctx, &d); err != nil {
		return s.targetFailed(ctx, t, err, "drift check: ")
	}
	if !d.Drifted {
		return nil
	}
	switch t.def.DriftActionOrDefault() {
	case runbooks.DriftFail:
		return s.failTarget(ctx, t, "drifted from what the last release left (onDrift: fail): "+d.Detail)
	case runbooks.DriftResync:
		t.warning = "drifted, resynced before deploying: " + d.Detail
		s.tell(ctx, t, StateRunning)
		if _, err := s.exec(ctx, t, acts.ResyncTarget, s.request(t)); err != nil {
			return s.targetFailed(ctx, t, err, "resync: ")
		}
	default:
		t.warning = "drifted from what the last release left: " + d.Detail
		s.tell(ctx, t, StateRunning)
	}
	return nil
}

// smoke runs the stage's smoke tests against a target just deployed; a failure fails it.
func (s *stageRun) smoke(ctx workflow.Context, t *targetRun) error {
	req := activities.ChecksRequest{ReleaseID: s.in.ReleaseID, Stage: s.in.Stage.Name, Target: t.def.Name, Checks: s.in.Stage.Smoke, Vars: s.vars(t)}
	var res activities.ChecksResult
	if err := workflow.ExecuteActivity(checksContext(ctx, s.in.Stage.Smoke), acts.RunChecks, req).Get(ctx, &res); err != nil {
		return s.targetFailed(ctx, t, err, "smoke test: ")
	}
	if !res.Passed {
		return s.failTarget(ctx, t, "smoke test failed: "+res.Failure())
	}
	return nil
}

// exitCriteria runs the stage's exit checks and analyses once its targets are deployed.
func (s *stageRun) exitCriteria() error {
	ec := s.in.Stage.ExitCriteria
	if ec == nil {
		return nil
	}
	if len(ec.Checks) > 0 {
		req := activities.ChecksRequest{ReleaseID: s.in.ReleaseID, Stage: s.in.Stage.Name, Checks: ec.Checks, Vars: s.vars(nil)}
		var res activities.ChecksResult
		if err := workflow.ExecuteActivity(checksContext(s.ctx, ec.Checks), acts.RunChecks, req).Get(s.ctx, &res); err != nil {
			return s.stageError(err, "exit criteria: ")
		}
		if !res.Passed {
			return s.stageFailed("exit criteria: " + res.Failure())
		}
	}
	for _, name := range ec.Analyses {
		if err := s.analyse(name, "exit criteria"); err != nil {
			return err
		}
	}
	return nil
}

// analyse runs one of the runbook's analyses; anything but a successful run fails the stage.
func (s *stageRun) analyse(name, where string) error {
	an, ok := s.analysis(name)
	if !ok {
		return s.stageFailed(fmt.Sprintf("%s: analysis %s is not among the runbook's analyses given to the stage", where, name))
	}
	req := activities.AnalysisRequest{ReleaseID: s.in.ReleaseID, Analysis: an, Release: s.releaseVar(),
		Stage: activities.StageVar{Name: s.in.Stage.Name, Environment: s.in.Stage.Environment, Region: s.in.Stage.Region}}
	if v, ok := s.baselines[name]; ok {
		req.Baseline = &v
	}
	var out activities.AnalysisResult
	if err := workflow.ExecuteActivity(analysisContext(s.ctx, an), acts.RunAnalysis, req).Get(s.ctx, &out); err != nil {
		return s.stageError(err, where+": analysis "+name+" could not run: ")
	}
	if out.Verdict != analysis.OutcomeSuccessful {
		return s.stageFailed(where + ": " + out.Summary)
	}
	s.log.Info("analysis passed", "analysis", name, "where", where, "summary", out.Summary)
	return nil
}

// captureBaselines measures, before anything deploys, the analyses of this stage that
// compare with a baseline.
func (s *stageRun) captureBaselines() error {
	var names []string
	add := func(name string) {
		for _, n := range names {
			if n == name {
				return
			}
		}
		if an, ok := s.analysis(name); ok && an.Baseline {
			names = append(names, name)
		}
	}
	if st := s.in.Stage.Strategy; st != nil {
		for _, step := range st.Steps {
			if step.Analysis != "" {
				add(step.Analysis)
			}
		}
	}
	if ec := s.in.Stage.ExitCriteria; ec != nil {
		for _, name := range ec.Analyses {
			add(name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	req := activities.BaselineRequest{ReleaseID: s.in.ReleaseID}
	for _, name := range names {
		an, _ := s.analysis(name)
		req.Analyses = append(req.Analyses, an)
	}
	var out activities.BaselineResult
	bctx := workflow.WithActivityOptions(s.ctx, workflow.ActivityOptions{
		TaskQueue:           TaskQueue,
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 5},
	})
	if err := workflow.ExecuteActivity(bctx, acts.CaptureBaselines, req).Get(s.ctx, &out); err != nil {
		return s.stageError(err, "baselines: ")
	}
	for _, b := range out.Baselines {
		if b.Error != "" {
			return s.stageFailed(fmt.Sprintf("the baseline of analysis %s could not be measured before the stage: %s", b.Analysis, b.Error))
		}
		s.baselines[b.Analysis] = b.Value
	}
	return nil
}

func (s *stageRun) analysis(name string) (runbooks.Analysis, bool) {
	for _, a := range s.in.Analyses {
		if a.Name == name {
			return a, true
		}
	}
	return runbooks.Analysis{}, false
}

func (s *stageRun) releaseVar() activities.ReleaseVar {
	if s.in.Release != nil {
		return *s.in.Release
	}
	return activities.ReleaseVar{Version: s.in.Version, Components: []activities.ComponentFact{}}
}

// request is the activity request of an operation on t, as things stand.
func (s *stageRun) request(t *targetRun) activities.TargetRequest {
	req := activities.TargetRequest{
		ReleaseID: s.in.ReleaseID, Runbook: s.in.Runbook, Stage: s.in.Stage.Name, Environment: s.in.Stage.Environment,
		Target: t.def, Version: s.in.Version, PreviousVersion: s.in.PreviousVersion,
		Artifacts: s.in.Artifacts, Undo: t.undo,
	}
	if st := s.in.Stage.Strategy; st != nil {
		req.Strategy = st.Type
		if st.Type == runbooks.StrategyBlueGreen && st.BlueGreen != nil {
			req.RollbackWindow = st.BlueGreen.RollbackWindow
		}
	}
	return req
}

// vars are what check URLs may name: the release's facts and, for a target, its name and
// the blue-green side it deployed.
func (s *stageRun) vars(t *targetRun) map[string]string {
	v := map[string]string{
		"TRAINYARD_RELEASE": s.in.ReleaseID, "TRAINYARD_RUNBOOK": s.in.Runbook, "TRAINYARD_STAGE": s.in.Stage.Name,
		"TRAINYARD_ENVIRONMENT": s.in.Stage.Environment, "TRAINYARD_VERSION": s.in.Version,
	}
	if t != nil {
		v["TRAINYARD_TARGET"] = t.def.Name
		if t.side != "" {
			v["TRAINYARD_SIDE"] = t.side
		}
	}
	return v
}

func (s *stageRun) exec(ctx workflow.Context, t *targetRun, fn any, req activities.TargetRequest) (activities.TargetResult, error) {
	var out activities.TargetResult
	err := workflow.ExecuteActivity(targetActivityContext(ctx, t.def), fn, req).Get(ctx, &out)
	return out, err
}

// took records what an operation left: from now on the target has something to undo.
func (s *stageRun) took(t *targetRun, out activities.TargetResult) {
	t.undo = out.Undo
	if t.undo == nil {
		t.undo = &activities.Undo{}
	}
	if out.Weight > 0 {
		t.weight = out.Weight
	}
	if out.Devices != nil {
		d := *out.Devices
		t.devices = &d
	}
	t.side = t.undo.Side
	t.output, t.attempts = out.Output, out.Attempt
}

// targetFailed tells the release a target's operation failed (or was cancelled), with what
// it changed on the way, and ends the stage.
func (s *stageRun) targetFailed(ctx workflow.Context, t *targetRun, err error, what string) error {
	var fail activities.TargetFailure
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.HasDetails() && appErr.Details(&fail) == nil {
		t.output, t.attempts = fail.Output, fail.Attempt
		if fail.Undo != nil {
			t.undo = fail.Undo
			t.side = fail.Undo.Side
		}
		if fail.Devices != nil {
			d := *fail.Devices
			t.devices = &d
		}
	}
	if temporal.IsCanceledError(err) {
		s.tellFailed(ctx, t, StateCancelled, "cancelled: the release was aborted while this target deployed")
		return err
	}
	return s.failTarget(ctx, t, what+errorMessage(err))
}

// failTarget tells the release the target failed for why, and fails the stage.
func (s *stageRun) failTarget(ctx workflow.Context, t *targetRun, why string) error {
	s.tellFailed(ctx, t, StateFailed, why)
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("stage %s, target %s: %s", s.in.Stage.Name, t.def.Name, why), ErrTypeStageFailed, nil, s.res)
}

// stageError fails the stage for an activity's error (a cancellation stays one).
func (s *stageRun) stageError(err error, what string) error {
	if temporal.IsCanceledError(err) {
		return err
	}
	return s.stageFailed(what + errorMessage(err))
}

func (s *stageRun) stageFailed(why string) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("stage %s: %s", s.in.Stage.Name, why), ErrTypeStageFailed, nil, s.res)
}

func (s *stageRun) tellFailed(ctx workflow.Context, t *targetRun, state, why string) {
	p := s.progress(ctx, t, state)
	p.Error, p.Output, p.Attempts = why, t.output, t.attempts
	s.signal(ctx, p)
}

// tell sends the release a target's state with where it stands.
func (s *stageRun) tell(ctx workflow.Context, t *targetRun, state string) {
	p := s.progress(ctx, t, state)
	if state == StateDeployed {
		p.Output, p.Attempts = t.output, t.attempts
	}
	s.signal(ctx, p)
}

func (s *stageRun) progress(ctx workflow.Context, t *targetRun, state string) TargetProgress {
	p := TargetProgress{
		Stage: s.in.Stage.Name, Target: t.def.Name, State: state, At: workflow.Now(ctx),
		Step: t.step, Steps: t.steps, Weight: t.weight, Side: t.side, Warning: t.warning, Undo: t.undo,
	}
	if d := t.devices; d != nil {
		p.DevicesDone, p.DevicesFailed, p.DevicesTotal = d.Done, d.Failed, d.Total
	}
	return p
}

// signal sends the release a progress without waiting for it to arrive, so it leaves in the
// same workflow task as the activity that follows. It first waits for the target's previous
// progress (a target's states arrive in order) and, for a progress that makes the target one
// to roll back, for the previous such progress (the release rolls back in deploy order).
// Those were sent an activity ago, so they have usually arrived and waiting costs nothing.
func (s *stageRun) signal(ctx workflow.Context, p TargetProgress) {
	if s.parent == nil {
		return
	}
	s.settle(ctx, s.lastOf[p.Target])
	undo := p.needsRollback()
	if undo {
		s.settle(ctx, s.lastUndo)
	}
	// Disconnected: the parent must hear about a target even while this stage is being
	// cancelled, or it would not roll that target back.
	sctx, _ := workflow.NewDisconnectedContext(ctx)
	f := workflow.SignalExternalWorkflow(sctx, s.parent.ID, s.parent.RunID, SignalTargetProgress, p)
	s.lastOf[p.Target] = f
	if undo {
		s.lastUndo = f
	}
	s.pending = append(s.pending, f)
}

// settle waits until a progress signal has arrived (or could not be sent). ctx must be the
// calling coroutine's.
func (s *stageRun) settle(ctx workflow.Context, f workflow.Future) {
	if f == nil {
		return
	}
	sctx, _ := workflow.NewDisconnectedContext(ctx)
	if err := f.Get(sctx, nil); err != nil {
		s.log.Error("tell release about a target", "error", err)
	}
}

// checksContext is for smoke tests and exit checks: probed from the main queue, each check
// bounded by its timeout, retried when the probe itself broke.
func checksContext(ctx workflow.Context, checks []runbooks.HTTPCheck) workflow.Context {
	total := time.Minute
	for _, c := range checks {
		total += max(c.Timeout.D(), 10*time.Second)
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           TaskQueue,
		StartToCloseTimeout: total,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumAttempts: 3},
	})
}

// analysisContext is for an analysis run: Count measurements Interval apart, heartbeating
// between them, resumed from its tally after a lost worker.
func analysisContext(ctx workflow.Context, an runbooks.Analysis) workflow.Context {
	interval := an.Interval.D()
	if interval <= 0 {
		interval = activities.DefaultAnalysisInterval
	}
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           TaskQueue,
		StartToCloseTimeout: time.Duration(max(1, an.Count))*interval + 5*time.Minute,
		HeartbeatTimeout:    time.Minute,
		WaitForCancellation: true,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 5},
	})
}
