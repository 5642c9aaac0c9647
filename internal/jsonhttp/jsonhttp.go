// Package jsonhttp sends one JSON request to an external system's REST API the way every
// Trainyard client does: a checked base URL without credentials in it, JSON in and out,
// errors that name the system and the call but never the URL's query or a token, and a
// bounded response. Each client keeps its own status handling and error types.
package jsonhttp

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

// Base parses a client's configured base URL: absolute http(s), with no credentials in it
// (they belong in the client's token setting, which errors never show).
func Base(raw, system string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return nil, fmt.Errorf("the %s URL must be an absolute http(s) URL", system)
	case u.User != nil:
		return nil, fmt.Errorf("put the %s token in its token setting, not in the URL", system)
	}
	return u, nil
}

// Call is one request.
type Call struct {
	// System names the system in errors ("argocd", "spinnaker gate").
	System string
	Method string
	URL    *url.URL
	// Path is the API path, for errors (the URL may carry a query).
	Path string
	// Body is sent as JSON when not nil.
	Body   any
	Header http.Header
	// MaxResponse bounds what is read of the answer; one byte more is read, so the caller
	// can tell an answer that was cut.
	MaxResponse int64
}

// ErrEncode wraps a body that cannot be encoded: a bug of the caller, not of the system.
var ErrEncode = errors.New("encode request")

// Response is what came back: the status, the content type (for messages about an answer
// that is not the API's JSON), and at most MaxResponse+1 bytes of the body.
type Response struct {
	Status      int
	ContentType string
	Body        []byte
}

// TooLarge reports whether the body was cut at the call's bound.
func (r Response) TooLarge(max int64) bool { return int64(len(r.Body)) > max }

// Send sends the call. Transport errors keep only their cause (url.Error repeats the URL,
// query included) and become the context's error when it ended.
func Send(ctx context.Context, hc *http.Client, c Call) (Response, error) {
	var rd io.Reader
	if c.Body != nil {
		b, err := json.Marshal(c.Body)
		if err != nil {
			return Response{}, fmt.Errorf("%w: %v", ErrEncode, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, c.URL.String(), rd)
	if err != nil {
		return Response{}, fmt.Errorf("build request: %w", err)
	}
	for k, vs := range c.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	if c.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	fail := func(what string, err error) (Response, error) {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Response{}, fmt.Errorf("%s %s %s: %s%w", c.System, c.Method, c.Path, what, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fail("", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.MaxResponse+1))
	if err != nil {
		return fail("read response: ", err)
	}
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "no content type"
	}
	return Response{Status: resp.StatusCode, ContentType: ct, Body: data}, nil
}

// Decode reads the body into out, with a message saying what came instead when it is cut at
// max or is not JSON (a login page, a proxy's error). Callers wrap it with their own
// unexpected-response error.
func (r Response) Decode(out any, max int64) error {
	if r.TooLarge(max) {
		return fmt.Errorf("response is larger than %d bytes", max)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(r.Body, out); err != nil {
		return fmt.Errorf("answered %d with %s that is not its JSON: %v", r.Status, r.ContentType, err)
	}
	return nil
}

// RetryAfter reads a Retry-After header: seconds or an HTTP date; 0 when absent or past.
func RetryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := time.Until(t); d > 0 {
			return d.Round(time.Second)
		}
	}
	return 0
}

// Truncate cuts s to at most n bytes without splitting a UTF-8 character: error texts from
// other systems are kept short, and PostgreSQL refuses invalid UTF-8 in the audit trail.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut]
}
