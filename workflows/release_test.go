package workflows

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/freeze"
	"github.com/trainyard/trainyard/integrations/command"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
)

// fakeStore records what the workflow wrote through its activities.
type fakeStore struct {
	mu        sync.Mutex
	phases    []string
	decisions []store.DecisionRecord
	previous  string
	freeze    func(store.FreezeQuery) (store.FreezeDecision, error)
	// outcomes is the history the risk score learns from.
	outcomes    store.Outcomes
	assessments []int
	reports     []store.ScanReport
	gateResults map[string]store.GateResult
	drills      map[string]store.Drill
	waivers     []store.Waiver
	audit       []store.AuditEvent
	reservation func(env string) store.ReservationWait
	promotions  []store.Promotion
}

func (f *fakeStore) ReservationStatus(_ context.Context, env, _, _ string, _ time.Time) (store.ReservationWait, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reservation != nil {
		return f.reservation(env), nil
	}
	return store.ReservationWait{}, nil
}

func (f *fakeStore) RecordPromotions(_ context.Context, ps []store.Promotion) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.promotions = append(f.promotions, ps...)
	return nil
}

func (f *fakeStore) ReleaseOutcomes(context.Context, string, []string, string, int) (store.Outcomes, store.Outcomes, error) {
	return f.outcomes, store.Outcomes{}, nil
}

func (f *fakeStore) RecordAssessment(_ context.Context, _ string, score int, _ json.RawMessage, _ []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.assessments = append(f.assessments, score)
	return nil
}

func (f *fakeStore) Reports(context.Context, string) ([]store.ScanReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reports), nil
}

func (f *fakeStore) RecordGateResult(_ context.Context, g store.GateResult) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gateResults == nil {
		f.gateResults = map[string]store.GateResult{}
	}
	f.gateResults[g.Gate] = g
	return nil
}

func (f *fakeStore) LastPassedDrill(_ context.Context, component string) (store.Drill, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.drills[component]
	if !ok {
		return d, store.ErrNotFound
	}
	return d, nil
}

// ActiveWaivers matches by kind and target only; scope matching is the store's, tested there.
func (f *fakeStore) ActiveWaivers(_ context.Context, m store.WaiverMatch) ([]store.Waiver, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Waiver
	for _, w := range f.waivers {
		if w.Kind == m.Kind && w.Target == m.Target {
			out = append(out, w)
		}
	}
	return out, nil
}

func (f *fakeStore) AppendAudit(_ context.Context, e store.AuditEvent) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.audit = append(f.audit, e)
	return int64(len(f.audit)), nil
}

func (f *fakeStore) UpsertRelease(_ context.Context, r store.ReleaseRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.phases = append(f.phases, r.Phase)
	return nil
}

func (f *fakeStore) RecordDecision(_ context.Context, d store.DecisionRecord) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.decisions = append(f.decisions, d)
	return nil
}

func (f *fakeStore) LastSucceededVersion(context.Context, string, string) (string, error) {
	return f.previous, nil
}

func (f *fakeStore) FreezeStatus(_ context.Context, _ *freeze.Catalog, q store.FreezeQuery) (store.FreezeDecision, error) {
	if f.freeze == nil {
		return store.FreezeDecision{}, nil
	}
	return f.freeze(q)
}

const testRunbook = `
name: shop
stabilization: 1h
rollbackAuthority: [release-manager]
approvals:
  - name: prod-signoff
    before: production
    roles: [release-manager]
    timeout: 4h
stages:
  - name: staging
    environment: staging
    targets:
      - {name: stg-a, kind: command, site: dc1, deploy: deploy, rollback: rollback}
      - {name: stg-b, kind: command, site: dc1, deploy: deploy, rollback: rollback}
  - name: production
    environment: production
    targets:
      - {name: prod-a, kind: command, site: dc1, deploy: deploy, rollback: rollback}
      - {name: prod-b, kind: command, site: dc2, deploy: deploy, rollback: rollback}
`

var (
	requester = Principal{Name: "ci", Roles: []string{"deployer"}}
	alice     = Principal{Name: "alice", Roles: []string{"release-manager"}}
	bob       = Principal{Name: "bob", Roles: []string{"developer"}}
)

type ReleaseSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env    *testsuite.TestWorkflowEnvironment
	runner *command.Fake
	store  *fakeStore
	input  ReleaseInput
	// lockGrant answers the release's lock requests (granted when nil).
	lockGrant func(activities.LockRequest) activities.LockGrant
}

func TestReleaseWorkflow(t *testing.T) {
	suite.Run(t, new(ReleaseSuite))
}

func (s *ReleaseSuite) SetupTest() {
	rb, err := runbooks.Parse("shop.yaml", []byte(testRunbook))
	s.Require().NoError(err)
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	s.env = s.NewTestWorkflowEnvironment()
	s.runner = &command.Fake{}
	s.store = &fakeStore{previous: "1.0.0"}
	s.env.RegisterWorkflow(ReleaseWorkflow)
	s.env.RegisterWorkflow(StageWorkflow)
	s.env.RegisterActivity(&activities.Activities{Store: s.store, Runner: s.runner, WorkDir: s.T().TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	s.input = ReleaseInput{ID: ReleaseID("shop", "1.1.0"), Runbook: rb, Version: "1.1.0", Requester: requester}
	s.lockGrant = nil
	s.mockLocks()
}

// mockLocks answers the release's lock requests with s.lockGrant (granted when nil); giving
// a lock back reaches the lock workflow, which is not part of these tests. A test that makes
// a new environment calls it again.
func (s *ReleaseSuite) mockLocks() {
	s.env.OnActivity("RequestLock", mock.Anything, mock.Anything).Return(
		func(_ context.Context, req activities.LockRequest) (activities.LockGrant, error) {
			if s.lockGrant != nil {
				return s.lockGrant(req), nil
			}
			return activities.LockGrant{Granted: true}, nil
		}).Maybe()
	s.env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, SignalLockRelease, mock.Anything).Return(nil).Maybe()
}

// ops lists the commands the site workers ran, as "deploy:target".
func (s *ReleaseSuite) ops() []string {
	var out []string
	for _, c := range s.runner.Calls() {
		out = append(out, env(c, "TRAINYARD_OPERATION")+":"+env(c, "TRAINYARD_TARGET"))
	}
	return out
}

func env(spec command.Spec, key string) string {
	for _, kv := range spec.Env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// decide sends an approve or reject Update once the gate is waiting (the workflow reaches it
// after staging deploys, at a virtual time we do not need to know).
func (s *ReleaseSuite) decideWhenWaiting(update string, req ApprovalRequest, cb *testsuite.TestUpdateCallback) {
	var poll func()
	poll = func() {
		st := s.status()
		if len(st.Approvals) > 0 && st.Approvals[0].State == GateWaiting {
			s.env.UpdateWorkflow(update, update+"/"+req.Actor.Name, cb, req)
			return
		}
		s.env.RegisterDelayedCallback(poll, time.Second)
	}
	s.env.RegisterDelayedCallback(poll, time.Second)
}

func (s *ReleaseSuite) status() ReleaseStatus {
	v, err := s.env.QueryWorkflow(QueryStatus)
	s.Require().NoError(err)
	var st ReleaseStatus
	s.Require().NoError(v.Get(&st))
	return st
}

func (s *ReleaseSuite) result() ReleaseStatus {
	s.Require().True(s.env.IsWorkflowCompleted())
	var st ReleaseStatus
	_ = s.env.GetWorkflowResult(&st)
	return s.status()
}

func accepted(t *testing.T) *testsuite.TestUpdateCallback {
	return &testsuite.TestUpdateCallback{
		OnAccept:   func() {},
		OnReject:   func(err error) { require.Fail(t, "update rejected", err.Error()) },
		OnComplete: func(any, error) {},
	}
}

func (s *ReleaseSuite) TestApproved_DeploysAllStagesThenSucceedsAfterStabilization() {
	s.decideWhenWaiting(UpdateApprove, ApprovalRequest{Gate: "prod-signoff", Actor: alice, Comment: "ship it"}, accepted(s.T()))

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	s.Equal([]string{"deploy:stg-a", "deploy:stg-b", "deploy:prod-a", "deploy:prod-b"}, s.ops())
	s.Equal("1.0.0", st.PreviousVersion)
	s.Equal(GateApproved, st.Approvals[0].State)
	s.Equal("alice", st.Approvals[0].Decisions[0].Actor)
	for _, stage := range st.Stages {
		s.Equal(StateSucceeded, stage.State)
		for _, t := range stage.Targets {
			s.Equal(StateDeployed, t.State, t.Name)
		}
	}
	s.Require().NotNil(st.StabilizationEndsAt)
	s.Equal([]string{"pending", "deploying", "awaiting_approval", "deploying", "stabilizing", "succeeded"}, s.store.phases)
	s.Require().Len(s.store.decisions, 1)
	s.Equal("approved", s.store.decisions[0].Decision)
	// Commands see the release facts, including the version a rollback would return to.
	first := s.runner.Calls()[0]
	s.Equal("1.1.0", env(first, "TRAINYARD_VERSION"))
	s.Equal("1.0.0", env(first, "TRAINYARD_PREVIOUS_VERSION"))
	s.Equal("1", env(first, "TRAINYARD_ATTEMPT"))
	s.Equal(s.input.ID, env(first, "TRAINYARD_RELEASE"))
}

func (s *ReleaseSuite) TestRejected_RollsBackStagingInReverseAndEndsRejected() {
	s.decideWhenWaiting(UpdateReject, ApprovalRequest{Gate: "prod-signoff", Actor: alice, Comment: "not this week"}, accepted(s.T()))

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseRejected, st.Phase)
	s.Contains(st.Failure, "rejected at prod-signoff by alice: not this week")
	s.Equal([]string{"deploy:stg-a", "deploy:stg-b", "rollback:stg-b", "rollback:stg-a"}, s.ops())
	s.Equal(StateRolledBack, st.Stages[0].Targets[0].State)
	s.Equal(StatePending, st.Stages[1].Targets[0].State)
}

func (s *ReleaseSuite) TestApprovalTimeout_RejectsAndRollsBack() {
	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseRejected, st.Phase)
	s.Equal(GateTimedOut, st.Approvals[0].State)
	s.Contains(st.Failure, "approval prod-signoff was not given within 4h0m0s")
	s.Equal([]string{"deploy:stg-a", "deploy:stg-b", "rollback:stg-b", "rollback:stg-a"}, s.ops())
}

func (s *ReleaseSuite) TestDeployFailureInStage2_RollsBackEveryDeployedTargetInReverse() {
	s.runner.RunFunc = func(_ context.Context, spec command.Spec) (command.Result, error) {
		if env(spec, "TRAINYARD_TARGET") == "prod-b" && env(spec, "TRAINYARD_OPERATION") == "deploy" {
			return command.Result{ExitCode: 1, Output: "health check failed\n"}, &command.ExitError{ExitCode: 1, Output: "health check failed\n"}
		}
		return command.Result{Output: "ok\n"}, nil
	}
	s.decideWhenWaiting(UpdateApprove, ApprovalRequest{Gate: "prod-signoff", Actor: alice}, accepted(s.T()))

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), "release rolled_back")
	st := s.result()
	s.Equal(PhaseRolledBack, st.Phase)
	s.Contains(st.Failure, "prod-b")
	s.Equal([]string{
		"deploy:stg-a", "deploy:stg-b", "deploy:prod-a", "deploy:prod-b",
		"rollback:prod-a", "rollback:stg-b", "rollback:stg-a",
	}, s.ops())
	prodB := st.Stages[1].Targets[1]
	s.Equal(StateFailed, prodB.State)
	s.Equal("health check failed\n", prodB.Output)
	s.Equal(StateFailed, st.Stages[1].State)
	s.Equal(StateRolledBack, st.Stages[1].Targets[0].State)
}

func (s *ReleaseSuite) TestAbortDuringStabilization_RollsBackEverything() {
	s.decideWhenWaiting(UpdateApprove, ApprovalRequest{Gate: "prod-signoff", Actor: alice}, accepted(s.T()))
	var poll func()
	poll = func() {
		if s.status().Phase == PhaseStabilizing {
			s.env.UpdateWorkflow(UpdateAbort, "abort/alice", accepted(s.T()), AbortRequest{Actor: alice, Reason: "error rate up"})
			return
		}
		s.env.RegisterDelayedCallback(poll, time.Minute)
	}
	s.env.RegisterDelayedCallback(poll, time.Minute)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseAborted, st.Phase)
	s.Contains(st.Failure, "aborted by alice: error rate up")
	s.Equal([]string{
		"deploy:stg-a", "deploy:stg-b", "deploy:prod-a", "deploy:prod-b",
		"rollback:prod-b", "rollback:prod-a", "rollback:stg-b", "rollback:stg-a",
	}, s.ops())
}

func (s *ReleaseSuite) TestValidator_RefusesWithoutTouchingState() {
	cases := []struct {
		name   string
		update string
		req    any
		want   string
	}{
		{"approver without the role", UpdateApprove, ApprovalRequest{Gate: "prod-signoff", Actor: bob}, "needs one of the roles release-manager"},
		{"requester approving own release", UpdateApprove, ApprovalRequest{Gate: "prod-signoff", Actor: Principal{Name: "ci", Roles: []string{"release-manager"}}}, "separation of duties"},
		{"unknown gate", UpdateApprove, ApprovalRequest{Gate: "nope", Actor: alice}, "has no approval gate"},
		{"reject without reason", UpdateReject, ApprovalRequest{Gate: "prod-signoff", Actor: alice}, "needs a reason"},
		{"abort by someone without authority", UpdateAbort, AbortRequest{Actor: bob, Reason: "why not"}, "cannot abort"},
	}
	refused := map[string]error{}
	var poll func()
	poll = func() {
		if len(s.status().Approvals) == 0 || s.status().Approvals[0].State != GateWaiting {
			s.env.RegisterDelayedCallback(poll, time.Second)
			return
		}
		for _, tc := range cases {
			s.env.UpdateWorkflow(tc.update, "id/"+tc.name, &testsuite.TestUpdateCallback{
				OnAccept:   func() { s.Fail("accepted", tc.name) },
				OnReject:   func(err error) { refused[tc.name] = err },
				OnComplete: func(any, error) {},
			}, tc.req)
		}
		s.env.RegisterDelayedCallback(func() {
			st := s.status()
			s.Empty(st.Approvals[0].Decisions, "a refused request must not change the release")
			s.Equal(GateWaiting, st.Approvals[0].State)
			s.env.UpdateWorkflow(UpdateApprove, "ok", accepted(s.T()), ApprovalRequest{Gate: "prod-signoff", Actor: alice})
		}, time.Second)
	}
	s.env.RegisterDelayedCallback(poll, time.Second)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal(PhaseSucceeded, s.result().Phase)
	for _, tc := range cases {
		s.Require().Error(refused[tc.name], tc.name)
		s.Contains(refused[tc.name].Error(), tc.want, tc.name)
	}
}

func (s *ReleaseSuite) TestGateNotWaiting_RefusesApproval() {
	var rejected error
	s.env.RegisterDelayedCallback(func() {
		// At virtual time zero staging is still deploying: the gate is pending, not waiting.
		s.env.UpdateWorkflow(UpdateApprove, "early", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { rejected = err }, OnComplete: func(any, error) {},
		}, ApprovalRequest{Gate: "prod-signoff", Actor: alice})
	}, 0)
	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)
	s.Require().Error(rejected)
	s.Contains(rejected.Error(), "not awaiting a decision")
}

func (s *ReleaseSuite) TestQuorum_NeedsDistinctApprovers() {
	s.input.Runbook.Approvals[0].Count = 2
	carol := Principal{Name: "carol", Roles: []string{"release-manager"}}
	var results []ApprovalResult
	var dupErr error
	var poll func()
	poll = func() {
		st := s.status()
		if st.Approvals[0].State != GateWaiting {
			s.env.RegisterDelayedCallback(poll, time.Second)
			return
		}
		collect := &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: func(err error) { dupErr = err }, OnComplete: func(v any, _ error) {
			results = append(results, v.(ApprovalResult))
		}}
		s.env.UpdateWorkflow(UpdateApprove, "a1", collect, ApprovalRequest{Gate: "prod-signoff", Actor: alice})
		s.env.UpdateWorkflow(UpdateApprove, "a2", collect, ApprovalRequest{Gate: "prod-signoff", Actor: alice})
		s.env.UpdateWorkflow(UpdateApprove, "c1", collect, ApprovalRequest{Gate: "prod-signoff", Actor: carol})
	}
	s.env.RegisterDelayedCallback(poll, time.Second)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Require().Error(dupErr)
	s.Contains(dupErr.Error(), "already decided")
	s.Require().Len(results, 2)
	s.Equal(ApprovalResult{Gate: "prod-signoff", State: GateWaiting, Approvals: 1, Required: 2}, results[0])
	s.Equal(GateApproved, results[1].State)
	s.Equal(PhaseSucceeded, s.result().Phase)
}

func (s *ReleaseSuite) TestAbortWhileDeploying_StopsTheCommandAndRollsBackWhatFinished() {
	s.input.Runbook.Approvals = nil
	s.runner.RunFunc = func(ctx context.Context, spec command.Spec) (command.Result, error) {
		if env(spec, "TRAINYARD_TARGET") == "prod-a" && env(spec, "TRAINYARD_OPERATION") == "deploy" {
			<-ctx.Done()
			return command.Result{}, ctx.Err()
		}
		return command.Result{}, nil
	}
	var poll func()
	poll = func() {
		st := s.status()
		if len(st.Stages) == 2 && st.Stages[1].Targets[0].State == StateRunning {
			s.env.UpdateWorkflow(UpdateAbort, "abort/ci", accepted(s.T()), AbortRequest{Actor: requester, Reason: "wrong build"})
			return
		}
		s.env.RegisterDelayedCallback(poll, time.Second)
	}
	s.env.RegisterDelayedCallback(poll, time.Second)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseAborted, st.Phase)
	s.Equal(StateCancelled, st.Stages[1].Targets[0].State)
	s.Equal([]string{"deploy:stg-a", "deploy:stg-b", "deploy:prod-a", "rollback:stg-b", "rollback:stg-a"}, s.ops())
}

func (s *ReleaseSuite) TestDistinctRoles_EachHeldByADifferentApprover() {
	s.input.Runbook.Approvals[0].Count = 2
	s.input.Runbook.Approvals[0].Roles = []string{"release-manager", "service-owner"}
	s.input.Runbook.Approvals[0].DistinctRoles = []string{"release-manager", "service-owner"}
	both := Principal{Name: "bea", Roles: []string{"release-manager", "service-owner"}}
	carol := Principal{Name: "carol", Roles: []string{"release-manager"}}
	var states []string
	var poll func()
	poll = func() {
		if s.status().Approvals[0].State != GateWaiting {
			s.env.RegisterDelayedCallback(poll, time.Second)
			return
		}
		collect := &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: func(err error) { s.Fail("rejected", err.Error()) },
			OnComplete: func(v any, _ error) { states = append(states, v.(ApprovalResult).State) }}
		// Two release managers make the count but not the seats: one of them must be an owner
		// too, and bea, holding both roles, can fill only one seat.
		s.env.UpdateWorkflow(UpdateApprove, "a", collect, ApprovalRequest{Gate: "prod-signoff", Actor: alice})
		s.env.UpdateWorkflow(UpdateApprove, "c", collect, ApprovalRequest{Gate: "prod-signoff", Actor: carol})
		s.env.RegisterDelayedCallback(func() {
			s.Equal(GateWaiting, s.status().Approvals[0].State, "two release managers do not cover service-owner")
			s.env.UpdateWorkflow(UpdateApprove, "b", collect, ApprovalRequest{Gate: "prod-signoff", Actor: both})
		}, time.Second)
	}
	s.env.RegisterDelayedCallback(poll, time.Second)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal([]string{GateWaiting, GateWaiting, GateApproved}, states)
	s.Equal(PhaseSucceeded, s.result().Phase)
}

func TestCoversDistinctRoles_MatchesRolesToDifferentPeople(t *testing.T) {
	t.Parallel()
	d := func(name string, roles ...string) Decision {
		return Decision{Actor: name, Roles: roles, Decision: GateApproved}
	}
	cases := []struct {
		name      string
		decisions []Decision
		want      bool
	}{
		{"no approvals", nil, false},
		{"one person with both roles fills one seat", []Decision{d("bea", "rm", "owner")}, false},
		{"two people, one role each", []Decision{d("carol", "rm"), d("olga", "owner")}, true},
		{"both-roles person takes the seat the other cannot", []Decision{d("bea", "rm", "owner"), d("carol", "rm")}, true},
		{"same role twice", []Decision{d("carol", "rm"), d("alice", "rm")}, false},
		{"a rejection does not count", []Decision{d("carol", "rm"), {Actor: "olga", Roles: []string{"owner"}, Decision: GateRejected}}, false},
	}
	for _, tc := range cases {
		gs := &ApprovalStatus{DistinctRoles: []string{"rm", "owner"}, Decisions: tc.decisions}
		require.Equal(t, tc.want, coversDistinctRoles(gs), tc.name)
	}
	require.True(t, coversDistinctRoles(&ApprovalStatus{}), "no distinct roles: always covered")
}
