package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trainyard/trainyard/integrations/slack"
	"github.com/trainyard/trainyard/workflows"
)

// Slack configures the Slack app's side of the server. Nil in Deps leaves Slack off.
type Slack struct {
	// SigningSecret verifies requests to /slack/commands and /slack/interactions; empty when
	// Slack reaches Trainyard only over Socket Mode (the routes are then not served).
	SigningSecret string
	// Client answers people (modals, ephemeral messages, response URLs).
	Client slack.Client
	// Directory says who a Slack user is.
	Directory *slack.Directory
}

// Slack's request limits and Trainyard's time budget within them.
const (
	// slackMaxBody bounds a Slack request: an interaction carries the message it came from.
	slackMaxBody = slack.DefaultMaxBody
	// slackAckBudget is how long a handler waits for Temporal before it answers Slack with
	// "working on it" and delivers the outcome later: Slack gives up after three seconds.
	slackAckBudget = 2200 * time.Millisecond
	// slackFollowUpTimeout bounds the work that goes on after the acknowledgement, and
	// each follow-up message.
	slackFollowUpTimeout = 30 * time.Second
	// slackReadTimeout bounds a status query or listing made for a command.
	slackReadTimeout = 2 * time.Second
)

// slackApp handles Slack's commands and interactions, from the HTTP endpoints or Socket Mode.
// It turns them into the same calls the API makes (startAs, decideAs, abortAs, operateAs), so
// the rules and the audit are the same.
type slackApp struct {
	s      *Server
	cfg    Slack
	log    *slog.Logger
	budget time.Duration
	// followUps are the answers still being delivered after an acknowledgement.
	followUps sync.WaitGroup
}

var _ slack.Handler = (*slackApp)(nil)

func newSlackApp(s *Server, cfg Slack) *slackApp {
	return &slackApp{s: s, cfg: cfg, log: s.log.With(slog.String("component", "slack")), budget: slackAckBudget}
}

// SlackHandler is what Socket Mode feeds Slack's envelopes to; nil when Slack is off.
func (s *Server) SlackHandler() slack.Handler {
	if s.slack == nil {
		return nil
	}
	return s.slack
}

// slackRoutes serves Slack's request URLs when Slack is configured with a signing secret.
// They sit outside the bearer-token group: the signature is their authentication.
func (s *Server) slackRoutes(r *gin.Engine) {
	if s.deps.Slack == nil {
		return
	}
	s.slack = newSlackApp(s, *s.deps.Slack)
	if s.deps.Slack.SigningSecret == "" {
		return
	}
	r.POST("/slack/commands", s.slack.endpoint(true))
	r.POST("/slack/interactions", s.slack.endpoint(false))
}

type slackRequestIDKey struct{}

// endpoint verifies a Slack request (body read once, through the limit; signature and age
// checked; nothing in the query acted upon) and hands what Slack signed to the handler.
func (app *slackApp) endpoint(command bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		body, err := slack.VerifyRequest(c.Request, app.cfg.SigningSecret, app.s.now(), slackMaxBody)
		if err != nil {
			app.refuseRequest(c, err)
			return
		}
		// The handler's context ends when Slack stops waiting; work that must outlive it
		// detaches explicitly (race).
		ctx, cancel := context.WithTimeout(c.Request.Context(), slack.AckTimeout)
		defer cancel()
		ctx = context.WithValue(ctx, slackRequestIDKey{}, requestID(c))
		var resp any
		if command {
			if form, _ := url.ParseQuery(string(body)); form.Get("ssl_check") == "1" {
				c.Status(http.StatusOK) // Slack checking the certificate: nothing to do.
				return
			}
			cmd, perr := slack.ParseSlashCommand(body)
			if perr != nil {
				fail(c, http.StatusBadRequest, "the slash command body cannot be read: "+perr.Error())
				return
			}
			resp, err = app.HandleCommand(ctx, cmd)
			if err != nil {
				app.log.ErrorContext(ctx, "slack command failed", slog.String("requestId", requestID(c)), slog.Any("error", err))
				resp = slack.Ephemeral(slack.CommandFailed)
			}
		} else {
			cb, perr := slack.ParseInteractionPayload(body)
			if perr != nil {
				fail(c, http.StatusBadRequest, "the interaction payload cannot be read: "+perr.Error())
				return
			}
			resp, err = app.HandleInteraction(ctx, cb)
			if err != nil {
				app.log.ErrorContext(ctx, "slack interaction failed", slog.String("requestId", requestID(c)), slog.Any("error", err))
				resp = nil
			}
		}
		if resp == nil {
			c.Status(http.StatusOK)
			return
		}
		c.JSON(http.StatusOK, resp)
	}
}

// refuseRequest answers a request that is not Slack's, or not readable as Slack's.
func (app *slackApp) refuseRequest(c *gin.Context, err error) {
	app.log.WarnContext(c.Request.Context(), "slack request refused",
		slog.String("requestId", requestID(c)), slog.String("path", c.Request.URL.Path), slog.String("reason", err.Error()))
	switch {
	case errors.Is(err, slack.ErrBadSignature):
		fail(c, http.StatusUnauthorized, "the request is not signed with this app's signing secret; check TRAINYARD_SLACK_SIGNING_SECRET against Basic Information → App Credentials → Signing Secret")
	case errors.Is(err, slack.ErrStaleTimestamp):
		fail(c, http.StatusUnauthorized, "the request's X-Slack-Request-Timestamp is missing or more than five minutes from this server's clock; if Slack sent it, synchronise this server's clock (NTP)")
	case errors.Is(err, slack.ErrBodyTooLarge):
		fail(c, http.StatusRequestEntityTooLarge, "the request body is larger than a Slack request can be")
	case errors.Is(err, slack.ErrSmuggled):
		fail(c, http.StatusBadRequest, "the query string carries payload, command or text; Slack sends them only in the signed body")
	default:
		fail(c, http.StatusBadRequest, "the request cannot be read as a Slack request")
	}
}

// slackActor is who a Slack user is, for the calls and audit rows their requests make.
func (app *slackApp) slackActor(ctx context.Context, p workflows.Principal, userID, teamID string) actor {
	reqID, _ := ctx.Value(slackRequestIDKey{}).(string)
	if reqID == "" {
		reqID = newRequestID()
	}
	return actor{principal: p, slackUser: userID, slackTeam: teamID, device: "slack", requestID: reqID}
}

// identify looks a Slack user up in the Directory. A user it cannot name acts as
// "slack:<user id>", so a refused attempt is still audited under something.
func (app *slackApp) identify(ctx context.Context, userID, teamID string) (actor, error) {
	if app.cfg.Directory == nil {
		return app.slackActor(ctx, workflows.Principal{Name: "slack:" + userID}, userID, teamID), slack.ErrUnknownUser
	}
	id, err := app.cfg.Directory.Lookup(ctx, userID)
	if err != nil {
		return app.slackActor(ctx, workflows.Principal{Name: "slack:" + userID}, userID, teamID), err
	}
	return app.slackActor(ctx, workflows.Principal{Name: id.Principal, Roles: id.Roles}, userID, teamID), nil
}

// whoFailed says why identify failed, in words for the person.
func whoFailed(userID string, err error) string {
	if errors.Is(err, slack.ErrUnknownUser) {
		return "Trainyard does not know who you are: your Slack user (" + slack.Escape(userID) + ") maps to no principal and Slack shows no email for you. Ask a Trainyard operator to add you under `slack.users` in the configuration."
	}
	return "Trainyard could not look you up in Slack just now; try again in a minute. If it persists, tell the Trainyard operators (the error is logged)."
}

// race runs work on a context that outlives the request and waits for it until the budget
// (or ctx) ends. done reports whether it finished in time; when it did not, late is called
// with its result once it does, so the person still hears the outcome.
func race[T any](app *slackApp, ctx context.Context, work func(context.Context) T, late func(context.Context, T)) (result T, done bool) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), slackFollowUpTimeout)
	ch := make(chan T, 1)
	var mu sync.Mutex
	abandoned := false
	app.followUps.Add(1)
	go func() {
		defer app.followUps.Done()
		defer cancel()
		r := work(bctx)
		ch <- r
		mu.Lock()
		gone := abandoned
		mu.Unlock()
		if gone && late != nil {
			late(bctx, r)
		}
	}()
	t := time.NewTimer(app.budget)
	defer t.Stop()
	select {
	case r := <-ch:
		return r, true
	case <-t.C:
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	select {
	case r := <-ch:
		return r, true
	default:
	}
	abandoned = true
	return result, false
}

// later runs fn after the acknowledgement, bounded by slackFollowUpTimeout.
func (app *slackApp) later(ctx context.Context, fn func(context.Context)) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), slackFollowUpTimeout)
	app.followUps.Add(1)
	go func() {
		defer app.followUps.Done()
		defer cancel()
		fn(bctx)
	}()
}

// respond answers through a response URL; a failure is logged (the person sees nothing, and
// the action itself is in the audit trail).
func (app *slackApp) respond(ctx context.Context, responseURL, text string, replace bool) {
	if responseURL == "" {
		return
	}
	if err := app.cfg.Client.RespondURL(ctx, responseURL, text, replace); err != nil {
		app.log.WarnContext(ctx, "slack response not delivered", slog.Any("error", err))
	}
}
