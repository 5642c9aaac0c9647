package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/workflows"
)

// Client calls one Trainyard server with one bearer token.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client of the API at baseURL (such as http://127.0.0.1:8080). A nil
// httpClient means one with a timeout longer than the server's longest wait (an approval).
func New(baseURL, token string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 90 * time.Second}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, http: httpClient}
}

// StartRequest is the body of POST /api/v1/releases.
type StartRequest struct {
	Runbook    string                `json:"runbook"`
	Version    string                `json:"version"`
	Components []workflows.Component `json:"components,omitempty"`
	Change     *workflows.Change     `json:"change,omitempty"`
}

// StartResponse says where to follow a release.
type StartResponse struct {
	ID      string `json:"id"`
	Runbook string `json:"runbook"`
	Version string `json:"version"`
	// Phase is empty when the release existed and did not say its phase in time.
	Phase         string `json:"phase,omitempty"`
	StatusURL     string `json:"statusUrl"`
	TemporalUIURL string `json:"temporalUiUrl"`
}

// StartRelease starts a release, or finds the one already started for the same runbook and
// version (or idempotency key): created says which.
func (c *Client) StartRelease(ctx context.Context, req StartRequest, idempotencyKey string) (StartResponse, bool, error) {
	var resp StartResponse
	h := http.Header{}
	if idempotencyKey != "" {
		h.Set("Idempotency-Key", idempotencyKey)
	}
	status, err := c.do(ctx, http.MethodPost, "/api/v1/releases", nil, h, jsonBody(req), &resp)
	return resp, status == http.StatusCreated, err
}

// Release is one row of a release listing.
type Release struct {
	ID          string     `json:"id"`
	Runbook     string     `json:"runbook"`
	Version     string     `json:"version"`
	Requester   string     `json:"requester"`
	Phase       string     `json:"phase"`
	Environment string     `json:"environment"`
	Failure     string     `json:"failure,omitempty"`
	StartedAt   time.Time  `json:"startedAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
	EndedAt     *time.Time `json:"endedAt,omitempty"`
}

// ListOptions filters a release listing; empty fields match everything.
type ListOptions struct {
	Runbook     string
	Phase       string
	Environment string
	Limit       int
}

// ListReleases lists releases, newest first as the server orders them.
func (c *Client) ListReleases(ctx context.Context, opts ListOptions) ([]Release, error) {
	q := url.Values{}
	setQuery(q, "runbook", opts.Runbook)
	setQuery(q, "phase", opts.Phase)
	setQuery(q, "environment", opts.Environment)
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	var resp struct {
		Releases []Release `json:"releases"`
	}
	_, err := c.do(ctx, http.MethodGet, "/api/v1/releases", q, nil, nil, &resp)
	return resp.Releases, err
}

// Status returns the whole state of a release.
func (c *Client) Status(ctx context.Context, id string) (workflows.ReleaseStatus, error) {
	var st workflows.ReleaseStatus
	_, err := c.do(ctx, http.MethodGet, "/api/v1/releases/"+url.PathEscape(id), nil, nil, nil, &st)
	return st, err
}

// Decisions.
const (
	DecisionApprove = "approve"
	DecisionReject  = "reject"
)

// DecisionRequest approves or rejects one approval gate. A rejection needs a comment.
type DecisionRequest struct {
	Gate     string `json:"gate"`
	Decision string `json:"decision"`
	Comment  string `json:"comment,omitempty"`
	// AcknowledgePreMortem acknowledges the release's expected failure modes (required to
	// approve a release whose runbook lists them).
	AcknowledgePreMortem bool `json:"acknowledgePreMortem,omitempty"`
}

// Decide approves or rejects a gate. Repeating the same decision applies it once.
func (c *Client) Decide(ctx context.Context, id string, req DecisionRequest) (workflows.ApprovalResult, error) {
	var res workflows.ApprovalResult
	_, err := c.do(ctx, http.MethodPost, "/api/v1/releases/"+url.PathEscape(id)+"/approvals", nil, nil, jsonBody(req), &res)
	return res, err
}

// Abort stops a release and rolls back what it deployed.
func (c *Client) Abort(ctx context.Context, id, reason string) (workflows.AbortResult, error) {
	var res workflows.AbortResult
	body := jsonBody(struct {
		Reason string `json:"reason"`
	}{reason})
	_, err := c.do(ctx, http.MethodPost, "/api/v1/releases/"+url.PathEscape(id)+"/abort", nil, nil, body, &res)
	return res, err
}

// Operate sends an operator action to a release: "pause" (reason required), "resume",
// "rollback" or "fix-forward".
func (c *Client) Operate(ctx context.Context, id, action, reason string) (workflows.OperatorResult, error) {
	var res workflows.OperatorResult
	body := jsonBody(struct {
		Reason string `json:"reason,omitempty"`
	}{reason})
	_, err := c.do(ctx, http.MethodPost, "/api/v1/releases/"+url.PathEscape(id)+"/"+url.PathEscape(action), nil, nil, body, &res)
	return res, err
}

// RunbookSummary is what the server shows of a runbook.
type RunbookSummary struct {
	Name              string                  `json:"name"`
	Description       string                  `json:"description,omitempty"`
	Stages            []string                `json:"stages"`
	Environments      []string                `json:"environments,omitempty"`
	Sites             []string                `json:"sites,omitempty"`
	Approvals         []runbooks.ApprovalGate `json:"approvals,omitempty"`
	Stabilization     string                  `json:"stabilization,omitempty"`
	RollbackAuthority []string                `json:"rollbackAuthority,omitempty"`
}

// RunbookList is the server's runbooks and the problems of the files it could not load.
type RunbookList struct {
	Runbooks []RunbookSummary   `json:"runbooks"`
	Problems []runbooks.Problem `json:"problems"`
}

// Runbooks lists the server's runbooks.
func (c *Client) Runbooks(ctx context.Context) (RunbookList, error) {
	var list RunbookList
	_, err := c.do(ctx, http.MethodGet, "/api/v1/runbooks", nil, nil, nil, &list)
	return list, err
}

// ValidateRunbook asks the server to check a runbook file. An invalid one comes back as a
// *Problem whose Problems are located by line (in file "request").
func (c *Client) ValidateRunbook(ctx context.Context, yaml []byte) (runbooks.Runbook, error) {
	var resp struct {
		Runbook runbooks.Runbook `json:"runbook"`
	}
	b := body{contentType: "application/yaml", data: yaml}
	_, err := c.do(ctx, http.MethodPost, "/api/v1/runbooks/validate", nil, nil, &b, &resp)
	return resp.Runbook, err
}

// AuditEvent is one row of the audit trail.
type AuditEvent struct {
	ID        int64           `json:"id"`
	At        time.Time       `json:"at"`
	Actor     string          `json:"actor"`
	Roles     []string        `json:"roles"`
	SourceIP  string          `json:"sourceIp,omitempty"`
	UserAgent string          `json:"userAgent,omitempty"`
	SlackUser string          `json:"slackUser,omitempty"`
	SlackTeam string          `json:"slackTeam,omitempty"`
	Device    string          `json:"device,omitempty"`
	Action    string          `json:"action"`
	ReleaseID string          `json:"releaseId,omitempty"`
	Outcome   string          `json:"outcome"`
	Details   json.RawMessage `json:"details,omitempty"`
	PrevHash  string          `json:"prevHash"`
	Hash      string          `json:"hash"`
}

// AuditOptions filters the audit trail; zero fields match everything.
type AuditOptions struct {
	Release string
	Actor   string
	Action  string
	Since   time.Time
	Until   time.Time
	// After continues a listing after the event with this id (the last of the page before).
	After int64
	// Limit is the page size: the server's default (100) when zero, 1000 at most.
	Limit int
}

// Audit reads one page of the audit trail, oldest first.
func (c *Client) Audit(ctx context.Context, opts AuditOptions) ([]AuditEvent, error) {
	q := url.Values{}
	setQuery(q, "release", opts.Release)
	setQuery(q, "actor", opts.Actor)
	setQuery(q, "action", opts.Action)
	if !opts.Since.IsZero() {
		q.Set("since", opts.Since.Format(time.RFC3339Nano))
	}
	if !opts.Until.IsZero() {
		q.Set("until", opts.Until.Format(time.RFC3339Nano))
	}
	if opts.After > 0 {
		q.Set("after", strconv.FormatInt(opts.After, 10))
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	var resp struct {
		Events []AuditEvent `json:"events"`
	}
	_, err := c.do(ctx, http.MethodGet, "/api/v1/audit", q, nil, nil, &resp)
	return resp.Events, err
}

// MaxAuditPage is the largest page the server gives.
const MaxAuditPage = 1000

// AuditAll reads every event matching opts, page after page (opts.Limit events each,
// MaxAuditPage when zero), starting after opts.After, and calls fn with each in order. It
// stops at the first error, fn's included.
func (c *Client) AuditAll(ctx context.Context, opts AuditOptions, fn func(AuditEvent) error) error {
	if opts.Limit <= 0 {
		opts.Limit = MaxAuditPage
	}
	for {
		page, err := c.Audit(ctx, opts)
		if err != nil {
			return err
		}
		for _, ev := range page {
			if err := fn(ev); err != nil {
				return err
			}
		}
		if len(page) < opts.Limit {
			return nil
		}
		opts.After = page[len(page)-1].ID
	}
}

// Problem is an error answer of the API (RFC 9457), kept whole so a caller can show the
// detail and the located runbook problems.
type Problem struct {
	Type      string             `json:"type"`
	Title     string             `json:"title"`
	Status    int                `json:"status"`
	Detail    string             `json:"detail"`
	Instance  string             `json:"instance,omitempty"`
	RequestID string             `json:"requestId,omitempty"`
	Reason    string             `json:"reason,omitempty"`
	Problems  []runbooks.Problem `json:"problems,omitempty"`
}

func (p *Problem) Error() string {
	if p.Detail == "" {
		return p.Title
	}
	return p.Title + ": " + p.Detail
}

// AsProblem returns the *Problem in err's chain, if any.
func AsProblem(err error) (*Problem, bool) {
	var p *Problem
	ok := errors.As(err, &p)
	return p, ok
}

type body struct {
	contentType string
	data        []byte
	err         error
}

func jsonBody(v any) *body {
	data, err := json.Marshal(v)
	return &body{contentType: "application/json", data: data, err: err}
}

func setQuery(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}

// maxResponseBytes bounds what the client reads of an answer; a status with a long timeline
// is well under it.
const maxResponseBytes = 16 << 20

// do sends one request and decodes a 2xx answer into out; any other answer is a *Problem.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, h http.Header, b *body, out any) (int, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if b != nil {
		if b.err != nil {
			return 0, fmt.Errorf("encode request: %w", b.err)
		}
		rd = bytes.NewReader(b.data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	if b != nil {
		req.Header.Set("Content-Type", b.contentType)
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, problemFrom(resp, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// problemFrom reads an error answer. Something in between (a proxy, a load balancer) may
// answer with HTML or plain text; that still becomes a Problem, with the start of the text.
func problemFrom(resp *http.Response, data []byte) *Problem {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		var p Problem
		if json.Unmarshal(data, &p) == nil && (p.Title != "" || p.Detail != "") {
			if p.Status == 0 {
				p.Status = resp.StatusCode
			}
			if p.Title == "" {
				p.Title = http.StatusText(resp.StatusCode)
			}
			return &p
		}
	}
	detail := strings.TrimSpace(string(data))
	if len(detail) > 300 {
		detail = detail[:300] + "..."
	}
	if detail == "" {
		detail = "the server answered " + resp.Status + " with no explanation"
	}
	return &Problem{Type: "about:blank", Title: http.StatusText(resp.StatusCode), Status: resp.StatusCode, Detail: detail}
}
