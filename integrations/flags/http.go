package flags

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trainyard/trainyard/internal/jsonhttp"
)

// MaxResponseBytes bounds how much of a response Client reads.
const MaxResponseBytes = 1 << 20

// maxErrorText bounds the message kept from an error body.
const maxErrorText = 500

// defaultHTTP is used when Client.HTTP is nil: never wait on Unleash for ever.
var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

// Client is the real Manager: Unleash's Admin API with an admin, service account or
// personal access token, sent bare in the Authorization header as Unleash expects.
type Client struct {
	// BaseURL is where Unleash serves, with its base path if any:
	// https://unleash.example.com or https://example.com/unleash.
	BaseURL string
	Token   string
	// HTTP sends the requests; a client with a 30s timeout when nil.
	HTTP *http.Client
}

var _ Manager = (*Client)(nil)

// Enable switches the flag on in env: POST .../environments/{env}/on. Switching on a flag
// that is on changes nothing.
func (c *Client) Enable(ctx context.Context, project, flag, env string) error {
	return c.toggle(ctx, project, flag, env, "on")
}

// Disable switches the flag off in env: POST .../environments/{env}/off.
func (c *Client) Disable(ctx context.Context, project, flag, env string) error {
	return c.toggle(ctx, project, flag, env, "off")
}

func (c *Client) toggle(ctx context.Context, project, flag, env, to string) error {
	op := fmt.Sprintf("switch %s flag %q of project %q in environment %q", to, flag, project, env)
	if err := checkNames(project, flag, env); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return c.do(ctx, op, http.MethodPost, envPath(project, flag, env)+"/"+to, nil, nil)
}

// State reads the flag (GET /api/admin/projects/{p}/features/{f}) and reports its state in
// env.
func (c *Client) State(ctx context.Context, project, flag, env string) (FlagState, error) {
	fe, err := c.environment(ctx, project, flag, env)
	if err != nil {
		return FlagState{}, err
	}
	st := FlagState{Enabled: fe.Enabled}
	if s := rolloutStrategy(fe.Strategies); s != nil {
		p, err := s.percent()
		if err != nil {
			return FlagState{}, fmt.Errorf("read flag %q of project %q in environment %q: %w", flag, project, env, err)
		}
		st.Percent, st.StrategyID = p, s.ID
	}
	return st, nil
}

// SetRollout updates the rollout strategy's "rollout" parameter (PUT .../strategies/{id}),
// keeping its other parameters, constraints and variants, or adds a flexibleRollout
// strategy (POST .../strategies) when env has no rollout strategy. A rollout already at
// percent is left alone. Two SetRollouts racing on a flag without a strategy may add two.
func (c *Client) SetRollout(ctx context.Context, project, flag, env string, percent int) error {
	op := fmt.Sprintf("set rollout of flag %q of project %q in environment %q to %d%%", flag, project, env, percent)
	if percent < 0 || percent > 100 {
		return fmt.Errorf("%s: %w: the percentage must be between 0 and 100", op, ErrInvalidInput)
	}
	fe, err := c.environment(ctx, project, flag, env)
	if err != nil {
		return err
	}
	rollout := strconv.Itoa(percent)
	s := rolloutStrategy(fe.Strategies)
	if s == nil {
		body := strategy{
			Name:       StrategyName,
			Parameters: map[string]string{"rollout": rollout, "stickiness": "default", "groupId": flag},
		}
		return c.do(ctx, op, http.MethodPost, envPath(project, flag, env)+"/strategies", body, nil)
	}
	if p, err := s.percent(); err == nil && p == percent {
		return nil
	}
	// PUT replaces the strategy: Unleash empties constraints and variants left out, so send
	// back everything read, changing only the rollout.
	upd := *s
	upd.ID = ""
	upd.Parameters = make(map[string]string, len(s.Parameters)+1)
	for k, v := range s.Parameters {
		upd.Parameters[k] = v
	}
	upd.Parameters["rollout"] = rollout
	return c.do(ctx, op, http.MethodPut, envPath(project, flag, env)+"/strategies/"+url.PathEscape(s.ID), upd, nil)
}

// environment reads the flag and picks env out of it.
func (c *Client) environment(ctx context.Context, project, flag, env string) (featureEnv, error) {
	op := fmt.Sprintf("read flag %q of project %q", flag, project)
	if err := checkNames(project, flag, env); err != nil {
		return featureEnv{}, fmt.Errorf("%s: %w", op, err)
	}
	var f feature
	if err := c.do(ctx, op, http.MethodGet, featurePath(project, flag), nil, &f); err != nil {
		return featureEnv{}, err
	}
	for _, e := range f.Environments {
		if e.Name == env {
			return e, nil
		}
	}
	names := make([]string, 0, len(f.Environments))
	for _, e := range f.Environments {
		names = append(names, e.Name)
	}
	return featureEnv{}, fmt.Errorf("%s: %w: environment %q is not enabled for the project (it has %s)",
		op, ErrNotFound, env, strings.Join(names, ", "))
}

// feature, featureEnv and strategy are the parts of Unleash's featureSchema,
// featureEnvironmentSchema and featureStrategySchema Client reads and writes.
type feature struct {
	Name         string       `json:"name"`
	Project      string       `json:"project"`
	Environments []featureEnv `json:"environments"`
}

type featureEnv struct {
	Name       string     `json:"name"`
	Enabled    bool       `json:"enabled"`
	Strategies []strategy `json:"strategies"`
}

type strategy struct {
	ID         string            `json:"id,omitempty"`
	Name       string            `json:"name"`
	Title      *string           `json:"title,omitempty"`
	Disabled   *bool             `json:"disabled,omitempty"`
	SortOrder  *float64          `json:"sortOrder,omitempty"`
	Parameters map[string]string `json:"parameters"`
	// Constraints and Variants travel as read: Client never looks inside them.
	Constraints []json.RawMessage `json:"constraints,omitempty"`
	Variants    []json.RawMessage `json:"variants,omitempty"`
	Segments    []int64           `json:"segments,omitempty"`
}

func (s *strategy) percent() (int, error) {
	r := strings.TrimSpace(s.Parameters["rollout"])
	p, err := strconv.Atoi(r)
	if err != nil || p < 0 || p > 100 {
		return 0, fmt.Errorf("%w: strategy %s has rollout %q, not a percentage", ErrUnexpectedResponse, s.ID, r)
	}
	return p, nil
}

// rolloutStrategy is the strategy that is the flag's gradual rollout (see FlagState).
func rolloutStrategy(ss []strategy) *strategy {
	for i := range ss {
		s := &ss[i]
		if s.Name == StrategyName && (s.Disabled == nil || !*s.Disabled) && len(s.Constraints) == 0 && len(s.Segments) == 0 {
			return s
		}
	}
	return nil
}

func featurePath(project, flag string) string {
	return "/api/admin/projects/" + url.PathEscape(project) + "/features/" + url.PathEscape(flag)
}

func envPath(project, flag, env string) string {
	return featurePath(project, flag) + "/environments/" + url.PathEscape(env)
}

func checkNames(project, flag, env string) error {
	for _, n := range [][2]string{{"project", project}, {"flag", flag}, {"environment", env}} {
		switch {
		case strings.TrimSpace(n[1]) == "":
			return fmt.Errorf("%w: the %s is empty", ErrInvalidInput, n[0])
		case n[1] == "." || n[1] == "..":
			return fmt.Errorf("%w: %q is not a %s name", ErrInvalidInput, n[1], n[0])
		}
	}
	return nil
}

// do sends one request and decodes a 2xx answer's JSON into out (when out is not nil).
func (c *Client) do(ctx context.Context, op, method, path string, body, out any) error {
	base, err := url.Parse(c.BaseURL)
	switch {
	case err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http"):
		return fmt.Errorf("%s: %w: the unleash URL must be an absolute http(s) URL", op, ErrInvalidInput)
	case base.User != nil:
		return fmt.Errorf("%s: %w: put the unleash token in the token setting, not in the URL", op, ErrInvalidInput)
	case c.Token == "":
		return fmt.Errorf("%s: %w: no unleash api token is set", op, ErrInvalidInput)
	}
	// path's segments are escaped already; JoinPath takes escaped elements.
	u := base.JoinPath(path)

	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s: encode request: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("%s: %w: build request: %v", op, ErrInvalidInput, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("%s: unleash %s %s: %w", op, method, path, ctxErr)
		}
		// url.Error repeats the URL; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s: unleash %s %s: %w", op, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("%s: unleash %s %s: %w", op, method, path, ctxErr)
		}
		return fmt.Errorf("%s: unleash %s %s: read response: %w", op, method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(op, method, path, resp, data)
	}
	if out == nil {
		return nil
	}
	if len(data) > MaxResponseBytes {
		return fmt.Errorf("%s: %w: unleash %s %s: response is larger than %d bytes", op, ErrUnexpectedResponse, method, path, MaxResponseBytes)
	}
	if err := json.Unmarshal(data, out); err != nil {
		ct := resp.Header.Get("Content-Type")
		if ct == "" {
			ct = "no content type"
		}
		return fmt.Errorf("%s: %w: unleash %s %s answered %d with %s that is not the admin API's JSON: %v",
			op, ErrUnexpectedResponse, method, path, resp.StatusCode, ct, err)
	}
	return nil
}

// responseError is an *Error with Unleash's error name and message when the body is its
// error JSON ({"id", "name", "message", "details"}, or a bare {"message"}).
func responseError(op, method, path string, resp *http.Response, data []byte) *Error {
	e := &Error{Op: op, Method: method, Path: path, StatusCode: resp.StatusCode, RetryAfter: jsonhttp.RetryAfter(resp.Header.Get("Retry-After"))}
	var body struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	}
	if len(data) <= MaxResponseBytes && json.Unmarshal(data, &body) == nil {
		e.Name = jsonhttp.Truncate(strings.TrimSpace(body.Name), 100)
		e.Message = jsonhttp.Truncate(strings.TrimSpace(body.Message), maxErrorText)
	}
	return e
}
