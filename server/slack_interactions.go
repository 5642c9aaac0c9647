package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	goslack "github.com/slack-go/slack"

	"github.com/trainyard/trainyard/integrations/slack"
	"github.com/trainyard/trainyard/workflows"
)

// slackKindActions are the audit actions of Trainyard's buttons and modal.
var slackKindActions = map[slack.ActionKind]string{
	slack.KindApprove:  actionApprove,
	slack.KindReject:   actionReject,
	slack.KindAbort:    actionAbort,
	slack.KindRollback: actionRollbackSlack,
}

// HandleInteraction implements slack.Handler: Approve, Reject (the button opens the modal, the
// modal's submission rejects), Abort and Roll back, and Cancel of a confirmation. Block
// actions are answered through their response URL; a modal submission in its acknowledgement,
// so a refusal shows inside the modal.
func (app *slackApp) HandleInteraction(ctx context.Context, cb goslack.InteractionCallback) (any, error) {
	act, err := slack.ParseInteraction(cb)
	var invalid *slack.InvalidSubmissionError
	switch {
	case errors.Is(err, slack.ErrNotTrainyard):
		return nil, nil
	case errors.As(err, &invalid):
		return slack.ViewErrors(invalid.Errors), nil
	case err != nil:
		app.log.WarnContext(ctx, "unreadable trainyard interaction", slog.String("slackUser", cb.User.ID), slog.Any("error", err))
		return nil, nil
	}
	submission := cb.Type == goslack.InteractionTypeViewSubmission

	switch {
	case act.Kind == slack.KindCancel:
		app.later(ctx, func(ctx context.Context) {
			app.respond(ctx, act.ResponseURL, "Cancelled: nothing was asked of release `"+slack.Escape(act.ReleaseID)+"`.", act.Ephemeral)
		})
		return nil, nil
	case act.Kind == slack.KindReject && !submission:
		// The trigger lives three seconds: the modal opens now, the rejection comes with it.
		view := slack.RejectModal(act.ReleaseID, act.Gate, act.ChannelID, act.MessageTS)
		if err := app.cfg.Client.OpenView(ctx, act.TriggerID, view); err != nil {
			app.log.WarnContext(ctx, "open the reject modal", slog.String("releaseId", act.ReleaseID), slog.Any("error", err))
			app.later(ctx, func(ctx context.Context) {
				app.respond(ctx, act.ResponseURL, "Slack did not open the rejection form; click Reject again.", false)
			})
		}
		return nil, nil
	}

	a, err := app.identify(ctx, act.UserID, act.TeamID)
	if err != nil {
		if !errors.Is(err, slack.ErrUnknownUser) {
			app.log.ErrorContext(ctx, "look up slack user", slog.String("slackUser", act.UserID), slog.Any("error", err))
		}
		details := map[string]any{}
		if act.Gate != "" {
			details["gate"] = act.Gate
		}
		app.s.refuseAs(ctx, a, slackKindActions[act.Kind], act.ReleaseID, newProblem(http.StatusUnauthorized, "slack user unknown: "+err.Error()), details)
		msg := whoFailed(act.UserID, err)
		if submission {
			return slack.ViewErrors(map[string]string{slack.RejectReasonBlockID: msg}), nil
		}
		app.later(ctx, func(ctx context.Context) { app.respond(ctx, act.ResponseURL, msg, false) })
		return nil, nil
	}

	switch act.Kind {
	case slack.KindApprove, slack.KindReject:
		return app.decide(ctx, a, act, submission), nil
	case slack.KindAbort, slack.KindRollback:
		app.operator(ctx, a, act)
		return nil, nil
	}
	return nil, nil
}

// decisionOutcome is what became of a decision sent to a release.
type decisionOutcome struct {
	res workflows.ApprovalResult
	p   *problem
}

// decide sends an approval or a rejection (from the modal) and tells the person the outcome.
// The release's approval message is re-rendered by the release itself.
func (app *slackApp) decide(ctx context.Context, a actor, act slack.Action, submission bool) any {
	// Approve's confirmation dialog names the expected failure modes the message lists:
	// confirming it is the acknowledgement.
	req := decisionRequest{Gate: act.Gate, Decision: "approve", AcknowledgePreMortem: true}
	if act.Kind == slack.KindReject {
		req.Decision, req.Comment = "reject", act.Reason
	}
	tell := func(ctx context.Context, text string) {
		if !submission {
			app.respond(ctx, act.ResponseURL, text, false)
			return
		}
		if act.ChannelID == "" {
			return
		}
		if err := app.cfg.Client.PostEphemeral(ctx, act.ChannelID, act.UserID, text); err != nil {
			app.log.WarnContext(ctx, "slack ephemeral not delivered", slog.Any("error", err))
		}
	}
	out, done := race(app, ctx, func(ctx context.Context) decisionOutcome {
		res, p := app.s.decideAs(ctx, a, act.ReleaseID, req, "")
		return decisionOutcome{res: res, p: p}
	}, func(ctx context.Context, out decisionOutcome) { tell(ctx, app.decisionText(ctx, a, act, out)) })
	if !done {
		// The outcome follows as an ephemeral message; the modal closes now.
		return nil
	}
	if submission && out.p != nil {
		return slack.ViewErrors(map[string]string{slack.RejectReasonBlockID: app.decisionText(ctx, a, act, out)})
	}
	app.later(ctx, func(ctx context.Context) { tell(ctx, app.decisionText(ctx, a, act, out)) })
	return nil
}

// decisionText is what the person who decided is told.
func (app *slackApp) decisionText(ctx context.Context, a actor, act slack.Action, out decisionOutcome) string {
	id, gate := slack.Escape(act.ReleaseID), slack.Escape(act.Gate)
	if out.p == nil {
		if act.Kind == slack.KindReject {
			return fmt.Sprintf(":no_entry_sign: You rejected *%s* of `%s`. The release ends rejected.", gate, id)
		}
		text := fmt.Sprintf(":white_check_mark: You approved *%s* of `%s` (%d of %d).", gate, id, out.res.Approvals, max(out.res.Required, 1))
		if out.res.State == workflows.GateApproved {
			text += " The gate is open; the release goes on."
		}
		return text
	}
	if out.p.Reason == workflows.ErrTypeForbidden {
		return app.forbiddenText(ctx, a, act, out.p)
	}
	return ":no_entry_sign: " + problemText(out.p)
}

// forbiddenText says whose decision the gate needs: the roles that may decide, when the person
// holds none of them; the release's own words otherwise (separation of duties).
func (app *slackApp) forbiddenText(ctx context.Context, a actor, act slack.Action, p *problem) string {
	verb := "approve"
	if act.Kind == slack.KindReject {
		verb = "reject"
	}
	sctx, cancel := context.WithTimeout(ctx, slackReadTimeout)
	defer cancel()
	st, err := app.s.deps.Engine.Status(sctx, act.ReleaseID)
	if err == nil {
		for _, g := range st.Approvals {
			if g.Gate != act.Gate || len(g.Roles) == 0 || a.principal.HasAnyRole(g.Roles) {
				continue
			}
			yours := "none"
			if len(a.principal.Roles) > 0 {
				yours = strings.Join(a.principal.Roles, ", ")
			}
			return fmt.Sprintf(":no_entry_sign: You can't %s *%s* of `%s`: these roles can: %s. Your roles: %s.",
				verb, slack.Escape(act.Gate), slack.Escape(act.ReleaseID), slack.Escape(strings.Join(slices.Clone(g.Roles), ", ")), slack.Escape(yours))
		}
	}
	return fmt.Sprintf(":no_entry_sign: You can't %s this: %s", verb, slack.Escape(p.Detail))
}

// operator sends an abort or a rollback, from the confirmation of /release abort|rollback or
// from the release message's buttons (Slack's own confirmation dialog asked first).
func (app *slackApp) operator(ctx context.Context, a actor, act slack.Action) {
	reason := act.Reason
	if reason == "" {
		reason = "no reason given (from Slack)"
	}
	text, done := race(app, ctx, func(ctx context.Context) string {
		if act.Kind == slack.KindAbort {
			res, p := app.s.abortAs(ctx, a, act.ReleaseID, reason, "")
			if p != nil {
				return ":no_entry_sign: " + problemText(p)
			}
			return fmt.Sprintf(":octagonal_sign: %s aborted release `%s` (it was %s): it stops and rolls back what it deployed. Reason: %s",
				slack.Escape(a.principal.Name), slack.Escape(act.ReleaseID), slack.Escape(strings.ReplaceAll(string(res.Phase), "_", " ")), slack.Escape(reason))
		}
		res, p := app.s.operateAs(ctx, a, act.ReleaseID, workflows.UpdateRollback, actionRollbackSlack, workflows.UpdateRollback+"/"+a.principal.Name, reason)
		if p != nil {
			return ":no_entry_sign: " + problemText(p)
		}
		return fmt.Sprintf(":rewind: %s ordered a rollback of release `%s` (it is %s). Reason: %s",
			slack.Escape(a.principal.Name), slack.Escape(act.ReleaseID), slack.Escape(strings.ReplaceAll(string(res.Phase), "_", " ")), slack.Escape(reason))
	}, func(ctx context.Context, text string) { app.respond(ctx, act.ResponseURL, text, act.Ephemeral) })
	if done {
		app.later(ctx, func(ctx context.Context) { app.respond(ctx, act.ResponseURL, text, act.Ephemeral) })
	}
}
