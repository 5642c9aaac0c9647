// Package config holds Trainyard's one configuration struct: read from a YAML file, then
// TRAINYARD_* (and the conventional DATABASE_URL, TEMPORAL_ADDRESS) environment variables,
// then command-line flags, and validated once at start.
package config

import (
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DevYAML is the configuration `trainyard dev` runs with when no file is given: two
// well-known tokens so a newcomer can act at once. Production refuses these tokens.
//
//go:embed dev.yaml
var DevYAML []byte

// Dev tokens, printed by `trainyard dev` and refused by `trainyard server` and `worker`.
const (
	DevToken         = "dev-token"
	DevApproverToken = "dev-approver-token"
)

// Config is everything a Trainyard process needs to know.
type Config struct {
	// HTTPAddr is where the API listens (TRAINYARD_HTTP_ADDR).
	HTTPAddr string `yaml:"httpAddr"`
	// PublicURL is how people reach the API, used in links (TRAINYARD_PUBLIC_URL).
	PublicURL string `yaml:"publicURL"`
	// DatabaseURL is the PostgreSQL connection string (DATABASE_URL).
	DatabaseURL string   `yaml:"databaseURL"`
	Temporal    Temporal `yaml:"temporal"`
	// RunbooksDir is the folder of runbook files (TRAINYARD_RUNBOOKS_DIR).
	RunbooksDir string `yaml:"runbooksDir"`
	// LogFormat is "json" (production) or "text" (TRAINYARD_LOG_FORMAT).
	LogFormat string `yaml:"logFormat"`
	// Principals are the API's callers, each with a bearer token and roles.
	Principals []Principal `yaml:"principals"`
	// Groups give roles to their members (principals, and people Slack maps to a principal).
	Groups     []Group    `yaml:"groups"`
	Site       Site       `yaml:"site"`
	ServiceNow ServiceNow `yaml:"servicenow"`
	Governance Governance `yaml:"governance"`
	Prometheus Prometheus `yaml:"prometheus"`
	Slack      Slack      `yaml:"slack"`
	Grafana    Grafana    `yaml:"grafana"`
	Rollout    Rollout    `yaml:"rollout"`
}

// Governance configures freeze calendars and waivers.
type Governance struct {
	// CalendarsDir is the folder of freeze calendar files, one calendar per *.yaml file
	// directly in it (TRAINYARD_CALENDARS_DIR). A folder that does not exist holds none.
	CalendarsDir string `yaml:"calendarsDir"`
	// CalendarAdminRoles may create, change and delete calendars through the API.
	CalendarAdminRoles []string `yaml:"calendarAdminRoles"`
	// WaiverRoles may grant and revoke waivers.
	WaiverRoles []string `yaml:"waiverRoles"`
	// MaxWaiver is how far ahead of its grant a waiver may expire, at most ("168h").
	MaxWaiver time.Duration `yaml:"maxWaiver"`
	// PolicyFile holds the organisation's release policies (TRAINYARD_POLICY_FILE); none
	// when empty. Read at start: a policy file with a mistake stops the worker.
	PolicyFile string `yaml:"policyFile"`
	// Timezone is the business's time zone (TRAINYARD_TIMEZONE, an IANA name such as
	// Europe/Berlin): risk judges weekends and working hours in it. UTC when empty.
	Timezone string `yaml:"timezone"`
	// SiteZones maps each site to its data-residency zone (dc1: eu). A stage with
	// residency may only deploy to sites of that zone; the server refuses a release that would
	// cross it.
	SiteZones map[string]string `yaml:"siteZones"`
	// BusinessCalendars name freeze calendars (files or API) that hold every release's
	// production stages, whatever its runbook says: peak seasons, campaigns.
	BusinessCalendars []string `yaml:"businessCalendars"`
}

// Location is the business's time zone.
func (g Governance) Location() (*time.Location, error) {
	if g.Timezone == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(g.Timezone)
	if err != nil {
		return nil, fmt.Errorf("governance.timezone (TRAINYARD_TIMEZONE) %q is not a time zone; use an IANA name such as Europe/Berlin", g.Timezone)
	}
	return loc, nil
}

// Prometheus is where metrics queries go (performance gates, analyses, stabilization).
// Off when URL is empty.
type Prometheus struct {
	// URL is the Prometheus server (TRAINYARD_PROMETHEUS_URL), e.g. http://prometheus:9090.
	URL string `yaml:"url"`
	// Token is a bearer token for a Prometheus behind an authenticating proxy
	// (TRAINYARD_PROMETHEUS_TOKEN); TokenEnv names a variable to read it from.
	Token    string `yaml:"token"`
	TokenEnv string `yaml:"tokenEnv"`
}

// DefaultGovernance is the governance configuration when none is given: calendar files in
// calendars/, and release managers administer calendars and grant waivers of 7 days at most.
func DefaultGovernance() Governance {
	return Governance{
		CalendarsDir:       "calendars",
		CalendarAdminRoles: []string{"release-manager"},
		WaiverRoles:        []string{"release-manager"},
		MaxWaiver:          7 * 24 * time.Hour,
	}
}

// Temporal says where the Temporal frontend is.
type Temporal struct {
	Address   string `yaml:"address"`   // TEMPORAL_ADDRESS
	Namespace string `yaml:"namespace"` // TEMPORAL_NAMESPACE
	UIURL     string `yaml:"uiURL"`     // TRAINYARD_TEMPORAL_UI_URL
	// APIKey authenticates to Temporal Cloud (TEMPORAL_API_KEY); TLS is used when it is set.
	APIKey string `yaml:"apiKey"`
	// TLSCert and TLSKey are a client certificate for mTLS (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY).
	TLSCert string `yaml:"tlsCert"`
	TLSKey  string `yaml:"tlsKey"`
}

// Principal is one API caller. The token is a secret: it is compared, never logged, and never
// leaves the server. TokenEnv names an environment variable to read it from instead.
type Principal struct {
	Name     string   `yaml:"name"`
	Roles    []string `yaml:"roles"`
	Token    string   `yaml:"token"`
	TokenEnv string   `yaml:"tokenEnv"`
}

// Site configures `trainyard worker --site`: where its commands run.
type Site struct {
	// WorkDir is the working directory of site commands (TRAINYARD_SITE_WORKDIR); each site
	// gets a subfolder named after it.
	WorkDir string `yaml:"workDir"`
}

// ServiceNow is where change requests are filed (integrations/servicenow). Off when URL is
// empty. Authenticate with User and Password (basic) or an OAuth Token, not both; PasswordEnv
// and TokenEnv name environment variables to read the secret from instead.
type ServiceNow struct {
	// URL is the instance, e.g. https://example.service-now.com (TRAINYARD_SERVICENOW_URL);
	// https unless it is a loopback address.
	URL         string `yaml:"url"`
	User        string `yaml:"user"`     // TRAINYARD_SERVICENOW_USER
	Password    string `yaml:"password"` // TRAINYARD_SERVICENOW_PASSWORD
	PasswordEnv string `yaml:"passwordEnv"`
	Token       string `yaml:"token"` // TRAINYARD_SERVICENOW_TOKEN
	TokenEnv    string `yaml:"tokenEnv"`
	// Timeout bounds each HTTP request (DefaultServiceNowTimeout when zero).
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultServiceNowTimeout bounds each ServiceNow request when servicenow.timeout is unset.
const DefaultServiceNowTimeout = 30 * time.Second

// Enabled reports whether change requests are configured.
func (s ServiceNow) Enabled() bool { return s.URL != "" }

// TimeoutOrDefault is Timeout, or DefaultServiceNowTimeout when unset.
func (s ServiceNow) TimeoutOrDefault() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultServiceNowTimeout
}

func (s ServiceNow) validate() []error {
	var errs []error
	if !s.Enabled() {
		if s.User != "" || s.Password != "" || s.Token != "" {
			errs = append(errs, errors.New("servicenow.url (TRAINYARD_SERVICENOW_URL) is empty but servicenow credentials are set"))
		}
		return errs
	}
	u, err := url.Parse(s.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		errs = append(errs, errors.New("servicenow.url (TRAINYARD_SERVICENOW_URL) is not an absolute URL like https://example.service-now.com"))
	case u.User != nil:
		errs = append(errs, errors.New("servicenow.url (TRAINYARD_SERVICENOW_URL) contains credentials; use servicenow.user and servicenow.password"))
	case u.Scheme == "http" && !loopback(u.Hostname()):
		errs = append(errs, errors.New("servicenow.url (TRAINYARD_SERVICENOW_URL) must be https (plain http only for a loopback address)"))
	}
	basic := s.User != "" || s.Password != "" || s.PasswordEnv != ""
	bearer := s.Token != "" || s.TokenEnv != ""
	switch {
	case basic && bearer:
		errs = append(errs, errors.New("servicenow: set user and password (TRAINYARD_SERVICENOW_USER, TRAINYARD_SERVICENOW_PASSWORD) or token (TRAINYARD_SERVICENOW_TOKEN), not both"))
	case bearer && s.Token == "":
		errs = append(errs, fmt.Errorf("servicenow.tokenEnv: environment variable %s is empty", s.TokenEnv))
	case bearer:
	case s.User == "" && !basic:
		errs = append(errs, errors.New("servicenow: set user and password (TRAINYARD_SERVICENOW_USER, TRAINYARD_SERVICENOW_PASSWORD) or token (TRAINYARD_SERVICENOW_TOKEN)"))
	case s.User == "":
		errs = append(errs, errors.New("servicenow.user (TRAINYARD_SERVICENOW_USER) is empty"))
	case s.Password == "" && s.PasswordEnv != "":
		errs = append(errs, fmt.Errorf("servicenow.passwordEnv: environment variable %s is empty", s.PasswordEnv))
	case s.Password == "":
		errs = append(errs, errors.New("servicenow.password (TRAINYARD_SERVICENOW_PASSWORD) is empty"))
	}
	if s.Timeout < 0 {
		errs = append(errs, fmt.Errorf("servicenow.timeout is negative (%s)", s.Timeout))
	}
	return errs
}

// loopback reports whether host is localhost or a loopback IP address.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Default returns the built-in defaults, before any file or environment.
func Default() Config {
	return Config{
		HTTPAddr:    "127.0.0.1:8080",
		RunbooksDir: "runbooks/examples",
		LogFormat:   "json",
		Temporal: Temporal{
			Address:   "127.0.0.1:7233",
			Namespace: "default",
			UIURL:     "http://127.0.0.1:8233",
		},
		Site:       Site{WorkDir: ".trainyard/sites"},
		Governance: DefaultGovernance(),
	}
}

// Load reads the file at path (none when empty) over the defaults, then the environment.
func Load(path string) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		if err := cfg.merge(path, data); err != nil {
			return cfg, err
		}
	}
	cfg.applyEnv(os.Getenv)
	return cfg, nil
}

// LoadDev is Load with the embedded dev configuration under the file.
func LoadDev(path string) (Config, error) {
	cfg := Default()
	if err := cfg.merge("embedded dev.yaml", DevYAML); err != nil {
		return cfg, err
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		if err := cfg.merge(path, data); err != nil {
			return cfg, err
		}
	}
	cfg.LogFormat = "text"
	cfg.applyEnv(os.Getenv)
	return cfg, nil
}

func (c *Config) merge(name string, data []byte) error {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config %s: %w", name, err)
	}
	return nil
}

func (c *Config) applyEnv(getenv func(string) string) {
	set := func(dst *string, keys ...string) {
		for _, k := range keys {
			if v := getenv(k); v != "" {
				*dst = v
				return
			}
		}
	}
	set(&c.HTTPAddr, "TRAINYARD_HTTP_ADDR")
	set(&c.PublicURL, "TRAINYARD_PUBLIC_URL")
	set(&c.DatabaseURL, "TRAINYARD_DATABASE_URL", "DATABASE_URL")
	set(&c.Temporal.Address, "TRAINYARD_TEMPORAL_ADDRESS", "TEMPORAL_ADDRESS")
	set(&c.Temporal.Namespace, "TRAINYARD_TEMPORAL_NAMESPACE", "TEMPORAL_NAMESPACE")
	set(&c.Temporal.UIURL, "TRAINYARD_TEMPORAL_UI_URL")
	set(&c.Temporal.APIKey, "TEMPORAL_API_KEY")
	set(&c.Temporal.TLSCert, "TEMPORAL_TLS_CERT")
	set(&c.Temporal.TLSKey, "TEMPORAL_TLS_KEY")
	set(&c.RunbooksDir, "TRAINYARD_RUNBOOKS_DIR")
	set(&c.LogFormat, "TRAINYARD_LOG_FORMAT")
	set(&c.Site.WorkDir, "TRAINYARD_SITE_WORKDIR")
	set(&c.Governance.CalendarsDir, "TRAINYARD_CALENDARS_DIR")
	set(&c.Governance.PolicyFile, "TRAINYARD_POLICY_FILE")
	set(&c.Governance.Timezone, "TRAINYARD_TIMEZONE")
	if c.Prometheus.TokenEnv != "" {
		c.Prometheus.Token = getenv(c.Prometheus.TokenEnv)
	}
	set(&c.Prometheus.URL, "TRAINYARD_PROMETHEUS_URL")
	set(&c.Prometheus.Token, "TRAINYARD_PROMETHEUS_TOKEN")
	if c.ServiceNow.PasswordEnv != "" {
		c.ServiceNow.Password = getenv(c.ServiceNow.PasswordEnv)
	}
	if c.ServiceNow.TokenEnv != "" {
		c.ServiceNow.Token = getenv(c.ServiceNow.TokenEnv)
	}
	set(&c.ServiceNow.URL, "TRAINYARD_SERVICENOW_URL")
	set(&c.ServiceNow.User, "TRAINYARD_SERVICENOW_USER")
	set(&c.ServiceNow.Password, "TRAINYARD_SERVICENOW_PASSWORD")
	set(&c.ServiceNow.Token, "TRAINYARD_SERVICENOW_TOKEN")
	c.Slack.applyEnv(getenv)
	c.Grafana.applyEnv(getenv)
	c.Rollout.applyEnv(getenv)
	for i, p := range c.Principals {
		if p.TokenEnv != "" {
			c.Principals[i].Token = getenv(p.TokenEnv)
		}
	}
}

// PublicBaseURL is the URL people use to reach the API.
func (c Config) PublicBaseURL() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	return "http://" + c.HTTPAddr
}

// Validate checks what every process needs. allowDevTokens is true only for `trainyard dev`.
func (c Config) Validate(allowDevTokens bool) error {
	var errs []error
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("httpAddr (TRAINYARD_HTTP_ADDR) is empty"))
	}
	if c.Temporal.Address == "" {
		errs = append(errs, errors.New("temporal.address (TEMPORAL_ADDRESS) is empty"))
	}
	if c.Temporal.Namespace == "" {
		errs = append(errs, errors.New("temporal.namespace (TEMPORAL_NAMESPACE) is empty"))
	}
	if (c.Temporal.TLSCert == "") != (c.Temporal.TLSKey == "") {
		errs = append(errs, errors.New("temporal.tlsCert and temporal.tlsKey must be set together"))
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		errs = append(errs, fmt.Errorf("logFormat (TRAINYARD_LOG_FORMAT) is %q; use json or text", c.LogFormat))
	}
	errs = append(errs, c.Governance.validate()...)
	errs = append(errs, c.validateGroups()...)
	names := map[string]bool{}
	tokens := map[string]string{}
	for i, p := range c.Principals {
		key := fmt.Sprintf("principals[%d]", i)
		if p.Name == "" {
			errs = append(errs, fmt.Errorf("%s.name is empty", key))
		}
		if names[p.Name] {
			errs = append(errs, fmt.Errorf("%s.name %q is used twice", key, p.Name))
		}
		names[p.Name] = true
		switch {
		case p.Token == "" && p.TokenEnv != "":
			errs = append(errs, fmt.Errorf("%s (%s): environment variable %s is empty", key, p.Name, p.TokenEnv))
		case p.Token == "":
			errs = append(errs, fmt.Errorf("%s (%s): set token or tokenEnv", key, p.Name))
		case len(p.Token) < 8:
			errs = append(errs, fmt.Errorf("%s (%s): token is shorter than 8 characters", key, p.Name))
		}
		if !allowDevTokens && (p.Token == DevToken || p.Token == DevApproverToken) {
			errs = append(errs, fmt.Errorf("%s (%s) uses the public dev token; give it a secret token (production refuses dev tokens)", key, p.Name))
		}
		if other, dup := tokens[p.Token]; dup && p.Token != "" {
			errs = append(errs, fmt.Errorf("%s (%s) has the same token as %s", key, p.Name, other))
		}
		tokens[p.Token] = p.Name
	}
	errs = append(errs, c.ServiceNow.validate()...)
	errs = append(errs, c.Slack.validate()...)
	errs = append(errs, c.Grafana.validate()...)
	errs = append(errs, c.Rollout.validate()...)
	return errors.Join(errs...)
}

func (g Governance) validate() []error {
	var errs []error
	if g.CalendarsDir == "" {
		errs = append(errs, errors.New("governance.calendarsDir (TRAINYARD_CALENDARS_DIR) is empty; name the folder of freeze calendar files (default calendars)"))
	}
	if len(g.CalendarAdminRoles) == 0 {
		errs = append(errs, errors.New("governance.calendarAdminRoles is empty; name at least one role that may change freeze calendars (default [release-manager])"))
	}
	if len(g.WaiverRoles) == 0 {
		errs = append(errs, errors.New("governance.waiverRoles is empty; name at least one role that may grant waivers (default [release-manager])"))
	}
	for i, r := range g.CalendarAdminRoles {
		if strings.TrimSpace(r) == "" {
			errs = append(errs, fmt.Errorf("governance.calendarAdminRoles[%d] is empty", i))
		}
	}
	for i, r := range g.WaiverRoles {
		if strings.TrimSpace(r) == "" {
			errs = append(errs, fmt.Errorf("governance.waiverRoles[%d] is empty", i))
		}
	}
	if _, err := g.Location(); err != nil {
		errs = append(errs, err)
	}
	for i, name := range g.BusinessCalendars {
		if strings.TrimSpace(name) == "" {
			errs = append(errs, fmt.Errorf("governance.businessCalendars[%d] is empty", i))
		}
	}
	if g.MaxWaiver <= 0 {
		errs = append(errs, fmt.Errorf("governance.maxWaiver is %s; set how far ahead a waiver may expire, such as 168h (7 days)", g.MaxWaiver))
	}
	return errs
}

// Authenticator maps bearer tokens to principals. It keeps only token hashes and compares
// them in constant time.
type Authenticator struct {
	entries []authEntry
}

type authEntry struct {
	hash  [32]byte
	name  string
	roles []string
}

// NewAuthenticator builds the token table from the configured principals.
func NewAuthenticator(ps []Principal) *Authenticator {
	a := &Authenticator{}
	for _, p := range ps {
		if p.Token == "" {
			continue
		}
		a.entries = append(a.entries, authEntry{hash: sha256.Sum256([]byte(p.Token)), name: p.Name, roles: append([]string(nil), p.Roles...)})
	}
	return a
}

// Lookup returns the principal name and roles of a token.
func (a *Authenticator) Lookup(token string) (name string, roles []string, ok bool) {
	h := sha256.Sum256([]byte(token))
	for _, e := range a.entries {
		if subtle.ConstantTimeCompare(h[:], e.hash[:]) == 1 {
			name, roles, ok = e.name, e.roles, true
		}
	}
	return name, roles, ok
}
