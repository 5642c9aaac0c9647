package activities

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/integrations/argocd"
	"github.com/trainyard/trainyard/runbooks"
)

const (
	webOld      = "registry.example/web@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	webArtifact = "registry.example/web@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// argoSetup is an Argo CD fake with app "web" deployed at webOld, and activities using it.
func argoSetup(t *testing.T) (*Activities, *argocd.Fake) {
	t.Helper()
	fake := argocd.NewFake()
	t.Cleanup(fake.Close)
	fake.AddApp(argocd.FakeApp{Name: "web", Revision: "main", Images: []string{webOld}, Deployed: "main"})
	acts := &Activities{Deploy: DeployClients{ArgoCD: map[string]argocd.Apps{"": fake.Client()}, Poll: time.Millisecond}}
	return acts, fake
}

func argoRequest(strategy string) TargetRequest {
	req := targetRequest()
	req.Target = runbooks.Target{Name: "web-prod", Kind: runbooks.KindArgoCD, ArgoCD: &runbooks.ArgoCDTarget{App: "web", Image: "registry.example/web"}}
	req.Artifacts = []string{"registry.example/api@sha256:3333", webArtifact}
	req.Strategy = strategy
	return req
}

// run executes a target activity of acts, which must succeed.
func run(t *testing.T, acts *Activities, fn any, req TargetRequest) TargetResult {
	t.Helper()
	val, err := newActivityEnv(t, acts).ExecuteActivity(fn, req)
	require.NoError(t, err)
	var res TargetResult
	require.NoError(t, val.Get(&res))
	return res
}

func TestArgoCD_DeploySetsTheComponentsArtifactSyncsAndWaitsUntilHealthy(t *testing.T) {
	t.Parallel()
	acts, fake := argoSetup(t)

	res := run(t, acts, acts.DeployTarget, argoRequest(""))

	app, err := fake.Client().App(t.Context(), "web")
	require.NoError(t, err)
	require.Equal(t, []string{webArtifact}, app.KustomizeImages, "the image is the release's artifact, by digest")
	require.Equal(t, argocd.SyncSynced, app.SyncStatus)
	require.Equal(t, argocd.HealthHealthy, app.Health)
	require.Len(t, app.History, 2)
	require.Equal(t, &ArgoCDUndo{App: "web", Revision: "main", Images: []string{webOld}, SetImage: webArtifact, HistoryID: 0, HasHistory: true, Synced: true},
		res.Undo.ArgoCD, "the rollback knows the deployment to go back to")
	require.Contains(t, res.Output, "synced argocd app web: Synced, Healthy")
}

func TestArgoCD_DeploySetsTheRevisionWithTheVersionWhenNoImageIsNamed(t *testing.T) {
	t.Parallel()
	acts, fake := argoSetup(t)
	req := argoRequest("")
	req.Target.ArgoCD = &runbooks.ArgoCDTarget{App: "web", Revision: "v${TRAINYARD_VERSION}"}

	run(t, acts, acts.DeployTarget, req)

	app, err := fake.Client().App(t.Context(), "web")
	require.NoError(t, err)
	require.Equal(t, "v1.2.3", app.Revision)
}

func TestArgoCD_RollbackPutsTheImageBackAndSyncsToThePreviousDeployment(t *testing.T) {
	t.Parallel()
	acts, fake := argoSetup(t)
	req := argoRequest("")
	req.Undo = run(t, acts, acts.DeployTarget, req).Undo

	res := run(t, acts, acts.RollbackTarget, req)

	app, err := fake.Client().App(t.Context(), "web")
	require.NoError(t, err)
	require.Equal(t, []string{webOld}, app.KustomizeImages)
	require.Equal(t, []string{webOld}, app.Images, "the live state runs the old image again")
	require.Equal(t, argocd.HealthHealthy, app.Health)
	require.True(t, slices.ContainsFunc(fake.Requests(), func(r argocd.FakeRequest) bool { return strings.HasSuffix(r.Path, "/rollback") }),
		"rolled back through Argo CD's history")
	require.Contains(t, res.Output, "rolled back argocd app web")
}

func TestArgoCD_FailedSyncFailsTheTargetWithWhatToUndo(t *testing.T) {
	t.Parallel()
	acts, fake := argoSetup(t)
	fake.FailNextSync("web", "one or more objects failed to apply: admission webhook denied the request")

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.DeployTarget, argoRequest(""))

	appErr := requireApplicationError(t, err)
	require.Equal(t, ErrTypeTargetFailed, appErr.Type())
	require.True(t, appErr.NonRetryable())
	require.Contains(t, appErr.Message(), `argocd app "web": sync failed`)
	require.Contains(t, appErr.Message(), "admission webhook denied the request")
	var fail TargetFailure
	require.NoError(t, appErr.Details(&fail))
	require.Equal(t, webArtifact, fail.Undo.ArgoCD.SetImage, "the app was changed: the release must put it back")
}

func TestArgoCD_CanaryFindsTheRolloutAndMovesItsWeightStepByStep(t *testing.T) {
	t.Parallel()
	acts, fake := argoSetup(t)
	fake.AddRollout("web", "shop", "web", 10, 50, 100)
	req := argoRequest(runbooks.StrategyCanary)
	req.Weight = 10

	res := run(t, acts, acts.DeployTarget, req)
	require.Equal(t, []RolloutRef{{Namespace: "shop", Name: "web"}}, res.Undo.ArgoCD.Rollouts)
	require.Equal(t, []int{10}, fake.CanaryWeights("web", "web"))

	for _, w := range []int{50, 100} {
		req.Undo, req.Weight = res.Undo, w
		res = run(t, acts, acts.ShiftTraffic, req)
		require.Equal(t, w, res.Weight)
	}
	require.Equal(t, []int{10, 50, 100}, fake.CanaryWeights("web", "web"))
	require.Contains(t, res.Output, "promoted argocd app web: Synced, Healthy")
}

func TestArgoCD_CanaryWithoutARolloutFailsSayingSo(t *testing.T) {
	t.Parallel()
	acts, _ := argoSetup(t)
	req := argoRequest(runbooks.StrategyCanary)
	req.Weight = 10

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.DeployTarget, req)

	appErr := requireApplicationError(t, err)
	require.Contains(t, appErr.Message(), `moves traffic through an Argo Rollouts Rollout, and app "web" has none`)
}

func TestArgoCD_BlueGreenSwitchPromotesTheRollout(t *testing.T) {
	t.Parallel()
	acts, fake := argoSetup(t)
	fake.AddRollout("web", "shop", "web", 100)
	req := argoRequest(runbooks.StrategyBlueGreen)
	req.Undo = run(t, acts, acts.DeployTarget, req).Undo
	req.Switch = true

	res := run(t, acts, acts.ShiftTraffic, req)

	require.True(t, res.Undo.Switched)
	require.Equal(t, []int{100}, fake.CanaryWeights("web", "web"))
}

func TestArgoCD_RetryAfterTheSyncWaitsInsteadOfSyncingAgain(t *testing.T) {
	t.Parallel()
	acts, fake := argoSetup(t)
	// An earlier attempt recorded the app as it was, set the image and had its sync accepted.
	require.NoError(t, fake.Client().SetImage(t.Context(), "web", webArtifact))
	require.NoError(t, fake.Client().Sync(t.Context(), "web", ""))
	before := len(fake.Requests())
	env := newActivityEnv(t, acts)
	env.SetHeartbeatDetails(ArgoCDUndo{App: "web", Revision: "main", Images: []string{webOld}, HistoryID: 0, HasHistory: true, Synced: true})

	val, err := env.ExecuteActivity(acts.DeployTarget, argoRequest(""))

	require.NoError(t, err)
	var res TargetResult
	require.NoError(t, val.Get(&res))
	require.Equal(t, []string{webOld}, res.Undo.ArgoCD.Images, "what the app was before the first attempt, not after")
	for _, r := range fake.Requests()[before:] {
		require.False(t, strings.HasSuffix(r.Path, "/sync"), "synced again: %+v", r)
	}
}

func TestArgoCD_DriftReportsTheResourcesOutOfSync(t *testing.T) {
	t.Parallel()
	acts, fake := argoSetup(t)
	env := newActivityEnv(t, acts)

	val, err := env.ExecuteActivity(acts.CheckDrift, argoRequest(""))
	require.NoError(t, err)
	var d DriftResult
	require.NoError(t, val.Get(&d))
	require.False(t, d.Drifted)

	fake.SetDrift("web", "Deployment", "web")
	val, err = env.ExecuteActivity(acts.CheckDrift, argoRequest(""))
	require.NoError(t, err)
	require.NoError(t, val.Get(&d))
	require.True(t, d.Drifted)
	require.Equal(t, "argocd app web is OutOfSync: default/Deployment/web OutOfSync", d.Detail)
}

func TestArgoCD_UnconfiguredServerFailsNamingTheKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		server, want string
	}{
		{"", "rollout.argocd.url and rollout.argocd.token (TRAINYARD_ARGOCD_URL, TRAINYARD_ARGOCD_TOKEN)"},
		{"argocd-eu", "rollout.argocd.servers.argocd-eu.url and .token"},
	}
	for _, tt := range tests {
		acts := &Activities{}
		req := argoRequest("")
		req.Target.ArgoCD.Server = tt.server
		_, err := newActivityEnv(t, acts).ExecuteActivity(acts.DeployTarget, req)
		appErr := requireApplicationError(t, err)
		require.Equal(t, ErrTypeMisconfigured, appErr.Type())
		require.Contains(t, appErr.Message(), tt.want)
	}
}

func TestArgoCD_ImageWithoutAMatchingArtifactFails(t *testing.T) {
	t.Parallel()
	acts, _ := argoSetup(t)
	req := argoRequest("")
	req.Artifacts = []string{"registry.example/api@sha256:3333"}

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.DeployTarget, req)

	appErr := requireApplicationError(t, err)
	require.True(t, appErr.NonRetryable())
	require.Contains(t, appErr.Message(), "no component of the release has an artifact of that image")
}

func TestImageName_DropsTagAndDigest(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"registry.example:5000/web:1.2":     "registry.example:5000/web",
		"registry.example/web@sha256:abc":   "registry.example/web",
		"web=registry.example/web@sha256:a": "web",
		"registry.example:5000/web":         "registry.example:5000/web",
	} {
		require.Equal(t, want, imageName(in), in)
	}
}
