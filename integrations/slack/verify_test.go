package slack

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	goslack "github.com/slack-go/slack"
	"github.com/stretchr/testify/require"
)

const testSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// slackDocsBody, slackDocsTS and slackDocsSig are the worked example of Slack's "Verifying
// requests from Slack" page.
const (
	slackDocsBody = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	slackDocsTS   = 1531420618
	slackDocsSig  = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

// signedRequest is a POST to target signed at ts as Slack signs it.
func signedRequest(target string, secret string, ts time.Time, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	r.Header.Set(HeaderSignature, Sign(secret, ts, []byte(body)))
	return r
}

func TestSign_MatchesSlacksPublishedExample(t *testing.T) {
	t.Parallel()
	require.Equal(t, slackDocsSig, Sign(testSecret, time.Unix(slackDocsTS, 0), []byte(slackDocsBody)))
}

func TestSign_IsAcceptedBySlackGosVerifier(t *testing.T) {
	t.Parallel()
	// slack-go's verifier reads the real clock, so the request is signed now.
	r := signedRequest("/slack/commands", testSecret, time.Now(), "command=%2Frelease&text=list")
	sv, err := goslack.NewSecretsVerifier(r.Header, testSecret)
	require.NoError(t, err)
	_, err = sv.Write([]byte("command=%2Frelease&text=list"))
	require.NoError(t, err)
	require.NoError(t, sv.Ensure())
}

func TestVerifyRequest_AcceptsSlacksPublishedExample(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/slack/commands", strings.NewReader(slackDocsBody))
	r.Header.Set(HeaderTimestamp, strconv.Itoa(slackDocsTS))
	r.Header.Set(HeaderSignature, slackDocsSig)

	body, err := VerifyRequest(r, testSecret, time.Unix(slackDocsTS+30, 0), 0)
	require.NoError(t, err)
	require.Equal(t, slackDocsBody, string(body))

	again, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	require.Equal(t, slackDocsBody, string(again), "the body stays readable for the handler")
}

func TestVerifyRequest_Refuses(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 2, 14, 2, 0, 0, time.UTC)
	const body = "command=%2Frelease&text=start+shop+1.2.3"

	tests := []struct {
		name    string
		request func() *http.Request
		maxBody int64
		want    error
	}{
		{
			name:    "forged signature",
			request: func() *http.Request { return signedRequest("/slack/commands", "not-the-secret", now, body) },
			want:    ErrBadSignature,
		},
		{
			name: "body changed after signing",
			request: func() *http.Request {
				r := signedRequest("/slack/commands", testSecret, now, body)
				r.Body = io.NopCloser(strings.NewReader(body + "&user_id=U999"))
				return r
			},
			want: ErrBadSignature,
		},
		{
			name: "signature missing",
			request: func() *http.Request {
				r := signedRequest("/slack/commands", testSecret, now, body)
				r.Header.Del(HeaderSignature)
				return r
			},
			want: ErrBadSignature,
		},
		{
			name: "signature of another scheme",
			request: func() *http.Request {
				r := signedRequest("/slack/commands", testSecret, now, body)
				r.Header.Set(HeaderSignature, "v1="+strings.TrimPrefix(r.Header.Get(HeaderSignature), "v0="))
				return r
			},
			want: ErrBadSignature,
		},
		{
			name: "timestamp older than five minutes",
			request: func() *http.Request {
				return signedRequest("/slack/commands", testSecret, now.Add(-MaxSkew-time.Second), body)
			},
			want: ErrStaleTimestamp,
		},
		{
			name: "timestamp more than five minutes ahead",
			request: func() *http.Request {
				return signedRequest("/slack/commands", testSecret, now.Add(MaxSkew+time.Second), body)
			},
			want: ErrStaleTimestamp,
		},
		{
			name: "timestamp missing",
			request: func() *http.Request {
				r := signedRequest("/slack/commands", testSecret, now, body)
				r.Header.Del(HeaderTimestamp)
				return r
			},
			want: ErrStaleTimestamp,
		},
		{
			name: "timestamp changed after signing",
			request: func() *http.Request {
				r := signedRequest("/slack/commands", testSecret, now, body)
				r.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10))
				return r
			},
			want: ErrBadSignature,
		},
		{
			name:    "body over the limit",
			request: func() *http.Request { return signedRequest("/slack/commands", testSecret, now, body) },
			maxBody: int64(len(body)) - 1,
			want:    ErrBodyTooLarge,
		},
		{
			name: "body over the limit without a content length",
			request: func() *http.Request {
				r := signedRequest("/slack/commands", testSecret, now, body)
				r.ContentLength = -1
				r.Body = io.NopCloser(io.MultiReader(strings.NewReader(body)))
				return r
			},
			maxBody: 10,
			want:    ErrBodyTooLarge,
		},
		{
			name: "body cut off by the server's own limit",
			request: func() *http.Request {
				r := signedRequest("/slack/commands", testSecret, now, body)
				r.ContentLength = -1
				r.Body = http.MaxBytesReader(nil, io.NopCloser(strings.NewReader(body)), 10)
				return r
			},
			want: ErrBodyTooLarge,
		},
		{
			name: "payload smuggled in the query string",
			request: func() *http.Request {
				return signedRequest("/slack/interactions?payload=%7B%22type%22%3A%22block_actions%22%7D", testSecret, now, "payload=%7B%7D")
			},
			want: ErrSmuggled,
		},
		{
			name: "command text smuggled in the query string",
			request: func() *http.Request {
				return signedRequest("/slack/commands?text=abort+release-shop-1.2.3", testSecret, now, body)
			},
			want: ErrSmuggled,
		},
		{
			name: "smuggled key in another case",
			request: func() *http.Request {
				return signedRequest("/slack/commands?Command=%2Frelease", testSecret, now, body)
			},
			want: ErrSmuggled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := VerifyRequest(tt.request(), testSecret, now, tt.maxBody)
			require.ErrorIs(t, err, tt.want)
			require.Nil(t, got)
			require.NotContains(t, err.Error(), testSecret)
		})
	}
}

func TestVerifyRequest_AcceptsEdgesOfTheWindowAndHarmlessQueries(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 2, 14, 2, 0, 0, time.UTC)
	const body = "command=%2Frelease&text=list"
	for _, tc := range []struct {
		name   string
		target string
		signed time.Time
	}{
		{"exactly five minutes old", "/slack/commands", now.Add(-MaxSkew)},
		{"exactly five minutes ahead", "/slack/commands", now.Add(MaxSkew)},
		{"query without slack fields", "/slack/commands?install=eu", now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := VerifyRequest(signedRequest(tc.target, testSecret, tc.signed, body), testSecret, now, int64(len(body)))
			require.NoError(t, err)
			require.Equal(t, body, string(got))
		})
	}
}

func TestVerifyRequest_RefusesWithoutASigningSecret(t *testing.T) {
	t.Parallel()
	now := time.Now()
	// Signed with the empty key: what a forger would do if an empty secret were accepted.
	_, err := VerifyRequest(signedRequest("/slack/commands", "", now, "text=list"), "", now, 0)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrBadSignature)
	require.Contains(t, err.Error(), "signing secret is not configured")
}

func TestParseSlashCommand_ReadsOnlyTheBody(t *testing.T) {
	t.Parallel()
	cmd, err := ParseSlashCommand([]byte(slackDocsBody))
	require.NoError(t, err)
	require.Equal(t, "/webhook-collect", cmd.Command)
	require.Equal(t, "U2CERLKJA", cmd.UserID)
	require.Equal(t, "T1DC2JH3J", cmd.TeamID)
	require.Equal(t, "G8PSS9T3V", cmd.ChannelID)
	require.Equal(t, "https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN", cmd.ResponseURL)
}

func TestParseInteractionPayload_DecodesTheFormField(t *testing.T) {
	t.Parallel()
	payload := `{"type":"block_actions","user":{"id":"U1","name":"alice"},"team":{"id":"T1"},"actions":[{"type":"button","block_id":"trainyard.decide","action_id":"trainyard.approve","value":"release-shop-1.2.3|prod"}]}`
	var b bytes.Buffer
	b.WriteString("payload=")
	b.WriteString(url.QueryEscape(payload))
	cb, err := ParseInteractionPayload(b.Bytes())
	require.NoError(t, err)
	require.Equal(t, goslack.InteractionTypeBlockActions, cb.Type)
	require.Equal(t, "U1", cb.User.ID)
	require.Len(t, cb.ActionCallback.BlockActions, 1)

	_, err = ParseInteractionPayload([]byte("text=hello"))
	require.Error(t, err, "a body without payload is refused")
}
