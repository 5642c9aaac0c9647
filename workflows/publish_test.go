package workflows

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"time"

	goslack "github.com/slack-go/slack"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/integrations/command"
	"github.com/trainyard/trainyard/integrations/slack"
)

// withSlack runs the suite's release with the runbook's channel set and a Slack fake behind
// PublishRelease.
func (s *ReleaseSuite) withSlack(channel string) *slack.Fake {
	fake := slack.NewFake()
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterWorkflow(ReleaseWorkflow)
	s.env.RegisterWorkflow(StageWorkflow)
	defer s.mockLocks() // after the activities it mocks are registered
	s.env.RegisterActivity(&activities.Activities{
		Store: s.store, Runner: s.runner, WorkDir: s.T().TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Slack: &activities.Slack{Client: fake, PublicURL: "https://trainyard.example", TemporalUIURL: "http://ui.example", Namespace: "default"},
	})
	s.input.Runbook.Channel = channel
	return fake
}

// slackText is every text of a message as a person reads it: its blocks, or its text.
func slackText(m slack.FakeMessage) string {
	if len(m.Blocks) == 0 {
		return m.Text
	}
	var out []string
	for _, b := range m.Blocks {
		switch b := b.(type) {
		case *goslack.HeaderBlock:
			out = append(out, b.Text.Text)
		case *goslack.SectionBlock:
			if b.Text != nil {
				out = append(out, b.Text.Text)
			}
			for _, f := range b.Fields {
				out = append(out, f.Text)
			}
		case *goslack.ContextBlock:
			for _, e := range b.ContextElements.Elements {
				if t, ok := e.(*goslack.TextBlockObject); ok {
					out = append(out, t.Text)
				}
			}
		case *goslack.ActionBlock:
			for _, e := range b.Elements.ElementSet {
				if btn, ok := e.(*goslack.ButtonBlockElement); ok {
					out = append(out, "["+btn.ActionID+"]")
				}
			}
		}
	}
	return strings.Join(out, "\n")
}

// channelPosts are the top-level messages, oldest first.
func channelPosts(f *slack.Fake) []slack.FakeMessage {
	var out []slack.FakeMessage
	for _, m := range f.Messages() {
		if m.ThreadTS == "" {
			out = append(out, m)
		}
	}
	return out
}

func threadReplies(f *slack.Fake, parent string) []slack.FakeMessage {
	var out []slack.FakeMessage
	for _, m := range f.Messages() {
		if m.ThreadTS == parent {
			out = append(out, m)
		}
	}
	return out
}

func (s *ReleaseSuite) TestPublish_FollowsTheReleaseInOneMessageAndAsksForApproval() {
	fake := s.withSlack("#releases")
	var whileWaiting []slack.FakeMessage
	var poll func()
	poll = func() {
		if st := s.status(); len(st.Approvals) > 0 && st.Approvals[0].State == GateWaiting {
			whileWaiting = channelPosts(fake)
			s.env.UpdateWorkflow(UpdateApprove, "approve/prod-signoff/alice", accepted(s.T()), ApprovalRequest{Gate: "prod-signoff", Actor: alice, Comment: "ship it"})
			return
		}
		s.env.RegisterDelayedCallback(poll, time.Second)
	}
	s.env.RegisterDelayedCallback(poll, time.Second)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal(PhaseSucceeded, s.result().Phase)

	s.Require().Len(whileWaiting, 2, "the release's message and the approval request")
	s.Contains(slackText(whileWaiting[1]), "Approval needed: prod-signoff")
	s.Contains(slackText(whileWaiting[1]), "[trainyard.approve]")
	s.Contains(slackText(whileWaiting[1]), "Who may approve: release-manager. Approvals: 0 of 1.")

	posts := channelPosts(fake)
	s.Require().Len(posts, 2, "edited in place, never posted again")
	parent, approval := posts[0], posts[1]
	s.Equal("CRELEASES", parent.Channel, "the channel's id, as Slack answered")
	s.Contains(slackText(parent), ":white_check_mark: Release shop 1.1.0")
	s.Contains(slackText(parent), "<https://trainyard.example/api/v1/releases/release-shop-1.1.0|Status>")
	s.Contains(slackText(parent), "<http://ui.example/namespaces/default/workflows/release-shop-1.1.0|Temporal UI>")
	s.NotContains(slackText(parent), "[trainyard.", "no buttons on an ended release")
	s.Positive(parent.Updates)

	s.Contains(slackText(approval), "Approved: prod-signoff")
	s.Contains(slackText(approval), "Approved by *alice*")
	s.NotContains(slackText(approval), "[trainyard.approve]", "the buttons give way to the decision")

	var thread []string
	for _, m := range threadReplies(fake, parent.TS) {
		s.False(m.Broadcast, "a successful release is not announced in the channel")
		thread = append(thread, m.Text)
	}
	all := strings.Join(thread, "\n")
	for _, want := range []string{"release requested by ci", "stage staging started", "stg-a deployed", "alice approved prod-signoff (1 of 1)", "release succeeded"} {
		s.Contains(all, want)
	}
	s.Equal(1, strings.Count(all, "stage staging started"), "each event is posted once")
}

func (s *ReleaseSuite) TestPublish_ShowsTheQuorumAfterEachApproval() {
	s.input.Runbook.Approvals[0].Count = 2
	fake := s.withSlack("C0RELEASES")
	var afterFirst string
	var poll func()
	poll = func() {
		if st := s.status(); len(st.Approvals) > 0 && st.Approvals[0].State == GateWaiting {
			s.env.UpdateWorkflow(UpdateApprove, "approve/prod-signoff/alice", accepted(s.T()), ApprovalRequest{Gate: "prod-signoff", Actor: alice})
			s.env.RegisterDelayedCallback(func() {
				afterFirst = slackText(channelPosts(fake)[1])
				s.env.UpdateWorkflow(UpdateApprove, "approve/prod-signoff/rm", accepted(s.T()),
					ApprovalRequest{Gate: "prod-signoff", Actor: Principal{Name: "rm", Roles: []string{"release-manager"}}})
			}, time.Minute)
			return
		}
		s.env.RegisterDelayedCallback(poll, time.Second)
	}
	s.env.RegisterDelayedCallback(poll, time.Second)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Contains(afterFirst, "Approvals: 1 of 2.", "the first approval shows at once")
	s.Contains(afterFirst, "[trainyard.approve]", "still open for the second approver")
	final := slackText(channelPosts(fake)[1])
	s.Contains(final, "Approvals: 2 of 2.")
	s.Contains(final, "Approved by *rm*")
}

func (s *ReleaseSuite) TestPublish_AnnouncesAFailureAndTheRollbackInTheChannel() {
	fake := s.withSlack("#releases")
	s.runner.RunFunc = func(_ context.Context, spec command.Spec) (command.Result, error) {
		if env(spec, "TRAINYARD_TARGET") == "stg-b" && env(spec, "TRAINYARD_OPERATION") == "deploy" {
			return command.Result{ExitCode: 1}, &command.ExitError{ExitCode: 1, Output: "boom\n"}
		}
		return command.Result{Output: "ok\n"}, nil
	}

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().Error(s.env.GetWorkflowError())
	parent := channelPosts(fake)[0]
	var broadcast []string
	for _, m := range threadReplies(fake, parent.TS) {
		if m.Broadcast {
			broadcast = append(broadcast, m.Text)
		}
	}
	s.Require().Len(broadcast, 2, "rolling back, then rolled back; each once")
	s.Contains(broadcast[0], "*Release shop 1.1.0 rolling back*")
	s.Contains(broadcast[0], "stg-b")
	s.Contains(broadcast[1], "*Release shop 1.1.0 rolled back*")
	s.Len(channelPosts(fake), 1, "no approval was reached")
}

func (s *ReleaseSuite) TestPublish_SlackRefusingNeverStopsTheRelease() {
	fake := s.withSlack("#releases")
	fake.Err = func(string) error { return goslack.SlackErrorResponse{Err: "not_in_channel"} }
	s.decideWhenWaiting(UpdateApprove, ApprovalRequest{Gate: "prod-signoff", Actor: alice}, accepted(s.T()))

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal(PhaseSucceeded, s.result().Phase)
	s.Empty(fake.Messages())
	// A refusal is final: one try per publish, not five.
	s.Equal(len(s.store.phases)-1, fake.Calls("chat.postMessage"), "every phase after pending tried once")
}

func (s *ReleaseSuite) TestPublish_RetriesWhatSlackCouldNotTakeWithoutPostingTwice() {
	fake := s.withSlack("#releases")
	failed := false
	fake.Err = func(method string) error {
		// The first thread reply fails once, after the parent message went out.
		if method == "chat.postMessage" && !failed && len(fake.Messages()) == 1 {
			failed = true
			return goslack.StatusCodeError{Code: 503, Status: "503 Service Unavailable"}
		}
		return nil
	}
	s.decideWhenWaiting(UpdateApprove, ApprovalRequest{Gate: "prod-signoff", Actor: alice}, accepted(s.T()))

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	s.True(failed)
	s.Len(channelPosts(fake), 2, "one release message and one approval request, despite the failure")
	all := ""
	for _, m := range threadReplies(fake, channelPosts(fake)[0].TS) {
		all += m.Text + "\n"
	}
	s.Equal(1, strings.Count(all, "release requested by ci"))
}

func (s *ReleaseSuite) TestPublish_NothingWithoutAChannel() {
	fake := s.withSlack("")
	s.decideWhenWaiting(UpdateApprove, ApprovalRequest{Gate: "prod-signoff", Actor: alice}, accepted(s.T()))

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Zero(fake.Calls("chat.postMessage"))
}
