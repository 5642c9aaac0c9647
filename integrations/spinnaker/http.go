package spinnaker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/trainyard/trainyard/internal/jsonhttp"
)

const (
	// MaxResponseBytes bounds how much of a response Client reads: executions carry every
	// stage's context, which can be large for pipelines with many deploy stages.
	MaxResponseBytes = 16 << 20
	// DefaultTimeout bounds each request when Client builds its own http.Client.
	DefaultTimeout = 30 * time.Second
	// maxErrorText bounds the messages kept from error bodies and stage contexts.
	maxErrorText = 1000
)

// Client is the real Pipelines: Spinnaker's Gate API over HTTPS.
type Client struct {
	// BaseURL is Gate, e.g. https://gate.spinnaker.example.com (or .../api/v1 behind Deck's
	// ingress).
	BaseURL string
	// HTTP sends the requests. When nil, Client uses its own with DefaultTimeout. For x509
	// client certificates, give it a client whose transport holds them.
	HTTP *http.Client
	// Token, when set, is sent as "Authorization: Bearer <token>" (Gate behind OAuth2 or
	// an authenticating proxy); never logged or put in errors.
	Token string
	// Headers are added to every request: X-Spinnaker-User for a service account, or a
	// Cookie with a session. Treated as secrets, like Token.
	Headers map[string]string

	once sync.Once
	hc   *http.Client
}

// Trigger starts a manual execution: POST /pipelines/{application}/{pipelineNameOrId} with
// {"type": "manual", "user", "parameters"}. Gate answers 202 with {"ref": "/pipelines/<id>"}.
// user is the trigger's user (Gate puts the authenticated user when empty).
//
// Spinnaker does not deduplicate triggers: a retried Trigger after an error that hid a
// started execution (a 5xx or timeout from Gate) may start a second one. Callers record the
// id before waiting, and may pass a parameter naming the release so people can find it.
func (c *Client) Trigger(ctx context.Context, application, pipeline string, params map[string]string, user string) (string, error) {
	id, err := c.trigger(ctx, application, pipeline, params, user)
	if err != nil {
		return "", fmt.Errorf("trigger spinnaker pipeline %q of %q: %w", pipeline, application, err)
	}
	return id, nil
}

func (c *Client) trigger(ctx context.Context, application, pipeline string, params map[string]string, user string) (string, error) {
	if !appName.MatchString(application) {
		return "", fmt.Errorf("%w: %q is not a spinnaker application name", ErrInvalidInput, application)
	}
	if strings.TrimSpace(pipeline) == "" || pipeline == "." || pipeline == ".." ||
		strings.ContainsAny(pipeline, "/\\") || strings.ContainsFunc(pipeline, isControl) {
		// Gate's servlet container refuses encoded slashes in paths; use the pipeline's id.
		return "", fmt.Errorf("%w: pipeline %q is empty or has a slash or control character; give the pipeline's id instead", ErrInvalidInput, pipeline)
	}
	body := map[string]any{"type": "manual"}
	if user != "" {
		body["user"] = user
	}
	if len(params) > 0 {
		body["parameters"] = params
	}
	var out struct {
		Ref string `json:"ref"`
	}
	path := "/pipelines/" + url.PathEscape(application) + "/" + url.PathEscape(pipeline)
	if err := c.do(ctx, http.MethodPost, path, nil, body, &out); err != nil {
		return "", err
	}
	id, ok := strings.CutPrefix(out.Ref, "/pipelines/")
	if !ok || !executionID.MatchString(id) {
		return "", fmt.Errorf("%w: gate accepted the trigger but its ref %q does not name an execution", ErrUnexpectedResponse, jsonhttp.Truncate(out.Ref, 100))
	}
	return id, nil
}

// Execution reads an execution: GET /pipelines/{id}.
func (c *Client) Execution(ctx context.Context, id string) (Execution, error) {
	if !executionID.MatchString(id) {
		return Execution{}, fmt.Errorf("read spinnaker execution: %w: %q is not an execution id", ErrInvalidInput, id)
	}
	var w wireExecution
	if err := c.do(ctx, http.MethodGet, "/pipelines/"+id, nil, nil, &w); err != nil {
		return Execution{}, fmt.Errorf("read spinnaker execution %s: %w", id, err)
	}
	if w.ID == "" || w.Status == "" {
		return Execution{}, fmt.Errorf("read spinnaker execution %s: %w: no id or status", id, ErrUnexpectedResponse)
	}
	return w.execution(), nil
}

// Wait reads the execution every poll until it is complete. progress, when set, gets every
// reading, so the caller can heartbeat. It returns the last reading, with a
// *PipelineFailedError when the execution ended other than SUCCEEDED, or ctx's error. Read
// errors end the wait too: the caller's retry decides (IsRetryable), and Wait can be called
// again on the same id.
func (c *Client) Wait(ctx context.Context, id string, poll time.Duration, progress func(Execution)) (Execution, error) {
	if poll <= 0 {
		return Execution{}, fmt.Errorf("wait for spinnaker execution %s: %w: poll interval must be positive", id, ErrInvalidInput)
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		e, err := c.Execution(ctx, id)
		if err != nil {
			return e, err
		}
		if progress != nil {
			progress(e)
		}
		if e.Status.Complete() {
			if e.Status == StatusSucceeded {
				return e, nil
			}
			return e, e.failure()
		}
		if err := ctx.Err(); err != nil {
			return e, fmt.Errorf("wait for spinnaker execution %s (%s): %w", id, e.Status, err)
		}
		select {
		case <-ctx.Done():
			return e, fmt.Errorf("wait for spinnaker execution %s (%s): %w", id, e.Status, ctx.Err())
		case <-t.C:
		}
	}
}

// Cancel cancels an execution: PUT /pipelines/{id}/cancel?reason=. Canceling an execution
// that has already ended changes nothing.
func (c *Client) Cancel(ctx context.Context, id, reason string) error {
	if !executionID.MatchString(id) {
		return fmt.Errorf("cancel spinnaker execution: %w: %q is not an execution id", ErrInvalidInput, id)
	}
	q := url.Values{}
	if reason != "" {
		q.Set("reason", jsonhttp.Truncate(reason, maxErrorText))
	}
	if err := c.do(ctx, http.MethodPut, "/pipelines/"+id+"/cancel", q, nil, nil); err != nil {
		return fmt.Errorf("cancel spinnaker execution %s: %w", id, err)
	}
	return nil
}

// do sends one request and decodes a 2xx answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	base, err := jsonhttp.Base(c.BaseURL, "spinnaker gate")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	// path is escaped already: JoinPath takes escaped elements.
	u := base.JoinPath(path)
	u.RawQuery = q.Encode()
	h := http.Header{}
	for k, v := range c.Headers {
		h.Set(k, v)
	}
	if c.Token != "" {
		h.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := jsonhttp.Send(ctx, c.client(), jsonhttp.Call{
		System: "spinnaker gate", Method: method, URL: u, Path: path, Body: body, Header: h, MaxResponse: MaxResponseBytes,
	})
	if err != nil {
		return err
	}
	if resp.Status < 200 || resp.Status > 299 {
		return responseError(method, path, resp.Status, resp.Body)
	}
	if err := resp.Decode(out, MaxResponseBytes); err != nil {
		return fmt.Errorf("%w: spinnaker gate %s %s: %v (an expired session's login page?)", ErrUnexpectedResponse, method, path, err)
	}
	return nil
}

func (c *Client) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	c.once.Do(func() { c.hc = &http.Client{Timeout: DefaultTimeout} })
	return c.hc
}

// responseError is an *APIError with the message of Gate's error body when there is one.
func responseError(method, path string, status int, data []byte) *APIError {
	e := &APIError{Method: method, Path: path, StatusCode: status}
	var body struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	switch {
	case len(data) <= MaxResponseBytes && json.Unmarshal(data, &body) == nil:
		e.Message = body.Message
		if e.Message == "" {
			e.Message = body.Error
		}
	case bytes.HasPrefix(bytes.TrimSpace(data), []byte("<")):
		e.Message = "an HTML page, not Gate's JSON (is the URL Gate's, not Deck's?)"
	default:
		e.Message = strings.TrimSpace(string(data))
	}
	e.Message = jsonhttp.Truncate(e.Message, maxErrorText)
	return e
}

var (
	// appName is a Spinnaker application name (front50 allows letters, digits, '.', '_'
	// and '-').
	appName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,249}$`)
	// executionID is a ULID or UUID, as Orca assigns them.
	executionID = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)
)

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// wireExecution is the part of Orca's execution JSON this package reads.
type wireExecution struct {
	ID                 string      `json:"id"`
	Application        string      `json:"application"`
	Name               string      `json:"name"`
	Status             string      `json:"status"`
	CanceledBy         string      `json:"canceledBy"`
	CancellationReason string      `json:"cancellationReason"`
	Stages             []wireStage `json:"stages"`
}

type wireStage struct {
	ID            string `json:"id"`
	RefID         string `json:"refId"`
	ParentStageID string `json:"parentStageId"`
	Name          string `json:"name"`
	Type          string `json:"type"`
	Status        string `json:"status"`
	Context       struct {
		Exception *struct {
			Details struct {
				Error  string   `json:"error"`
				Errors []string `json:"errors"`
			} `json:"details"`
		} `json:"exception"`
		Error     json.RawMessage `json:"error"`
		KatoTasks []struct {
			Exception *struct {
				Message string `json:"message"`
			} `json:"exception"`
		} `json:"kato.tasks"`
	} `json:"context"`
}

func (w wireExecution) execution() Execution {
	e := Execution{ID: w.ID, Application: w.Application, Name: w.Name, Status: Status(w.Status),
		CanceledBy: w.CanceledBy, CancellationReason: w.CancellationReason}
	for _, s := range w.Stages {
		e.Stages = append(e.Stages, Stage{ID: s.ID, RefID: s.RefID, ParentID: s.ParentStageID, Name: s.Name,
			Type: s.Type, Status: Status(s.Status), Error: jsonhttp.Truncate(s.errorText(), maxErrorText)})
	}
	return e
}

// errorText is the stage's error, in the order Deck looks for it.
func (s wireStage) errorText() string {
	ctx := s.Context
	if ex := ctx.Exception; ex != nil {
		var errs []string
		for _, e := range ex.Details.Errors {
			if e = strings.TrimSpace(e); e != "" {
				errs = append(errs, e)
			}
		}
		if len(errs) > 0 {
			return strings.Join(errs, "; ")
		}
		if ex.Details.Error != "" {
			return strings.TrimSpace(ex.Details.Error)
		}
	}
	if len(ctx.Error) > 0 && string(ctx.Error) != "null" {
		var msg string
		if json.Unmarshal(ctx.Error, &msg) == nil {
			if msg = strings.TrimSpace(msg); msg != "" {
				return msg
			}
		} else {
			return string(ctx.Error)
		}
	}
	var kato []string
	for _, t := range ctx.KatoTasks {
		if t.Exception != nil && strings.TrimSpace(t.Exception.Message) != "" {
			kato = append(kato, strings.TrimSpace(t.Exception.Message))
		}
	}
	return strings.Join(kato, "; ")
}
