package activities

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/trainyard/trainyard/integrations/slack"
	"github.com/trainyard/trainyard/risk"
)

var publishAt = time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)

// waitingRelease is a release held at its production approval.
func waitingRelease() ReleaseSnapshot {
	return ReleaseSnapshot{
		ID: "release-shop-1.2.3", Runbook: "shop", Version: "1.2.3", Requester: "ci", Phase: "awaiting_approval",
		Stage: "production", Environment: "production",
		Components: []ComponentFact{{Name: "api", Version: "1.2.3"}},
		Risk: &risk.Assessment{Score: 64, Level: "medium", Factors: []risk.Factor{
			{Name: "churn", Points: 20, Why: "1200 lines changed"}, {Name: "timing", Points: 0, Why: "weekday"},
		}},
		Targets: []TargetSnapshot{{Stage: "staging", Name: "stg-a", State: "deployed"}, {Stage: "production", Name: "prod-a", State: "pending"}},
		Gates:   []GateSnapshot{{Name: "image-scan", State: "passed"}},
		Approvals: []ApprovalSnapshot{{
			Gate: "prod-signoff", Before: "production", Roles: []string{"release-manager"}, Required: 2, State: "waiting",
			Why: "required because tier 1",
		}},
	}
}

func events(from int, msgs ...string) []TimelineEvent {
	out := make([]TimelineEvent, len(msgs))
	for i, m := range msgs {
		out[i] = TimelineEvent{At: publishAt.Add(time.Duration(from+i) * time.Second), Message: m}
	}
	return out
}

// publish runs PublishRelease as Temporal runs it.
func publish(t *testing.T, a *Activities, req PublishRequest) (PublishResult, error) {
	t.Helper()
	env := (&testsuite.WorkflowTestSuite{}).NewTestActivityEnvironment()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.PublishRelease, req)
	if err != nil {
		return PublishResult{}, err
	}
	var out PublishResult
	require.NoError(t, v.Get(&out))
	return out, nil
}

func slackActivities(c slack.Client) *Activities {
	return &Activities{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Slack:  &Slack{Client: c, PublicURL: "https://trainyard.example/", TemporalUIURL: "http://ui.example", Namespace: "prod"},
	}
}

// blockText is everything a person reads in a message.
func blockText(t *testing.T, m slack.FakeMessage) string {
	t.Helper()
	b, err := json.Marshal(m.Blocks)
	require.NoError(t, err)
	return m.Text + "\n" + string(b)
}

func TestPublishRelease_PostsOnceThenEditsInPlace(t *testing.T) {
	t.Parallel()
	fake := slack.NewFake()
	a := slackActivities(fake)

	first, err := publish(t, a, PublishRequest{
		Channel: "#releases", Release: waitingRelease(), Events: events(0, "release requested by ci", "stage staging deployed"),
	})
	require.NoError(t, err)
	refs := first.Refs
	require.False(t, first.Incomplete)
	require.Equal(t, "CRELEASES", refs.Channel, "the channel's id, which chat.update needs")
	require.NotEmpty(t, refs.ParentTS)
	require.Equal(t, 2, refs.Events)
	require.Len(t, refs.Approvals, 1)

	msgs := fake.Messages()
	require.Len(t, msgs, 3, "the release, one thread reply for both events, the approval request")
	parent, thread, approval := msgs[0], msgs[1], msgs[2]
	require.Empty(t, parent.ThreadTS)
	require.Contains(t, blockText(t, parent), "https://trainyard.example/api/v1/releases/release-shop-1.2.3|Status")
	require.Contains(t, blockText(t, parent), "http://ui.example/namespaces/prod/workflows/release-shop-1.2.3|Temporal UI")
	require.Equal(t, parent.TS, thread.ThreadTS)
	require.Equal(t, "`14:00:00` release requested by ci\n`14:00:01` stage staging deployed", thread.Text)
	require.Empty(t, approval.ThreadTS, "approval requests go to the channel")
	for _, want := range []string{"Approval needed: prod-signoff", "*ci* asks to ship", "churn +20.0: 1200 lines changed", "required because tier 1", "Gates passed: image-scan", "Approvals: 0 of 2", "trainyard.approve"} {
		require.Contains(t, blockText(t, approval), want)
	}
	require.NotContains(t, blockText(t, approval), "timing", "factors that add nothing are left out")

	// The same state again sends nothing.
	again, err := publish(t, a, PublishRequest{Channel: "#releases", Release: waitingRelease(), EventsFrom: 2, Refs: refs})
	require.NoError(t, err)
	require.Equal(t, refs, again.Refs)
	require.Zero(t, fake.Calls("chat.update"))
	require.Equal(t, 3, fake.Calls("chat.postMessage"))

	// A decision: the approval request shows it, the release message moves on.
	moved := waitingRelease()
	moved.Phase = "deploying"
	moved.Approvals[0].Decisions = []DecisionSnapshot{
		{Actor: "alice", Decision: "approved", At: publishAt}, {Actor: "bob", Decision: "approved", At: publishAt.Add(time.Minute)},
	}
	moved.Approvals[0].State = "approved"
	out, err := publish(t, a, PublishRequest{Channel: "#releases", Release: moved, Events: events(2, "alice approved prod-signoff (1 of 2)"), EventsFrom: 2, Refs: refs})
	require.NoError(t, err)
	require.Equal(t, 3, out.Refs.Events)
	require.Equal(t, 2, fake.Calls("chat.update"))
	require.Equal(t, 4, fake.Calls("chat.postMessage"), "one more thread reply, nothing else new")
	got, ok := fake.Message("CRELEASES", approval.TS)
	require.True(t, ok)
	require.Contains(t, blockText(t, got), "Approved by *alice*")
	require.Contains(t, blockText(t, got), "Approvals: 2 of 2")
	require.NotContains(t, blockText(t, got), "trainyard.approve")
}

func TestPublishRelease_DoesNothingWithoutSlackOrChannel(t *testing.T) {
	t.Parallel()
	for name, a := range map[string]*Activities{
		"slack off":  {Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		"no channel": slackActivities(slack.NewFake()),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			channel := "#releases"
			if name == "no channel" {
				channel = ""
			}
			out, err := publish(t, a, PublishRequest{Channel: channel, Release: waitingRelease(), Events: events(3, "a", "b"), EventsFrom: 3})
			require.NoError(t, err)
			require.Equal(t, SlackRefs{Events: 5}, out.Refs, "the events are dealt with, so they are not sent again and again")
		})
	}
}

func TestPublishRelease_FailsBeforeItPostsAnything(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		retryable bool
		hint      string
	}{
		{name: "slack refuses", err: goslack.SlackErrorResponse{Err: "not_in_channel"}, hint: "invite the Trainyard app"},
		{name: "slack is down", err: goslack.StatusCodeError{Code: 503, Status: "503 Service Unavailable"}, retryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := slack.NewFake()
			fake.Err = func(string) error { return tt.err }
			_, err := publish(t, slackActivities(fake), PublishRequest{Channel: "#releases", Release: waitingRelease()})
			var appErr *temporal.ApplicationError
			require.ErrorAs(t, err, &appErr)
			require.Equal(t, !tt.retryable, appErr.NonRetryable())
			if !tt.retryable {
				require.Equal(t, ErrTypeSlackRefused, appErr.Type())
				require.Contains(t, err.Error(), tt.hint)
			}
		})
	}
}

func TestPublishRelease_KeepsWhatItPostedWhenALaterCallFails(t *testing.T) {
	t.Parallel()
	fake := slack.NewFake()
	var mu sync.Mutex
	posts := 0
	fake.Err = func(method string) error {
		mu.Lock()
		defer mu.Unlock()
		if method == "chat.postMessage" {
			posts++
			if posts == 2 { // the thread reply, after the release's message went out
				return goslack.StatusCodeError{Code: 502, Status: "502 Bad Gateway"}
			}
		}
		return nil
	}
	a := slackActivities(fake)
	out, err := publish(t, a, PublishRequest{Channel: "#releases", Release: waitingRelease(), Events: events(0, "release requested by ci")})
	require.NoError(t, err, "failing now would post the release's message again on the retry")
	require.True(t, out.Incomplete)
	require.NotEmpty(t, out.Refs.ParentTS)
	require.Zero(t, out.Refs.Events, "the event is still to be sent")

	out, err = publish(t, a, PublishRequest{Channel: "#releases", Release: waitingRelease(), Events: events(0, "release requested by ci"), Refs: out.Refs})
	require.NoError(t, err)
	require.False(t, out.Incomplete)
	var top int
	for _, m := range fake.Messages() {
		if m.ThreadTS == "" {
			top++
		}
	}
	require.Equal(t, 2, top, "one release message and one approval request")
	require.Equal(t, 1, out.Refs.Events)
}

func TestPublishRelease_PostsADeletedMessageAgain(t *testing.T) {
	t.Parallel()
	fake := slack.NewFake()
	refs := SlackRefs{Channel: "CRELEASES", ParentTS: "1600000000.000001", ParentHash: "stale", Events: 4,
		Approvals: []ApprovalMessage{{Gate: "prod-signoff", TS: "1600000000.000002", Hash: "stale"}}}
	out, err := publish(t, slackActivities(fake), PublishRequest{Channel: "#releases", Release: waitingRelease(), EventsFrom: 4, Refs: refs})
	require.NoError(t, err)
	require.NotEqual(t, refs.ParentTS, out.Refs.ParentTS)
	require.Len(t, out.Refs.Approvals, 1)
	require.NotEqual(t, "1600000000.000002", out.Refs.Approvals[0].TS)
	require.Len(t, fake.Messages(), 2)
}

func TestPublishRelease_AnnouncesFailuresInTheChannelOnce(t *testing.T) {
	t.Parallel()
	fake := slack.NewFake()
	a := slackActivities(fake)
	r := waitingRelease()
	r.Phase, r.Failure, r.Approvals = "rolling_back", "prod-a: health check failed", nil
	out, err := publish(t, a, PublishRequest{Channel: "#releases", Release: r})
	require.NoError(t, err)
	require.Equal(t, []string{"rolling_back"}, out.Refs.Broadcast)
	out, err = publish(t, a, PublishRequest{Channel: "#releases", Release: r, Refs: out.Refs})
	require.NoError(t, err)
	var broadcast []slack.FakeMessage
	for _, m := range fake.Messages() {
		if m.Broadcast {
			broadcast = append(broadcast, m)
		}
	}
	require.Len(t, broadcast, 1)
	require.Equal(t, out.Refs.ParentTS, broadcast[0].ThreadTS)
	require.Equal(t, ":rewind: *Release shop 1.2.3 rolling back*: prod-a: health check failed", broadcast[0].Text)
}

// TestPublishRelease_OverSlacksWebAPI runs the activity with the real client against slacktest,
// which answers chat.postMessage with the channel as sent, and a chat.update recorder.
func TestPublishRelease_OverSlacksWebAPI(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var updates []url.Values
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.update", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			mu.Lock()
			updates = append(updates, r.PostForm)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": r.PostForm.Get("channel"), "ts": r.PostForm.Get("ts")})
		})
	})
	srv.Start()
	t.Cleanup(srv.Stop)
	a := slackActivities(slack.New("xoxb-test-token", goslack.OptionAPIURL(srv.GetAPIURL())))

	out, err := publish(t, a, PublishRequest{Channel: "C0RELEASES", Release: waitingRelease(), Events: events(0, "release requested by ci")})
	require.NoError(t, err)
	require.Equal(t, "C0RELEASES", out.Refs.Channel)
	require.NotEmpty(t, out.Refs.ParentTS)

	moved := waitingRelease()
	moved.Phase = "deploying"
	_, err = publish(t, a, PublishRequest{Channel: "C0RELEASES", Release: moved, EventsFrom: 1, Refs: out.Refs})
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, updates, 1, "only the release message changed")
	require.Equal(t, out.Refs.ParentTS, updates[0].Get("ts"))
	require.Contains(t, updates[0].Get("blocks"), "deploying")
}

func TestSlackNotifier_MentionsTheEscalationRolesGroups(t *testing.T) {
	t.Parallel()
	fake := slack.NewFake()
	n := &SlackNotifier{Client: fake, RoleGroups: map[string]string{"release-manager": "S0RM"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	req := NotifyRequest{ReleaseID: "release-shop-1.2.3", Channel: "#releases", Roles: []string{"release-manager", "cto"}, Kind: NotifyEscalation,
		Text: "approval prod-signoff of release release-shop-1.2.3 has waited 1h <late>"}
	require.NoError(t, n.Notify(context.Background(), req))
	msgs := fake.Messages()
	require.Len(t, msgs, 1)
	require.Equal(t, "CRELEASES", msgs[0].Channel)
	require.Equal(t, ":rotating_light: <!subteam^S0RM> *cto*: approval prod-signoff of release release-shop-1.2.3 has waited 1h &lt;late&gt;", msgs[0].Text)

	req.Channel = ""
	require.NoError(t, n.Notify(context.Background(), req))
	require.Len(t, fake.Messages(), 1, "a runbook without a channel is not announced")
}

func TestSlackNotifier_RetriesOnlyWhatMaySucceed(t *testing.T) {
	t.Parallel()
	fake := slack.NewFake()
	n := &SlackNotifier{Client: fake, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	req := NotifyRequest{ReleaseID: "r", Channel: "#releases", Roles: []string{"sre"}, Kind: NotifyEscalation, Text: "late"}

	fake.Err = func(string) error { return goslack.SlackErrorResponse{Err: "channel_not_found"} }
	require.NoError(t, n.Notify(context.Background(), req), "a refusal is logged, not retried for ever while the gate waits")

	down := goslack.StatusCodeError{Code: 503, Status: "503 Service Unavailable"}
	fake.Err = func(string) error { return down }
	err := n.Notify(context.Background(), req)
	require.True(t, errors.As(err, &goslack.StatusCodeError{}), "Slack being down is worth another try")
	require.False(t, strings.Contains(err.Error(), "xoxb"))
}
