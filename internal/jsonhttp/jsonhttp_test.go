package jsonhttp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBase_RefusesWhatIsNotAnAbsoluteURLWithoutCredentials(t *testing.T) {
	t.Parallel()
	_, err := Base("argocd.example.com", "argocd")
	require.ErrorContains(t, err, "absolute http(s) URL")
	_, err = Base("https://admin:secret@argocd.example.com", "argocd")
	require.ErrorContains(t, err, "token setting")
	require.NotContains(t, err.Error(), "secret")
	u, err := Base("https://argocd.example.com/api", "argocd")
	require.NoError(t, err)
	require.Equal(t, "/api/v1", u.JoinPath("v1").Path)
}

func TestSend_JSONInBoundedBodyOutAndErrorsWithoutTheQuery(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
		require.Equal(t, "Bearer t", r.Header.Get("Authorization"))
		_, _ = w.Write([]byte(`{"ok":true,"padding":"xxxxxxxxxx"}`))
	}))
	defer srv.Close()
	u, _ := Base(srv.URL, "test")
	resp, err := Send(context.Background(), srv.Client(), Call{
		System: "test", Method: http.MethodPost, URL: u.JoinPath("x"), Path: "/x",
		Body: map[string]int{"a": 1}, Header: http.Header{"Authorization": {"Bearer t"}}, MaxResponse: 10,
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.Status)
	require.Len(t, resp.Body, 11, "one byte more than the bound, so the caller sees it was cut")
	require.True(t, resp.TooLarge(10))

	dead, _ := Base("http://127.0.0.1:1", "test")
	dead.RawQuery = "token=secret"
	_, err = Send(context.Background(), nil, Call{System: "test", Method: http.MethodGet, URL: dead, Path: "/x", MaxResponse: 10})
	require.ErrorContains(t, err, "test GET /x: ")
	require.NotContains(t, err.Error(), "secret")
}

func TestDecode_SaysWhatCameInstead(t *testing.T) {
	t.Parallel()
	var v map[string]int
	require.NoError(t, Response{Status: 200, Body: []byte(`{"a":1}`)}.Decode(&v, 100))
	require.Equal(t, 1, v["a"])
	err := Response{Status: 200, ContentType: "text/html", Body: []byte(`<html>`)}.Decode(&v, 100)
	require.ErrorContains(t, err, "answered 200 with text/html that is not its JSON")
	require.ErrorContains(t, Response{Body: []byte(`{"a":1}`)}.Decode(&v, 3), "larger than 3 bytes")
	require.NoError(t, Response{Body: []byte(`junk`)}.Decode(nil, 100), "nothing asked for, nothing decoded")
}

func TestRetryAfterAndTruncate(t *testing.T) {
	t.Parallel()
	require.Equal(t, 7*time.Second, RetryAfter("7"))
	require.Zero(t, RetryAfter(""))
	require.Zero(t, RetryAfter("soon"))
	require.Equal(t, "ab", Truncate("abc", 2))
	require.Equal(t, "a", Truncate("aé", 2), "never half a character")
	require.Equal(t, "abc", Truncate("abc", 5))
}
