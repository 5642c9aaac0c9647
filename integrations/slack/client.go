package slack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	goslack "github.com/slack-go/slack"
)

// Client is what Trainyard asks of Slack's Web API.
type Client interface {
	// PostMessage posts m and says where it went: Slack answers with the channel's id even
	// when m names the channel as #name, and chat.update accepts only the id.
	PostMessage(ctx context.Context, m Message) (Posted, error)
	// UpdateMessage replaces the message at ts; posting the same content again changes nothing.
	// Empty blocks leave Slack's old blocks in place (slack-go omits an empty list), so pass
	// the full rendering every time.
	UpdateMessage(ctx context.Context, channel, ts string, blocks []goslack.Block, text string) error
	// PostEphemeral shows text to user alone, in channel.
	PostEphemeral(ctx context.Context, channel, user, text string) error
	// OpenView opens a modal; triggerID comes from the interaction and lives three seconds.
	OpenView(ctx context.Context, triggerID string, view goslack.ModalViewRequest) error
	// RespondURL answers an interaction through its response_url: ephemerally, or by
	// replacing the message the interaction came from.
	RespondURL(ctx context.Context, responseURL, text string, replaceOriginal bool) error
	Users
}

// Message is a message to post. Text is the notification and fallback text (mrkdwn).
type Message struct {
	// Channel is a channel id (C…) or #name.
	Channel string
	Blocks  []goslack.Block
	Text    string
	// ThreadTS posts the message as a reply in that message's thread.
	ThreadTS string
	// Broadcast also shows a thread reply in the channel (reply_broadcast).
	Broadcast bool
}

// Posted is where a message went: the channel's id and the message's ts.
type Posted struct {
	Channel string
	TS      string
}

// Users is the part of Client the Directory needs.
type Users interface {
	// UserEmail is the user's profile email (users.info; needs users:read.email).
	UserEmail(ctx context.Context, userID string) (string, error)
	// UserGroupMembers are the user ids in a user group (usergroups.users.list).
	UserGroupMembers(ctx context.Context, groupID string) ([]string, error)
}

// ErrNoEmail: Slack returned the user without an email (a bot, or the app lacks
// users:read.email).
var ErrNoEmail = errors.New("slack user has no email")

// Defaults of WebClient.
const (
	DefaultMaxAttempts  = 3
	DefaultMaxRetryWait = 30 * time.Second
	// DefaultTimeout bounds each HTTP request to Slack.
	DefaultTimeout = 10 * time.Second
	// MaxResponseBytes bounds how much of a Slack response is read.
	MaxResponseBytes = 4 << 20
)

// WebClient is the real Client over slack-go. A call Slack rate-limits is tried again after the
// Retry-After Slack sends, up to MaxAttempts, unless the wait is longer than MaxRetryWait or
// than the context allows: then the *goslack.RateLimitedError is returned (wrapped), so an
// activity's retry policy takes over.
type WebClient struct {
	api *goslack.Client
	// MaxAttempts counts the first try.
	MaxAttempts  int
	MaxRetryWait time.Duration
	// sleep waits d or until ctx ends; tests replace it to see the waits without taking them.
	sleep func(ctx context.Context, d time.Duration) error
}

var _ Client = (*WebClient)(nil)

// New returns a WebClient for a bot token (xoxb-…). Requests time out after DefaultTimeout and
// read at most MaxResponseBytes; opts come after those defaults, so slack.OptionAPIURL points it
// at a test server and slack.OptionHTTPClient replaces the HTTP client. Do not pass
// slack.OptionRetry: WebClient does its own waiting.
func New(token string, opts ...goslack.Option) *WebClient {
	all := append([]goslack.Option{
		goslack.OptionHTTPClient(limitedClient{c: &http.Client{Timeout: DefaultTimeout}, max: MaxResponseBytes}),
	}, opts...)
	return &WebClient{
		api:          goslack.New(token, all...),
		MaxAttempts:  DefaultMaxAttempts,
		MaxRetryWait: DefaultMaxRetryWait,
		sleep:        sleepCtx,
	}
}

// PostMessage implements Client.
func (c *WebClient) PostMessage(ctx context.Context, m Message) (Posted, error) {
	opts := []goslack.MsgOption{goslack.MsgOptionText(m.Text, false), goslack.MsgOptionBlocks(m.Blocks...)}
	if m.ThreadTS != "" {
		opts = append(opts, goslack.MsgOptionTS(m.ThreadTS))
		if m.Broadcast {
			opts = append(opts, goslack.MsgOptionBroadcast())
		}
	}
	var p Posted
	err := c.retry(ctx, func() (err error) {
		p.Channel, p.TS, err = c.api.PostMessageContext(ctx, m.Channel, opts...)
		return err
	})
	if err != nil {
		return Posted{}, fmt.Errorf("post slack message to %s: %w", m.Channel, err)
	}
	if p.Channel == "" {
		p.Channel = m.Channel
	}
	return p, nil
}

// UpdateMessage implements Client.
func (c *WebClient) UpdateMessage(ctx context.Context, channel, ts string, blocks []goslack.Block, text string) error {
	err := c.retry(ctx, func() error {
		_, _, _, err := c.api.UpdateMessageContext(ctx, channel, ts, goslack.MsgOptionText(text, false), goslack.MsgOptionBlocks(blocks...))
		return err
	})
	if err != nil {
		return fmt.Errorf("update slack message %s in %s: %w", ts, channel, err)
	}
	return nil
}

// PostEphemeral implements Client.
func (c *WebClient) PostEphemeral(ctx context.Context, channel, user, text string) error {
	err := c.retry(ctx, func() error {
		_, err := c.api.PostEphemeralContext(ctx, channel, user, goslack.MsgOptionText(text, false))
		return err
	})
	if err != nil {
		return fmt.Errorf("post ephemeral slack message to %s in %s: %w", user, channel, err)
	}
	return nil
}

// OpenView implements Client.
func (c *WebClient) OpenView(ctx context.Context, triggerID string, view goslack.ModalViewRequest) error {
	err := c.retry(ctx, func() error {
		_, err := c.api.OpenViewContext(ctx, triggerID, view)
		return err
	})
	if err != nil {
		return fmt.Errorf("open slack modal %q: %w", view.CallbackID, err)
	}
	return nil
}

// RespondURL implements Client. The response URL gets no token: Slack authorises it by the URL
// alone, which is also why errors never repeat it.
func (c *WebClient) RespondURL(ctx context.Context, responseURL, text string, replaceOriginal bool) error {
	u, err := url.Parse(responseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("respond through slack response_url: not an http(s) URL")
	}
	opts := []goslack.MsgOption{goslack.MsgOptionText(text, false)}
	if replaceOriginal {
		opts = append(opts, goslack.MsgOptionReplaceOriginal(responseURL))
	} else {
		opts = append(opts, goslack.MsgOptionResponseURL(responseURL, goslack.ResponseTypeEphemeral))
	}
	err = c.retry(ctx, func() error {
		_, _, err := c.api.PostMessageContext(ctx, "", opts...)
		return err
	})
	if err != nil {
		return fmt.Errorf("respond through slack response_url at %s: %w", u.Host, redactURL(err))
	}
	return nil
}

// UserEmail implements Users.
func (c *WebClient) UserEmail(ctx context.Context, userID string) (string, error) {
	var user *goslack.User
	err := c.retry(ctx, func() (err error) {
		user, err = c.api.GetUserInfoContext(ctx, userID, goslack.GetUserInfoOptionIncludeLocale(false))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("look up slack user %s: %w", userID, err)
	}
	if user.Profile.Email == "" {
		return "", fmt.Errorf("look up slack user %s: %w (is it a bot, or does the app lack the users:read.email scope?)", userID, ErrNoEmail)
	}
	return user.Profile.Email, nil
}

// UserGroupMembers implements Users.
func (c *WebClient) UserGroupMembers(ctx context.Context, groupID string) ([]string, error) {
	var members []string
	err := c.retry(ctx, func() (err error) {
		members, err = c.api.GetUserGroupMembersContext(ctx, groupID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list members of slack user group %s: %w", groupID, err)
	}
	return members, nil
}

// minRetryWait is the wait when Slack says Retry-After: 0, so a retry is never immediate.
const minRetryWait = time.Second

func (c *WebClient) retry(ctx context.Context, call func() error) error {
	attempts := max(c.MaxAttempts, 1)
	for attempt := 1; ; attempt++ {
		err := call()
		var rl *goslack.RateLimitedError
		if !errors.As(err, &rl) || attempt >= attempts {
			return err
		}
		wait := max(rl.RetryAfter, minRetryWait)
		if c.MaxRetryWait > 0 && wait > c.MaxRetryWait {
			return err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return err
		}
		if serr := c.sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (gave up waiting: %w)", err, serr)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// IsRetryable reports whether the same call may succeed later: rate limiting, Slack's server
// errors and failures to reach Slack. Slack's refusals (channel_not_found, not_in_channel,
// invalid_auth, …) and cancellation are final.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, ErrNoEmail) {
		return false
	}
	var rl *goslack.RateLimitedError
	if errors.As(err, &rl) {
		return true
	}
	var sc goslack.StatusCodeError
	if errors.As(err, &sc) {
		return sc.Retryable()
	}
	var se goslack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			return true
		}
		return false
	}
	return true
}

// redactURL drops the URL from a *url.Error: a response_url is a credential.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s response_url: %w", ue.Op, ue.Err)
	}
	return err
}

// limitedClient bounds the bytes read from each response.
type limitedClient struct {
	c   *http.Client
	max int64
}

func (l limitedClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := l.c.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body = limitedBody{Reader: io.LimitReader(resp.Body, l.max), Closer: resp.Body}
	return resp, nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}
