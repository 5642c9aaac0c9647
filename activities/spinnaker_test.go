package activities

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/integrations/spinnaker"
	"github.com/trainyard/trainyard/runbooks"
)

func spinnakerSetup(t *testing.T, p spinnaker.FakePipeline) (*Activities, *spinnaker.Fake) {
	t.Helper()
	fake := spinnaker.NewFake()
	t.Cleanup(fake.Close)
	fake.SetToken("gate-token")
	fake.RequireHeader("X-Spinnaker-User", "trainyard")
	p.Application, p.Name = "shop", "deploy-prod"
	fake.AddPipeline(p)
	return &Activities{Deploy: DeployClients{Spinnaker: fake.Client(), Poll: time.Millisecond}}, fake
}

func spinnakerRequest() TargetRequest {
	req := targetRequest()
	req.Target = runbooks.Target{Name: "shop-prod", Kind: runbooks.KindSpinnaker, Spinnaker: &runbooks.SpinnakerTarget{
		Application: "shop", Pipeline: "deploy-prod", Parameters: map[string]string{"tag": "v${TRAINYARD_VERSION}", "region": "eu-west-1"},
	}}
	return req
}

func TestSpinnaker_DeployTriggersWithParametersAndFollowsTheExecutionToItsEnd(t *testing.T) {
	t.Parallel()
	acts, fake := spinnakerSetup(t, spinnaker.FakePipeline{Required: []string{"tag"}})

	res := run(t, acts, acts.DeployTarget, spinnakerRequest())

	triggers := fake.Triggers()
	require.Len(t, triggers, 1)
	require.Equal(t, map[string]string{
		"tag": "v1.2.3", "region": "eu-west-1",
		"trainyardRelease": "release-shop-1.2.3", "trainyardRunbook": "shop", "trainyardStage": "production",
		"trainyardEnvironment": "production", "trainyardTarget": "shop-prod", "trainyardOperation": "deploy",
		"trainyardVersion": "1.2.3", "trainyardPreviousVersion": "1.2.2",
	}, triggers[0].Parameters)
	require.Equal(t, triggers[0].ExecutionID, res.Undo.Spinnaker.ExecutionID)
	require.Contains(t, res.Output, "ended SUCCEEDED")
}

func TestSpinnaker_FailedExecutionNamesTheStageThatFailed(t *testing.T) {
	t.Parallel()
	acts, _ := spinnakerSetup(t, spinnaker.FakePipeline{
		Stages:    []spinnaker.FakeStage{{Name: "Bake", Type: "bake"}, {Name: "Deploy to prod", Type: "deployManifest"}},
		FailStage: "Deploy to prod", FailMessage: "Deployment shop-web failed to become stable",
	})

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.DeployTarget, spinnakerRequest())

	appErr := requireApplicationError(t, err)
	require.Equal(t, ErrTypeTargetFailed, appErr.Type())
	require.True(t, appErr.NonRetryable())
	require.Contains(t, appErr.Message(), `ended TERMINAL at stage "Deploy to prod": Deployment shop-web failed to become stable`)
}

func TestSpinnaker_RetryWaitsOnTheExecutionItStartedInsteadOfTriggeringAgain(t *testing.T) {
	t.Parallel()
	acts, fake := spinnakerSetup(t, spinnaker.FakePipeline{})
	id, err := fake.Client().Trigger(t.Context(), "shop", "deploy-prod", nil, "")
	require.NoError(t, err)
	env := newActivityEnv(t, acts)
	env.SetHeartbeatDetails(spinnakerBeat{ExecutionID: id})

	val, err := env.ExecuteActivity(acts.DeployTarget, spinnakerRequest())

	require.NoError(t, err)
	var res TargetResult
	require.NoError(t, val.Get(&res))
	require.Len(t, fake.Triggers(), 1, "no second trigger")
	require.Equal(t, id, res.Undo.Spinnaker.ExecutionID)
}

func TestSpinnaker_RollbackRunsThePipelineWithThePreviousVersion(t *testing.T) {
	t.Parallel()
	acts, fake := spinnakerSetup(t, spinnaker.FakePipeline{})

	run(t, acts, acts.RollbackTarget, spinnakerRequest())

	p := fake.Triggers()[0].Parameters
	require.Equal(t, "v1.2.2", p["tag"], "the runbook's parameters see the version being put back")
	require.Equal(t, "rollback", p["trainyardOperation"])
	require.Equal(t, "1.2.3", p["trainyardRolledBackVersion"])
}

func TestSpinnaker_RollbackOfAFirstReleaseHasNothingToRunAndSaysSo(t *testing.T) {
	t.Parallel()
	acts, fake := spinnakerSetup(t, spinnaker.FakePipeline{})
	req := spinnakerRequest()
	req.PreviousVersion = ""

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.RollbackTarget, req)

	require.Contains(t, requireApplicationError(t, err).Message(), "no previous version to run pipeline shop/deploy-prod with")
	require.Empty(t, fake.Triggers())
}

func TestSpinnaker_UnconfiguredFailsNamingTheKeys(t *testing.T) {
	t.Parallel()
	acts := &Activities{}
	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.DeployTarget, spinnakerRequest())
	appErr := requireApplicationError(t, err)
	require.Equal(t, ErrTypeMisconfigured, appErr.Type())
	require.Contains(t, appErr.Message(), "rollout.spinnaker.url (TRAINYARD_SPINNAKER_URL)")
}
