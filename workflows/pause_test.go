package workflows

import (
	"strings"
	"time"
)

func (s *ReleaseSuite) TestPause_HoldsBeforeTheNextStageUntilResumed() {
	var pausedDeploys []string
	s.decideWhenWaiting(UpdateApprove, ApprovalRequest{Gate: "prod-signoff", Actor: alice}, accepted(s.T()))
	// The pause arrives while production waits for approval: the approval alone must not
	// let the stage start.
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(UpdatePause, "pause/ci", accepted(s.T()), OperatorRequest{Actor: requester, Reason: "checking a dashboard"})
	}, 500*time.Millisecond)
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.Equal(PhasePaused, st.Phase)
		s.Equal("ci", st.PausedBy)
		s.Equal("checking a dashboard", st.PauseReason)
		pausedDeploys = s.deploys()
		s.env.UpdateWorkflow(UpdateResume, "resume/alice-rm", accepted(s.T()), OperatorRequest{Actor: Principal{Name: "rm", Roles: []string{"release-manager"}}})
	}, 2*time.Hour)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	s.Equal([]string{"deploy:stg-a", "deploy:stg-b"}, pausedDeploys, "production waited while paused")
	s.Len(s.deploys(), 4)
	s.True(timelineHas(st, "paused before stage production"))
}

func (s *ReleaseSuite) TestPause_RefusedForOthersAndWhenNotPaused() {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(UpdatePause, "pause/bob", refusedWith(s, "cannot pause"), OperatorRequest{Actor: bob, Reason: "x"})
		s.env.UpdateWorkflow(UpdatePause, "pause/ci-noreason", refusedWith(s, "needs a reason"), OperatorRequest{Actor: requester})
		s.env.UpdateWorkflow(UpdateResume, "resume/ci", refusedWith(s, "is not paused"), OperatorRequest{Actor: requester})
		s.env.UpdateWorkflow(UpdateAbort, "abort/ci", accepted(s.T()), AbortRequest{Actor: requester, Reason: "done testing"})
	}, time.Second)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Equal(PhaseAborted, s.result().Phase)
}

func refusedWith(s *ReleaseSuite, text string) *testsuiteCallback {
	return &testsuiteCallback{
		OnAccept: func() { s.Fail("update accepted", text) },
		OnReject: func(err error) {
			s.True(strings.Contains(err.Error(), text), "%v does not say %q", err, text)
		},
		OnComplete: func(any, error) {},
	}
}

func (s *ReleaseSuite) TestParity_TheReleaseIsToldWhatNoEarlierStageHad() {
	s.input.Runbook.Approvals = nil
	s.input.Runbook.Stages[0].Requires = []string{"tpm"}
	s.input.Runbook.Stages[1].Requires = []string{"tpm", "hsm"}

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal([]string{"tpm"}, st.Stages[0].NotExercisedBefore, "the first stage meets everything it has first")
	s.Equal([]string{"hsm"}, st.Stages[1].NotExercisedBefore)
	s.True(timelineHas(st, "stage production is the first to have hsm: no stage before it exercised them"))
}
