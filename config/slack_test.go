package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoad_SlackFromFileThenEnvironment(t *testing.T) {
	clearEnv(t)
	for _, k := range []string{"TRAINYARD_SLACK_SIGNING_SECRET", "TRAINYARD_SLACK_BOT_TOKEN", "TRAINYARD_SLACK_APP_TOKEN", "TRAINYARD_SLACK_API_URL"} {
		t.Setenv(k, "")
	}
	path := writeFile(t, `
slack:
  signingSecret: from-file
  users: {U0ALICE: alice}
  emails: {Bob@Example.com: bob}
  groupRoles: {S0RM: release-manager}
  roleGroups: {release-manager: S0RM}
`)
	t.Setenv("TRAINYARD_SLACK_SIGNING_SECRET", "from-env")
	t.Setenv("TRAINYARD_SLACK_BOT_TOKEN", "xoxb-1-2-3")
	t.Setenv("TRAINYARD_SLACK_API_URL", "http://127.0.0.1:9/api")
	cfg, err := Load(path)
	require.NoError(t, err)
	s := cfg.Slack
	require.Equal(t, "from-env", s.SigningSecret)
	require.Equal(t, "xoxb-1-2-3", s.BotToken)
	require.Equal(t, "http://127.0.0.1:9/api/", s.APIBaseURL(), "slack-go needs the trailing slash")
	require.Equal(t, map[string]string{"U0ALICE": "alice"}, s.Users)
	require.Equal(t, map[string]string{"S0RM": "release-manager"}, s.GroupRoles)
	require.True(t, s.Enabled())
	require.True(t, s.HTTPEnabled())
	require.False(t, s.SocketModeEnabled())
	require.Empty(t, cfg.Slack.validate())
}

func TestSlack_EnabledByBotTokenWithSecretOrAppToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		s                  Slack
		on, http, socketOn bool
	}{
		{name: "nothing", s: Slack{}},
		{name: "secret alone", s: Slack{SigningSecret: "s"}},
		{name: "secret and bot token", s: Slack{SigningSecret: "s", BotToken: "xoxb-1"}, on: true, http: true},
		{name: "app and bot token", s: Slack{AppToken: "xapp-1", BotToken: "xoxb-1"}, on: true, socketOn: true},
		{name: "all three", s: Slack{SigningSecret: "s", AppToken: "xapp-1", BotToken: "xoxb-1"}, on: true, http: true, socketOn: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.on, tt.s.Enabled())
			require.Equal(t, tt.http, tt.s.HTTPEnabled())
			require.Equal(t, tt.socketOn, tt.s.SocketModeEnabled())
		})
	}
	require.Equal(t, DefaultSlackAPIURL, Slack{}.APIBaseURL())
}

func TestValidate_SlackNamesTheKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		slack Slack
		want  string
	}{
		{name: "secret without bot token", slack: Slack{SigningSecret: "s"}, want: "slack.botToken (TRAINYARD_SLACK_BOT_TOKEN) is empty"},
		{name: "bot token of the wrong kind", slack: Slack{SigningSecret: "s", BotToken: "xoxp-user"}, want: "not a bot token"},
		{name: "bot token alone", slack: Slack{BotToken: "xoxb-1"}, want: "set slack.signingSecret"},
		{name: "app token of the wrong kind", slack: Slack{AppToken: "xoxb-1", BotToken: "xoxb-1"}, want: "not an app-level token"},
		{name: "api url not a url", slack: Slack{SigningSecret: "s", BotToken: "xoxb-1", APIURL: "slack.com/api"}, want: "slack.apiURL"},
		{name: "api url plain http", slack: Slack{SigningSecret: "s", BotToken: "xoxb-1", APIURL: "http://slack.example/api/"}, want: "must be https"},
		{name: "user id", slack: Slack{SigningSecret: "s", BotToken: "xoxb-1", Users: map[string]string{"alice": "alice"}}, want: `"alice" is not a Slack user id`},
		{name: "user without principal", slack: Slack{SigningSecret: "s", BotToken: "xoxb-1", Users: map[string]string{"U0A": " "}}, want: "slack.users[U0A] names no principal"},
		{name: "email", slack: Slack{SigningSecret: "s", BotToken: "xoxb-1", Emails: map[string]string{"bob": "bob"}}, want: `"bob" is not an email address`},
		{name: "group id", slack: Slack{SigningSecret: "s", BotToken: "xoxb-1", GroupRoles: map[string]string{"C0G": "sre"}}, want: "not a Slack user group id"},
		{name: "role group", slack: Slack{SigningSecret: "s", BotToken: "xoxb-1", RoleGroups: map[string]string{"sre": "@sre"}}, want: "slack.roleGroups[sre]"},
		{name: "mapping with slack off", slack: Slack{Users: map[string]string{"U0A": "alice"}}, want: "Slack is off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			c.Slack = tt.slack
			err := c.Validate(false)
			require.ErrorContains(t, err, tt.want)
			for _, secret := range []string{tt.slack.SigningSecret, tt.slack.BotToken, tt.slack.AppToken} {
				if len(secret) > 3 {
					require.NotContains(t, err.Error(), secret, "errors never repeat a secret")
				}
			}
		})
	}
	c := valid()
	c.Slack = Slack{SigningSecret: "s", BotToken: "xoxb-1", AppToken: "xapp-1", Users: map[string]string{"U0A": "alice"}}
	require.NoError(t, c.Validate(false))
}

func TestPrincipalRoles_MapsNamesToRoles(t *testing.T) {
	t.Parallel()
	c := valid()
	roles := c.PrincipalRoles()
	require.Equal(t, []string{"approver"}, roles["alice"])
	roles["alice"][0] = "changed"
	require.Equal(t, "approver", c.Principals[1].Roles[0], "callers get a copy")
}
