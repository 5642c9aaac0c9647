package main

import (
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/config"
)

func TestSlackWiring_OffUnlessConfigured(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Default()
	require.Nil(t, slackServer(cfg))
	acts := &activities.Activities{}
	withSlack(cfg, acts, logger)
	require.Nil(t, acts.Slack)
	require.Nil(t, acts.Notifier, "escalations stay in the audit trail and the log")
}

func TestSlackWiring_GivesServerAndWorkerTheApp(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Default()
	cfg.PublicURL = "https://trainyard.example"
	cfg.Principals = []config.Principal{{Name: "alice", Roles: []string{"release-manager"}, Token: "alice-token-0001"}}
	cfg.Slack = config.Slack{SigningSecret: "s3cret", BotToken: "xoxb-1", Users: map[string]string{"U0ALICE": "alice"}}

	srv := slackServer(cfg)
	require.NotNil(t, srv)
	require.Equal(t, "s3cret", srv.SigningSecret)
	require.NotNil(t, srv.Client)
	id, err := srv.Directory.Lookup(t.Context(), "U0ALICE")
	require.NoError(t, err)
	require.Equal(t, []string{"release-manager"}, id.Roles, "roles come from the principal of the same name")

	acts := &activities.Activities{}
	withSlack(cfg, acts, logger)
	require.NotNil(t, acts.Slack)
	require.Equal(t, "https://trainyard.example", acts.Slack.PublicURL)
	require.Equal(t, cfg.Temporal.UIURL, acts.Slack.TemporalUIURL)
	require.IsType(t, &activities.SlackNotifier{}, acts.Notifier)
}
