package grafana

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testToken = "glsa_s3cret-service-account-token"

func newFake(t *testing.T) (*Fake, *Client, *httptest.Server) {
	t.Helper()
	fake := &Fake{Token: testToken}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return fake, &Client{BaseURL: srv.URL, Token: testToken, HTTP: srv.Client()}, srv
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestCreateThenUpdate_DrawsARegionWithTags(t *testing.T) {
	t.Parallel()
	fake, c, _ := newFake(t)
	ctx := context.Background()
	id, err := c.Create(ctx, Annotation{Time: t0, Tags: []string{"trainyard", "deploy", "env:production"}, Text: "deploy of web 2.0.0 started"})
	require.NoError(t, err)
	require.Equal(t, int64(1), id)
	got := fake.Annotations()
	require.Len(t, got, 1)
	require.True(t, got[0].Start().Equal(t0))
	require.True(t, got[0].End().Equal(t0), "a point annotation ends where it starts")

	require.NoError(t, c.Update(ctx, id, Annotation{TimeEnd: t0.Add(3 * time.Minute), Text: "deploy of web 2.0.0 succeeded"}))
	got = fake.Annotations()
	require.True(t, got[0].End().Equal(t0.Add(3*time.Minute)))
	require.Equal(t, "deploy of web 2.0.0 succeeded", got[0].Text)
	require.Equal(t, []string{"trainyard", "deploy", "env:production"}, got[0].Tags, "tags not sent are kept")
}

func TestClient_RefusalsAreTypedAndCarryNoToken(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		call      func(c *Client) error
		status    int
		retryable bool
	}{
		{"wrong token", func(c *Client) error {
			c.Token = "wrong-token"
			_, err := c.Create(context.Background(), Annotation{Time: t0, Text: "x"})
			return err
		}, http.StatusUnauthorized, false},
		{"unknown annotation", func(c *Client) error {
			return c.Update(context.Background(), 99, Annotation{Text: "x"})
		}, http.StatusNotFound, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, c, _ := newFake(t)
			err := tc.call(c)
			var ge *Error
			require.ErrorAs(t, err, &ge)
			require.Equal(t, tc.status, ge.StatusCode)
			require.NotEmpty(t, ge.Message)
			require.Equal(t, tc.retryable, IsRetryable(err))
			require.NotContains(t, err.Error(), testToken)
		})
	}
}

func TestClient_ServerErrorsAreRetryable(t *testing.T) {
	t.Parallel()
	fake, c, _ := newFake(t)
	fake.FailNext(http.StatusServiceUnavailable)
	_, err := c.Create(context.Background(), Annotation{Time: t0, Text: "x"})
	require.True(t, IsRetryable(err), "%v", err)
	_, err = c.Create(context.Background(), Annotation{Time: t0, Text: "x"})
	require.NoError(t, err, "the next request goes through")
}

func TestClient_RefusesBadInputBeforeSending(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		c    Client
		call func(c *Client) error
	}{
		{"no time", Client{BaseURL: "http://127.0.0.1:1"}, func(c *Client) error {
			_, err := c.Create(context.Background(), Annotation{Text: "x"})
			return err
		}},
		{"no text", Client{BaseURL: "http://127.0.0.1:1"}, func(c *Client) error {
			_, err := c.Create(context.Background(), Annotation{Time: t0})
			return err
		}},
		{"relative URL", Client{BaseURL: "grafana"}, func(c *Client) error {
			_, err := c.Create(context.Background(), Annotation{Time: t0, Text: "x"})
			return err
		}},
		{"credentials in URL", Client{BaseURL: "https://admin:pw@grafana.example"}, func(c *Client) error {
			_, err := c.Create(context.Background(), Annotation{Time: t0, Text: "x"})
			return err
		}},
		{"no id", Client{BaseURL: "http://127.0.0.1:1"}, func(c *Client) error { return c.Update(context.Background(), 0, Annotation{Text: "x"}) }},
		{"nothing to change", Client{BaseURL: "http://127.0.0.1:1"}, func(c *Client) error { return c.Update(context.Background(), 1, Annotation{}) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.call(&tc.c)
			require.ErrorIs(t, err, ErrInvalidInput)
			require.False(t, IsRetryable(err))
			require.NotContains(t, err.Error(), "pw@")
		})
	}
}

func TestClient_NonJSONAnswerIsUnexpected(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html>login</html>"))
	}))
	t.Cleanup(srv.Close)
	c := &Client{BaseURL: srv.URL + "/grafana", HTTP: srv.Client()}
	_, err := c.Create(context.Background(), Annotation{Time: t0, Text: "x"})
	require.ErrorIs(t, err, ErrUnexpectedResponse)
	require.Contains(t, err.Error(), "text/html")
}

func TestClient_UnreachableIsRetryableAndCancelledIsNot(t *testing.T) {
	t.Parallel()
	c := &Client{BaseURL: "http://127.0.0.1:1", HTTP: &http.Client{Timeout: 2 * time.Second}}
	_, err := c.Create(context.Background(), Annotation{Time: t0, Text: "x"})
	require.Error(t, err)
	require.True(t, IsRetryable(err))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Create(ctx, Annotation{Time: t0, Text: "x"})
	require.True(t, errors.Is(err, context.Canceled), "%v", err)
	require.False(t, IsRetryable(err))
}

func TestFake_FindFiltersByTagsAndTime(t *testing.T) {
	t.Parallel()
	_, c, srv := newFake(t)
	ctx := context.Background()
	_, err := c.Create(ctx, Annotation{Time: t0, Tags: []string{"trainyard", "env:staging"}, Text: "a"})
	require.NoError(t, err)
	_, err = c.Create(ctx, Annotation{Time: t0.Add(time.Hour), Tags: []string{"trainyard", "env:production"}, Text: "b"})
	require.NoError(t, err)

	req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/annotations?tags=trainyard&tags=env:production&from="+
		itoa(t0.Add(time.Minute).UnixMilli()), nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var found []FakeAnnotation
	require.NoError(t, decodeJSON(resp, &found))
	require.Len(t, found, 1)
	require.Equal(t, "b", found[0].Text)
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func decodeJSON(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }
