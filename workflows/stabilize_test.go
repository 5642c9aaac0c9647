package workflows

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/analysis"
	"github.com/trainyard/trainyard/integrations/command"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
)

// The suite's fakeStore keeps incidents, markers and circuit breakers here, by store.
type incidentMem struct {
	mu        sync.Mutex
	incidents map[string]store.Incident
	markers   []store.Marker
	breakers  []store.CircuitBreaker
}

var incidentMems sync.Map

func (f *fakeStore) inc() *incidentMem {
	v, _ := incidentMems.LoadOrStore(f, &incidentMem{incidents: map[string]store.Incident{}})
	return v.(*incidentMem)
}

func (f *fakeStore) RecordIncident(_ context.Context, in store.Incident) error {
	m := f.inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.incidents[in.ReleaseID]
	if old.Breach != nil {
		in.Breach = old.Breach
	}
	// As the store does: a status write older than the stored one changes nothing.
	if in.Status == nil || in.StatusSeq <= old.StatusSeq {
		in.Status, in.StatusSeq = old.Status, old.StatusSeq
	}
	m.incidents[in.ReleaseID] = in
	return nil
}

func (f *fakeStore) AddSeries(context.Context, string, []store.Series) error { return nil }

func (f *fakeStore) StartMarker(_ context.Context, mk store.Marker) (store.Marker, error) {
	m := f.inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	mk.ID = int64(len(m.markers) + 1)
	m.markers = append(m.markers, mk)
	return mk, nil
}

func (f *fakeStore) EndMarker(_ context.Context, mk store.Marker) (store.Marker, error) {
	m := f.inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	mk.ID = int64(len(m.markers) + 1)
	m.markers = append(m.markers, mk)
	return mk, nil
}

func (f *fakeStore) SetMarkerAnnotation(context.Context, int64, int64) error { return nil }

func (f *fakeStore) TripBreaker(_ context.Context, b store.CircuitBreaker) (store.CircuitBreaker, error) {
	m := f.inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.breakers = append(m.breakers, b)
	return b, nil
}

func (f *fakeStore) OpenBreakers(_ context.Context, runbook string, envs []string) ([]store.CircuitBreaker, error) {
	m := f.inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.CircuitBreaker
	for _, b := range m.breakers {
		if b.Open() && (b.Scope == store.BreakerRunbook && b.Name == runbook || b.Scope == store.BreakerEnvironment && slices.Contains(envs, b.Name)) {
			out = append(out, b)
		}
	}
	return out, nil
}

func (f *fakeStore) clearBreakers() {
	m := f.inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	for i := range m.breakers {
		m.breakers[i].ClearedBy, m.breakers[i].ClearedAt = "alice", &now
	}
}

// markerLog is the markers recorded, as "deploy:production:start" or ":end:<outcome>".
func (f *fakeStore) markerLog() []string {
	m := f.inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, mk := range m.markers {
		s := mk.Action + ":" + mk.Stage
		if mk.EndedAt == nil {
			s += ":start"
		} else {
			s += ":end:" + mk.Outcome
		}
		out = append(out, s)
	}
	return out
}

func (f *fakeStore) auditActions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.audit {
		out = append(out, e.Action)
	}
	return out
}

const errorRateQuery = `sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))`

// watched turns the suite's runbook into one whose window watches an analysis and the SLO.
func (s *ReleaseSuite) watched(window time.Duration, onBreach string) {
	rb := &s.input.Runbook
	rb.Approvals = nil
	rb.Analyses = []runbooks.Analysis{{Name: "error-rate", Provider: "prometheus", Query: errorRateQuery,
		FailureCondition: "result.value > 0.05", Interval: runbooks.Duration(30 * time.Second), Baseline: true}}
	rb.Stabilization = runbooks.Stabilization{
		Window: runbooks.Duration(window), Analyses: []string{"error-rate"}, OnBreach: onBreach,
		SLO: &runbooks.SLO{Objective: 99.9, ErrorRatio: errorRateQuery},
	}
	rb.RollbackAuthority = []string{"release-manager"}
	s.env.OnActivity("CaptureBaselines", mock.Anything, mock.Anything).Return(activities.BaselineResult{
		Baselines: []activities.Baseline{{Analysis: "error-rate", Value: 0.002}}}, nil)
}

// watchAnswers mocks the watch: each slice takes its length on the workflow clock, and the
// slice numbered breachAt (from 1; 0 never) breaches.
func (s *ReleaseSuite) watchAnswers(breachAt int) *[]activities.WatchRequest {
	var mu sync.Mutex
	var reqs []activities.WatchRequest
	s.env.OnActivity("WatchStabilization", mock.Anything, mock.Anything).Return(
		func(_ context.Context, req activities.WatchRequest) (activities.WatchResult, error) {
			mu.Lock()
			reqs = append(reqs, req)
			n := len(reqs)
			mu.Unlock()
			v := 0.001
			res := activities.WatchResult{Next: req.SliceUntil.Add(time.Second), Evaluations: 10, Done: req.SliceUntil.Equal(req.Until),
				State: analysis.WatchState{Runs: map[string]analysis.RunState{"error-rate": {Analysis: "error-rate", Successes: n}}}}
			if n == breachAt {
				v = 0.4
				res.Done = false
				res.Breach = &analysis.Breach{Check: "error-rate", Kind: analysis.KindAnalysis, Message: "failureCondition holds for value 0.4", At: req.SliceUntil}
			}
			res.Last = &analysis.Evaluation{At: req.SliceUntil, Breach: res.Breach, Checks: []analysis.CheckState{
				{Name: "error-rate", Kind: analysis.KindAnalysis, Value: v, Limit: "fails when result.value > 0.05", OK: res.Breach == nil},
				{Name: "slo burn 1h/5m", Kind: analysis.KindBurn, Value: analysisNaN(), Limit: "14.4x over 1h and 5m", OK: true},
			}}
			return res, nil
		}).After(maxWatchSlice)
	return &reqs
}

func analysisNaN() float64 {
	var zero float64
	return zero / zero
}

// whenPhase runs fn once the release reaches phase.
func (s *ReleaseSuite) whenPhase(phase Phase, fn func()) {
	var poll func()
	poll = func() {
		if s.status().Phase == phase {
			fn()
			return
		}
		s.env.RegisterDelayedCallback(poll, time.Second)
	}
	s.env.RegisterDelayedCallback(poll, time.Second)
}

func refused(into *error) *testsuite.TestUpdateCallback {
	return &testsuite.TestUpdateCallback{
		OnAccept: func() {}, OnReject: func(err error) { *into = err }, OnComplete: func(any, error) {},
	}
}

func (s *ReleaseSuite) TestStabilization_A24HourWindowPassesInSlicesAndShowsEveryCheck() {
	s.watched(24*time.Hour, "")
	reqs := s.watchAnswers(0)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	s.Len(*reqs, 24*60/5, "one activity per 5-minute slice, not one per sample")
	first, last := (*reqs)[0], (*reqs)[len(*reqs)-1]
	s.Equal(map[string]float64{"error-rate": 0.002}, first.Baselines, "the baseline measured before production")
	s.Equal(30*time.Second, first.Interval)
	s.Equal(last.Until, last.SliceUntil)
	s.Equal(len(*reqs)-1, last.State.Runs["error-rate"].Successes, "each slice carries on from the one before")
	s.Require().Len(st.Checks, 2)
	s.Equal(0.001, *st.Checks[0].Value)
	s.True(st.Checks[0].OK)
	s.Nil(st.Checks[1].Value, "no data is no value, not NaN")
	s.Require().Len(st.Baselines, 1)
	s.Equal(0.002, *st.Baselines[0].Value)
	// Markers are written in the background and may land in any order.
	s.ElementsMatch([]string{
		"deploy:staging:start", "deploy:staging:end:succeeded", "deploy:production:start", "deploy:production:end:succeeded",
	}, s.store.markerLog())
	// The whole window, each slice a few events: far under Temporal's limits.
	s.Less(len(*reqs)*6, 10_000)
}

func (s *ReleaseSuite) TestStabilization_BreachRollsBackAtOnceKeepsEvidenceAndTripsTheBreaker() {
	s.watched(time.Hour, "")
	s.input.Runbook.Rollback = &runbooks.Rollback{Budget: runbooks.Duration(15 * time.Minute), CircuitBreaker: &runbooks.CircuitBreaker{Scope: "runbook"}}
	s.watchAnswers(3)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	st := s.result()
	s.Equal(PhaseRolledBack, st.Phase)
	s.Contains(st.Failure, "stabilization breached: error-rate: failureCondition holds for value 0.4")
	s.Require().NotNil(st.Breach)
	s.Equal(OnBreachRollback, st.Breach.OnBreach)
	s.Nil(st.Breach.PagedAt)
	s.Equal([]string{
		"deploy:stg-a", "deploy:stg-b", "deploy:prod-a", "deploy:prod-b",
		"rollback:prod-b", "rollback:prod-a", "rollback:stg-b", "rollback:stg-a",
	}, s.ops())
	s.Require().NotNil(st.Rollback)
	s.Equal(ScopeRelease, st.Rollback.Scope)
	s.Len(st.Rollback.Steps, 4)
	s.Nil(st.Rollback.BudgetExceededAt)
	s.Equal([]string{"runbook/shop"}, st.Rollback.CircuitBreakers)
	s.False(st.Checks[0].OK)

	inc := s.store.inc()
	s.Require().Contains(inc.incidents, s.input.ID)
	s.Contains(string(inc.incidents[s.input.ID].Breach), "error-rate")
	s.Contains(string(inc.incidents[s.input.ID].Status), `"phase":"rolled_back"`, "the final status is kept")
	s.Require().Len(inc.breakers, 1)
	s.Equal(s.input.ID, inc.breakers[0].ReleaseID)
	s.Equal([]string{"release-manager"}, inc.breakers[0].Roles)
	s.Contains(s.store.auditActions(), "release.breach")
	s.Contains(s.store.auditActions(), "circuit-breaker.trip")
	s.Subset(s.store.markerLog(), []string{"rollback:production:start", "rollback:production:end:succeeded", "rollback:staging:end:succeeded"})
}

func (s *ReleaseSuite) TestStabilization_PageWaitsForTheAuthorityWhoFixesForward() {
	s.watched(time.Hour, OnBreachPage)
	s.input.Runbook.Rollback = &runbooks.Rollback{ForwardFix: true}
	s.watchAnswers(2)
	var outsider, noReason error
	s.whenPhase(PhaseBreached, func() {
		s.NotNil(s.status().Breach.PagedAt)
		s.env.UpdateWorkflow(UpdateFixForward, "ff/bob", refused(&outsider), OperatorRequest{Actor: bob, Reason: "I can fix it"})
		s.env.UpdateWorkflow(UpdateFixForward, "ff/alice0", refused(&noReason), OperatorRequest{Actor: alice})
		s.env.RegisterDelayedCallback(func() {
			s.env.UpdateWorkflow(UpdateFixForward, "ff/alice", accepted(s.T()), OperatorRequest{Actor: alice, Reason: "2.0.1 ships the fix in 10 minutes"})
		}, 20*time.Minute)
	})

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().Error(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseFailed, st.Phase)
	s.Contains(st.Failure, "alice chose to fix forward: 2.0.1 ships the fix in 10 minutes")
	s.Equal([]string{"deploy:stg-a", "deploy:stg-b", "deploy:prod-a", "deploy:prod-b"}, s.ops(), "nothing is rolled back")
	s.Nil(st.Rollback)
	s.Require().NotNil(st.Breach.Decision)
	s.Equal("alice", st.Breach.Decision.Actor)
	s.Equal(DecisionFixForward, st.Breach.Decision.Decision)
	s.Require().Error(outsider)
	s.Contains(outsider.Error(), "needs one of the roles release-manager")
	s.Require().Error(noReason)
	s.Contains(noReason.Error(), "a reason is required")
	s.Contains(s.store.auditActions(), "release.breach")
	s.Require().NotEmpty(s.store.decisions)
	last := s.store.decisions[len(s.store.decisions)-1]
	s.Equal(store.DecisionRecord{ReleaseID: s.input.ID, Gate: breachGate, Actor: "alice", Decision: DecisionFixForward,
		Comment: "2.0.1 ships the fix in 10 minutes", DecidedAt: last.DecidedAt}, last)
	s.Empty(s.store.inc().breakers, "a fixed-forward release trips no breaker")
}

func (s *ReleaseSuite) TestStabilization_PagedAuthorityOrdersTheRollback() {
	s.watched(time.Hour, OnBreachPage)
	s.watchAnswers(1)
	var notAllowed error
	s.whenPhase(PhaseBreached, func() {
		s.env.UpdateWorkflow(UpdateFixForward, "ff/alice", refused(&notAllowed), OperatorRequest{Actor: alice, Reason: "x"})
		s.env.UpdateWorkflow(UpdateRollback, "rollback/alice", accepted(s.T()), OperatorRequest{Actor: alice, Reason: "errors at 40%"})
	})

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	st := s.result()
	s.Equal(PhaseRolledBack, st.Phase)
	s.Contains(st.Failure, "alice ordered the rollback: errors at 40%")
	s.Equal(DecisionRollback, st.Breach.Decision.Decision)
	s.Equal("alice", st.Rollback.OrderedBy.Actor)
	s.Require().Error(notAllowed)
	s.Contains(notAllowed.Error(), "does not allow fixing forward")
	s.Contains(s.ops(), "rollback:stg-a")
}

func (s *ReleaseSuite) TestRollbackOrder_DuringTheWindowRollsBackAsRolledBack() {
	s.watched(time.Hour, "")
	s.watchAnswers(0)
	s.whenPhase(PhaseStabilizing, func() {
		s.env.UpdateWorkflow(UpdateRollback, "rollback/alice", accepted(s.T()), OperatorRequest{Actor: alice, Reason: "support tickets piling up"})
	})

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	st := s.result()
	s.Equal(PhaseRolledBack, st.Phase)
	s.Equal("rollback ordered by alice: support tickets piling up", st.Failure)
	s.Nil(st.Breach)
	s.Len(st.Rollback.Steps, 4)
	s.Equal(rollbackGate, s.store.decisions[len(s.store.decisions)-1].Gate)
}

func (s *ReleaseSuite) TestRollbackOrder_WhileDeployingStopsTheStageAndUndoesWhatFinished() {
	s.input.Runbook.Approvals = nil
	s.runner.RunFunc = func(ctx context.Context, spec command.Spec) (command.Result, error) {
		if env(spec, "TRAINYARD_TARGET") == "prod-a" && env(spec, "TRAINYARD_OPERATION") == "deploy" {
			<-ctx.Done()
			return command.Result{}, ctx.Err()
		}
		return command.Result{}, nil
	}
	var early error
	s.env.RegisterDelayedCallback(func() {
		// Before anything deployed: nothing to roll back.
		s.env.UpdateWorkflow(UpdateRollback, "early", refused(&early), OperatorRequest{Actor: alice, Reason: "x"})
	}, 0)
	var poll func()
	poll = func() {
		if st := s.status(); st.Stages[1].Targets[0].State == StateRunning {
			s.env.UpdateWorkflow(UpdateRollback, "rollback/alice", accepted(s.T()), OperatorRequest{Actor: alice, Reason: "wrong build"})
			return
		}
		s.env.RegisterDelayedCallback(poll, time.Second)
	}
	s.env.RegisterDelayedCallback(poll, time.Second)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	st := s.result()
	s.Equal(PhaseRolledBack, st.Phase)
	s.Equal("rollback ordered by alice: wrong build", st.Failure)
	s.Equal([]string{"deploy:stg-a", "deploy:stg-b", "deploy:prod-a", "rollback:stg-b", "rollback:stg-a"}, s.ops())
	s.Require().Error(early)
	s.Contains(early.Error(), "deployed nothing yet")
	s.Contains(s.store.markerLog(), "deploy:production:end:cancelled")
}

func (s *ReleaseSuite) TestRollbackOrder_RefusedForOthersAndAfterTheEnd() {
	s.input.Runbook.Approvals = nil
	var outsider error
	s.whenPhase(PhaseStabilizing, func() {
		s.env.UpdateWorkflow(UpdateRollback, "rollback/bob", refused(&outsider), OperatorRequest{Actor: bob, Reason: "x"})
	})

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Equal(PhaseSucceeded, s.result().Phase)
	s.Require().Error(outsider)
	s.Contains(outsider.Error(), "bob cannot order a rollback")
	s.Equal(StateDeployed, s.result().Stages[1].Targets[1].State)
}

func (s *ReleaseSuite) TestRollbackScope_StageUndoesOnlyTheFailingStage() {
	s.failProdB()
	s.input.Runbook.Rollback = &runbooks.Rollback{Scope: ScopeStage}

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	st := s.result()
	s.Equal(PhaseRolledBack, st.Phase)
	s.Equal([]string{"deploy:stg-a", "deploy:stg-b", "deploy:prod-a", "deploy:prod-b", "rollback:prod-a"}, s.ops())
	s.Equal(ScopeStage, st.Rollback.Scope)
	s.Equal(StateDeployed, st.Stages[0].Targets[0].State, "staging stays")
}

func (s *ReleaseSuite) TestRollbackScope_TargetUndoesOnlyTheFailedTarget() {
	s.failProdB()
	s.input.Runbook.Rollback = &runbooks.Rollback{Scope: ScopeTarget}

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	st := s.result()
	s.Equal([]string{"deploy:stg-a", "deploy:stg-b", "deploy:prod-a", "deploy:prod-b", "rollback:prod-b"}, s.ops())
	s.Equal(StateRolledBack, st.Stages[1].Targets[1].State)
	s.Equal(StateDeployed, st.Stages[1].Targets[0].State)
}

func (s *ReleaseSuite) failProdB() {
	s.input.Runbook.Approvals = nil
	s.runner.RunFunc = func(_ context.Context, spec command.Spec) (command.Result, error) {
		if env(spec, "TRAINYARD_TARGET") == "prod-b" && env(spec, "TRAINYARD_OPERATION") == "deploy" {
			return command.Result{ExitCode: 1, Output: "boom\n"}, &command.ExitError{ExitCode: 1, Output: "boom\n"}
		}
		return command.Result{Output: "ok\n"}, nil
	}
}

func (s *ReleaseSuite) TestRollbackBudget_ExceededIsInTheStatusAuditAndEscalated() {
	s.failProdB()
	s.input.Runbook.Rollback = &runbooks.Rollback{Budget: runbooks.Duration(5 * time.Minute)}
	s.env.OnActivity("RollbackTarget", mock.Anything, mock.Anything).Return(activities.TargetResult{Output: "restored"}, nil).After(4 * time.Minute)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	st := s.result()
	s.Equal(PhaseRolledBack, st.Phase)
	s.Require().NotNil(st.Rollback.BudgetExceededAt)
	s.Equal(5*time.Minute, st.Rollback.BudgetExceededAt.Sub(st.Rollback.StartedAt))
	s.Contains(s.store.auditActions(), "release."+activities.NotifyRollbackBudget)
	var timeline []string
	for _, e := range st.Timeline {
		timeline = append(timeline, e.Message)
	}
	s.Contains(strings.Join(timeline, "\n"), "rollback still running after its budget of 5m0s: escalated to release-manager")
	s.Contains(strings.Join(timeline, "\n"), "over its budget of 5m0s")
}

func (s *ReleaseSuite) TestRollbackBudget_WithinItNothingEscalates() {
	s.failProdB()
	s.input.Runbook.Rollback = &runbooks.Rollback{Budget: runbooks.Duration(time.Hour)}

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	st := s.result()
	s.Nil(st.Rollback.BudgetExceededAt)
	s.NotContains(s.store.auditActions(), "release."+activities.NotifyRollbackBudget)
}

func (s *ReleaseSuite) TestCircuitBreaker_HoldsTheReleaseUntilSomeoneClearsIt() {
	s.input.Runbook.Approvals = nil
	_, err := s.store.TripBreaker(context.Background(), store.CircuitBreaker{
		Scope: store.BreakerEnvironment, Name: "production", ReleaseID: "release-web-9.9.9", Reason: "error rate breached", Roles: []string{"sre"},
	})
	s.Require().NoError(err)
	var held ReleaseStatus
	s.whenPhase(PhaseBlocked, func() {
		held = s.status()
		s.env.RegisterDelayedCallback(s.store.clearBreakers, 3*time.Hour)
	})

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	s.Require().Len(held.CircuitBreakers, 1)
	s.Equal(BreakerStatus{Scope: "environment", Name: "production", TrippedBy: "release-web-9.9.9", Reason: "error rate breached", Roles: []string{"sre"}},
		held.CircuitBreakers[0])
	s.Empty(st.CircuitBreakers)
	s.Equal("blocked", s.store.phases[1], "held before anything ran")
	s.Equal(4, len(s.ops()))
}

func (s *ReleaseSuite) TestCircuitBreaker_AbortWhileHeld() {
	_, err := s.store.TripBreaker(context.Background(), store.CircuitBreaker{Scope: store.BreakerRunbook, Name: "shop", ReleaseID: "r0", Roles: []string{"sre"}})
	s.Require().NoError(err)
	s.whenPhase(PhaseBlocked, func() {
		s.env.UpdateWorkflow(UpdateAbort, "abort/ci", accepted(s.T()), AbortRequest{Actor: requester, Reason: "will ship tomorrow"})
	})

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	st := s.result()
	s.Equal(PhaseAborted, st.Phase)
	s.Empty(s.ops())
}
