package workflows

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/policy"
	"github.com/trainyard/trainyard/risk"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
)

// withGates gives the test runbook readiness gates (YAML list items) and no approvals.
func (s *ReleaseSuite) withGates(gates ...runbooks.ReadinessGate) {
	s.input.Runbook.Approvals = nil
	s.input.Runbook.Readiness = &runbooks.Readiness{Gates: gates}
}

func (s *ReleaseSuite) withActivities(change func(a *activities.Activities)) {
	a := &activities.Activities{Store: s.store, Runner: s.runner, WorkDir: s.T().TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	change(a)
	s.env.RegisterActivity(a)
}

func gateByName(st ReleaseStatus, name string) GateStatus {
	for _, g := range st.Gates {
		if g.Name == name {
			return g
		}
	}
	return GateStatus{}
}

func timelineHas(st ReleaseStatus, text string) bool {
	for _, e := range st.Timeline {
		if strings.Contains(e.Message, text) {
			return true
		}
	}
	return false
}

func scanReport(s *ReleaseSuite, file string) store.ScanReport {
	body, err := os.ReadFile("../integrations/scanreport/testdata/" + file)
	s.Require().NoError(err)
	return store.ScanReport{ReleaseID: s.input.ID, Name: file, Body: body}
}

func (s *ReleaseSuite) TestReadiness_AllGatesPassThenTheReleaseDeploys() {
	s.input.Change.Coverage = 91
	s.store.reports = []store.ScanReport{scanReport(s, "trivy-clean.json")}
	s.withGates(
		runbooks.ReadinessGate{Name: "coverage", Type: runbooks.GateCoverage, MinCoverage: 80},
		runbooks.ReadinessGate{Name: "scan", Type: runbooks.GateScanReport, MaxSeverity: "high"},
		runbooks.ReadinessGate{Name: "pii-scrub", Type: runbooks.GateCompliance, Run: "check-pii", Site: "dc1"},
	)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	for _, g := range st.Gates {
		s.Equal(ReadinessPassed, g.State, "%s: %s", g.Name, g.Summary)
		s.NotNil(g.FinishedAt)
	}
	s.Contains(s.store.phases, string(PhaseChecking))
	s.Len(s.store.gateResults, 3, "every verdict is stored with its evidence")
	s.Equal("gate:", s.ops()[0][:5], "the compliance command ran on the site first")
	s.Equal("check-pii", s.runner.Calls()[0].Script)
}

func (s *ReleaseSuite) TestReadiness_AFailedGateStopsTheReleaseBeforeAnyDeploy() {
	s.input.Change.Coverage = 62.5
	s.withGates(runbooks.ReadinessGate{Name: "coverage", Type: runbooks.GateCoverage, MinCoverage: 80})

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().Error(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseFailed, st.Phase)
	s.Contains(st.Failure, "not ready: coverage failed: coverage 62.5% is below the required 80.0%")
	s.Empty(s.ops(), "nothing deployed")
	s.Equal(activities.GateFailed, s.store.gateResults["coverage"].Outcome)
}

func (s *ReleaseSuite) TestReadiness_AGateThatTimesOutIsAnError() {
	// What the server reports when the gate's schedule-to-close timeout passes.
	s.env.OnActivity("RunGate", mock.Anything, mock.Anything).
		Return(activities.GateOutcome{}, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, nil))
	s.withGates(runbooks.ReadinessGate{Name: "slow", Type: runbooks.GateSynthetic, URL: "https://slow.example", Timeout: runbooks.Duration(time.Minute)})

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	st := s.result()
	s.Equal(PhaseFailed, st.Phase)
	g := gateByName(st, "slow")
	s.Equal(ReadinessError, g.State)
	s.Equal("timed out after 1m0s", g.Summary)
	s.Empty(s.deploys())
}

// deploys lists the deploy commands the sites ran (not gate commands).
func (s *ReleaseSuite) deploys() []string {
	var out []string
	for _, op := range s.ops() {
		if strings.HasPrefix(op, "deploy:") {
			out = append(out, op)
		}
	}
	return out
}

func (s *ReleaseSuite) TestReadiness_GatesRunConcurrently() {
	durations := map[string]time.Duration{"a": 3 * time.Minute, "b": 7 * time.Minute, "c": 5 * time.Minute}
	var gates []runbooks.ReadinessGate
	for _, name := range []string{"a", "b", "c"} {
		gates = append(gates, runbooks.ReadinessGate{Name: name, Type: runbooks.GateSynthetic, URL: "https://" + name + ".example", Timeout: runbooks.Duration(time.Hour)})
		s.env.OnActivity("RunGate", mock.Anything, mock.MatchedBy(func(req activities.GateRequest) bool { return req.Gate.Name == name })).
			After(durations[name]).Return(activities.GateOutcome{Outcome: activities.GatePassed, Summary: "ok"}, nil)
	}
	s.withGates(gates...)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	var first, last time.Time
	for _, g := range st.Gates {
		s.Equal(ReadinessPassed, g.State)
		if first.IsZero() || g.StartedAt.Before(first) {
			first = *g.StartedAt
		}
		if g.FinishedAt.After(last) {
			last = *g.FinishedAt
		}
	}
	// Measured in the SDK's skipped time: the phase lasts as long as the slowest gate (7m),
	// not the sum (15m).
	s.Equal(7*time.Minute, last.Sub(first))
}

func (s *ReleaseSuite) TestReadiness_AWaiverCoveringAFindingLetsTheScanPass() {
	s.store.reports = []store.ScanReport{scanReport(s, "trivy-image.json")}
	s.withGates(runbooks.ReadinessGate{Name: "scan", Type: runbooks.GateScanReport, MaxSeverity: "critical"})
	// The image has three critical findings (two CVEs and a leaked key): the first run fails.
	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)
	st := s.result()
	s.Equal(PhaseFailed, st.Phase)
	s.Contains(st.Failure, "CVE-2023-45853")
	s.Contains(st.Failure, "CVE-2024-24790")

	s.SetupTest()
	s.store.reports = []store.ScanReport{scanReport(s, "trivy-image.json")}
	s.withGates(runbooks.ReadinessGate{Name: "scan", Type: runbooks.GateScanReport, MaxSeverity: "critical"})
	for _, cve := range []string{"CVE-2023-45853", "CVE-2024-24790", "aws-access-key-id"} {
		s.store.waivers = append(s.store.waivers, store.Waiver{ID: "WVR-" + cve, Kind: store.WaiverKindGate, Target: "scan/" + cve})
	}
	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)
	s.Require().NoError(s.env.GetWorkflowError())
	st = s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	s.Equal(ReadinessPassed, gateByName(st, "scan").State)
	var uses int
	for _, e := range s.store.audit {
		if e.Action == store.ActionWaiverUse {
			uses++
		}
	}
	s.Equal(3, uses, "every use of a waiver is audited")
}

func (s *ReleaseSuite) TestReadiness_AWaivedGateDoesNotStopTheRelease() {
	s.withGates(runbooks.ReadinessGate{Name: "coverage", Type: runbooks.GateCoverage, MinCoverage: 80})
	s.store.waivers = []store.Waiver{{ID: "WVR-2026-007", Kind: store.WaiverKindGate, Target: "coverage"}}

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(ReadinessWaived, gateByName(st, "coverage").State)
	s.Equal([]string{"WVR-2026-007"}, st.Waivers)
	s.Equal("WVR-2026-007", s.store.gateResults["coverage"].Waiver)
}

func (s *ReleaseSuite) TestReadiness_WhenConditionSkipsAGate() {
	s.withGates(runbooks.ReadinessGate{Name: "coverage", Type: runbooks.GateCoverage, MinCoverage: 80, When: "change.schemaChange"})

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	g := gateByName(s.result(), "coverage")
	s.Equal(ReadinessSkipped, g.State)
	s.Contains(g.Summary, "change.schemaChange does not hold")
}

func (s *ReleaseSuite) TestRisk_ScoreAndBreakdownAreInTheStatus() {
	s.input.Runbook.Approvals = nil
	s.input.Change = Change{Churn: 1200, Coverage: 70}
	s.store.outcomes = store.Outcomes{Total: 10, Failed: 3}

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Require().NotNil(st.Risk)
	s.Len(st.Risk.Factors, 6)
	var sum float64
	for _, f := range st.Risk.Factors {
		sum += f.Points
	}
	s.InDelta(float64(st.Risk.Score), sum, 0.6)
	s.Equal("3 of the last 10 releases failed or rolled back", st.Risk.Factors[0].Why)
	s.Equal([]int{st.Risk.Score}, s.store.assessments, "stored with the release")
	s.True(timelineHas(st, "risk "))
}

func (s *ReleaseSuite) TestConditionalApproval_SkippedForALowRiskRelease() {
	s.input.Runbook.Approvals[0].When = `risk.level == "high"`
	s.store.outcomes = store.Outcomes{Total: 20}
	s.input.Change.Coverage = 95

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	s.Equal(GateSkipped, st.Approvals[0].State)
	s.Contains(st.Approvals[0].Why, `risk.level == "high" does not hold`)
}

func (s *ReleaseSuite) TestConditionalApproval_RequiredWhenItsConditionHolds() {
	s.input.Runbook.Approvals[0].When = "change.churn > 1000"
	s.input.Change.Churn = 5000
	s.decideWhenWaiting(UpdateApprove, ApprovalRequest{Gate: "prod-signoff", Actor: alice}, accepted(s.T()))

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(GateApproved, st.Approvals[0].State)
	s.Contains(st.Approvals[0].Why, "change.churn > 1000 holds")
}

func (s *ReleaseSuite) TestCAB_AddedAboveTheImpactThreshold() {
	s.input.Runbook.Approvals = nil
	s.input.Runbook.CAB = &runbooks.CAB{Threshold: 60, Roles: []string{"cab"}}
	s.input.Impact = &risk.Impact{Score: 78, Dependents: []string{"orders/orders-api"}, Capabilities: []string{"payments"}}
	carol := Principal{Name: "carol", Roles: []string{"cab"}}
	var poll func()
	poll = func() {
		st := s.status()
		if len(st.Approvals) == 1 && st.Approvals[0].State == GateWaiting {
			s.Contains(st.Approvals[0].Why, "impact score 78 is at or above the CAB threshold 60")
			s.Equal("production", st.Approvals[0].Before, "the first production stage")
			s.env.UpdateWorkflow(UpdateApprove, "cab/carol", accepted(s.T()), ApprovalRequest{Gate: "cab", Actor: carol})
			return
		}
		s.env.RegisterDelayedCallback(poll, time.Second)
	}
	s.env.RegisterDelayedCallback(poll, time.Second)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	s.Equal(GateApproved, st.Approvals[0].State)
}

func (s *ReleaseSuite) TestCAB_NotAddedBelowTheThreshold() {
	s.input.Runbook.Approvals = nil
	s.input.Runbook.CAB = &runbooks.CAB{Threshold: 60, Roles: []string{"cab"}}
	s.input.Impact = &risk.Impact{Score: 20}

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	s.Empty(st.Approvals)
}

func (s *ReleaseSuite) TestEscalation_NotifiesThenTheGateTimesOut() {
	g := &s.input.Runbook.Approvals[0]
	g.Timeout = runbooks.Duration(4 * time.Hour)
	g.Escalation = &runbooks.Escalation{After: runbooks.Duration(time.Hour), Roles: []string{"head-of-release"}}

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	st := s.result()
	s.Equal(PhaseRejected, st.Phase)
	s.Equal(GateTimedOut, st.Approvals[0].State)
	s.Require().NotNil(st.Approvals[0].EscalatedAt)
	s.Equal(time.Hour, st.Approvals[0].EscalatedAt.Sub(*st.Approvals[0].Deadline)+4*time.Hour)
	var escalations []store.AuditEvent
	for _, e := range s.store.audit {
		if e.Action == "release.escalation" {
			escalations = append(escalations, e)
		}
	}
	s.Require().Len(escalations, 1)
	s.Contains(string(escalations[0].Details), "head-of-release")
}

func (s *ReleaseSuite) TestOnTimeoutWait_KeepsWaitingPastTheDeadline() {
	g := &s.input.Runbook.Approvals[0]
	g.Timeout = runbooks.Duration(time.Hour)
	g.OnTimeout = "wait"
	g.Escalation = &runbooks.Escalation{After: runbooks.Duration(2 * time.Hour), Roles: []string{"head-of-release"}}
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.True(st.Approvals[0].Overdue)
		s.Equal(GateWaiting, st.Approvals[0].State)
		s.NotNil(st.Approvals[0].EscalatedAt, "escalated at the deadline since its own time lay beyond it")
		s.env.UpdateWorkflow(UpdateApprove, "late/alice", accepted(s.T()), ApprovalRequest{Gate: "prod-signoff", Actor: alice})
	}, 30*time.Hour)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	s.Equal(GateApproved, st.Approvals[0].State)
}

const testPolicies = `
policies:
  - name: production-two-approvals
    when: stage.environment == "production"
    rule: governance.approvalsRequired >= 2
    message: production needs two approvals
    at: [stage]
`

func (s *ReleaseSuite) withPolicies() {
	set, err := policy.Parse("policies.yaml", []byte(testPolicies))
	s.Require().NoError(err)
	s.withActivities(func(a *activities.Activities) { a.Policies = set })
}

func (s *ReleaseSuite) TestPolicy_AViolationStopsTheReleaseBeforeTheStage() {
	s.withPolicies()
	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	st := s.result()
	s.Equal(PhaseRejected, st.Phase)
	s.Contains(st.Failure, "policy production-two-approvals: production needs two approvals")
	s.Equal([]string{"deploy:stg-a", "deploy:stg-b", "rollback:stg-b", "rollback:stg-a"}, s.ops(),
		"staging deployed, production never, and staging rolled back")
}

func (s *ReleaseSuite) TestPolicy_AWaiverNamingThePolicyLetsTheReleaseThrough() {
	s.withPolicies()
	s.input.Runbook.Approvals = nil
	s.store.waivers = []store.Waiver{{ID: "WVR-2026-009", Kind: store.WaiverKindPolicy, Target: "production-two-approvals"}}

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	s.Equal([]string{"WVR-2026-009"}, st.Waivers)
	s.True(timelineHas(st, "policy production-two-approvals waived before stage production by WVR-2026-009"))
}

func (s *ReleaseSuite) TestPolicy_ThePolicyCheckCanFailClosed() {
	s.withActivities(func(a *activities.Activities) {
		a.Policies, _ = policy.Parse("p.yaml", []byte(testPolicies))
		a.Store = &failingReports{s.store}
	})
	s.input.Runbook.Approvals = nil

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	st := s.result()
	s.NotEqual(PhaseSucceeded, st.Phase, "a policy nobody could check does not let the release through")
}

// failingReports is a store that cannot list reports (the policy check needs them).
type failingReports struct{ *fakeStore }

func (f *failingReports) Reports(context.Context, string) ([]store.ScanReport, error) {
	return nil, errors.New("database is down")
}

type testsuiteCallback = testsuite.TestUpdateCallback

func (s *ReleaseSuite) TestPreMortem_ApproversMustAcknowledgeIt() {
	s.input.Runbook.PreMortem = []runbooks.FailureMode{{Failure: "the index build locks orders", Mitigation: "built concurrently; rollback drops it"}}
	var poll func()
	poll = func() {
		st := s.status()
		if st.Approvals[0].State != GateWaiting {
			s.env.RegisterDelayedCallback(poll, time.Second)
			return
		}
		s.Len(st.PreMortem, 1, "the status shows what approvers acknowledge")
		s.env.UpdateWorkflow(UpdateApprove, "approve/alice/1", refusedWith(s, "expected failure mode"), ApprovalRequest{Gate: "prod-signoff", Actor: alice})
		s.env.UpdateWorkflow(UpdateApprove, "approve/alice/2", accepted(s.T()), ApprovalRequest{Gate: "prod-signoff", Actor: alice, AcknowledgePreMortem: true})
	}
	s.env.RegisterDelayedCallback(poll, time.Second)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	s.True(st.Approvals[0].Decisions[0].AcknowledgedPreMortem)
}

func (s *ReleaseSuite) TestFreeze_AWaiverThatExpiredDuringTheApprovalWaitNoLongerApplies() {
	// The waiver covers the freeze when staging is checked; by the time production is
	// reached, after a three-hour approval wait, it has expired: the store says frozen again
	// until the window ends, and the release waits for it.
	s.input.Runbook.Freezes = []string{"holidays"}
	var until time.Time
	s.store.freeze = func(q store.FreezeQuery) (store.FreezeDecision, error) {
		if q.Environment == "staging" {
			return store.FreezeDecision{Calendar: "holidays", Waiver: "WVR-2026-003"}, nil
		}
		if until.IsZero() {
			until = s.env.Now().Add(2 * time.Hour)
		}
		if s.env.Now().Before(until) {
			return store.FreezeDecision{Frozen: true, Calendar: "holidays", Reason: "holidays (waiver WVR-2026-003 expired)", Until: until}, nil
		}
		return store.FreezeDecision{}, nil
	}
	var frozen bool
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(UpdateApprove, "approve/alice", accepted(s.T()), ApprovalRequest{Gate: "prod-signoff", Actor: alice})
	}, 3*time.Hour)
	s.env.RegisterDelayedCallback(func() { frozen = s.status().Phase == PhaseFrozen }, 4*time.Hour)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	s.True(frozen, "production waited out the freeze the expired waiver no longer covered")
	s.Equal(PhaseSucceeded, s.result().Phase)
}
