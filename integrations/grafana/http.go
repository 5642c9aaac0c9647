package grafana

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
)

// MaxResponseBytes bounds how much of a response Client reads.
const MaxResponseBytes = 1 << 20

const (
	annotationsPath = "/api/annotations"
	maxErrorText    = 300
)

// Client is the real Annotator: Grafana's annotations API with a service account token.
type Client struct {
	// BaseURL is Grafana, e.g. https://grafana.example.com (a sub-path such as
	// https://example.com/grafana works too).
	BaseURL string
	// Token is a service account token (or API key) with the annotations:write permission.
	Token string
	// HTTP sends the requests; http.DefaultClient when nil. Give it a Timeout.
	HTTP *http.Client
}

var _ Annotator = (*Client)(nil)

// annotationBody is the JSON of POST and PATCH /api/annotations: times in epoch
// milliseconds, zero fields left out (PATCH changes only what is sent).
type annotationBody struct {
	Time    int64    `json:"time,omitempty"`
	TimeEnd int64    `json:"timeEnd,omitempty"`
	Tags    []string `json:"tags,omitempty"`
	Text    string   `json:"text,omitempty"`
}

func body(a Annotation) annotationBody {
	b := annotationBody{Tags: a.Tags, Text: a.Text}
	if !a.Time.IsZero() {
		b.Time = a.Time.UnixMilli()
	}
	if !a.TimeEnd.IsZero() {
		b.TimeEnd = a.TimeEnd.UnixMilli()
	}
	return b
}

// Create draws the annotation (POST /api/annotations) and returns its id.
func (c *Client) Create(ctx context.Context, a Annotation) (int64, error) {
	if a.Time.IsZero() {
		return 0, fmt.Errorf("%w: an annotation needs a time", ErrInvalidInput)
	}
	if strings.TrimSpace(a.Text) == "" {
		return 0, fmt.Errorf("%w: an annotation needs a text", ErrInvalidInput)
	}
	var out struct {
		ID      int64  `json:"id"`
		Message string `json:"message"`
	}
	if err := c.do(ctx, http.MethodPost, annotationsPath, body(a), &out); err != nil {
		return 0, fmt.Errorf("create grafana annotation: %w", err)
	}
	if out.ID <= 0 {
		return 0, fmt.Errorf("create grafana annotation: %w: the answer carries no annotation id", ErrUnexpectedResponse)
	}
	return out.ID, nil
}

// Update changes the annotation (PATCH /api/annotations/{id}): its end, text or tags.
func (c *Client) Update(ctx context.Context, id int64, a Annotation) error {
	if id <= 0 {
		return fmt.Errorf("%w: annotation id %d", ErrInvalidInput, id)
	}
	b := body(a)
	if b.Time == 0 && b.TimeEnd == 0 && b.Text == "" && a.Tags == nil {
		return fmt.Errorf("%w: nothing to change in annotation %d", ErrInvalidInput, id)
	}
	if err := c.do(ctx, http.MethodPatch, annotationsPath+"/"+strconv.FormatInt(id, 10), b, nil); err != nil {
		return fmt.Errorf("update grafana annotation %d: %w", id, err)
	}
	return nil
}

// do sends one JSON request and decodes a 200 answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	base, err := url.Parse(c.BaseURL)
	switch {
	case err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http"):
		return fmt.Errorf("%w: the grafana URL must be an absolute http(s) URL", ErrInvalidInput)
	case base.User != nil:
		return fmt.Errorf("%w: put the grafana token in grafana.token, not in the URL", ErrInvalidInput)
	}
	u := base.JoinPath(path)
	data, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%w: build request: %v", ErrInvalidInput, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("grafana %s %s: %w", method, path, ctxErr)
		}
		// url.Error repeats the URL; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("grafana %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("grafana %s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{Method: method, Path: path, StatusCode: resp.StatusCode}
		var msg struct {
			Message string `json:"message"`
		}
		if len(raw) <= MaxResponseBytes && json.Unmarshal(raw, &msg) == nil {
			e.Message = truncate(strings.TrimSpace(msg.Message), maxErrorText)
		}
		return e
	}
	if len(raw) > MaxResponseBytes {
		return fmt.Errorf("%w: grafana %s %s: response is larger than %d bytes", ErrUnexpectedResponse, method, path, MaxResponseBytes)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		ct := resp.Header.Get("Content-Type")
		if ct == "" {
			ct = "no content type"
		}
		return fmt.Errorf("%w: grafana %s %s answered 200 with %s, not the API's JSON", ErrUnexpectedResponse, method, path, ct)
	}
	return nil
}

// IsRetryable reports whether err may go away on its own: a transport failure, a timeout, or
// a retryable *Error.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var ge *Error
	if errors.As(err, &ge) {
		return ge.Retryable()
	}
	return !errors.Is(err, ErrInvalidInput) && !errors.Is(err, context.Canceled)
}

// fromMillis reads the API's epoch milliseconds.
func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut]
}
