package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	goslack "github.com/slack-go/slack"

	"github.com/trainyard/trainyard/integrations/slack"
	"github.com/trainyard/trainyard/store"
	"github.com/trainyard/trainyard/workflows"
)

// actionRollbackSlack is the audit action of a rollback ordered from Slack.
const actionRollbackSlack = "release.rollback"

// slackVerbActions are the audit actions of the commands that ask something of a release.
var slackVerbActions = map[slack.Verb]string{
	slack.VerbStart:    actionStart,
	slack.VerbPause:    actionPause,
	slack.VerbResume:   actionResume,
	slack.VerbAbort:    actionAbort,
	slack.VerbRollback: actionRollbackSlack,
}

// workingOnIt is the acknowledgement of a command whose outcome comes later.
const workingOnIt = "Working on it: the release is taking longer than usual to answer. You will see the outcome here."

// maxListed bounds /release list and /release status without an id.
const maxListed = 15

// HandleCommand implements slack.Handler: /release and its verbs.
func (app *slackApp) HandleCommand(ctx context.Context, sc goslack.SlashCommand) (any, error) {
	cmd, err := slack.ParseCommand(sc.Text)
	if err != nil {
		var ue *slack.UsageError
		if errors.As(err, &ue) {
			return slack.Ephemeral(usageText(ue)), nil
		}
		return nil, err
	}
	if cmd.Verb == slack.VerbHelp {
		return slack.Ephemeral(slack.HelpText()), nil
	}
	a, err := app.identify(ctx, sc.UserID, sc.TeamID)
	if err != nil {
		if !errors.Is(err, slack.ErrUnknownUser) {
			app.log.ErrorContext(ctx, "look up slack user", slog.String("slackUser", sc.UserID), slog.Any("error", err))
		}
		if action, ok := slackVerbActions[cmd.Verb]; ok {
			app.s.refuseAs(ctx, a, action, cmd.ReleaseID, newProblem(http.StatusUnauthorized, "slack user unknown: "+err.Error()), nil)
		}
		return slack.Ephemeral(whoFailed(sc.UserID, err)), nil
	}
	switch cmd.Verb {
	case slack.VerbStatus:
		if cmd.ReleaseID == "" {
			return app.inProgress(ctx), nil
		}
		return app.status(ctx, cmd.ReleaseID), nil
	case slack.VerbList:
		return app.list(ctx), nil
	case slack.VerbStart:
		return app.start(ctx, a, cmd, sc.ResponseURL), nil
	case slack.VerbPause, slack.VerbResume:
		return app.pauseOrResume(ctx, a, cmd, sc), nil
	case slack.VerbAbort, slack.VerbRollback:
		return app.confirmOperator(ctx, cmd), nil
	}
	return slack.Ephemeral(slack.HelpText()), nil
}

func (app *slackApp) start(ctx context.Context, a actor, cmd slack.Command, responseURL string) any {
	if len(a.principal.Roles) == 0 {
		p := app.s.refuseAs(ctx, a, actionStart, "", newProblem(http.StatusForbidden,
			fmt.Sprintf("%s holds no Trainyard role, and starting a release from Slack needs one", a.principal.Name)),
			map[string]any{"runbook": cmd.Runbook, "version": cmd.Version})
		return slack.Ephemeral(slack.Escape(p.Detail) + ". Ask a Trainyard operator to map your Slack user (" + slack.Escape(a.slackUser) +
			") to a principal with roles (`slack.users`), or to give one of your Slack user groups a role (`slack.groupRoles`).")
	}
	req := startRequest{Runbook: cmd.Runbook, Version: cmd.Version}
	for _, c := range cmd.Components {
		req.Components = append(req.Components, workflows.Component{Name: c.Name, Version: c.Version})
	}
	text, done := race(app, ctx, func(ctx context.Context) string {
		resp, created, p := app.s.startAs(ctx, a, req, "")
		if p != nil {
			return ":no_entry_sign: " + problemText(p) + "\nNothing was started. `/release help` lists the commands."
		}
		follow := ""
		if rb, err := app.s.deps.Catalog.Get(resp.Runbook); err == nil && rb.Channel != "" {
			follow = " It is followed in " + channelRef(rb.Channel) + "."
		}
		link := fmt.Sprintf(" <%s|Status> · <%s|Temporal UI>", resp.StatusURL, resp.TemporalUIURL)
		if !created {
			return fmt.Sprintf("Release `%s` already exists (%s): starting the same runbook and version again finds it.%s%s",
				slack.Escape(resp.ID), slack.Escape(strings.ReplaceAll(resp.Phase, "_", " ")), follow, link)
		}
		return fmt.Sprintf(":rocket: Started release `%s`: %s %s, requested by %s.%s%s",
			slack.Escape(resp.ID), slack.Escape(resp.Runbook), slack.Escape(resp.Version), slack.Escape(a.principal.Name), follow, link)
	}, func(ctx context.Context, text string) { app.respond(ctx, responseURL, text, false) })
	if !done {
		return slack.Ephemeral(workingOnIt)
	}
	return slack.Ephemeral(text)
}

func (app *slackApp) pauseOrResume(ctx context.Context, a actor, cmd slack.Command, sc goslack.SlashCommand) any {
	update, action, did := workflows.UpdatePause, actionPause, "Paused"
	if cmd.Verb == slack.VerbResume {
		update, action, did = workflows.UpdateResume, actionResume, "Resumed"
	}
	if cmd.Verb == slack.VerbPause && strings.TrimSpace(cmd.Reason) == "" {
		app.s.refuseAs(ctx, a, action, cmd.ReleaseID, newProblem(http.StatusBadRequest, "a pause needs a reason"), nil)
		return slack.Ephemeral("Say why you pause it, so others know why the release waits.\nType `/release pause " + slack.Escape(cmd.ReleaseID) + " <reason>`")
	}
	// Each command is its own Update: pausing again after a resume must pause again.
	nonce := sc.TriggerID
	if nonce == "" {
		nonce = a.requestID
	}
	updateID := update + "/" + a.principal.Name + "/" + nonce
	text, done := race(app, ctx, func(ctx context.Context) string {
		res, p := app.s.operateAs(ctx, a, cmd.ReleaseID, update, action, updateID, cmd.Reason)
		if p != nil {
			return ":no_entry_sign: " + problemText(p)
		}
		return fmt.Sprintf("%s release `%s` (it is %s).", did, slack.Escape(cmd.ReleaseID), slack.Escape(strings.ReplaceAll(string(res.Phase), "_", " ")))
	}, func(ctx context.Context, text string) { app.respond(ctx, sc.ResponseURL, text, false) })
	if !done {
		return slack.Ephemeral(workingOnIt)
	}
	return slack.Ephemeral(text)
}

// confirmOperator answers /release abort and rollback with what would happen and a button
// that does it: destructive orders are confirmed, and the button's click is the order.
func (app *slackApp) confirmOperator(ctx context.Context, cmd slack.Command) any {
	kind := slack.KindAbort
	if cmd.Verb == slack.VerbRollback {
		kind = slack.KindRollback
	}
	sctx, cancel := context.WithTimeout(ctx, slackReadTimeout)
	defer cancel()
	if _, err := app.s.deps.Engine.Status(sctx, cmd.ReleaseID); errors.Is(err, ErrReleaseNotFound) {
		return slack.Ephemeral("No release has id `" + slack.Escape(cmd.ReleaseID) + "`. Type `/release list` to see recent releases.")
	}
	blocks, err := slack.OperatorConfirmBlocks(kind, cmd.ReleaseID, cmd.Reason)
	if err != nil {
		return slack.Ephemeral(slack.Escape(err.Error()))
	}
	return slack.Ephemeral(fmt.Sprintf("Confirm: %s release %s?", kind, slack.Escape(cmd.ReleaseID)), blocks...)
}

func (app *slackApp) status(ctx context.Context, id string) any {
	sctx, cancel := context.WithTimeout(ctx, slackReadTimeout)
	defer cancel()
	st, err := app.s.deps.Engine.Status(sctx, id)
	switch {
	case errors.Is(err, ErrReleaseNotFound):
		return slack.Ephemeral("No release has id `" + slack.Escape(id) + "`. Type `/release list` to see recent releases.")
	case err != nil:
		app.log.WarnContext(ctx, "status for slack", slog.String("releaseId", id), slog.Any("error", err))
		return slack.Ephemeral("Release `" + slack.Escape(id) + "` did not answer in time; check that a trainyard worker is running, then try again.")
	}
	v := app.s.releaseView(st)
	return slack.Ephemeral(slack.FallbackText(v), slack.ReleaseBlocks(v)...)
}

func (app *slackApp) list(ctx context.Context) any {
	recs, err := app.releases(ctx, maxListed)
	if err != nil {
		return slack.Ephemeral("Trainyard could not list releases just now; try again in a minute.")
	}
	if len(recs) == 0 {
		return slack.Ephemeral("No releases yet. Start one with `/release start <runbook> <version>`.")
	}
	return slack.Ephemeral("*Recent releases*\n" + releaseLines(recs))
}

func (app *slackApp) inProgress(ctx context.Context) any {
	recs, err := app.releases(ctx, 100)
	if err != nil {
		return slack.Ephemeral("Trainyard could not list releases just now; try again in a minute.")
	}
	var active []store.ReleaseRecord
	for _, r := range recs {
		if !workflows.Phase(r.Phase).Terminal() && len(active) < maxListed {
			active = append(active, r)
		}
	}
	if len(active) == 0 {
		return slack.Ephemeral("No release is in progress. `/release list` shows recent ones.")
	}
	return slack.Ephemeral("*Releases in progress*\n" + releaseLines(active) + "\n`/release status <id>` shows one.")
}

func (app *slackApp) releases(ctx context.Context, limit int) ([]store.ReleaseRecord, error) {
	sctx, cancel := context.WithTimeout(ctx, slackReadTimeout)
	defer cancel()
	recs, err := app.s.deps.Store.ListReleases(sctx, store.ReleaseFilter{Limit: limit})
	if err != nil {
		app.log.WarnContext(ctx, "list releases for slack", slog.Any("error", err))
	}
	return recs, err
}

func releaseLines(recs []store.ReleaseRecord) string {
	lines := make([]string, 0, len(recs))
	for _, r := range recs {
		line := fmt.Sprintf("%s `%s` %s, %s %s, by %s, updated %s", slack.PhaseEmoji(r.Phase), slack.Escape(r.ID),
			slack.Escape(strings.ReplaceAll(r.Phase, "_", " ")), slack.Escape(r.Runbook), slack.Escape(r.Version),
			slack.Escape(r.Requester), r.UpdatedAt.UTC().Format("Jan 2 15:04 UTC"))
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}
