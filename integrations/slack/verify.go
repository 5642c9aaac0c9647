package slack

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	goslack "github.com/slack-go/slack"
)

// Headers Slack signs its requests with.
const (
	HeaderSignature = "X-Slack-Signature"
	HeaderTimestamp = "X-Slack-Request-Timestamp"
)

// MaxSkew is how far a request's timestamp may be from the server's clock, either way, before
// the request is refused as a replay (Slack's own recommendation).
const MaxSkew = 5 * time.Minute

// DefaultMaxBody is the body limit VerifyRequest applies when given none. Block action payloads
// carry the whole message they came from, so they are larger than commands, but far below this.
const DefaultMaxBody = 1 << 20

// Errors VerifyRequest returns; the server answers 401 for the first two, 413 and 400 for the
// others.
var (
	ErrStaleTimestamp = errors.New("slack request timestamp is missing or more than five minutes from now")
	ErrBadSignature   = errors.New("slack request signature does not match")
	ErrBodyTooLarge   = errors.New("slack request body is larger than allowed")
	// ErrSmuggled: the query string carries a field Slack sends in the signed body. Only the
	// body is signed, so a handler that read the query would act on unsigned input.
	ErrSmuggled = errors.New("slack request carries payload, command or text in its query string")
)

// smuggleKeys are the body fields the commands and interactions endpoints act on.
var smuggleKeys = []string{"payload", "command", "text"}

// VerifyRequest reads r's body once, through maxBody (DefaultMaxBody when <= 0), and returns it
// when r is a request Slack signed with signingSecret within MaxSkew of now. Only the returned
// bytes are authentic: parse them (ParseSlashCommand, ParseInteractionPayload), not r.Form.
// On success r.Body is replaced by a reader over the same bytes.
func VerifyRequest(r *http.Request, signingSecret string, now time.Time, maxBody int64) ([]byte, error) {
	if signingSecret == "" {
		// A configuration error, not the caller's: an empty key would make any signature forgeable.
		return nil, errors.New("verify slack request: the signing secret is not configured")
	}
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	if err := checkQuery(r.URL); err != nil {
		return nil, err
	}

	tsHeader := r.Header.Get(HeaderTimestamp)
	ts, err := strconv.ParseInt(strings.TrimSpace(tsHeader), 10, 64)
	if err != nil {
		return nil, ErrStaleTimestamp
	}
	if skew := now.Sub(time.Unix(ts, 0)); skew > MaxSkew || skew < -MaxSkew {
		return nil, ErrStaleTimestamp
	}
	sig := r.Header.Get(HeaderSignature)
	if sig == "" {
		return nil, ErrBadSignature
	}

	if r.ContentLength > maxBody {
		return nil, ErrBodyTooLarge
	}
	if r.Body == nil {
		return nil, ErrBadSignature
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		// A server-wide http.MaxBytesReader, below maxBody, got there first.
		return nil, ErrBodyTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("read slack request body: %w", err)
	}
	if int64(len(body)) > maxBody {
		return nil, ErrBodyTooLarge
	}

	want := sign(signingSecret, tsHeader, body)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return nil, ErrBadSignature
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

func checkQuery(u *url.URL) error {
	if u == nil || u.RawQuery == "" {
		return nil
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		// A query Go cannot read may still be read by something else; refuse it.
		return ErrSmuggled
	}
	for k := range q {
		for _, bad := range smuggleKeys {
			if strings.EqualFold(k, bad) {
				return ErrSmuggled
			}
		}
	}
	return nil
}

// Sign returns the X-Slack-Signature header Slack sends for body at ts; tests of other
// packages use it, with HeaderTimestamp set to ts.Unix(), to sign requests exactly as Slack
// does.
func Sign(secret string, ts time.Time, body []byte) string {
	return sign(secret, strconv.FormatInt(ts.Unix(), 10), body)
}

// sign signs the timestamp as it was sent, so a header with leading zeros is checked as Slack
// computed it.
func sign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// ParseSlashCommand reads a verified /slack/commands body.
func ParseSlashCommand(body []byte) (goslack.SlashCommand, error) {
	r, err := formRequest(body)
	if err != nil {
		return goslack.SlashCommand{}, err
	}
	cmd, err := goslack.SlashCommandParse(r)
	if err != nil {
		return goslack.SlashCommand{}, fmt.Errorf("parse slack command body: %w", err)
	}
	return cmd, nil
}

// ParseInteractionPayload reads a verified /slack/interactions body (a form with one field,
// payload, holding JSON).
func ParseInteractionPayload(body []byte) (goslack.InteractionCallback, error) {
	r, err := formRequest(body)
	if err != nil {
		return goslack.InteractionCallback{}, err
	}
	cb, err := goslack.InteractionCallbackParse(r)
	if err != nil {
		return goslack.InteractionCallback{}, fmt.Errorf("parse slack interaction payload: %w", err)
	}
	return cb, nil
}

// formRequest wraps a body in a request with no query string, so slack-go's parsers, which
// take requests, see nothing but the signed bytes.
func formRequest(body []byte) (*http.Request, error) {
	r, err := http.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse slack body: %w", err)
	}
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r, nil
}
