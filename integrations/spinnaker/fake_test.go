package spinnaker

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// call sends one raw request to a Fake with its credentials, as any Gate client would.
func call(t *testing.T, f *Fake, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.URL()+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("X-Spinnaker-User", testUser)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestFake_TriggerAnswers202WithTheExecutionRef(t *testing.T) {
	t.Parallel()
	f, _ := newFake(t, FakePipeline{})

	status, body := call(t, f, http.MethodPost, "/pipelines/shop/deploy%20prod", `{"type":"manual","parameters":{"v":"1"}}`)
	require.Equal(t, http.StatusAccepted, status)
	ref, _ := body["ref"].(string)
	require.True(t, strings.HasPrefix(ref, "/pipelines/01J"), ref)

	status, body = call(t, f, http.MethodGet, ref, "")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "PIPELINE", body["type"])
	require.Equal(t, map[string]any{"type": "manual", "user": testUser, "parameters": map[string]any{"v": "1"}}, body["trigger"])
}

func TestFake_ErrorsAreSpringsErrorBody(t *testing.T) {
	t.Parallel()
	f, _ := newFake(t, FakePipeline{})

	status, body := call(t, f, http.MethodGet, "/pipelines/01JNOPE", "")
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, float64(404), body["status"])
	require.Equal(t, "Not Found", body["error"])
	require.Equal(t, "Pipeline not found (id: 01JNOPE)", body["message"])
	require.Equal(t, "/pipelines/01JNOPE", body["path"])
	require.NotEmpty(t, body["timestamp"])

	status, _ = call(t, f, http.MethodDelete, "/applications/shop", "")
	require.Equal(t, http.StatusNotFound, status)
}
