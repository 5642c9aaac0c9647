package config

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoad_RolloutSystemsFromFileThenEnvironment(t *testing.T) {
	clearEnv(t)
	for _, k := range []string{"TRAINYARD_ARGOCD_URL", "TRAINYARD_ARGOCD_TOKEN", "TRAINYARD_SPINNAKER_URL", "TRAINYARD_SPINNAKER_TOKEN",
		"TRAINYARD_UNLEASH_URL", "TRAINYARD_UNLEASH_TOKEN"} {
		t.Setenv(k, "")
	}
	t.Setenv("ARGO_EU_TOKEN_FOR_TEST", "argo-eu-secret")
	t.Setenv("SPIN_COOKIE_FOR_TEST", "SESSION=abc")
	path := writeFile(t, `
rollout:
  argocd:
    url: https://argocd.file.example
    token: argo-file-token
    servers:
      eu: {url: https://argocd-eu.example, tokenEnv: ARGO_EU_TOKEN_FOR_TEST}
  spinnaker:
    url: https://gate.example
    headers: {X-Spinnaker-User: trainyard}
    headersEnv: {Cookie: SPIN_COOKIE_FOR_TEST}
  unleash: {url: https://unleash.example, token: "*:*.unleash-file"}
  hardware: {parallel: 8}
  poll: 2s
`)
	cfg, err := Load(path)
	require.NoError(t, err)
	r := cfg.Rollout
	require.Equal(t, "https://argocd.file.example", r.ArgoCD.URL)
	require.Equal(t, "argo-eu-secret", r.ArgoCD.Servers["eu"].Token, "tokenEnv is read")
	require.Equal(t, map[string]string{"X-Spinnaker-User": "trainyard", "Cookie": "SESSION=abc"}, r.Spinnaker.Headers)
	require.Equal(t, 8, r.Hardware.Parallel)
	require.NoError(t, errorsOf(r.validate()))

	t.Setenv("TRAINYARD_ARGOCD_URL", "https://argocd.env.example")
	t.Setenv("TRAINYARD_ARGOCD_TOKEN", "argo-env-token")
	t.Setenv("TRAINYARD_UNLEASH_TOKEN", "*:*.unleash-env")
	cfg, err = Load(path)
	require.NoError(t, err)
	require.Equal(t, "https://argocd.env.example", cfg.Rollout.ArgoCD.URL, "the environment wins")
	require.Equal(t, "argo-env-token", cfg.Rollout.ArgoCD.Token)
	require.Equal(t, "*:*.unleash-env", cfg.Rollout.Unleash.Token)
}

func TestValidate_RolloutNamesTheKeyToFix(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		edit func(*Rollout)
		want string
	}{
		{"argocd without token", func(r *Rollout) { r.ArgoCD.URL = "https://argocd.example" }, "rollout.argocd.token (TRAINYARD_ARGOCD_TOKEN) is empty"},
		{"argocd token without url", func(r *Rollout) { r.ArgoCD.Token = "t" }, "rollout.argocd.url (TRAINYARD_ARGOCD_URL) is empty"},
		{"argocd plain http", func(r *Rollout) { r.ArgoCD.URL, r.ArgoCD.Token = "http://argocd.example", "t" }, "must be https"},
		{"argocd server without url", func(r *Rollout) { r.ArgoCD.Servers = map[string]ArgoCDServer{"eu": {Token: "t"}} }, "rollout.argocd.servers.eu.url is empty"},
		{"argocd server token from empty variable", func(r *Rollout) {
			r.ArgoCD.Servers = map[string]ArgoCDServer{"eu": {URL: "https://a.example", TokenEnv: "NOPE"}}
		}, "rollout.argocd.servers.eu.tokenEnv: environment variable NOPE is empty"},
		{"spinnaker credentials in url", func(r *Rollout) { r.Spinnaker.URL = "https://u:p@gate.example" }, "rollout.spinnaker.url (TRAINYARD_SPINNAKER_URL) contains credentials"},
		{"spinnaker headers without url", func(r *Rollout) { r.Spinnaker.Headers = map[string]string{"X-Spinnaker-User": "x"} }, "rollout.spinnaker.url (TRAINYARD_SPINNAKER_URL) is empty"},
		{"spinnaker header from empty variable", func(r *Rollout) {
			r.Spinnaker.URL, r.Spinnaker.HeadersEnv = "https://gate.example", map[string]string{"Cookie": "NOPE"}
		}, "rollout.spinnaker.headersEnv.Cookie: environment variable NOPE is empty"},
		{"unleash without token", func(r *Rollout) { r.Unleash.URL = "https://unleash.example" }, "rollout.unleash.token (TRAINYARD_UNLEASH_TOKEN) is empty"},
		{"unleash relative url", func(r *Rollout) { r.Unleash.URL, r.Unleash.Token = "unleash", "t" }, "not an absolute URL"},
		{"negative parallel", func(r *Rollout) { r.Hardware.Parallel = -1 }, "rollout.hardware.parallel is negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var r Rollout
			require.Empty(t, r.validate(), "nothing configured is valid")
			tc.edit(&r)
			err := errorsOf(r.validate())
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestValidate_RolloutLoopbackMayBePlainHTTP(t *testing.T) {
	t.Parallel()
	r := Rollout{ArgoCD: ArgoCD{ArgoCDServer: ArgoCDServer{URL: "http://127.0.0.1:8080", Token: "t"}}, Spinnaker: Spinnaker{URL: "http://localhost:8084"}}
	require.Empty(t, r.validate())
}

func errorsOf(errs []error) error { return errors.Join(errs...) }
