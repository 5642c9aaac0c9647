package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoad_GrafanaFromFileThenEnvironment(t *testing.T) {
	clearEnv(t)
	t.Setenv("TRAINYARD_GRAFANA_URL", "")
	t.Setenv("TRAINYARD_GRAFANA_TOKEN", "")
	t.Setenv("GRAFANA_TOKEN_FOR_TEST", "glsa_from_env")
	path := writeFile(t, `
grafana:
  url: https://grafana.file.example
  tokenEnv: GRAFANA_TOKEN_FOR_TEST
  tags: [trainyard, shop]
  timeout: 3s
`)
	cfg, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, "https://grafana.file.example", cfg.Grafana.URL)
	require.Equal(t, "glsa_from_env", cfg.Grafana.Token)
	require.Equal(t, []string{"trainyard", "shop"}, cfg.Grafana.TagsOrDefault())
	require.Equal(t, 3*time.Second, cfg.Grafana.TimeoutOrDefault())

	t.Setenv("TRAINYARD_GRAFANA_URL", "https://grafana.env.example")
	t.Setenv("TRAINYARD_GRAFANA_TOKEN", "glsa_env_wins")
	cfg, err = Load(path)
	require.NoError(t, err)
	require.Equal(t, "https://grafana.env.example", cfg.Grafana.URL, "the environment wins")
	require.Equal(t, "glsa_env_wins", cfg.Grafana.Token)
}

func TestGrafana_DefaultsWhenUnset(t *testing.T) {
	t.Parallel()
	var g Grafana
	require.False(t, g.Enabled())
	require.Equal(t, DefaultGrafanaTimeout, g.TimeoutOrDefault())
	require.Equal(t, []string{"trainyard"}, g.TagsOrDefault())
	require.Empty(t, g.validate(), "off is valid")
}

func TestValidate_GrafanaNamesTheKeyToFix(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		g    Grafana
		want string
	}{
		{"token without url", Grafana{Token: "x"}, "grafana.url (TRAINYARD_GRAFANA_URL) is empty"},
		{"relative url", Grafana{URL: "grafana", Token: "x"}, "not an absolute URL"},
		{"credentials in url", Grafana{URL: "https://admin:pw@grafana.example", Token: "x"}, "contains credentials"},
		{"plain http to a remote host", Grafana{URL: "http://grafana.example", Token: "x"}, "must be https"},
		{"no token", Grafana{URL: "https://grafana.example"}, "grafana.token (TRAINYARD_GRAFANA_TOKEN) is empty"},
		{"empty token variable", Grafana{URL: "https://grafana.example", TokenEnv: "NOPE"}, "environment variable NOPE is empty"},
		{"empty tag", Grafana{URL: "https://grafana.example", Token: "x", Tags: []string{" "}}, "grafana.tags[0] is empty"},
		{"negative timeout", Grafana{URL: "https://grafana.example", Token: "x", Timeout: -time.Second}, "grafana.timeout is negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			c.Grafana = tc.g
			err := c.Validate(false)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.False(t, strings.Contains(err.Error(), "pw@"), "no credentials in errors")
		})
	}
	c := valid()
	c.Grafana = Grafana{URL: "http://127.0.0.1:3000", Token: "x"}
	require.NoError(t, c.Validate(false), "plain http to loopback is fine")
}
