package main

import (
	"context"
	"log/slog"

	goslack "github.com/slack-go/slack"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/integrations/slack"
	"github.com/trainyard/trainyard/server"
)

// slackClient is the Web API client of the configured bot, or nil when Slack is off.
func slackClient(cfg config.Slack) *slack.WebClient {
	if !cfg.Enabled() {
		return nil
	}
	return slack.New(cfg.BotToken, goslack.OptionAPIURL(cfg.APIBaseURL()))
}

// slackServer is the server's Slack app, or nil when Slack is off.
func slackServer(cfg config.Config) *server.Slack {
	c := slackClient(cfg.Slack)
	if c == nil {
		return nil
	}
	return &server.Slack{
		SigningSecret: cfg.Slack.SigningSecret,
		Client:        c,
		Directory: slack.NewDirectory(c, slack.DirectoryConfig{
			Users: cfg.Slack.Users, Emails: cfg.Slack.Emails, Roles: cfg.PrincipalRoles(), GroupRoles: cfg.Slack.GroupRoles,
		}),
	}
}

// withSlack gives a main worker's activities Slack: release messages (PublishRelease) and
// escalations to the approvers' user groups. Without Slack they do nothing.
func withSlack(cfg config.Config, acts *activities.Activities, logger *slog.Logger) {
	c := slackClient(cfg.Slack)
	if c == nil {
		return
	}
	acts.Slack = &activities.Slack{
		Client: c, PublicURL: cfg.PublicBaseURL(), TemporalUIURL: cfg.Temporal.UIURL, Namespace: cfg.Temporal.Namespace,
	}
	acts.Notifier = &activities.SlackNotifier{Client: c, RoleGroups: cfg.Slack.RoleGroups, Logger: logger}
	logger.Info("slack on: releases are shown in their runbooks' channels")
}

// startSocketMode connects to Slack over Socket Mode when an app token is configured, feeding
// the same handler as the request URLs, until ctx ends.
func startSocketMode(ctx context.Context, cfg config.Config, srv *server.Server, logger *slog.Logger) {
	h := srv.SlackHandler()
	if !cfg.Slack.SocketModeEnabled() || h == nil {
		return
	}
	go func() {
		logger.Info("slack socket mode starting")
		err := slack.RunSocketMode(ctx, cfg.Slack.AppToken, cfg.Slack.BotToken, h, logger, goslack.OptionAPIURL(cfg.Slack.APIBaseURL()))
		if err != nil {
			logger.Error("slack socket mode stopped; /release and the buttons do not work until trainyard restarts", "error", err)
		}
	}()
}
