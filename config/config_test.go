package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// writeFile writes a config file into a fresh temp dir and returns its path.
func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trainyard.yaml")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

// envMap is a getenv func over a fixed set of variables.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// clearEnv blanks every variable Load reads, so the machine's own environment cannot leak
// into a test (applyEnv treats an empty variable as unset).
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"TRAINYARD_HTTP_ADDR", "TRAINYARD_PUBLIC_URL", "TRAINYARD_DATABASE_URL", "DATABASE_URL",
		"TRAINYARD_TEMPORAL_ADDRESS", "TEMPORAL_ADDRESS", "TRAINYARD_TEMPORAL_NAMESPACE", "TEMPORAL_NAMESPACE",
		"TRAINYARD_TEMPORAL_UI_URL", "TEMPORAL_API_KEY", "TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY",
		"TRAINYARD_RUNBOOKS_DIR", "TRAINYARD_LOG_FORMAT", "TRAINYARD_SITE_WORKDIR",
	} {
		t.Setenv(k, "")
	}
}

// valid is a production configuration Validate(false) accepts; cases change one thing.
func valid() Config {
	c := Default()
	c.Principals = []Principal{
		{Name: "ci", Roles: []string{"deployer"}, Token: "ci-secret-0123"},
		{Name: "alice", Roles: []string{"approver"}, Token: "alice-secret-0123"},
	}
	return c
}

func TestLoad_FileThenEnvironmentOverrides(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, `
httpAddr: 0.0.0.0:9000
databaseURL: postgres://file/db
temporal:
  address: temporal.file:7233
  namespace: file-ns
runbooksDir: /etc/trainyard/runbooks
principals:
  - name: ci
    roles: [deployer]
    tokenEnv: CI_TOKEN_FOR_TEST
`)
	t.Setenv("TRAINYARD_HTTP_ADDR", "127.0.0.1:9999")
	t.Setenv("TEMPORAL_ADDRESS", "temporal.env:7233")
	t.Setenv("CI_TOKEN_FOR_TEST", "token-from-env-123")

	cfg, err := Load(path)
	require.NoError(t, err)

	// The environment wins where it is set.
	require.Equal(t, "127.0.0.1:9999", cfg.HTTPAddr)
	require.Equal(t, "temporal.env:7233", cfg.Temporal.Address)
	// The file wins over the defaults where the environment is silent.
	require.Equal(t, "postgres://file/db", cfg.DatabaseURL)
	require.Equal(t, "file-ns", cfg.Temporal.Namespace)
	require.Equal(t, "/etc/trainyard/runbooks", cfg.RunbooksDir)
	// Defaults stay where neither says anything.
	require.Equal(t, "json", cfg.LogFormat)
	require.Equal(t, "http://127.0.0.1:8233", cfg.Temporal.UIURL)
	require.Equal(t, ".trainyard/sites", cfg.Site.WorkDir)
	// tokenEnv is read from the environment.
	require.Len(t, cfg.Principals, 1)
	require.Equal(t, "token-from-env-123", cfg.Principals[0].Token)
	require.NoError(t, cfg.Validate(false))
}

func TestLoad_WithoutFileIsDefaultsAndEnvironment(t *testing.T) {
	clearEnv(t)
	t.Setenv("TRAINYARD_LOG_FORMAT", "text")

	cfg, err := Load("")
	require.NoError(t, err)

	want := Default()
	want.LogFormat = "text"
	require.Equal(t, want, cfg)
}

func TestLoad_MissingFileIsError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := Load(path)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, err, "read config")
}

func TestLoad_UnknownKeyIsErrorNamingIt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		key  string
	}{
		{name: "top level", body: "httpAdress: 127.0.0.1:1\n", key: "httpAdress"},
		{name: "nested", body: "temporal:\n  adress: x:1\n", key: "adress"},
		{name: "in a principal", body: "principals:\n  - name: ci\n    tokenenv: X\n", key: "tokenenv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tt.body)
			_, err := Load(path)
			require.Error(t, err)
			require.ErrorContains(t, err, tt.key)
			require.ErrorContains(t, err, path, "the error names the file")
		})
	}
}

func TestLoadDev_HasTheTwoDevTokensAndTextLogs(t *testing.T) {
	clearEnv(t)
	cfg, err := LoadDev("")
	require.NoError(t, err)

	require.Equal(t, "text", cfg.LogFormat)
	require.Len(t, cfg.Principals, 2)
	byToken := map[string]Principal{}
	for _, p := range cfg.Principals {
		byToken[p.Token] = p
	}
	require.Contains(t, byToken, DevToken)
	require.Contains(t, byToken, DevApproverToken)
	require.Equal(t, "ci", byToken[DevToken].Name)
	require.Equal(t, "alice", byToken[DevApproverToken].Name)
	require.Contains(t, byToken[DevApproverToken].Roles, "approver")
}

func TestLoadDev_FileOverridesEmbeddedConfigButLogsStayText(t *testing.T) {
	clearEnv(t)
	path := writeFile(t, "httpAddr: 127.0.0.1:18080\nlogFormat: json\n")

	cfg, err := LoadDev(path)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:18080", cfg.HTTPAddr)
	require.Equal(t, "text", cfg.LogFormat)
	require.Len(t, cfg.Principals, 2, "the dev principals stay when the file names none")
}

func TestApplyEnv_PrefersTrainyardVariablesAndReadsTokenEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{
			name: "TRAINYARD_DATABASE_URL wins over DATABASE_URL",
			env:  map[string]string{"TRAINYARD_DATABASE_URL": "postgres://ty", "DATABASE_URL": "postgres://plain"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "postgres://ty", c.DatabaseURL)
			},
		},
		{
			name: "DATABASE_URL alone is used",
			env:  map[string]string{"DATABASE_URL": "postgres://plain"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "postgres://plain", c.DatabaseURL)
			},
		},
		{
			name: "TRAINYARD_TEMPORAL_* win over TEMPORAL_*",
			env: map[string]string{
				"TRAINYARD_TEMPORAL_ADDRESS": "a:1", "TEMPORAL_ADDRESS": "b:2",
				"TRAINYARD_TEMPORAL_NAMESPACE": "ty-ns", "TEMPORAL_NAMESPACE": "plain-ns",
			},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "a:1", c.Temporal.Address)
				require.Equal(t, "ty-ns", c.Temporal.Namespace)
			},
		},
		{
			name: "an empty variable leaves the file's value",
			env:  map[string]string{"TRAINYARD_HTTP_ADDR": ""},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "10.0.0.1:80", c.HTTPAddr)
			},
		},
		{
			name: "Temporal Cloud and TLS settings",
			env: map[string]string{
				"TEMPORAL_API_KEY": "key", "TEMPORAL_TLS_CERT": "/c.pem", "TEMPORAL_TLS_KEY": "/k.pem",
				"TRAINYARD_TEMPORAL_UI_URL": "https://ui", "TRAINYARD_PUBLIC_URL": "https://ty",
				"TRAINYARD_RUNBOOKS_DIR": "/rb", "TRAINYARD_LOG_FORMAT": "text", "TRAINYARD_SITE_WORKDIR": "/sites",
			},
			check: func(t *testing.T, c Config) {
				require.Equal(t, Temporal{
					Address: "127.0.0.1:7233", Namespace: "default", UIURL: "https://ui",
					APIKey: "key", TLSCert: "/c.pem", TLSKey: "/k.pem",
				}, c.Temporal)
				require.Equal(t, "https://ty", c.PublicURL)
				require.Equal(t, "/rb", c.RunbooksDir)
				require.Equal(t, "text", c.LogFormat)
				require.Equal(t, "/sites", c.Site.WorkDir)
			},
		},
		{
			name: "tokenEnv replaces the token with the variable's value",
			env:  map[string]string{"CI_TOKEN": "from-env-0123"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "from-env-0123", c.Principals[0].Token)
				require.Equal(t, "file-token-0123", c.Principals[1].Token, "a principal without tokenEnv keeps its token")
			},
		},
		{
			name: "tokenEnv naming an unset variable leaves no token",
			env:  map[string]string{},
			check: func(t *testing.T, c Config) {
				require.Empty(t, c.Principals[0].Token)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			c.HTTPAddr = "10.0.0.1:80"
			c.Principals = []Principal{
				{Name: "ci", Token: "stale-token-0123", TokenEnv: "CI_TOKEN"},
				{Name: "bob", Token: "file-token-0123"},
			}
			c.applyEnv(envMap(tt.env))
			tt.check(t, c)
		})
	}
}

func TestValidate_AcceptsAValidProductionConfig(t *testing.T) {
	t.Parallel()
	require.NoError(t, valid().Validate(false))
}

func TestValidate_AcceptsTheEmbeddedDevConfigInDevMode(t *testing.T) {
	t.Parallel()
	cfg := Default()
	require.NoError(t, cfg.merge("dev.yaml", DevYAML))
	require.NoError(t, cfg.Validate(true))
}

func TestValidate_RefusesTheEmbeddedDevConfigInProduction(t *testing.T) {
	t.Parallel()
	cfg := Default()
	require.NoError(t, cfg.merge("dev.yaml", DevYAML))
	err := cfg.Validate(false)
	require.ErrorContains(t, err, "principals[0] (ci) uses the public dev token")
	require.ErrorContains(t, err, "principals[1] (alice) uses the public dev token")
}

func TestValidate_Refuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(c *Config)
		says   string
	}{
		{
			name:   "a dev token in production, naming the principal",
			change: func(c *Config) { c.Principals[1].Token = DevApproverToken },
			says:   "principals[1] (alice) uses the public dev token",
		},
		{
			name:   "the other dev token",
			change: func(c *Config) { c.Principals[0].Token = DevToken },
			says:   "principals[0] (ci) uses the public dev token",
		},
		{
			name:   "a duplicate name",
			change: func(c *Config) { c.Principals[1].Name = "ci" },
			says:   `principals[1].name "ci" is used twice`,
		},
		{
			name:   "a duplicate token",
			change: func(c *Config) { c.Principals[1].Token = c.Principals[0].Token },
			says:   "principals[1] (alice) has the same token as ci",
		},
		{
			name:   "a short token",
			change: func(c *Config) { c.Principals[0].Token = "1234567" },
			says:   "principals[0] (ci): token is shorter than 8 characters",
		},
		{
			name: "tokenEnv pointing at an empty variable, naming the variable",
			change: func(c *Config) {
				c.Principals[0].Token = "ignored-because-of-tokenEnv"
				c.Principals[0].TokenEnv = "TRAINYARD_CI_TOKEN"
				c.applyEnv(envMap(nil))
			},
			says: "principals[0] (ci): environment variable TRAINYARD_CI_TOKEN is empty",
		},
		{
			name:   "neither token nor tokenEnv",
			change: func(c *Config) { c.Principals[0].Token = "" },
			says:   "principals[0] (ci): set token or tokenEnv",
		},
		{
			name:   "a principal without a name",
			change: func(c *Config) { c.Principals[0].Name = "" },
			says:   "principals[0].name is empty",
		},
		{
			name:   "tlsCert without tlsKey",
			change: func(c *Config) { c.Temporal.TLSCert = "/etc/tls/client.pem" },
			says:   "temporal.tlsCert and temporal.tlsKey must be set together",
		},
		{
			name:   "tlsKey without tlsCert",
			change: func(c *Config) { c.Temporal.TLSKey = "/etc/tls/client.key" },
			says:   "temporal.tlsCert and temporal.tlsKey must be set together",
		},
		{
			name:   "a bad logFormat",
			change: func(c *Config) { c.LogFormat = "yaml" },
			says:   `logFormat (TRAINYARD_LOG_FORMAT) is "yaml"; use json or text`,
		},
		{
			name:   "an empty httpAddr",
			change: func(c *Config) { c.HTTPAddr = "" },
			says:   "httpAddr (TRAINYARD_HTTP_ADDR) is empty",
		},
		{
			name:   "an empty temporal.address",
			change: func(c *Config) { c.Temporal.Address = "" },
			says:   "temporal.address (TEMPORAL_ADDRESS) is empty",
		},
		{
			name:   "an empty temporal.namespace",
			change: func(c *Config) { c.Temporal.Namespace = "" },
			says:   "temporal.namespace (TEMPORAL_NAMESPACE) is empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tt.change(&c)
			require.ErrorContains(t, c.Validate(false), tt.says)
		})
	}
}

func TestValidate_ReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	c := valid()
	c.LogFormat = "xml"
	c.Temporal.TLSKey = "/k.pem"
	c.Principals[0].Token = "short"
	err := c.Validate(false)
	require.ErrorContains(t, err, "logFormat")
	require.ErrorContains(t, err, "temporal.tlsCert")
	require.ErrorContains(t, err, "shorter than 8 characters")
}

func TestAuthenticator_Lookup(t *testing.T) {
	t.Parallel()
	auth := NewAuthenticator([]Principal{
		{Name: "ci", Roles: []string{"deployer"}, Token: "ci-secret-0123"},
		{Name: "alice", Roles: []string{"release-manager", "approver"}, Token: "alice-secret-0123"},
		{Name: "no-token", Roles: []string{"admin"}},
	})
	tests := []struct {
		name      string
		token     string
		wantOK    bool
		wantName  string
		wantRoles []string
	}{
		{name: "right token gives principal and roles", token: "ci-secret-0123", wantOK: true, wantName: "ci", wantRoles: []string{"deployer"}},
		{name: "another principal's token", token: "alice-secret-0123", wantOK: true, wantName: "alice", wantRoles: []string{"release-manager", "approver"}},
		{name: "wrong token", token: "ci-secret-0124", wantOK: false},
		{name: "a prefix of a token", token: "ci-secret", wantOK: false},
		{name: "empty token never matches a principal without one", token: "", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			name, roles, ok := auth.Lookup(tt.token)
			require.Equal(t, tt.wantOK, ok)
			require.Equal(t, tt.wantName, name)
			require.Equal(t, tt.wantRoles, roles)
		})
	}
}

func TestAuthenticator_EmptyConfigMatchesNothing(t *testing.T) {
	t.Parallel()
	for _, ps := range [][]Principal{nil, {}} {
		auth := NewAuthenticator(ps)
		for _, token := range []string{"", DevToken, "anything-at-all"} {
			_, _, ok := auth.Lookup(token)
			require.False(t, ok, "token %q", token)
		}
	}
}

func TestAuthenticator_KeepsItsOwnCopyOfRoles(t *testing.T) {
	t.Parallel()
	roles := []string{"deployer"}
	auth := NewAuthenticator([]Principal{{Name: "ci", Roles: roles, Token: "ci-secret-0123"}})
	roles[0] = "admin"
	_, got, ok := auth.Lookup("ci-secret-0123")
	require.True(t, ok)
	require.Equal(t, []string{"deployer"}, got)
}

func TestPublicBaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		httpAddr  string
		publicURL string
		want      string
	}{
		{name: "without PublicURL it is the listen address", httpAddr: "127.0.0.1:8080", want: "http://127.0.0.1:8080"},
		{name: "PublicURL as given", httpAddr: "0.0.0.0:8080", publicURL: "https://releases.example.com", want: "https://releases.example.com"},
		{name: "PublicURL trailing slash trimmed", httpAddr: "0.0.0.0:8080", publicURL: "https://releases.example.com/", want: "https://releases.example.com"},
		{name: "PublicURL with a path and slashes", httpAddr: "0.0.0.0:8080", publicURL: "https://example.com/trainyard//", want: "https://example.com/trainyard"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Config{HTTPAddr: tt.httpAddr, PublicURL: tt.publicURL}
			require.Equal(t, tt.want, c.PublicBaseURL())
		})
	}
}
