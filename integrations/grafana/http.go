package grafana

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trainyard/trainyard/internal/jsonhttp"
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
	base, err := jsonhttp.Base(c.BaseURL, "grafana")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	h := http.Header{}
	if c.Token != "" {
		h.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := jsonhttp.Send(ctx, c.HTTP, jsonhttp.Call{
		System: "grafana", Method: method, URL: base.JoinPath(path), Path: path, Body: in, Header: h, MaxResponse: MaxResponseBytes,
	})
	if err != nil {
		return err
	}
	if resp.Status != http.StatusOK {
		e := &Error{Method: method, Path: path, StatusCode: resp.Status}
		var msg struct {
			Message string `json:"message"`
		}
		if !resp.TooLarge(MaxResponseBytes) && json.Unmarshal(resp.Body, &msg) == nil {
			e.Message = jsonhttp.Truncate(strings.TrimSpace(msg.Message), maxErrorText)
		}
		return e
	}
	if err := resp.Decode(out, MaxResponseBytes); err != nil {
		return fmt.Errorf("%w: grafana %s %s: %v", ErrUnexpectedResponse, method, path, err)
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
