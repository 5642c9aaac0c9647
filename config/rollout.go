package config

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Rollout configures the systems cloud targets deploy through (docs/rollout.md): Argo CD,
// Spinnaker's Gate and Unleash, and how site workers flash device fleets. Each system is off
// until its url is set; a target that needs an unconfigured system fails with the keys to set.
// Tokens and headers are secrets: sent to their system only, never logged, never in a
// workflow's input or history.
type Rollout struct {
	ArgoCD    ArgoCD    `yaml:"argocd"`
	Spinnaker Spinnaker `yaml:"spinnaker"`
	Unleash   Unleash   `yaml:"unleash"`
	Hardware  Hardware  `yaml:"hardware"`
	// Poll is how often a running sync or pipeline is looked at (default 5s).
	Poll time.Duration `yaml:"poll"`
}

// ArgoCDServer is one Argo CD: its URL and an API token (`argocd account generate-token`).
type ArgoCDServer struct {
	URL      string `yaml:"url"`
	Token    string `yaml:"token"`
	TokenEnv string `yaml:"tokenEnv"`
	// InsecureSkipVerify accepts a self-signed certificate.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
}

// ArgoCD is the default Argo CD server (TRAINYARD_ARGOCD_URL, TRAINYARD_ARGOCD_TOKEN) and any
// others, by the name targets give in argocd.server.
type ArgoCD struct {
	ArgoCDServer `yaml:",inline"`
	Servers      map[string]ArgoCDServer `yaml:"servers"`
}

// Spinnaker is Gate (TRAINYARD_SPINNAKER_URL), with a bearer token
// (TRAINYARD_SPINNAKER_TOKEN) and/or headers such as X-Spinnaker-User; HeadersEnv names, per
// header, an environment variable holding its value.
type Spinnaker struct {
	URL        string            `yaml:"url"`
	Token      string            `yaml:"token"`
	TokenEnv   string            `yaml:"tokenEnv"`
	Headers    map[string]string `yaml:"headers"`
	HeadersEnv map[string]string `yaml:"headersEnv"`
}

// Unleash is the Unleash Admin API (TRAINYARD_UNLEASH_URL) and an admin or service account
// token (TRAINYARD_UNLEASH_TOKEN).
type Unleash struct {
	URL      string `yaml:"url"`
	Token    string `yaml:"token"`
	TokenEnv string `yaml:"tokenEnv"`
}

// Hardware configures how a site worker flashes fleets.
type Hardware struct {
	// Parallel is how many devices of a wave are flashed at once (default 4).
	Parallel int `yaml:"parallel"`
}

func (r *Rollout) applyEnv(getenv func(string) string) {
	set := func(dst *string, key string) {
		if v := getenv(key); v != "" {
			*dst = v
		}
	}
	fromEnv := func(dst *string, name string) {
		if name != "" {
			*dst = getenv(name)
		}
	}
	fromEnv(&r.ArgoCD.Token, r.ArgoCD.TokenEnv)
	for name, s := range r.ArgoCD.Servers {
		fromEnv(&s.Token, s.TokenEnv)
		r.ArgoCD.Servers[name] = s
	}
	fromEnv(&r.Spinnaker.Token, r.Spinnaker.TokenEnv)
	for h, name := range r.Spinnaker.HeadersEnv {
		if r.Spinnaker.Headers == nil {
			r.Spinnaker.Headers = map[string]string{}
		}
		r.Spinnaker.Headers[h] = getenv(name)
	}
	fromEnv(&r.Unleash.Token, r.Unleash.TokenEnv)
	set(&r.ArgoCD.URL, "TRAINYARD_ARGOCD_URL")
	set(&r.ArgoCD.Token, "TRAINYARD_ARGOCD_TOKEN")
	set(&r.Spinnaker.URL, "TRAINYARD_SPINNAKER_URL")
	set(&r.Spinnaker.Token, "TRAINYARD_SPINNAKER_TOKEN")
	set(&r.Unleash.URL, "TRAINYARD_UNLEASH_URL")
	set(&r.Unleash.Token, "TRAINYARD_UNLEASH_TOKEN")
}

func (r Rollout) validate() []error {
	var errs []error
	errs = append(errs, r.ArgoCD.ArgoCDServer.validate("rollout.argocd", "TRAINYARD_ARGOCD_URL", "TRAINYARD_ARGOCD_TOKEN")...)
	for _, name := range slices.Sorted(maps.Keys(r.ArgoCD.Servers)) {
		key := "rollout.argocd.servers." + name
		if strings.TrimSpace(name) == "" {
			errs = append(errs, errors.New("rollout.argocd.servers has a server without a name"))
		}
		s := r.ArgoCD.Servers[name]
		if s.URL == "" {
			errs = append(errs, fmt.Errorf("%s.url is empty", key))
			continue
		}
		errs = append(errs, s.validate(key, "", "")...)
	}
	errs = append(errs, endpoint("rollout.spinnaker", "TRAINYARD_SPINNAKER_URL", r.Spinnaker.URL)...)
	if r.Spinnaker.URL == "" && (r.Spinnaker.Token != "" || len(r.Spinnaker.Headers) > 0) {
		errs = append(errs, errors.New("rollout.spinnaker.url (TRAINYARD_SPINNAKER_URL) is empty but spinnaker credentials are set"))
	}
	if r.Spinnaker.TokenEnv != "" && r.Spinnaker.Token == "" {
		errs = append(errs, fmt.Errorf("rollout.spinnaker.tokenEnv: environment variable %s is empty", r.Spinnaker.TokenEnv))
	}
	for _, h := range slices.Sorted(maps.Keys(r.Spinnaker.HeadersEnv)) {
		if r.Spinnaker.Headers[h] == "" {
			errs = append(errs, fmt.Errorf("rollout.spinnaker.headersEnv.%s: environment variable %s is empty", h, r.Spinnaker.HeadersEnv[h]))
		}
	}
	errs = append(errs, secretFor("rollout.unleash", "TRAINYARD_UNLEASH_URL", "TRAINYARD_UNLEASH_TOKEN", r.Unleash.URL, r.Unleash.Token, r.Unleash.TokenEnv)...)
	if r.Poll < 0 {
		errs = append(errs, fmt.Errorf("rollout.poll is negative (%s)", r.Poll))
	}
	if r.Hardware.Parallel < 0 {
		errs = append(errs, fmt.Errorf("rollout.hardware.parallel is negative (%d)", r.Hardware.Parallel))
	}
	return errs
}

func (s ArgoCDServer) validate(key, urlEnv, tokenEnv string) []error {
	return secretFor(key, urlEnv, tokenEnv, s.URL, s.Token, s.TokenEnv)
}

// secretFor checks a system that needs a token once its URL is set.
func secretFor(key, urlEnv, tokenEnv, u, token, tokenFrom string) []error {
	errs := endpoint(key, urlEnv, u)
	named := func(k, env string) string {
		if env == "" {
			return k
		}
		return k + " (" + env + ")"
	}
	switch {
	case u == "" && token != "":
		errs = append(errs, fmt.Errorf("%s is empty but %s.token is set", named(key+".url", urlEnv), key))
	case u == "":
	case token == "" && tokenFrom != "":
		errs = append(errs, fmt.Errorf("%s.tokenEnv: environment variable %s is empty", key, tokenFrom))
	case token == "":
		errs = append(errs, fmt.Errorf("%s is empty: %s needs an API token", named(key+".token", tokenEnv), key))
	}
	return errs
}

// endpoint checks a system's URL: absolute, without credentials, https unless on loopback.
func endpoint(key, env, s string) []error {
	if s == "" {
		return nil
	}
	name := key + ".url"
	if env != "" {
		name += " (" + env + ")"
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return []error{fmt.Errorf("%s is not an absolute URL like https://deploy.example.com", name)}
	case u.User != nil:
		return []error{fmt.Errorf("%s contains credentials; put the token in %s.token", name, key)}
	case u.Scheme == "http" && !loopback(u.Hostname()):
		return []error{fmt.Errorf("%s must be https (plain http only for a loopback address)", name)}
	}
	return nil
}
