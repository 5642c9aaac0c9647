package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Grafana is where release markers are drawn as annotations (integrations/grafana). Off when
// URL is empty; markers are kept in the store and listed by GET /api/v1/markers either way.
type Grafana struct {
	// URL is Grafana (TRAINYARD_GRAFANA_URL), e.g. https://grafana.example.com; https unless
	// it is a loopback address.
	URL string `yaml:"url"`
	// Token is a service account token with annotations:write (TRAINYARD_GRAFANA_TOKEN);
	// TokenEnv names an environment variable to read it from instead.
	Token    string `yaml:"token"`
	TokenEnv string `yaml:"tokenEnv"`
	// Tags are added to every annotation, so a dashboard's annotation query can select
	// Trainyard's (default [trainyard]).
	Tags []string `yaml:"tags"`
	// Timeout bounds each request (DefaultGrafanaTimeout when zero). An annotation that
	// cannot be drawn in time is logged and skipped; it never holds a release.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultGrafanaTimeout bounds each Grafana request when grafana.timeout is unset.
const DefaultGrafanaTimeout = 5 * time.Second

// DefaultGrafanaTags are the tags of every annotation when grafana.tags is unset.
var DefaultGrafanaTags = []string{"trainyard"}

// Enabled reports whether annotations are drawn.
func (g Grafana) Enabled() bool { return g.URL != "" }

// TimeoutOrDefault is Timeout, or DefaultGrafanaTimeout when unset.
func (g Grafana) TimeoutOrDefault() time.Duration {
	if g.Timeout > 0 {
		return g.Timeout
	}
	return DefaultGrafanaTimeout
}

// TagsOrDefault is Tags, or DefaultGrafanaTags when unset.
func (g Grafana) TagsOrDefault() []string {
	if len(g.Tags) > 0 {
		return g.Tags
	}
	return DefaultGrafanaTags
}

func (g *Grafana) applyEnv(getenv func(string) string) {
	if g.TokenEnv != "" {
		g.Token = getenv(g.TokenEnv)
	}
	if v := getenv("TRAINYARD_GRAFANA_URL"); v != "" {
		g.URL = v
	}
	if v := getenv("TRAINYARD_GRAFANA_TOKEN"); v != "" {
		g.Token = v
	}
}

func (g Grafana) validate() []error {
	var errs []error
	if !g.Enabled() {
		if g.Token != "" {
			errs = append(errs, errors.New("grafana.url (TRAINYARD_GRAFANA_URL) is empty but a grafana token is set"))
		}
		return errs
	}
	u, err := url.Parse(g.URL)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		errs = append(errs, errors.New("grafana.url (TRAINYARD_GRAFANA_URL) is not an absolute URL like https://grafana.example.com"))
	case u.User != nil:
		errs = append(errs, errors.New("grafana.url (TRAINYARD_GRAFANA_URL) contains credentials; use grafana.token"))
	case u.Scheme == "http" && !loopback(u.Hostname()):
		errs = append(errs, errors.New("grafana.url (TRAINYARD_GRAFANA_URL) must be https (plain http only for a loopback address)"))
	}
	if g.Token == "" {
		if g.TokenEnv != "" {
			errs = append(errs, fmt.Errorf("grafana.tokenEnv: environment variable %s is empty", g.TokenEnv))
		} else {
			errs = append(errs, errors.New("grafana.token (TRAINYARD_GRAFANA_TOKEN) is empty; create a service account token with annotations:write"))
		}
	}
	for i, t := range g.Tags {
		if strings.TrimSpace(t) == "" {
			errs = append(errs, fmt.Errorf("grafana.tags[%d] is empty", i))
		}
	}
	if g.Timeout < 0 {
		errs = append(errs, fmt.Errorf("grafana.timeout is negative (%s)", g.Timeout))
	}
	return errs
}
