package slack

import (
	"bytes"
	"os"
	"testing"

	goslack "github.com/slack-go/slack"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

const manifestPath = "../../deploy/slack-app-manifest.yaml"

// loadManifest reads the app manifest into slack-go's Manifest type, refusing keys the type
// does not know (a misspelt key is silently ignored by Slack).
func loadManifest(t *testing.T) goslack.Manifest {
	t.Helper()
	raw, err := os.ReadFile(manifestPath)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var m goslack.Manifest
	require.NoError(t, dec.Decode(&m))
	return m
}

func TestManifest_RegistersTheCommandAndInteractivityThisPackageServes(t *testing.T) {
	t.Parallel()
	m := loadManifest(t)

	require.Equal(t, "Trainyard", m.Display.Name)
	require.Equal(t, "Trainyard", m.Features.BotUser.DisplayName)
	require.Len(t, m.Features.SlashCommands, 1)
	cmd := m.Features.SlashCommands[0]
	require.Equal(t, CommandName, cmd.Command)
	require.Equal(t, "https://YOUR-HOST/slack/commands", cmd.Url)
	require.False(t, cmd.ShouldEscape, "ParseCommand reads plain text, not Slack's escaped mentions")
	require.LessOrEqual(t, len(cmd.UsageHint), 1000)
	require.LessOrEqual(t, len(cmd.Description), 2000)

	require.NotNil(t, m.Settings.Interactivity)
	require.True(t, m.Settings.Interactivity.IsEnabled)
	require.Equal(t, "https://YOUR-HOST/slack/interactions", m.Settings.Interactivity.RequestUrl)
	require.False(t, m.Settings.SocketModeEnabled, "HTTP by default; the file says how to switch")
	require.Nil(t, m.Settings.EventSubscriptions, "Trainyard subscribes to no events")
}

func TestManifest_AsksForExactlyTheScopesTrainyardUses(t *testing.T) {
	t.Parallel()
	m := loadManifest(t)
	require.ElementsMatch(t, []string{
		"chat:write",        // chat.postMessage, chat.update, chat.postEphemeral
		"chat:write.public", // post in a runbook's channel without an invitation
		"commands",          // /release
		"users:read",        // users.info
		"users:read.email",  // UserEmail
		"usergroups:read",   // usergroups.users.list
	}, m.OAuthConfig.Scopes.Bot)
	require.Empty(t, m.OAuthConfig.Scopes.User, "no user token")
}
