package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	goslack "github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
	"github.com/stretchr/testify/require"
)

const testToken = "xoxb-test-0123456789-secret"

// sent is one request the client sent, as the server received it.
type sent struct {
	Path string
	Form url.Values
	JSON map[string]any
	Auth string
}

// recorder sits between WebClient and the test server and keeps what was sent, so tests see
// the requests slacktest's own handlers answer.
type recorder struct {
	next limitedClient
	mu   sync.Mutex
	reqs []sent
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	s := sent{Path: req.URL.Path, Auth: req.Header.Get("Authorization")}
	if strings.HasPrefix(req.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(body, &s.JSON)
	} else {
		s.Form, _ = url.ParseQuery(string(body))
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, s)
	r.mu.Unlock()
	return r.next.Do(req)
}

func (r *recorder) sent(path string) []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sent
	for _, s := range r.reqs {
		if s.Path == path {
			out = append(out, s)
		}
	}
	return out
}

// tokenOK checks the token as Slack does: in the form for form posts, as a bearer token for JSON.
func tokenOK(w http.ResponseWriter, r *http.Request, form url.Values) bool {
	if form.Get("token") == testToken || r.Header.Get("Authorization") == "Bearer "+testToken {
		return true
	}
	writeJSON(w, map[string]any{"ok": false, "error": "invalid_auth"})
	return false
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

// slackMethods adds, following Slack's Web API reference, the methods slacktest lacks:
// chat.update, views.open and usergroups.users.list. Messages chat.update knows are those
// in existing (channel → ts); groups maps a user group id to its members.
func slackMethods(existing map[string]string, groups map[string][]string) slacktest.Binder {
	return func(c slacktest.Customize) {
		c.Handle("/chat.update", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			if !tokenOK(w, r, r.PostForm) {
				return
			}
			ch, ts := r.PostForm.Get("channel"), r.PostForm.Get("ts")
			if existing[ch] != ts {
				writeJSON(w, map[string]any{"ok": false, "error": "message_not_found"})
				return
			}
			writeJSON(w, map[string]any{"ok": true, "channel": ch, "ts": ts, "text": r.PostForm.Get("text")})
		})
		c.Handle("/views.open", func(w http.ResponseWriter, r *http.Request) {
			if !tokenOK(w, r, nil) {
				return
			}
			var req struct {
				TriggerID string         `json:"trigger_id"`
				View      map[string]any `json:"view"`
			}
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.View == nil {
				writeJSON(w, map[string]any{"ok": false, "error": "invalid_arguments"})
				return
			}
			if req.TriggerID != "12345.98765.abcd2358fdea" {
				writeJSON(w, map[string]any{"ok": false, "error": "expired_trigger_id"})
				return
			}
			view := req.View
			view["id"] = "VMHU10V25"
			writeJSON(w, map[string]any{"ok": true, "view": view})
		})
		c.Handle("/usergroups.users.list", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			if !tokenOK(w, r, r.PostForm) {
				return
			}
			members, ok := groups[r.PostForm.Get("usergroup")]
			if !ok {
				writeJSON(w, map[string]any{"ok": false, "error": "no_such_subteam"})
				return
			}
			writeJSON(w, map[string]any{"ok": true, "users": members})
		})
	}
}

// newSlack starts a slacktest server with binders and returns it with a WebClient for it whose
// waits are recorded in *waits instead of taken.
func newSlack(t *testing.T, binders ...slacktest.Binder) (*slacktest.Server, *WebClient, *recorder, *[]time.Duration) {
	t.Helper()
	srv := slacktest.NewTestServer(binders...)
	srv.Start()
	t.Cleanup(srv.Stop)
	rec := &recorder{next: limitedClient{c: &http.Client{Timeout: 5 * time.Second}, max: MaxResponseBytes}}
	c := New(testToken, goslack.OptionAPIURL(srv.GetAPIURL()), goslack.OptionHTTPClient(rec))
	var mu sync.Mutex
	waits := &[]time.Duration{}
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		*waits = append(*waits, d)
		return ctx.Err()
	}
	return srv, c, rec, waits
}

func requireNoToken(t *testing.T, err error) {
	t.Helper()
	require.NotContains(t, err.Error(), testToken)
}

func TestWebClient_PostMessage_SendsBlocksTextAndThread(t *testing.T) {
	t.Parallel()
	_, c, rec, _ := newSlack(t)
	ctx := context.Background()
	blocks := ReleaseBlocks(sampleRelease())

	parent, err := c.PostMessage(ctx, Message{Channel: "C0CA5", Blocks: blocks, Text: "Release shop 1.2.3"})
	require.NoError(t, err)
	require.NotEmpty(t, parent.TS)
	require.Equal(t, "C0CA5", parent.Channel)
	_, err = c.PostMessage(ctx, Message{Channel: "C0CA5", Text: "stage prod started", ThreadTS: parent.TS})
	require.NoError(t, err)
	_, err = c.PostMessage(ctx, Message{Channel: "C0CA5", Text: "release failed", ThreadTS: parent.TS, Broadcast: true})
	require.NoError(t, err)

	posts := rec.sent("/chat.postMessage")
	require.Len(t, posts, 3)
	require.Equal(t, "C0CA5", posts[0].Form.Get("channel"))
	require.Equal(t, "Release shop 1.2.3", posts[0].Form.Get("text"))
	require.Empty(t, posts[0].Form.Get("thread_ts"))
	var got goslack.Blocks
	require.NoError(t, json.Unmarshal([]byte(posts[0].Form.Get("blocks")), &got))
	require.Len(t, got.BlockSet, len(blocks))
	require.Equal(t, parent.TS, posts[1].Form.Get("thread_ts"), "thread events go under the parent message")
	require.Empty(t, posts[1].Form.Get("reply_broadcast"))
	require.Equal(t, parent.TS, posts[2].Form.Get("thread_ts"))
	require.Equal(t, "true", posts[2].Form.Get("reply_broadcast"), "failures are also shown in the channel")
}

func TestWebClient_PostMessage_ReturnsTheChannelIDSlackAnswers(t *testing.T) {
	t.Parallel()
	_, c, _, _ := newSlack(t, func(cu slacktest.Customize) {
		cu.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			require.Equal(t, "#releases", r.PostForm.Get("channel"))
			writeJSON(w, map[string]any{"ok": true, "channel": "C0RELEASES", "ts": "1700000000.000300"})
		})
	})
	p, err := c.PostMessage(context.Background(), Message{Channel: "#releases", Text: "hello"})
	require.NoError(t, err)
	require.Equal(t, Posted{Channel: "C0RELEASES", TS: "1700000000.000300"}, p, "chat.update needs the id, not the name")
}

func TestWebClient_UpdateMessage_ReplacesTheMessage(t *testing.T) {
	t.Parallel()
	_, c, rec, _ := newSlack(t, slackMethods(map[string]string{"C0CA5": "1700000000.000100"}, nil))
	ctx := context.Background()

	require.NoError(t, c.UpdateMessage(ctx, "C0CA5", "1700000000.000100", ApprovalBlocks(sampleRelease(), "prod-signoff"), "Approval needed"))
	upd := rec.sent("/chat.update")
	require.Len(t, upd, 1)
	require.Equal(t, "1700000000.000100", upd[0].Form.Get("ts"))
	require.Equal(t, "Approval needed", upd[0].Form.Get("text"))
	require.Contains(t, upd[0].Form.Get("blocks"), "trainyard.approve")

	err := c.UpdateMessage(ctx, "C0CA5", "1700000000.999999", nil, "x")
	var se goslack.SlackErrorResponse
	require.ErrorAs(t, err, &se)
	require.Equal(t, "message_not_found", se.Err)
	require.False(t, IsRetryable(err))
	require.Contains(t, err.Error(), "update slack message 1700000000.999999 in C0CA5")
	requireNoToken(t, err)
}

func TestWebClient_PostEphemeral_ShowsTextToOnePerson(t *testing.T) {
	t.Parallel()
	_, c, rec, _ := newSlack(t)
	require.NoError(t, c.PostEphemeral(context.Background(), "C0CA5", "U0CA5", "You can't approve this; release-manager or sre can."))
	eph := rec.sent("/chat.postEphemeral")
	require.Len(t, eph, 1)
	require.Equal(t, "U0CA5", eph[0].Form.Get("user"))
	require.Equal(t, "C0CA5", eph[0].Form.Get("channel"))
	require.Equal(t, "You can't approve this; release-manager or sre can.", eph[0].Form.Get("text"))
}

func TestWebClient_OpenView_OpensTheRejectModal(t *testing.T) {
	t.Parallel()
	_, c, rec, _ := newSlack(t, slackMethods(nil, nil))
	ctx := context.Background()
	view := RejectModal("release-shop-1.2.3", "prod-signoff", "C0CA5", "1548261231.000200")

	require.NoError(t, c.OpenView(ctx, "12345.98765.abcd2358fdea", view))
	opened := rec.sent("/views.open")
	require.Len(t, opened, 1)
	require.Equal(t, "Bearer "+testToken, opened[0].Auth)
	v := opened[0].JSON["view"].(map[string]any)
	require.Equal(t, RejectCallbackID, v["callback_id"])
	require.Equal(t, view.PrivateMetadata, v["private_metadata"])

	err := c.OpenView(ctx, "expired", view)
	require.ErrorContains(t, err, "expired_trigger_id")
	require.False(t, IsRetryable(err))
	requireNoToken(t, err)
}

func TestWebClient_UserEmail_ReadsTheProfileEmail(t *testing.T) {
	t.Parallel()
	_, c, rec, _ := newSlack(t)
	// slacktest's users.info answers with its one user, spengler.
	email, err := c.UserEmail(context.Background(), "W012A3CDE")
	require.NoError(t, err)
	require.Equal(t, "spengler@ghostbusters.example.com", email)
	require.Equal(t, "W012A3CDE", rec.sent("/users.info")[0].Form.Get("user"))
}

func TestWebClient_UserEmail_SaysWhenSlackHidesTheEmail(t *testing.T) {
	t.Parallel()
	_, c, _, _ := newSlack(t, func(c slacktest.Customize) {
		c.Handle("/users.info", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, map[string]any{"ok": true, "user": map[string]any{"id": "B1", "is_bot": true, "profile": map[string]any{}}})
		})
	})
	_, err := c.UserEmail(context.Background(), "B1")
	require.ErrorIs(t, err, ErrNoEmail)
	require.Contains(t, err.Error(), "users:read.email")
}

func TestWebClient_UserGroupMembers_ListsTheGroup(t *testing.T) {
	t.Parallel()
	_, c, _, _ := newSlack(t, slackMethods(nil, map[string][]string{"S0614TZR7": {"U060RNRCZ", "U060ULRC0"}}))
	ctx := context.Background()
	members, err := c.UserGroupMembers(ctx, "S0614TZR7")
	require.NoError(t, err)
	require.Equal(t, []string{"U060RNRCZ", "U060ULRC0"}, members)

	_, err = c.UserGroupMembers(ctx, "S_UNKNOWN")
	require.ErrorContains(t, err, "no_such_subteam")
	require.ErrorContains(t, err, "list members of slack user group S_UNKNOWN")
}

func TestWebClient_RespondURL_PostsWithoutTheToken(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []map[string]any
	var auth []string
	srv, c, _, _ := newSlack(t, func(cu slacktest.Customize) {
		cu.Handle("/actions/T0CAG/1232321423432/", func(w http.ResponseWriter, r *http.Request) {
			var body map[string]any
			_ = json.NewDecoder(r.Body).Decode(&body)
			mu.Lock()
			got, auth = append(got, body), append(auth, r.Header.Get("Authorization"))
			mu.Unlock()
			if strings.HasSuffix(r.URL.Path, "/expired") {
				http.Error(w, "expired_url", http.StatusNotFound)
				return
			}
			writeJSON(w, map[string]any{"ok": true})
		})
	})
	base := srv.GetAPIURL() + "actions/T0CAG/1232321423432/"
	ctx := context.Background()

	require.NoError(t, c.RespondURL(ctx, base+"D09sSasdasdAS9091209", "Only release managers can abort.", false))
	require.NoError(t, c.RespondURL(ctx, base+"D09sSasdasdAS9091209", "Approved by amy", true))
	mu.Lock()
	require.Len(t, got, 2)
	require.Equal(t, "Only release managers can abort.", got[0]["text"])
	require.Equal(t, "ephemeral", got[0]["response_type"])
	require.Equal(t, false, got[0]["replace_original"])
	require.Equal(t, true, got[1]["replace_original"])
	for i := range got {
		require.Empty(t, auth[i])
		require.NotContains(t, fmt.Sprint(got[i]), testToken)
	}
	mu.Unlock()

	err := c.RespondURL(ctx, base+"expired", "x", false)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "1232321423432", "a response_url is a credential")

	err = c.RespondURL(ctx, "http://127.0.0.1:1/actions/T0CAG/1232321423432/secret", "x", false)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "secret")

	require.ErrorContains(t, c.RespondURL(ctx, "javascript:alert(1)", "x", false), "not an http(s) URL")
}

// rateLimited answers chat.postMessage with 429 and Retry-After for the first `times` calls,
// then as Slack does on success; it counts the calls.
func rateLimited(retryAfter string, times int, calls *int, mu *sync.Mutex) slacktest.Binder {
	return func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			*calls++
			n := *calls
			mu.Unlock()
			if n <= times {
				w.Header().Set("Retry-After", retryAfter)
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			_ = r.ParseForm()
			writeJSON(w, map[string]any{"ok": true, "channel": r.PostForm.Get("channel"), "ts": "1700000000.000200"})
		})
	}
}

func TestWebClient_RetriesAfterTheDelaySlackGives(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	_, c, _, waits := newSlack(t, rateLimited("7", 1, &calls, &mu))

	p, err := c.PostMessage(context.Background(), Message{Channel: "C0CA5", Text: "hello"})
	require.NoError(t, err)
	require.Equal(t, "1700000000.000200", p.TS)
	require.Equal(t, 2, calls)
	require.Equal(t, []time.Duration{7 * time.Second}, *waits)
}

func TestWebClient_RetryAfterZeroStillWaits(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	_, c, _, waits := newSlack(t, rateLimited("0", 1, &calls, &mu))
	_, err := c.PostMessage(context.Background(), Message{Channel: "C0CA5", Text: "hello"})
	require.NoError(t, err)
	require.Equal(t, []time.Duration{time.Second}, *waits)
}

func TestWebClient_GivesUpOnRateLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		retryAfter string
		ctx        func() (context.Context, context.CancelFunc)
		wantCalls  int
		wantWaits  []time.Duration
	}{
		{
			name: "after MaxAttempts", retryAfter: "2",
			ctx:       func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			wantCalls: DefaultMaxAttempts, wantWaits: []time.Duration{2 * time.Second, 2 * time.Second},
		},
		{
			name: "when the wait is longer than MaxRetryWait", retryAfter: "120",
			ctx:       func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			wantCalls: 1,
		},
		{
			name: "when the context ends before the wait would", retryAfter: "20",
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 10*time.Second)
			},
			wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			calls := 0
			_, c, _, waits := newSlack(t, rateLimited(tt.retryAfter, 100, &calls, &mu))
			ctx, cancel := tt.ctx()
			defer cancel()

			_, err := c.PostMessage(ctx, Message{Channel: "C0CA5", Text: "hello"})
			var rl *goslack.RateLimitedError
			require.ErrorAs(t, err, &rl)
			require.True(t, IsRetryable(err), "an activity retry may succeed later")
			require.Contains(t, err.Error(), "post slack message to C0CA5")
			require.Equal(t, tt.wantCalls, calls)
			require.Equal(t, tt.wantWaits, nilIfEmpty(*waits))
		})
	}
}

func nilIfEmpty(d []time.Duration) []time.Duration {
	if len(d) == 0 {
		return nil
	}
	return d
}

func TestWebClient_StopsWaitingWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	_, c, _, _ := newSlack(t, rateLimited("1", 100, &calls, &mu))
	ctx, cancel := context.WithCancel(context.Background())
	c.sleep = func(context.Context, time.Duration) error {
		cancel() // the caller gives up while the client waits
		return sleepCtx(ctx, time.Hour)
	}
	_, err := c.PostMessage(ctx, Message{Channel: "C0CA5", Text: "hello"})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, calls)
	require.False(t, IsRetryable(err))
}

func TestWebClient_BoundsTheResponseBody(t *testing.T) {
	t.Parallel()
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/users.info", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, map[string]any{"ok": true, "user": map[string]any{"id": "U1", "real_name": strings.Repeat("x", 4096),
				"profile": map[string]any{"email": "a@example.com"}}})
		})
	})
	srv.Start()
	t.Cleanup(srv.Stop)
	c := New(testToken, goslack.OptionAPIURL(srv.GetAPIURL()),
		goslack.OptionHTTPClient(limitedClient{c: &http.Client{Timeout: 5 * time.Second}, max: 1024}))
	_, err := c.UserEmail(context.Background(), "U1")
	require.Error(t, err, "a response over the bound is not read to its end")
}

func TestIsRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&goslack.RateLimitedError{RetryAfter: time.Second}, true},
		{goslack.StatusCodeError{Code: 503, Status: "503 Service Unavailable"}, true},
		{goslack.StatusCodeError{Code: 404, Status: "404 Not Found"}, false},
		{goslack.SlackErrorResponse{Err: "channel_not_found"}, false},
		{goslack.SlackErrorResponse{Err: "not_in_channel"}, false},
		{goslack.SlackErrorResponse{Err: "invalid_auth"}, false},
		{goslack.SlackErrorResponse{Err: "internal_error"}, true},
		{goslack.SlackErrorResponse{Err: "ratelimited"}, true},
		{fmt.Errorf("look up: %w", ErrNoEmail), false},
		{fmt.Errorf("post: %w", context.Canceled), false},
		{&url.Error{Op: "Post", URL: "https://slack.com/api/chat.postMessage", Err: errors.New("connection reset by peer")}, true},
	}
	for _, tt := range tests {
		err := tt.err
		if err != nil {
			err = fmt.Errorf("wrapped: %w", err)
		}
		require.Equal(t, tt.want, IsRetryable(err), fmt.Sprint(tt.err))
	}
}
