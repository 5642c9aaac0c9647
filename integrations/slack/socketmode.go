package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// Handler answers Slack's commands and interactions, whichever transport brought them (the
// HTTP endpoints or Socket Mode). It must answer within AckTimeout: slow work goes to Temporal.
// The response is the acknowledgement's body: a CommandResponse for a command, ViewErrors for a
// modal to refuse, nil for nothing. Errors are for failures the person cannot fix; the transport
// logs them and answers with a generic apology.
type Handler interface {
	HandleCommand(ctx context.Context, cmd goslack.SlashCommand) (response any, err error)
	HandleInteraction(ctx context.Context, cb goslack.InteractionCallback) (response any, err error)
}

// AckTimeout is how long Slack waits for an acknowledgement.
const AckTimeout = 3 * time.Second

// CommandResponse is the body of a slash command's acknowledgement.
type CommandResponse struct {
	// ResponseType is "ephemeral" (only the person who typed the command sees it) or
	// "in_channel".
	ResponseType string          `json:"response_type,omitempty"`
	Text         string          `json:"text"`
	Blocks       []goslack.Block `json:"blocks,omitempty"`
}

// Ephemeral is a command reply only its author sees. text is mrkdwn: pass anything a person
// typed through Escape.
func Ephemeral(text string, blocks ...goslack.Block) CommandResponse {
	return CommandResponse{ResponseType: goslack.ResponseTypeEphemeral, Text: text, Blocks: blocks}
}

// Escape makes s show as typed in mrkdwn (no links, mentions or @channel).
func Escape(s string) string { return esc(s) }

// CommandFailed is the reply when a Handler fails: the details are in the log, not in Slack.
const CommandFailed = "Trainyard could not handle this command because of an error on its side (it is logged). Try again in a minute; if it persists, tell the Trainyard operators."

// RunSocketMode connects to Slack over Socket Mode with an app-level token (xapp-…, scope
// connections:write) and a bot token (xoxb-…), hands every slash command and interaction to h
// and acknowledges each envelope with h's response. It reconnects when Slack asks, returns nil
// when ctx ends and an error when Slack refuses the tokens.
// opts go to slack-go after Trainyard's defaults (slack.OptionAPIURL for a proxy or a test
// server).
func RunSocketMode(ctx context.Context, appToken, botToken string, h Handler, logger *slog.Logger, opts ...goslack.Option) error {
	if !strings.HasPrefix(appToken, "xapp-") {
		return errors.New("slack socket mode: the app token is not an app-level token (xapp-…); create one with the connections:write scope under Basic Information → App-Level Tokens")
	}
	if !strings.HasPrefix(botToken, "xoxb-") {
		return errors.New("slack socket mode: the bot token is not a bot token (xoxb-…); copy the Bot User OAuth Token from OAuth & Permissions")
	}
	if logger == nil {
		logger = slog.Default()
	}
	smc := newSocketModeClient(appToken, botToken, logger, opts...)
	return runSocketMode(ctx, smc, smc.Events, h, logger)
}

// newSocketModeClient builds the slack-go client; tests pass OptionAPIURL for a test server.
func newSocketModeClient(appToken, botToken string, logger *slog.Logger, opts ...goslack.Option) *socketmode.Client {
	all := append([]goslack.Option{
		goslack.OptionAppLevelToken(appToken),
		goslack.OptionHTTPClient(limitedClient{c: &http.Client{Timeout: DefaultTimeout}, max: MaxResponseBytes}),
	}, opts...)
	return socketmode.New(goslack.New(botToken, all...),
		socketmode.OptionLog(slog.NewLogLogger(logger.Handler(), slog.LevelDebug)))
}

// socketClient is what runSocketMode uses of *socketmode.Client.
type socketClient interface {
	RunContext(ctx context.Context) error
	AckCtx(ctx context.Context, envelopeID string, payload any) error
}

func runSocketMode(ctx context.Context, sc socketClient, events <-chan socketmode.Event, h Handler, logger *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	// Handlers in flight finish (their contexts end with ctx) before RunSocketMode returns.
	defer wg.Wait()

	runErr := make(chan error, 1)
	go func() { runErr <- sc.RunContext(ctx) }()
	for {
		select {
		case err := <-runErr:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("slack socket mode: %w", err)
		case evt := <-events:
			switch evt.Type {
			case socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive:
				// Each envelope on its own goroutine: one slow handler must not delay the
				// acknowledgement of the next.
				wg.Go(func() { serveEnvelope(ctx, sc, evt, h, logger) })
			case socketmode.EventTypeEventsAPI:
				// The manifest subscribes to no events; acknowledge anything so Slack stops
				// resending it.
				if evt.Request != nil {
					_ = sc.AckCtx(ctx, evt.Request.EnvelopeID, nil)
				}
			default:
				logEvent(logger, evt)
			}
		}
	}
}

// serveEnvelope acknowledges one envelope with its handler's response. A response Slack would
// refuse (over its 20 KB limit) is replaced by a bare acknowledgement, so the person sees
// Slack's generic error at worst, never a timeout and a retried envelope.
func serveEnvelope(ctx context.Context, sc socketClient, evt socketmode.Event, h Handler, logger *slog.Logger) {
	envelope, payload, ok := dispatch(ctx, evt, h, logger)
	if !ok {
		return
	}
	if err := sc.AckCtx(ctx, envelope, payload); err != nil {
		logger.Error("acknowledge slack envelope", "envelope", envelope, "error", err)
		if payload != nil {
			_ = sc.AckCtx(ctx, envelope, nil)
		}
	}
}

// dispatch hands one command or interaction envelope to h and returns what to acknowledge it
// with; ok is false when the envelope cannot be acknowledged (no envelope id).
func dispatch(ctx context.Context, evt socketmode.Event, h Handler, logger *slog.Logger) (envelope string, payload any, ok bool) {
	if evt.Request == nil || evt.Request.EnvelopeID == "" {
		logger.Warn("slack socket mode envelope without an id", "type", string(evt.Type))
		return "", nil, false
	}
	envelope = evt.Request.EnvelopeID
	log := logger.With("envelope", envelope, "type", string(evt.Type))
	if evt.Request.RetryAttempt > 0 {
		log.Info("slack resent an envelope", "attempt", evt.Request.RetryAttempt, "reason", evt.Request.RetryReason)
	}
	hctx, cancel := context.WithTimeout(ctx, AckTimeout)
	defer cancel()

	var isCommand bool
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("handler panicked: %v", p)
			}
		}()
		switch data := evt.Data.(type) {
		case goslack.SlashCommand:
			isCommand = true
			log = log.With("command", data.Command, "slack_user", data.UserID, "slack_team", data.TeamID)
			payload, err = h.HandleCommand(hctx, data)
		case goslack.InteractionCallback:
			log = log.With("interaction", string(data.Type), "slack_user", data.User.ID, "slack_team", data.Team.ID)
			payload, err = h.HandleInteraction(hctx, data)
		default:
			err = fmt.Errorf("unexpected socket mode data %T", evt.Data)
		}
	}()
	if err != nil {
		log.Error("handle slack envelope", "error", err)
		if isCommand {
			return envelope, Ephemeral(CommandFailed), true
		}
		return envelope, nil, true
	}
	return envelope, payload, true
}

func logEvent(logger *slog.Logger, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnected:
		logger.Info("slack socket mode connected")
	case socketmode.EventTypeDisconnect:
		logger.Info("slack asked socket mode to reconnect")
	case socketmode.EventTypeInvalidAuth:
		logger.Error("slack refused the socket mode app token")
	case socketmode.EventTypeConnectionError:
		if ce, ok := evt.Data.(*goslack.ConnectionErrorEvent); ok {
			logger.Warn("slack socket mode connection failed", "attempt", ce.Attempt, "backoff", ce.Backoff, "error", ce.ErrorObj)
		}
	case socketmode.EventTypeErrorBadMessage:
		// Not the message itself: envelopes carry Slack's verification token.
		if bm, ok := evt.Data.(*socketmode.ErrorBadMessage); ok {
			logger.Warn("slack socket mode message unreadable", "error", bm.Cause)
		}
	case socketmode.EventTypeErrorWriteFailed:
		if wf, ok := evt.Data.(*socketmode.ErrorWriteFailed); ok {
			logger.Warn("slack socket mode write failed", "error", wf.Cause)
		}
	case socketmode.EventTypeIncomingError:
		logger.Warn("slack socket mode connection error", "error", fmt.Sprint(evt.Data))
	default:
		logger.Debug("slack socket mode event", "type", string(evt.Type))
	}
}
