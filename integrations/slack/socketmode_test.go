package slack

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
	"github.com/slack-go/slack/socketmode"
	"github.com/stretchr/testify/require"
)

// handlerFunc adapts two functions to Handler; calls records what it was handed.
type handlerFunc struct {
	command     func(ctx context.Context, cmd goslack.SlashCommand) (any, error)
	interaction func(ctx context.Context, cb goslack.InteractionCallback) (any, error)

	mu    sync.Mutex
	calls []any
}

func (h *handlerFunc) HandleCommand(ctx context.Context, cmd goslack.SlashCommand) (any, error) {
	h.mu.Lock()
	h.calls = append(h.calls, cmd)
	h.mu.Unlock()
	return h.command(ctx, cmd)
}

func (h *handlerFunc) HandleInteraction(ctx context.Context, cb goslack.InteractionCallback) (any, error) {
	h.mu.Lock()
	h.calls = append(h.calls, cb)
	h.mu.Unlock()
	return h.interaction(ctx, cb)
}

func (h *handlerFunc) handled() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls)
}

type ack struct {
	envelope string
	payload  any
}

// fakeSocket stands in for *socketmode.Client: RunContext runs until ctx ends (or returns
// runErr), and acknowledgements go to acks.
type fakeSocket struct {
	runErr error
	ackErr func(payload any) error
	acks   chan ack
}

func (f *fakeSocket) RunContext(ctx context.Context) error {
	if f.runErr != nil {
		return f.runErr
	}
	<-ctx.Done()
	return ctx.Err()
}

func (f *fakeSocket) AckCtx(ctx context.Context, envelope string, payload any) error {
	if f.ackErr != nil {
		if err := f.ackErr(payload); err != nil {
			return err
		}
	}
	select {
	case f.acks <- ack{envelope, payload}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startSocket runs runSocketMode over a fakeSocket until the test ends.
func startSocket(t *testing.T, sock *fakeSocket, h Handler) chan<- socketmode.Event {
	t.Helper()
	events := make(chan socketmode.Event)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runSocketMode(ctx, sock, events, h, discardLogger()) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done, "cancelling the context is a clean stop")
	})
	return events
}

func nextAck(t *testing.T, acks <-chan ack) ack {
	t.Helper()
	select {
	case a := <-acks:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no acknowledgement")
		return ack{}
	}
}

func commandEvent(envelope, text string) socketmode.Event {
	return socketmode.Event{
		Type:    socketmode.EventTypeSlashCommand,
		Data:    goslack.SlashCommand{Command: "/release", Text: text, UserID: "U0CA5", TeamID: "T0CAG", ChannelID: "C0CA5"},
		Request: &socketmode.Request{Type: socketmode.RequestTypeSlashCommands, EnvelopeID: envelope},
	}
}

func TestRunSocketMode_AcksCommandsWithTheHandlersResponse(t *testing.T) {
	t.Parallel()
	var deadline time.Duration
	var hasDeadline bool
	h := &handlerFunc{command: func(ctx context.Context, cmd goslack.SlashCommand) (any, error) {
		var dl time.Time
		dl, hasDeadline = ctx.Deadline()
		deadline = time.Until(dl)
		c, err := ParseCommand(cmd.Text)
		if err != nil {
			return Ephemeral(err.Error()), nil
		}
		return Ephemeral("starting " + c.Runbook), nil
	}}
	sock := &fakeSocket{acks: make(chan ack)}
	events := startSocket(t, sock, h)

	events <- commandEvent("env-1", "start shop 1.2.3")
	got := nextAck(t, sock.acks)
	require.Equal(t, "env-1", got.envelope)
	require.Equal(t, Ephemeral("starting shop"), got.payload)
	require.True(t, hasDeadline, "handlers get Slack's acknowledgement deadline")
	require.LessOrEqual(t, deadline, AckTimeout)

	events <- commandEvent("env-2", "deploy")
	got = nextAck(t, sock.acks)
	require.Equal(t, "env-2", got.envelope)
	require.Contains(t, got.payload.(CommandResponse).Text, "is not a /release command")
	require.Equal(t, goslack.ResponseTypeEphemeral, got.payload.(CommandResponse).ResponseType)
}

func TestRunSocketMode_AcksInteractionsWithTheHandlersResponse(t *testing.T) {
	t.Parallel()
	h := &handlerFunc{interaction: func(_ context.Context, cb goslack.InteractionCallback) (any, error) {
		_, err := ParseInteraction(cb)
		var ie *InvalidSubmissionError
		if errors.As(err, &ie) {
			return ViewErrors(ie.Errors), nil
		}
		return nil, err
	}}
	sock := &fakeSocket{acks: make(chan ack)}
	events := startSocket(t, sock, h)

	cb := rejectSubmission(t, RejectModal("release-shop-1.2.3", "prod-signoff", "C0CA5", "1"), " ")
	events <- socketmode.Event{Type: socketmode.EventTypeInteractive, Data: cb,
		Request: &socketmode.Request{Type: socketmode.RequestTypeInteractive, EnvelopeID: "env-3"}}
	got := nextAck(t, sock.acks)
	require.Equal(t, "env-3", got.envelope)
	body, err := json.Marshal(got.payload)
	require.NoError(t, err)
	require.JSONEq(t, `{"response_action":"errors","errors":{"reason":"Say why you reject this release; the reason goes to the requester and the audit log."}}`, string(body))
}

func TestRunSocketMode_AnswersHandlerFailuresWithoutDetails(t *testing.T) {
	t.Parallel()
	secret := errors.New("pq: password authentication failed for user trainyard")
	for _, tc := range []struct {
		name string
		fail func() (any, error)
	}{
		{"error", func() (any, error) { return nil, secret }},
		{"panic", func() (any, error) { panic(secret) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := &handlerFunc{
				command:     func(context.Context, goslack.SlashCommand) (any, error) { return tc.fail() },
				interaction: func(context.Context, goslack.InteractionCallback) (any, error) { return tc.fail() },
			}
			sock := &fakeSocket{acks: make(chan ack)}
			events := startSocket(t, sock, h)

			events <- commandEvent("env-c", "list")
			got := nextAck(t, sock.acks)
			require.Equal(t, "env-c", got.envelope)
			require.Equal(t, Ephemeral(CommandFailed), got.payload)

			events <- socketmode.Event{Type: socketmode.EventTypeInteractive, Data: goslack.InteractionCallback{Type: goslack.InteractionTypeBlockActions},
				Request: &socketmode.Request{EnvelopeID: "env-i"}}
			got = nextAck(t, sock.acks)
			require.Equal(t, ack{envelope: "env-i"}, got, "an interaction is acknowledged bare")
		})
	}
}

func TestRunSocketMode_AcksBareWhenSlackRefusesTheResponse(t *testing.T) {
	t.Parallel()
	h := &handlerFunc{command: func(context.Context, goslack.SlashCommand) (any, error) {
		return Ephemeral("a response too large for a socket mode acknowledgement"), nil
	}}
	sock := &fakeSocket{acks: make(chan ack), ackErr: func(payload any) error {
		if payload != nil {
			return errors.New("socket mode response (25000 bytes) meets or exceeds Slack's 20480-byte WebSocket limit")
		}
		return nil
	}}
	events := startSocket(t, sock, h)
	events <- commandEvent("env-big", "list")
	require.Equal(t, ack{envelope: "env-big"}, nextAck(t, sock.acks))
}

func TestRunSocketMode_AcksEventsAPIWithoutTheHandler(t *testing.T) {
	t.Parallel()
	h := &handlerFunc{}
	sock := &fakeSocket{acks: make(chan ack)}
	events := startSocket(t, sock, h)
	events <- socketmode.Event{Type: socketmode.EventTypeEventsAPI, Request: &socketmode.Request{EnvelopeID: "env-e"}}
	require.Equal(t, ack{envelope: "env-e"}, nextAck(t, sock.acks))
	// An envelope without an id cannot be acknowledged and reaches no handler; the next one
	// still does.
	events <- socketmode.Event{Type: socketmode.EventTypeSlashCommand, Data: goslack.SlashCommand{}}
	events <- socketmode.Event{Type: socketmode.EventTypeEventsAPI, Request: &socketmode.Request{EnvelopeID: "env-f"}}
	require.Equal(t, ack{envelope: "env-f"}, nextAck(t, sock.acks))
	require.Zero(t, h.handled())
}

func TestRunSocketMode_ReturnsWhenSlackRefusesTheToken(t *testing.T) {
	t.Parallel()
	sock := &fakeSocket{runErr: errors.New("invalid_auth"), acks: make(chan ack)}
	err := runSocketMode(context.Background(), sock, make(chan socketmode.Event), &handlerFunc{}, discardLogger())
	require.ErrorContains(t, err, "slack socket mode: invalid_auth")
}

func TestRunSocketMode_RefusesTokensOfTheWrongKind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	err := RunSocketMode(ctx, "xoxb-bot-token-secret", "xoxb-bot-token-secret", &handlerFunc{}, nil)
	require.ErrorContains(t, err, "not an app-level token")
	require.NotContains(t, err.Error(), "bot-token-secret")
	err = RunSocketMode(ctx, "xapp-app-token-secret", "xoxp-user-token-secret", &handlerFunc{}, nil)
	require.ErrorContains(t, err, "not a bot token")
	require.NotContains(t, err.Error(), "token-secret")
}

// TestRunSocketMode_OverAWebSocket runs slack-go's real Socket Mode client against a server
// speaking Slack's Socket Mode protocol: apps.connections.open with the app-level token, a
// hello, then envelopes, each answered by an acknowledgement carrying the envelope id.
func TestRunSocketMode_OverAWebSocket(t *testing.T) {
	t.Parallel()
	const appToken, botToken = "xapp-1-A0CA5-test", "xoxb-test-bot"
	acks := make(chan map[string]any, 4)
	opened := make(chan string, 4)
	// Slack's client dials with Origin https://api.slack.com, which the test server accepts as
	// Slack's does.
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/apps.connections.open", func(w http.ResponseWriter, r *http.Request) {
			select {
			case opened <- r.Header.Get("Authorization"):
			default:
			}
			writeJSON(w, map[string]any{"ok": true, "url": slacktest.ServerWSFromContext(r.Context()) + "?ticket=abc"})
		})
		c.Handle("/ws", func(w http.ResponseWriter, r *http.Request) {
			conn, err := upgrader.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer conn.Close()
			_ = conn.WriteJSON(map[string]any{"type": "hello", "num_connections": 1,
				"connection_info": map[string]any{"app_id": "A0CA5"}, "debug_info": map[string]any{"host": "applink-test"}})
			_ = conn.WriteJSON(map[string]any{
				"envelope_id": "57d6a792-4d35-4d0b-b6aa-3361493e1caf", "type": "slash_commands", "accepts_response_payload": true,
				"payload": map[string]any{"token": "verification", "team_id": "T0CAG", "channel_id": "C0CA5", "user_id": "U0CA5",
					"command": "/release", "text": "status release-shop-1.2.3", "response_url": "https://hooks.slack.com/commands/1/2/3", "trigger_id": "1.2.3"},
			})
			_ = conn.WriteJSON(map[string]any{
				"envelope_id": "d1ab7d4e-2d11-4f3a-9b8e-0e5a1a0b2c3d", "type": "interactive", "accepts_response_payload": false,
				"payload": json.RawMessage(`{"type":"block_actions","user":{"id":"U0CA5","name":"amy"},"team":{"id":"T0CAG"},
					"container":{"type":"message","message_ts":"1.2","channel_id":"C0CA5"},
					"actions":[{"type":"button","block_id":"trainyard.decide","action_id":"trainyard.approve","value":"release-shop-1.2.3|prod-signoff"}]}`),
			})
			for {
				var m map[string]any
				if err := conn.ReadJSON(&m); err != nil {
					return
				}
				acks <- m
			}
		})
	})
	srv.Start()
	t.Cleanup(srv.Stop)

	var approved Action
	h := &handlerFunc{
		command: func(_ context.Context, cmd goslack.SlashCommand) (any, error) {
			c, err := ParseCommand(cmd.Text)
			if err != nil {
				return Ephemeral(err.Error()), nil
			}
			return Ephemeral("status of " + c.ReleaseID), nil
		},
		interaction: func(_ context.Context, cb goslack.InteractionCallback) (any, error) {
			a, err := ParseInteraction(cb)
			approved = a
			return nil, err
		},
	}
	smc := newSocketModeClient(appToken, botToken, discardLogger(), goslack.OptionAPIURL(srv.GetAPIURL()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runSocketMode(ctx, smc, smc.Events, h, discardLogger()) }()

	require.Equal(t, "Bearer "+appToken, <-opened, "the connection is opened with the app-level token")
	got := map[string]map[string]any{}
	for range 2 {
		select {
		case a := <-acks:
			got[a["envelope_id"].(string)] = a
		case <-time.After(20 * time.Second):
			t.Fatal("no acknowledgement over the websocket")
		}
	}
	cancel()
	require.NoError(t, <-done)

	cmdAck := got["57d6a792-4d35-4d0b-b6aa-3361493e1caf"]
	require.NotNil(t, cmdAck)
	require.Equal(t, map[string]any{"response_type": "ephemeral", "text": "status of release-shop-1.2.3"}, cmdAck["payload"])
	btnAck := got["d1ab7d4e-2d11-4f3a-9b8e-0e5a1a0b2c3d"]
	require.NotNil(t, btnAck)
	require.NotContains(t, btnAck, "payload", "a button click is acknowledged bare")
	require.Equal(t, KindApprove, approved.Kind)
	require.Equal(t, "prod-signoff", approved.Gate)
}
