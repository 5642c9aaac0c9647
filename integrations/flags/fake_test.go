package flags

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// call sends one raw request to a Fake, as any Admin API client would.
func call(t *testing.T, srv *httptest.Server, method, path, auth, contentType, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(data) > 0 {
		require.NoError(t, json.Unmarshal(data, &out), string(data))
	}
	return resp.StatusCode, out
}

const strategiesPath = "/api/admin/projects/checkout/features/new-cart/environments/production/strategies"

func newFakeServer(t *testing.T) (*httptest.Server, *Fake) {
	t.Helper()
	fake := NewFake(testToken)
	fake.AddFlag("checkout", "new-cart")
	fake.AddFlag("checkout", "dark-mode")
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return srv, fake
}

func TestFake_ErrorsHaveUnleashShape(t *testing.T) {
	t.Parallel()
	srv, fake := newFakeServer(t)
	other := fake.AddStrategy("dark-mode", "production", FakeStrategy{Name: "default"})
	tests := []struct {
		name, method, path, auth, ct, body string
		status                             int
		errName                            string
	}{
		{name: "no token", method: "GET", path: "/api/admin/projects/checkout/features/new-cart", status: 401, errName: "AuthenticationRequired"},
		{name: "wrong token", method: "GET", path: "/api/admin/projects/checkout/features/new-cart", auth: "nope", status: 401, errName: "UnauthorizedError"},
		{name: "unknown flag", method: "GET", path: "/api/admin/projects/checkout/features/nope", auth: testToken, status: 404, errName: "NotFoundError"},
		{name: "unknown env", method: "POST", path: "/api/admin/projects/checkout/features/new-cart/environments/qa/on", auth: testToken, status: 404, errName: "NotFoundError"},
		{name: "no content type", method: "POST", path: strategiesPath, auth: testToken, body: `{"name":"default"}`, status: 415, errName: "ContentTypeError"},
		{name: "no name", method: "POST", path: strategiesPath, auth: testToken, ct: "application/json", body: `{"parameters":{}}`, status: 400, errName: "ValidationError"},
		{name: "parameter not a string", method: "POST", path: strategiesPath, auth: testToken, ct: "application/json", body: `{"name":"flexibleRollout","parameters":{"rollout":25}}`, status: 400, errName: "ValidationError"},
		{name: "unknown strategy type", method: "POST", path: strategiesPath, auth: testToken, ct: "application/json", body: `{"name":"gradual"}`, status: 404, errName: "NotFoundError"},
		{name: "unknown strategy id", method: "PUT", path: strategiesPath + "/" + fakeUUID(), auth: testToken, ct: "application/json", body: `{"name":"default"}`, status: 404, errName: "NotFoundError"},
		{name: "strategy of another flag", method: "PUT", path: strategiesPath + "/" + other, auth: testToken, ct: "application/json", body: `{"name":"default"}`, status: 403, errName: "InvalidOperationError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, body := call(t, srv, tt.method, tt.path, tt.auth, tt.ct, tt.body)
			require.Equal(t, tt.status, status)
			require.Equal(t, tt.errName, body["name"])
			require.NotEmpty(t, body["message"])
			require.NotEmpty(t, body["id"])
		})
	}
}

func TestFake_CreateFillsFlexibleRolloutDefaultsAndPutEmptiesWhatItIsNotSent(t *testing.T) {
	t.Parallel()
	srv, fake := newFakeServer(t)

	status, s := call(t, srv, "POST", strategiesPath, testToken, "application/json",
		`{"name":"flexibleRollout","parameters":{"rollout":"10"},"constraints":[{"contextName":"userId","operator":"IN","values":["a"]}]}`)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, map[string]any{"rollout": "10", "stickiness": "default", "groupId": "new-cart"}, s["parameters"])
	require.Equal(t, "new-cart", s["featureName"])
	require.Len(t, s["constraints"], 1)

	status, s = call(t, srv, "PUT", strategiesPath+"/"+s["id"].(string), testToken, "application/json",
		`{"name":"flexibleRollout","parameters":{"rollout":"20","stickiness":"default","groupId":"new-cart"}}`)
	require.Equal(t, http.StatusOK, status)
	require.Empty(t, s["constraints"], "PUT replaces the strategy")
	ff, _ := fake.Flag("new-cart")
	require.Equal(t, "20", ff.Environments[1].Strategies[0].Parameters["rollout"])
}

func TestFake_DisablingTheLastActiveStrategySwitchesTheEnvironmentOff(t *testing.T) {
	t.Parallel()
	srv, fake := newFakeServer(t)
	status, _ := call(t, srv, "POST", "/api/admin/projects/checkout/features/new-cart/environments/production/on", testToken, "", "")
	require.Equal(t, http.StatusOK, status)
	ff, _ := fake.Flag("new-cart")
	prod := ff.Environments[1]
	require.True(t, prod.Enabled)
	require.Len(t, prod.Strategies, 1, "switching on without strategies adds the default one")

	status, _ = call(t, srv, "PUT", strategiesPath+"/"+prod.Strategies[0].ID, testToken, "application/json", `{"name":"flexibleRollout","disabled":true}`)
	require.Equal(t, http.StatusOK, status)
	ff, _ = fake.Flag("new-cart")
	require.False(t, ff.Environments[1].Enabled)
}

func TestFake_GetFeatureListsEnvironmentsWithStrategies(t *testing.T) {
	t.Parallel()
	srv, fake := newFakeServer(t)
	fake.AddStrategy("new-cart", "development", FakeStrategy{Name: "flexibleRollout", Parameters: map[string]string{"rollout": "50"}})

	status, f := call(t, srv, "GET", "/api/admin/projects/checkout/features/new-cart", testToken, "", "")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "checkout", f["project"])
	envs := f["environments"].([]any)
	require.Len(t, envs, 2)
	dev := envs[0].(map[string]any)
	require.Equal(t, "development", dev["name"])
	require.Equal(t, false, dev["enabled"])
	strategies := dev["strategies"].([]any)
	require.Len(t, strategies, 1)
	require.Equal(t, "flexibleRollout", strategies[0].(map[string]any)["name"])
}
