package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Slack configures the Slack app (docs/slack.md). It is on when the bot token is set together
// with the signing secret (Slack calls /slack/commands and /slack/interactions) or the app
// token (Socket Mode: Trainyard connects to Slack), or both. The three secrets are compared or
// sent to Slack, never logged, and never enter a workflow's input or history.
type Slack struct {
	// SigningSecret verifies Slack's requests (TRAINYARD_SLACK_SIGNING_SECRET).
	SigningSecret string `yaml:"signingSecret"`
	// BotToken (xoxb-…) posts and updates messages (TRAINYARD_SLACK_BOT_TOKEN).
	BotToken string `yaml:"botToken"`
	// AppToken (xapp-…, scope connections:write) runs Socket Mode
	// (TRAINYARD_SLACK_APP_TOKEN).
	AppToken string `yaml:"appToken"`
	// APIURL replaces https://slack.com/api/ (TRAINYARD_SLACK_API_URL): for tests and proxies.
	APIURL string `yaml:"apiURL"`
	// Users maps a Slack user id (U…) to a principal name; it wins over Emails.
	Users map[string]string `yaml:"users"`
	// Emails maps a Slack profile email to a principal name. Anyone in neither map is the
	// principal named by their Slack email.
	Emails map[string]string `yaml:"emails"`
	// GroupRoles maps a Slack user group id (S…) to the role its members hold, on top of the
	// roles of a principal of the same name in principals.
	GroupRoles map[string]string `yaml:"groupRoles"`
	// RoleGroups maps a role to the Slack user group (S…) mentioned when an approval that
	// needs the role is escalated.
	RoleGroups map[string]string `yaml:"roleGroups"`
}

// DefaultSlackAPIURL is Slack's Web API.
const DefaultSlackAPIURL = "https://slack.com/api/"

// Enabled reports whether the Slack app is configured at all.
func (s Slack) Enabled() bool { return s.BotToken != "" && (s.SigningSecret != "" || s.AppToken != "") }

// HTTPEnabled reports whether Slack's requests come to /slack/commands and /slack/interactions.
func (s Slack) HTTPEnabled() bool { return s.BotToken != "" && s.SigningSecret != "" }

// SocketModeEnabled reports whether Trainyard connects to Slack over Socket Mode.
func (s Slack) SocketModeEnabled() bool { return s.BotToken != "" && s.AppToken != "" }

// APIBaseURL is the Web API's base URL with the trailing slash slack-go needs.
func (s Slack) APIBaseURL() string {
	if s.APIURL == "" {
		return DefaultSlackAPIURL
	}
	return strings.TrimRight(s.APIURL, "/") + "/"
}

func (s *Slack) applyEnv(getenv func(string) string) {
	for dst, key := range map[*string]string{
		&s.SigningSecret: "TRAINYARD_SLACK_SIGNING_SECRET",
		&s.BotToken:      "TRAINYARD_SLACK_BOT_TOKEN",
		&s.AppToken:      "TRAINYARD_SLACK_APP_TOKEN",
		&s.APIURL:        "TRAINYARD_SLACK_API_URL",
	} {
		if v := getenv(key); v != "" {
			*dst = v
		}
	}
}

var (
	slackUserID  = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	slackGroupID = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
)

func (s Slack) validate() []error {
	var errs []error
	some := s.SigningSecret != "" || s.BotToken != "" || s.AppToken != ""
	switch {
	case !some:
		if len(s.Users)+len(s.Emails)+len(s.GroupRoles)+len(s.RoleGroups) > 0 {
			errs = append(errs, errors.New("slack: users, emails or roles are configured but Slack is off; set slack.botToken (TRAINYARD_SLACK_BOT_TOKEN) and slack.signingSecret (TRAINYARD_SLACK_SIGNING_SECRET) or slack.appToken (TRAINYARD_SLACK_APP_TOKEN)"))
		}
		return errs
	case s.BotToken == "":
		errs = append(errs, errors.New("slack.botToken (TRAINYARD_SLACK_BOT_TOKEN) is empty but other Slack secrets are set; copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page"))
	case !strings.HasPrefix(s.BotToken, "xoxb-"):
		errs = append(errs, errors.New("slack.botToken (TRAINYARD_SLACK_BOT_TOKEN) is not a bot token: it starts with xoxb- (OAuth & Permissions → Bot User OAuth Token)"))
	case s.SigningSecret == "" && s.AppToken == "":
		errs = append(errs, errors.New("slack: set slack.signingSecret (TRAINYARD_SLACK_SIGNING_SECRET) for request URLs, or slack.appToken (TRAINYARD_SLACK_APP_TOKEN) for Socket Mode"))
	}
	if s.AppToken != "" && !strings.HasPrefix(s.AppToken, "xapp-") {
		errs = append(errs, errors.New("slack.appToken (TRAINYARD_SLACK_APP_TOKEN) is not an app-level token: it starts with xapp- (Basic Information → App-Level Tokens, scope connections:write)"))
	}
	if s.APIURL != "" {
		u, err := url.Parse(s.APIURL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			errs = append(errs, fmt.Errorf("slack.apiURL (TRAINYARD_SLACK_API_URL) %q is not an absolute http(s) URL such as %s", s.APIURL, DefaultSlackAPIURL))
		} else if u.Scheme == "http" && !loopback(u.Hostname()) {
			errs = append(errs, errors.New("slack.apiURL (TRAINYARD_SLACK_API_URL) must be https (plain http only for a loopback address): it carries the bot token"))
		}
	}
	for _, id := range sortedKeys(s.Users) {
		if !slackUserID.MatchString(id) {
			errs = append(errs, fmt.Errorf("slack.users: %q is not a Slack user id (U… or W…, from the person's profile → Copy member ID)", id))
		}
		if strings.TrimSpace(s.Users[id]) == "" {
			errs = append(errs, fmt.Errorf("slack.users[%s] names no principal", id))
		}
	}
	for _, email := range sortedKeys(s.Emails) {
		if !strings.Contains(email, "@") {
			errs = append(errs, fmt.Errorf("slack.emails: %q is not an email address", email))
		}
		if strings.TrimSpace(s.Emails[email]) == "" {
			errs = append(errs, fmt.Errorf("slack.emails[%s] names no principal", email))
		}
	}
	for _, g := range sortedKeys(s.GroupRoles) {
		if !slackGroupID.MatchString(g) {
			errs = append(errs, fmt.Errorf("slack.groupRoles: %q is not a Slack user group id (S…)", g))
		}
		if strings.TrimSpace(s.GroupRoles[g]) == "" {
			errs = append(errs, fmt.Errorf("slack.groupRoles[%s] names no role", g))
		}
	}
	for _, role := range sortedKeys(s.RoleGroups) {
		if strings.TrimSpace(role) == "" {
			errs = append(errs, errors.New("slack.roleGroups has an empty role"))
		}
		if !slackGroupID.MatchString(s.RoleGroups[role]) {
			errs = append(errs, fmt.Errorf("slack.roleGroups[%s]: %q is not a Slack user group id (S…)", role, s.RoleGroups[role]))
		}
	}
	return errs
}

// PrincipalRoles maps each configured principal's name to its roles: what a Slack user mapped
// to that name holds.
func (c Config) PrincipalRoles() map[string][]string {
	out := make(map[string][]string, len(c.Principals))
	for _, p := range c.Principals {
		out[p.Name] = c.RolesOf(p.Name, p.Roles)
	}
	// People Slack maps to a name no API principal has still get their groups' roles.
	for _, g := range c.Groups {
		for _, m := range g.Members {
			if _, ok := out[m]; !ok {
				out[m] = c.RolesOf(m, nil)
			}
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
