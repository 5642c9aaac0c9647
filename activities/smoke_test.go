package activities

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/runbooks"
)

func TestRunChecks_ProbesEachCheckWithTheSideInItsURL(t *testing.T) {
	t.Parallel()
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if r.URL.Path == "/blue/healthz" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	acts := &Activities{HTTP: srv.Client()}
	env := newActivityEnv(t, acts)
	checks := []runbooks.HTTPCheck{
		{Name: "healthz", URL: srv.URL + "/${TRAINYARD_SIDE}/healthz", ExpectStatus: 200},
		{URL: srv.URL + "/version?token=secret"},
	}

	val, err := env.ExecuteActivity(acts.RunChecks, ChecksRequest{Checks: checks, Vars: map[string]string{"TRAINYARD_SIDE": "green"}})
	require.NoError(t, err)
	var res ChecksResult
	require.NoError(t, val.Get(&res))
	require.True(t, res.Passed)
	require.Equal(t, []string{"/green/healthz", "/version"}, paths)
	require.Equal(t, srv.URL+"/version", res.Results[1].URL, "no query (credentials) in what is reported")
	require.Equal(t, "#2", res.Results[1].Name)
	require.Empty(t, res.Failure())

	val, err = env.ExecuteActivity(acts.RunChecks, ChecksRequest{Checks: checks, Vars: map[string]string{"TRAINYARD_SIDE": "blue"}})
	require.NoError(t, err)
	require.NoError(t, val.Get(&res))
	require.False(t, res.Passed)
	require.Equal(t, "check healthz ("+srv.URL+"/blue/healthz) failed: 1 of 1 requests returned 503, want 200", res.Failure())
}

func TestRunChecks_ACheckThatCannotRunFailsWithoutRetrying(t *testing.T) {
	t.Parallel()
	acts := &Activities{}
	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.RunChecks, ChecksRequest{Checks: []runbooks.HTTPCheck{{Name: "bad", URL: "ftp://x.example/"}}})
	appErr := requireApplicationError(t, err)
	require.True(t, appErr.NonRetryable())
	require.Contains(t, appErr.Message(), "check bad")
}
