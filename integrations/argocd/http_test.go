package argocd

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const webImage = "registry.example.com/storefront/web"

// newFake serves a Fake holding one kustomize app, web, running revision v1.
func newFake(t *testing.T) (*Fake, *Client) {
	t.Helper()
	f := NewFake()
	t.Cleanup(f.Close)
	f.AddApp(FakeApp{Name: "web", Revision: "v1", Deployed: "v1",
		Images: []string{webImage + ":1.0.0", "registry.example.com/sidecar:2.1"}})
	return f, f.Client()
}

func requireAPIError(t *testing.T, err error, status int) *APIError {
	t.Helper()
	var ae *APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, status, ae.StatusCode, err.Error())
	return ae
}

// lastBody decodes the body of the last request to path.
func lastBody(t *testing.T, f *Fake, method, path string) map[string]any {
	t.Helper()
	reqs := f.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Method == method && reqs[i].Path == path {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(reqs[i].Body), &m))
			return m
		}
	}
	t.Fatalf("no %s %s request among %v", method, path, reqs)
	return nil
}

func countRequests(f *Fake, method, path string) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

// deploy sets the revision, syncs and waits with want.
func deploy(t *testing.T, c *Client, app, revision string, want Want) App {
	t.Helper()
	ctx := testCtx(t)
	require.NoError(t, c.SetRevision(ctx, app, revision))
	require.NoError(t, c.Sync(ctx, app, ""))
	a, err := c.Wait(ctx, app, want, time.Millisecond, nil)
	require.NoError(t, err)
	return a
}

func TestApp_ReadsTargetSyncHealthImagesAndHistory(t *testing.T) {
	t.Parallel()
	_, c := newFake(t)

	a, err := c.App(testCtx(t), "web")
	require.NoError(t, err)
	require.Equal(t, "web", a.Name)
	require.Equal(t, "v1", a.Revision)
	require.Equal(t, SyncSynced, a.SyncStatus)
	require.Equal(t, "v1", a.SyncRevision)
	require.Equal(t, HealthHealthy, a.Health)
	require.Empty(t, a.OperationPhase)
	require.False(t, a.OperationPending)
	require.False(t, a.AutoSync)
	require.Equal(t, []string{webImage + ":1.0.0", "registry.example.com/sidecar:2.1"}, a.Images)
	require.Equal(t, a.Images, a.KustomizeImages)
	require.Len(t, a.History, 1)
	require.Equal(t, int64(0), a.History[0].ID)
	require.Equal(t, "v1", a.History[0].Revision)
	require.False(t, a.History[0].DeployedAt.IsZero())
}

func TestApp_UnknownAppIsNotFoundNamingIt(t *testing.T) {
	t.Parallel()
	_, c := newFake(t)

	_, err := c.App(testCtx(t), "nope")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, `"nope"`)
	require.ErrorContains(t, err, `applications.argoproj.io "nope" not found`)
	require.False(t, IsRetryable(err))
}

func TestApp_RefusedCredentialsAreUnauthorizedWithoutTheToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		token   string
		deny    bool
		status  int
		message string
	}{
		{name: "wrong token", token: "stolen-or-expired-token", status: 401, message: "invalid session"},
		{name: "no token", token: "", status: 401, message: "no session information"},
		{name: "rbac denies", token: FakeToken, deny: true, status: 403, message: "permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, c := newFake(t)
			c.Token = tt.token
			if tt.deny {
				f.FailNext(http.StatusForbidden, 7, "permission denied: applications, get, default/web, sub: trainyard")
			}
			_, err := c.App(testCtx(t), "web")
			require.ErrorIs(t, err, ErrUnauthorized)
			requireAPIError(t, err, tt.status)
			require.ErrorContains(t, err, tt.message)
			require.ErrorContains(t, err, "check the argocd token")
			require.NotContains(t, err.Error(), FakeToken)
			require.False(t, IsRetryable(err))
		})
	}
}

func TestApp_ServerErrorsSurfaceArgoCDMessageAndAreRetryable(t *testing.T) {
	t.Parallel()
	f, c := newFake(t)
	f.FailNext(http.StatusServiceUnavailable, 14, "connection to the repo server refused")

	_, err := c.App(testCtx(t), "web")
	ae := requireAPIError(t, err, 503)
	require.Equal(t, 14, ae.Code)
	require.ErrorContains(t, err, "connection to the repo server refused")
	require.True(t, IsRetryable(err))

	_, err = c.App(testCtx(t), "web")
	require.NoError(t, err, "the failure was injected once")
}

func TestApp_RefusesBadNamesBeforeCallingArgoCD(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "Web", "web/../../settings", "web?refresh=hard", "a/b/c", strings.Repeat("a", 254)} {
		f, c := newFake(t)
		_, err := c.App(testCtx(t), name)
		require.ErrorIs(t, err, ErrInvalidInput, name)
		require.Empty(t, f.Requests(), name)
	}
}

func TestApp_NamespacedNameIsSentAsAppNamespace(t *testing.T) {
	t.Parallel()
	f, c := newFake(t)
	f.AddApp(FakeApp{Name: "web", Namespace: "team-a", Revision: "v7", Deployed: "v7"})

	a, err := c.App(testCtx(t), "team-a/web")
	require.NoError(t, err)
	require.Equal(t, "v7", a.Revision)
	reqs := f.Requests()
	require.Equal(t, "/api/v1/applications/web", reqs[len(reqs)-1].Path)
	require.Equal(t, "appNamespace=team-a", reqs[len(reqs)-1].Query)
}

func TestApp_AnswersThatAreNotArgoCDJSONAreUnexpected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr error
		want    string
	}{
		{name: "login page", status: 200, body: "<html>sign in</html>", wantErr: ErrUnexpectedResponse, want: "not its JSON"},
		{name: "oversized", status: 200, body: `{"metadata":{"name":"` + strings.Repeat("x", MaxResponseBytes) + `"}}`, wantErr: ErrUnexpectedResponse, want: "larger than"},
		{name: "proxy error page", status: 502, body: "<html>Bad Gateway</html>", want: "an HTML page"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			c := &Client{BaseURL: srv.URL, Token: FakeToken}
			_, err := c.App(testCtx(t), "web")
			require.Error(t, err)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestClient_InsecureSkipVerifyAcceptsSelfSignedServer(t *testing.T) {
	t.Parallel()
	f := NewFake()
	t.Cleanup(f.Close)
	f.AddApp(FakeApp{Name: "web", Revision: "v1", Deployed: "v1"})
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)

	strict := &Client{BaseURL: srv.URL, Token: FakeToken}
	_, err := strict.App(testCtx(t), "web")
	require.ErrorContains(t, err, "certificate")
	require.True(t, IsRetryable(err), "a network failure is not the server's answer")

	insecure := &Client{BaseURL: srv.URL, Token: FakeToken, InsecureSkipVerify: true}
	a, err := insecure.App(testCtx(t), "web")
	require.NoError(t, err)
	require.Equal(t, "v1", a.Revision)
}

func TestClient_RefusesBadBaseURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "argocd.example.com", "ftp://argocd.example.com", "https://admin:secret@argocd.example.com"} {
		c := &Client{BaseURL: u, Token: FakeToken}
		_, err := c.App(testCtx(t), "web")
		require.ErrorIs(t, err, ErrInvalidInput, u)
		require.NotContains(t, err.Error(), "secret")
	}
}

func TestSetRevision_PatchesTargetRevisionWithMergePatch(t *testing.T) {
	t.Parallel()
	f, c := newFake(t)

	require.NoError(t, c.SetRevision(testCtx(t), "web", "v2"))
	body := lastBody(t, f, http.MethodPatch, "/api/v1/applications/web")
	require.Equal(t, "web", body["name"])
	require.Equal(t, "merge", body["patchType"])
	require.JSONEq(t, `{"spec":{"source":{"targetRevision":"v2"}}}`, body["patch"].(string))

	a, err := c.App(testCtx(t), "web")
	require.NoError(t, err)
	require.Equal(t, "v2", a.Revision)
	require.Equal(t, SyncOutOfSync, a.SyncStatus, "git now names a revision that is not deployed")
	require.Equal(t, "v1", a.SyncRevision)
}

func TestSetRevision_SameRevisionSendsNoPatch(t *testing.T) {
	t.Parallel()
	f, c := newFake(t)

	require.NoError(t, c.SetRevision(testCtx(t), "web", "v1"))
	require.Zero(t, countRequests(f, http.MethodPatch, "/api/v1/applications/web"))
}

func TestSetRevision_RefusesWhatItCannotChange(t *testing.T) {
	t.Parallel()
	f, c := newFake(t)
	f.AddApp(FakeApp{Name: "multi", Revision: "v1", Deployed: "v1", MultiSource: true})

	err := c.SetRevision(testCtx(t), "multi", "v2")
	require.ErrorIs(t, err, ErrInvalidInput)
	require.ErrorContains(t, err, "several sources")
	require.ErrorContains(t, err, `argocd app "multi"`)

	require.ErrorIs(t, c.SetRevision(testCtx(t), "web", " "), ErrInvalidInput)
	require.Zero(t, countRequests(f, http.MethodPatch, "/api/v1/applications/multi"))
}

func TestSetImage_ReplacesTheOverrideOfTheSameImageOnly(t *testing.T) {
	t.Parallel()
	const digest = webImage + "@sha256:894167b5e66938da83f02bf2fddcd0a921787b71e6092ddf1cc45ece1bffd9db"
	tests := []struct {
		name  string
		image string
		want  []string
	}{
		{name: "by digest", image: digest, want: []string{digest, "registry.example.com/sidecar:2.1"}},
		{name: "by tag", image: webImage + ":1.1.0", want: []string{webImage + ":1.1.0", "registry.example.com/sidecar:2.1"}},
		{name: "a new image", image: "registry.example.com/jobs:3", want: []string{webImage + ":1.0.0", "registry.example.com/sidecar:2.1", "registry.example.com/jobs:3"}},
		{name: "registry with port", image: "registry.example.com:5000/jobs:3", want: []string{webImage + ":1.0.0", "registry.example.com/sidecar:2.1", "registry.example.com:5000/jobs:3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, c := newFake(t)
			require.NoError(t, c.SetImage(testCtx(t), "web", tt.image))
			body := lastBody(t, f, http.MethodPatch, "/api/v1/applications/web")
			require.Equal(t, "merge", body["patchType"])
			var patch struct {
				Spec struct {
					Source struct {
						Kustomize struct {
							Images []string `json:"images"`
						} `json:"kustomize"`
					} `json:"source"`
				} `json:"spec"`
			}
			require.NoError(t, json.Unmarshal([]byte(body["patch"].(string)), &patch))
			require.Equal(t, tt.want, patch.Spec.Source.Kustomize.Images, "a merge patch replaces the list: every override is sent")

			a, err := c.App(testCtx(t), "web")
			require.NoError(t, err)
			require.Equal(t, tt.want, a.KustomizeImages)
			require.Equal(t, SyncOutOfSync, a.SyncStatus)
		})
	}
}

func TestSetImage_SameImageSendsNoPatch(t *testing.T) {
	t.Parallel()
	f, c := newFake(t)

	require.NoError(t, c.SetImage(testCtx(t), "web", webImage+":1.0.0"))
	require.Zero(t, countRequests(f, http.MethodPatch, "/api/v1/applications/web"))
}

func TestSetImage_RefusesHelmAppsAndBadReferences(t *testing.T) {
	t.Parallel()
	f, c := newFake(t)
	f.AddApp(FakeApp{Name: "chart", Revision: "1.2.0", Deployed: "1.2.0", Helm: true})

	err := c.SetImage(testCtx(t), "chart", webImage+":2")
	require.ErrorIs(t, err, ErrInvalidInput)
	require.ErrorContains(t, err, "Helm")

	require.ErrorIs(t, c.SetImage(testCtx(t), "web", ""), ErrInvalidInput)
	require.ErrorIs(t, c.SetImage(testCtx(t), "web", "a b:1"), ErrInvalidInput)
	require.Zero(t, countRequests(f, http.MethodPatch, "/api/v1/applications/chart"))
}

func TestSync_SendsRevisionWithoutPruning(t *testing.T) {
	t.Parallel()
	f, c := newFake(t)

	require.NoError(t, c.Sync(testCtx(t), "web", "v1"))
	body := lastBody(t, f, http.MethodPost, "/api/v1/applications/web/sync")
	require.Equal(t, map[string]any{"name": "web", "revision": "v1", "prune": false}, body)

	a, err := c.App(testCtx(t), "web")
	require.NoError(t, err)
	require.True(t, a.OperationPending)
}

func TestSync_WaitsUntilHealthy(t *testing.T) {
	t.Parallel()
	f, c := newFake(t)
	f.SetSyncPolls(3)
	ctx := testCtx(t)

	require.NoError(t, c.SetRevision(ctx, "web", "v2"))
	require.NoError(t, c.Sync(ctx, "web", ""))
	var seen []App
	a, err := c.WaitHealthy(ctx, "web", time.Millisecond, func(a App) { seen = append(seen, a) })
	require.NoError(t, err)

	require.Len(t, seen, 3, "one progress call per read")
	for _, s := range seen[:2] {
		require.Equal(t, HealthProgressing, s.Health)
		require.Equal(t, PhaseRunning, s.OperationPhase)
		require.True(t, s.OperationPending)
	}
	require.Equal(t, seen[2], a)
	require.Equal(t, SyncSynced, a.SyncStatus)
	require.Equal(t, HealthHealthy, a.Health)
	require.Equal(t, PhaseSucceeded, a.OperationPhase)
	require.Equal(t, "v2", a.SyncRevision)
	cur, ok := a.Current()
	require.True(t, ok)
	require.Equal(t, HistoryEntry{ID: 1, Revision: "v2", DeployedAt: cur.DeployedAt}, cur)
	prev, ok := a.Previous()
	require.True(t, ok)
	require.Equal(t, int64(0), prev.ID)
	require.Equal(t, "v1", prev.Revision)
}

func TestSync_WhileAnotherOperationRunsIsRetryable(t *testing.T) {
	t.Parallel()
	_, c := newFake(t)
	ctx := testCtx(t)
	require.NoError(t, c.Sync(ctx, "web", ""))

	err := c.Sync(ctx, "web", "")
	require.ErrorIs(t, err, ErrOperationInProgress)
	require.ErrorContains(t, err, "another operation is already in progress")
	requireAPIError(t, err, http.StatusBadRequest)
	require.True(t, IsRetryable(err))
}

func TestSync_ToAnotherRevisionWithAutoSyncIsRefused(t *testing.T) {
	t.Parallel()
	f, c := newFake(t)
	f.SetAutoSync("web", true)

	err := c.Sync(testCtx(t), "web", "v2")
	require.ErrorIs(t, err, ErrAutoSyncEnabled)
	require.ErrorContains(t, err, "Cannot sync to v2: auto-sync currently set to v1")
	require.False(t, IsRetryable(err))

	a, err := c.App(testCtx(t), "web")
	require.NoError(t, err)
	require.True(t, a.AutoSync)
}

func TestWait_FailuresAreSyncFailedErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		knob      func(*Fake)
		wantPhase Phase
		health    Health
		message   string
	}{
		{name: "sync fails", knob: func(f *Fake) { f.FailNextSync("web", "one or more objects failed to apply: admission webhook denied") },
			wantPhase: PhaseFailed, health: HealthHealthy, message: "admission webhook denied"},
		{name: "degraded after sync", knob: func(f *Fake) { f.DegradeNextSync("web", "Deployment web exceeded its progress deadline") },
			wantPhase: PhaseSucceeded, health: HealthDegraded, message: "exceeded its progress deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, c := newFake(t)
			tt.knob(f)
			ctx := testCtx(t)
			require.NoError(t, c.SetRevision(ctx, "web", "v2"))
			require.NoError(t, c.Sync(ctx, "web", ""))

			a, err := c.WaitHealthy(ctx, "web", time.Millisecond, nil)
			var sf *SyncFailedError
			require.ErrorAs(t, err, &sf)
			require.Equal(t, "web", sf.App)
			require.Equal(t, tt.wantPhase, sf.Phase)
			require.Equal(t, tt.health, sf.Health)
			require.Contains(t, sf.Message, tt.message)
			require.ErrorContains(t, err, `argocd app "web"`)
			require.False(t, IsRetryable(err))
			require.Equal(t, tt.health, a.Health, "the last reading is returned with the error")
		})
	}
}

func TestWait_EndsWithTheContext(t *testing.T) {
	t.Parallel()
	f, c := newFake(t)
	f.SetSyncPolls(1000)
	require.NoError(t, c.Sync(testCtx(t), "web", "v1"))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()

	calls := 0
	_, err := c.WaitHealthy(ctx, "web", time.Millisecond, func(App) {
		calls++
		if calls == 3 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "Progressing")
	require.Equal(t, 3, calls)
	require.False(t, IsRetryable(err))
}

func TestWait_RefusesNonPositivePoll(t *testing.T) {
	t.Parallel()
	f, c := newFake(t)
	_, err := c.WaitHealthy(testCtx(t), "web", 0, nil)
	require.ErrorIs(t, err, ErrInvalidInput)
	require.Empty(t, f.Requests())
}

func TestRollback_SyncsBackToTheHistoryEntry(t *testing.T) {
	t.Parallel()
	f, c := newFake(t)
	ctx := testCtx(t)
	a := deploy(t, c, "web", "v2", Want{Synced: true})
	prev, ok := a.Previous()
	require.True(t, ok)

	require.NoError(t, c.Rollback(ctx, "web", prev.ID))
	require.Equal(t, map[string]any{"name": "web", "id": float64(0), "prune": false}, lastBody(t, f, http.MethodPost, "/api/v1/applications/web/rollback"))
	a, err := c.Wait(ctx, "web", Want{}, time.Millisecond, nil)
	require.NoError(t, err)
	require.Equal(t, "v1", a.SyncRevision)
	require.Equal(t, HealthHealthy, a.Health)
	require.Equal(t, SyncOutOfSync, a.SyncStatus, "git still names v2")
	cur, _ := a.Current()
	require.Equal(t, int64(2), cur.ID)
	require.Equal(t, "v1", cur.Revision)
}

func TestRollback_RefusalsSurfaceArgoCDMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		knob    func(*Fake)
		id      int64
		is      error
		message string
	}{
		{name: "auto-sync on", knob: func(f *Fake) { f.SetAutoSync("web", true) }, id: 0, is: ErrAutoSyncEnabled,
			message: "rollback cannot be initiated when auto-sync is enabled"},
		{name: "unknown history id", knob: func(*Fake) {}, id: 42, message: "does not have deployment with id 42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, c := newFake(t)
			tt.knob(f)
			err := c.Rollback(testCtx(t), "web", tt.id)
			requireAPIError(t, err, http.StatusBadRequest)
			if tt.is != nil {
				require.ErrorIs(t, err, tt.is)
			}
			require.ErrorContains(t, err, tt.message)
			require.ErrorContains(t, err, `roll back argocd app "web"`)
			require.False(t, IsRetryable(err))
		})
	}
}

func TestDrift_ReportsResourcesOutOfSyncUntilSynced(t *testing.T) {
	t.Parallel()
	f, c := newFake(t)
	ctx := testCtx(t)

	r, err := c.Drift(ctx, "web")
	require.NoError(t, err)
	require.False(t, r.OutOfSync)
	require.Empty(t, r.Resources)
	reqs := f.Requests()
	require.Equal(t, "refresh=normal", reqs[len(reqs)-1].Query, "drift is compared with git afresh")

	f.SetDrift("web", "Deployment", "web")
	f.SetDrift("web", "ConfigMap", "hotfix")
	r, err = c.Drift(ctx, "web")
	require.NoError(t, err)
	require.True(t, r.OutOfSync)
	require.Equal(t, SyncOutOfSync, r.SyncStatus)
	require.Equal(t, []DriftResource{
		{Group: "apps", Kind: "Deployment", Namespace: "default", Name: "web", Status: SyncOutOfSync, Health: HealthHealthy},
		{Kind: "ConfigMap", Namespace: "default", Name: "hotfix", Status: SyncOutOfSync, RequiresPruning: true},
	}, r.Resources)
	require.Equal(t, "default/Deployment/web OutOfSync", r.Resources[0].String())

	require.NoError(t, c.Sync(ctx, "web", ""))
	_, err = c.WaitHealthy(ctx, "web", time.Millisecond, nil)
	require.NoError(t, err)
	r, err = c.Drift(ctx, "web")
	require.NoError(t, err)
	require.False(t, r.OutOfSync)
	require.Empty(t, r.Resources)
}

func TestDrift_UnknownAppIsNotFound(t *testing.T) {
	t.Parallel()
	_, c := newFake(t)
	_, err := c.Drift(testCtx(t), "nope")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, `check drift of argocd app "nope"`)
}

// newCanary is web with a Rollout whose canary sets 5, 25, 50 and 100, after a sync of v2
// has started its canary (paused at 5%).
func newCanary(t *testing.T) (*Fake, *Client) {
	t.Helper()
	f, c := newFake(t)
	f.AddRollout("web", "shop", "web", 5, 25, 50, 100)
	a := deploy(t, c, "web", "v2", Want{Synced: true, Suspended: true})
	require.Equal(t, HealthSuspended, a.Health, "a paused canary suspends the app")
	require.Equal(t, []int{5}, f.CanaryWeights("web", "web"))
	return f, c
}

func TestSetCanaryWeight_StepsThroughTheRolloutsWeights(t *testing.T) {
	t.Parallel()
	f, c := newCanary(t)
	ctx := testCtx(t)
	actions := "/api/v1/applications/web/resource/actions/v2"

	require.NoError(t, c.SetCanaryWeight(ctx, "web", "web", "shop", 25))
	require.Equal(t, []int{5, 25}, f.CanaryWeights("web", "web"))
	body := lastBody(t, f, http.MethodPost, actions)
	require.Equal(t, "resume", body["action"])
	require.Equal(t, "Rollout", body["kind"])
	require.Equal(t, "argoproj.io", body["group"])
	require.Equal(t, "v1alpha1", body["version"])
	require.Equal(t, "shop", body["namespace"])
	require.Equal(t, "web", body["resourceName"])

	require.NoError(t, c.SetCanaryWeight(ctx, "web", "web", "shop", 50))
	require.Equal(t, []int{5, 25, 50}, f.CanaryWeights("web", "web"))

	resumes := countRequests(f, http.MethodPost, actions)
	require.NoError(t, c.SetCanaryWeight(ctx, "web", "web", "shop", 25), "a weight already passed is done")
	require.NoError(t, c.SetCanaryWeight(ctx, "web", "web", "shop", 50), "a retried call is done")
	require.Equal(t, resumes, countRequests(f, http.MethodPost, actions), "nothing more was resumed")
	a, err := c.App(ctx, "web")
	require.NoError(t, err)
	require.Equal(t, HealthSuspended, a.Health)

	require.NoError(t, c.SetCanaryWeight(ctx, "web", "web", "shop", 100))
	require.Equal(t, "promote-full", lastBody(t, f, http.MethodPost, actions)["action"])
	require.Equal(t, []int{5, 25, 50, 100}, f.CanaryWeights("web", "web"))
	a, err = c.WaitHealthy(ctx, "web", time.Millisecond, nil)
	require.NoError(t, err)
	require.Equal(t, HealthHealthy, a.Health)
}

func TestSetCanaryWeight_SkipsToALaterWeightThroughTheStepsBetween(t *testing.T) {
	t.Parallel()
	f, c := newCanary(t)

	require.NoError(t, c.SetCanaryWeight(testCtx(t), "web", "web", "shop", 50))
	require.Equal(t, []int{5, 25, 50}, f.CanaryWeights("web", "web"))
	require.Equal(t, 2, countRequests(f, http.MethodPost, "/api/v1/applications/web/resource/actions/v2"))
}

func TestSetCanaryWeight_UsesTheOlderActionsEndpointOnArgoCDBefore32(t *testing.T) {
	t.Parallel()
	f, c := newCanary(t)
	f.SetLegacyActions(true)

	require.NoError(t, c.SetCanaryWeight(testCtx(t), "web", "web", "shop", 25))
	require.Equal(t, []int{5, 25}, f.CanaryWeights("web", "web"))
	var legacy []FakeRequest
	for _, r := range f.Requests() {
		if r.Path == "/api/v1/applications/web/resource/actions" {
			legacy = append(legacy, r)
		}
	}
	require.Len(t, legacy, 1)
	require.Equal(t, `"resume"`, legacy[0].Body)
	require.Contains(t, legacy[0].Query, "kind=Rollout")
	require.Contains(t, legacy[0].Query, "resourceName=web")
	require.Contains(t, legacy[0].Query, "group=argoproj.io")
}

func TestSetCanaryWeight_Failures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		canary    bool
		knob      func(*Fake)
		rollout   string
		weight    int
		is        error
		message   string
		retryable bool
	}{
		{name: "weight without a step", canary: true, rollout: "web", weight: 30, is: ErrNoCanaryStep, message: "set weights 5, 25, 50, 100, not 30"},
		{name: "aborted canary", canary: true, knob: func(f *Fake) { f.AbortRollout("web", "web", "analysis error-rate failed") },
			rollout: "web", weight: 25, is: ErrRolloutAborted, message: "analysis error-rate failed"},
		{name: "fully promoted", canary: false, rollout: "web", weight: 25, is: ErrNoCanary, retryable: true},
		{name: "unknown rollout", canary: true, rollout: "api", weight: 25, is: ErrNotFound, message: "not found as part of application web"},
		{name: "weight out of range", canary: true, rollout: "web", weight: 0, is: ErrInvalidInput},
		{name: "bad rollout name", canary: true, rollout: "Web/../x", weight: 25, is: ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var f *Fake
			var c *Client
			if tt.canary {
				f, c = newCanary(t)
			} else {
				f, c = newFake(t)
				f.AddRollout("web", "shop", "web", 5, 25, 50, 100)
			}
			if tt.knob != nil {
				tt.knob(f)
			}
			err := c.SetCanaryWeight(testCtx(t), "web", tt.rollout, "shop", tt.weight)
			require.ErrorIs(t, err, tt.is)
			require.ErrorContains(t, err, tt.message)
			require.ErrorContains(t, err, `(argocd app "web")`)
			require.Equal(t, tt.retryable, IsRetryable(err))
			require.Zero(t, countRequests(f, http.MethodPost, "/api/v1/applications/web/resource/actions/v2"), "nothing was resumed")
		})
	}
}

func TestSetCanaryWeight_EndsWithTheContextWhileTheRolloutDoesNotMove(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A Rollout stuck before its 25% step: running, not paused, as during an analysis.
		manifest := `{"kind":"Rollout","spec":{"strategy":{"canary":{"steps":[{"setWeight":5},{"analysis":{}},{"setWeight":25}]}}},` +
			`"status":{"currentStepIndex":1,"stableRS":"a","currentPodHash":"b"}}`
		_ = json.NewEncoder(w).Encode(map[string]string{"manifest": manifest})
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(testCtx(t))
	reads := 0
	c := &Client{BaseURL: srv.URL, Token: FakeToken, CanaryPoll: time.Millisecond, HTTP: &http.Client{
		Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := http.DefaultTransport.RoundTrip(r)
			if reads++; reads == 3 {
				cancel()
			}
			return resp, err
		}),
	}}

	err := c.SetCanaryWeight(ctx, "web", "web", "shop", 25)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "canary step 1 of 3")
	require.Equal(t, 3, reads)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestApp_PreviousIsTheLastOtherRevision(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		history []string
		wantID  int64
		wantOK  bool
	}{
		{name: "none", history: nil},
		{name: "one", history: []string{"v1"}},
		{name: "two", history: []string{"v1", "v2"}, wantID: 0, wantOK: true},
		{name: "redeployed current", history: []string{"v1", "v2", "v3", "v3"}, wantID: 1, wantOK: true},
		{name: "only the same revision", history: []string{"v3", "v3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var a App
			for i, rev := range tt.history {
				a.History = append(a.History, HistoryEntry{ID: int64(i), Revision: rev, DeployedAt: at})
			}
			prev, ok := a.Previous()
			require.Equal(t, tt.wantOK, ok)
			if ok {
				require.Equal(t, tt.wantID, prev.ID)
			}
		})
	}
}

func TestImageName(t *testing.T) {
	t.Parallel()
	for ref, want := range map[string]string{
		"nginx":                                   "nginx",
		"nginx:1.25":                              "nginx",
		"registry.example.com:5000/web:2":         "registry.example.com:5000/web",
		"registry.example.com:5000/web":           "registry.example.com:5000/web",
		"registry.example.com/web@sha256:abc":     "registry.example.com/web",
		"registry.example.com/web:1@sha256:abc":   "registry.example.com/web",
		"web=registry.example.com/web-fork:2":     "web",
		"registry.example.com/web=other/web:tag2": "registry.example.com/web",
	} {
		require.Equal(t, want, imageName(ref), ref)
	}
}

func TestIsRetryable(t *testing.T) {
	t.Parallel()
	require.False(t, IsRetryable(nil))
	require.True(t, IsRetryable(errors.New("dial tcp: connection refused")))
	require.True(t, IsRetryable(&APIError{StatusCode: 429}))
	require.False(t, IsRetryable(&APIError{StatusCode: 400, Code: 3, Message: "bad"}))
	require.False(t, IsRetryable(&SyncFailedError{App: "web", Phase: PhaseFailed}))
	require.False(t, IsRetryable(context.Canceled))
}

// testCtx bounds a test's waits, so a wait that never ends fails the test with a reason
// instead of hanging until the test binary's timeout.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
