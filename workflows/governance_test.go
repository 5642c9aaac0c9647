package workflows

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/integrations/command"
	"github.com/trainyard/trainyard/integrations/servicenow"
	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/store"
)

// frozenOnce freezes the production stage on the first question, for three hours.
func (s *ReleaseSuite) frozenOnce() *int {
	asked := 0
	s.store.freeze = func(q store.FreezeQuery) (store.FreezeDecision, error) {
		if q.Environment != "production" {
			return store.FreezeDecision{}, nil
		}
		asked++
		if asked > 1 {
			return store.FreezeDecision{}, nil
		}
		return store.FreezeDecision{Frozen: true, Until: s.env.Now().Add(3 * time.Hour), Calendar: "holidays", Window: "christmas",
			Reason: "frozen by holidays (christmas)"}, nil
	}
	return &asked
}

func (s *ReleaseSuite) TestFreeze_WaitsForTheWindowToEndThenDeploys() {
	s.input.Runbook.Approvals = nil
	s.input.Runbook.Freezes = []string{"holidays"}
	asked := s.frozenOnce()
	var during ReleaseStatus
	var poll func()
	poll = func() {
		if st := s.status(); st.Phase == PhaseFrozen {
			during = st
			return
		}
		s.env.RegisterDelayedCallback(poll, time.Minute)
	}
	s.env.RegisterDelayedCallback(poll, time.Minute)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	s.Equal(2, *asked, "asked again when the window ended")
	s.Equal("frozen by holidays (christmas)", during.FreezeReason, "the status says why it waits")
	s.Require().NotNil(during.FrozenUntil, "and until when")
	s.Empty(st.FreezeReason)
	s.Contains(s.store.phases, string(PhaseFrozen))
	s.Equal([]string{"deploy:stg-a", "deploy:stg-b", "deploy:prod-a", "deploy:prod-b"}, s.ops())
}

func (s *ReleaseSuite) TestFreeze_OnFreezeFailRejectsAndRollsBack() {
	s.input.Runbook.Approvals = nil
	s.input.Runbook.Freezes = []string{"holidays"}
	s.input.Runbook.OnFreeze = "fail"
	s.frozenOnce()

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseRejected, st.Phase)
	s.Contains(st.Failure, "frozen by holidays")
	s.Equal([]string{"deploy:stg-a", "deploy:stg-b", "rollback:stg-b", "rollback:stg-a"}, s.ops())
}

func (s *ReleaseSuite) TestFreeze_CalendarNobodyCanEvaluateStopsTheRelease() {
	s.input.Runbook.Approvals = nil
	s.input.Runbook.Freezes = []string{"nope"}
	s.store.freeze = func(store.FreezeQuery) (store.FreezeDecision, error) {
		return store.FreezeDecision{}, fmt.Errorf("calendar %q: %w", "nope", store.ErrUnknownCalendar)
	}

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseRejected, st.Phase)
	s.Contains(st.Failure, "nope")
	s.Empty(s.ops(), "nothing deployed past a freeze nobody could check")
}

func (s *ReleaseSuite) TestFreeze_WaiverIsNamedInTheTimeline() {
	s.input.Runbook.Approvals = nil
	s.input.Runbook.Freezes = []string{"holidays"}
	s.store.freeze = func(store.FreezeQuery) (store.FreezeDecision, error) {
		return store.FreezeDecision{Calendar: "holidays", Waiver: "WVR-2026-001"}, nil
	}

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	var waived bool
	for _, e := range st.Timeline {
		waived = waived || strings.Contains(e.Message, "waiver WVR-2026-001")
	}
	s.True(waived, "the waiver is named")
}

// changeSuite runs a release whose runbook files a change request, against the ServiceNow
// fake through the real client.
func (s *ReleaseSuite) withServiceNow() *servicenow.Fake {
	fake := servicenow.NewFake("trainyard", "secret")
	srv := httptest.NewServer(fake)
	s.T().Cleanup(srv.Close)
	s.input.Runbook.ChangeRequest = &runbooks.ChangeRequest{Provider: "servicenow"}
	s.env.RegisterActivity(&activities.Activities{Store: s.store, Runner: s.runner, WorkDir: s.T().TempDir(),
		Changes: &servicenow.HTTPClient{BaseURL: srv.URL, User: "trainyard", Password: "secret", HTTP: srv.Client()}})
	return fake
}

func (s *ReleaseSuite) TestChangeRequest_OpenedNotedPerStageAndClosedSuccessful() {
	s.input.Runbook.Approvals = nil
	fake := s.withServiceNow()

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	recs := fake.Records()
	s.Require().Len(recs, 1, "one change request per release")
	s.Equal(st.ChangeRequest, recs[0].Fields["number"])
	s.Equal(s.input.ID, recs[0].Fields["correlation_id"])
	s.Equal("successful", recs[0].Fields["close_code"])
	s.Len(recs[0].WorkNotes, 2, "a note per stage: %v", recs[0].WorkNotes)
}

func (s *ReleaseSuite) TestChangeRequest_ClosedUnsuccessfulWhenTheReleaseRollsBack() {
	s.input.Runbook.Approvals = nil
	fake := s.withServiceNow()
	s.runner.RunFunc = func(_ context.Context, spec command.Spec) (command.Result, error) {
		if env(spec, "TRAINYARD_TARGET") == "prod-a" && env(spec, "TRAINYARD_OPERATION") == "deploy" {
			return command.Result{ExitCode: 1}, &command.ExitError{ExitCode: 1}
		}
		return command.Result{}, nil
	}

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().Error(s.env.GetWorkflowError())
	s.Equal(PhaseRolledBack, s.result().Phase)
	recs := fake.Records()
	s.Require().Len(recs, 1)
	s.Equal("unsuccessful", recs[0].Fields["close_code"])
}

func (s *ReleaseSuite) TestFreeze_LongFreezeIsAskedAgainSoAWaiverGrantedMeanwhileApplies() {
	s.input.Runbook.Approvals = nil
	s.input.Runbook.Freezes = []string{"holidays"}
	asked := 0
	s.store.freeze = func(q store.FreezeQuery) (store.FreezeDecision, error) {
		if q.Environment != "production" {
			return store.FreezeDecision{}, nil
		}
		asked++
		if asked < 3 {
			// Frozen for two weeks; a waiver appears at the third question.
			return store.FreezeDecision{Frozen: true, Until: s.env.Now().Add(14 * 24 * time.Hour), Calendar: "holidays", Reason: "frozen by holidays"}, nil
		}
		return store.FreezeDecision{Calendar: "holidays", Waiver: "WVR-2026-002"}, nil
	}
	start := s.env.Now()

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal(PhaseSucceeded, s.result().Phase)
	s.Equal(3, asked)
	s.Less(s.env.Now().Sub(start), 2*time.Hour, "the waiver applied within the re-check interval, not after two weeks")
}
