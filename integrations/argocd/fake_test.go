package argocd

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// call sends one raw request to a Fake, as any Argo CD API client would.
func call(t *testing.T, f *Fake, method, path, body string, auth bool) (int, string, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.URL()+path, rd)
	require.NoError(t, err)
	if auth {
		req.Header.Set("Authorization", "Bearer "+FakeToken)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return resp.StatusCode, string(data), out
}

func TestFake_RequiresTheBearerToken(t *testing.T) {
	t.Parallel()
	f, _ := newFake(t)

	status, _, body := call(t, f, http.MethodGet, "/api/v1/applications/web", "", false)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, float64(16), body["code"])
	require.Equal(t, "no session information", body["message"])
	require.Equal(t, body["message"], body["error"])

	status, _, _ = call(t, f, http.MethodGet, "/api/v1/applications/web", "", true)
	require.Equal(t, http.StatusOK, status)
}

func TestFake_AnswersUnknownPathsWithThePlainGatewayNotFound(t *testing.T) {
	t.Parallel()
	f, _ := newFake(t)
	for _, p := range []string{"/api/v1/clusters", "/api/v1/applications/web/resource-tree", "/api/v1/applications/"} {
		status, text, body := call(t, f, http.MethodGet, p, "", true)
		require.Equal(t, http.StatusNotFound, status, p)
		require.Equal(t, "Not Found\n", text, p)
		require.Nil(t, body)
	}
	f.SetLegacyActions(true)
	status, _, _ := call(t, f, http.MethodPost, "/api/v1/applications/web/resource/actions/v2", `{"action":"resume"}`, true)
	require.Equal(t, http.StatusNotFound, status)
}

func TestFake_UnknownAppIsGRPCNotFound(t *testing.T) {
	t.Parallel()
	f, _ := newFake(t)
	status, _, body := call(t, f, http.MethodPost, "/api/v1/applications/nope/sync", `{"name":"nope"}`, true)
	require.Equal(t, http.StatusNotFound, status)
	require.Equal(t, float64(5), body["code"])
	require.Equal(t, `applications.argoproj.io "nope" not found`, body["message"])
}

func TestFake_SyncAnswersTheApplicationWithItsPendingOperation(t *testing.T) {
	t.Parallel()
	f, _ := newFake(t)
	status, _, body := call(t, f, http.MethodPost, "/api/v1/applications/web/sync", `{"name":"web","revision":"v1","prune":false}`, true)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "Application", body["kind"])
	op := body["operation"].(map[string]any)["sync"].(map[string]any)
	require.Equal(t, "v1", op["revision"])

	// The first read starts the operation, the second (of the default two) finishes it.
	_, _, body = call(t, f, http.MethodGet, "/api/v1/applications/web", "", true)
	require.Equal(t, "Running", body["status"].(map[string]any)["operationState"].(map[string]any)["phase"])
	require.NotNil(t, body["operation"])
	_, _, body = call(t, f, http.MethodGet, "/api/v1/applications/web", "", true)
	require.Equal(t, "Succeeded", body["status"].(map[string]any)["operationState"].(map[string]any)["phase"])
	require.Nil(t, body["operation"])
}

func TestFake_PatchSupportsTheSourceFieldsItModels(t *testing.T) {
	t.Parallel()
	f, _ := newFake(t)
	tests := []struct {
		patchType, patch string
		status           int
	}{
		{"merge", `{"spec":{"source":{"targetRevision":"v9"}}}`, http.StatusOK},
		{"json", `[{"op":"replace","path":"/spec/source/targetRevision","value":"v9"}]`, http.StatusBadRequest},
		{"merge", `{"spec":{"destination":{"namespace":"other"}}}`, http.StatusBadRequest},
		{"merge", `{"spec":{"source":{"repoURL":"https://evil.example.com"}}}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		body, err := json.Marshal(map[string]string{"name": "web", "patchType": tt.patchType, "patch": tt.patch})
		require.NoError(t, err)
		status, text, _ := call(t, f, http.MethodPatch, "/api/v1/applications/web", string(body), true)
		require.Equal(t, tt.status, status, text)
	}
}

func TestFake_HistoryKeepsTheLastTenDeployments(t *testing.T) {
	t.Parallel()
	f, c := newFake(t)
	f.SetSyncPolls(1)
	for i := 2; i <= 12; i++ {
		deploy(t, c, "web", fmt.Sprintf("v%d", i), Want{Synced: true})
	}
	a, err := c.App(testCtx(t), "web")
	require.NoError(t, err)
	require.Len(t, a.History, 10)
	require.Equal(t, int64(2), a.History[0].ID)
	require.Equal(t, int64(11), a.History[9].ID)
}

func TestFake_RollbackDuringACanaryReturnsToStableAtOnce(t *testing.T) {
	t.Parallel()
	f, c := newCanary(t)
	ctx := testCtx(t)
	require.NoError(t, c.SetCanaryWeight(ctx, "web", "web", "shop", 25))

	require.NoError(t, c.Rollback(ctx, "web", 0))
	a, err := c.Wait(ctx, "web", Want{}, time.Millisecond, nil)
	require.NoError(t, err)
	require.Equal(t, HealthHealthy, a.Health)
	require.Empty(t, f.CanaryWeights("web", "web"), "going back to the stable pod template sets no weights")
	require.ErrorIs(t, c.SetCanaryWeight(ctx, "web", "web", "shop", 50), ErrNoCanary)
}
