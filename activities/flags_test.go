package activities

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/integrations/flags"
	"github.com/trainyard/trainyard/runbooks"
)

const unleashToken = "*:*.unleash-test-token"

func flagSetup(t *testing.T) (*Activities, *flags.Fake) {
	t.Helper()
	fake := flags.NewFake(unleashToken)
	fake.AddFlag("checkout", "new-cart")
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return &Activities{Deploy: DeployClients{Flags: &flags.Client{BaseURL: srv.URL, Token: unleashToken, HTTP: srv.Client()}}}, fake
}

func flagRequest(percent int) TargetRequest {
	req := targetRequest()
	req.Target = runbooks.Target{Name: "new-cart", Kind: runbooks.KindFlag,
		Flag: &runbooks.FlagTarget{Flag: "new-cart", Project: "checkout", Environment: "production", Percent: percent}}
	return req
}

// flagState is the flag as Unleash holds it in production: on or off, and its rollout.
func flagState(t *testing.T, fake *flags.Fake) (bool, string) {
	t.Helper()
	ff, ok := fake.Flag("new-cart")
	require.True(t, ok)
	for _, e := range ff.Environments {
		if e.Name == "production" {
			rollout := ""
			for _, s := range e.Strategies {
				if s.Name == flags.StrategyName {
					rollout = s.Parameters["rollout"]
				}
			}
			return e.Enabled, rollout
		}
	}
	t.Fatal("no production environment")
	return false, ""
}

func TestFlag_DeploySetsTheRolloutThenEnables(t *testing.T) {
	t.Parallel()
	acts, fake := flagSetup(t)

	res := run(t, acts, acts.DeployTarget, flagRequest(25))

	on, rollout := flagState(t, fake)
	require.True(t, on)
	require.Equal(t, "25", rollout)
	require.Equal(t, 25, res.Weight)
	require.Equal(t, &FlagUndo{Project: "checkout", Flag: "new-cart", Environment: "production"}, res.Undo.Flag, "it was off, without a rollout")
}

func TestFlag_CanaryStepsSetTheWeightAsThePercentage(t *testing.T) {
	t.Parallel()
	acts, fake := flagSetup(t)
	req := flagRequest(0)
	req.Strategy, req.Weight = runbooks.StrategyCanary, 5
	req.Undo = run(t, acts, acts.DeployTarget, req).Undo
	_, rollout := flagState(t, fake)
	require.Equal(t, "5", rollout)

	req.Weight = 50
	run(t, acts, acts.ShiftTraffic, req)
	_, rollout = flagState(t, fake)
	require.Equal(t, "50", rollout)
}

func TestFlag_RollbackFlipsTheKillSwitch(t *testing.T) {
	t.Parallel()
	acts, fake := flagSetup(t)
	req := flagRequest(100)
	req.Undo = run(t, acts, acts.DeployTarget, req).Undo
	on, _ := flagState(t, fake)
	require.True(t, on)

	res := run(t, acts, acts.RollbackTarget, req)

	on, _ = flagState(t, fake)
	require.False(t, on, "the flag is off again, as the release found it")
	require.Contains(t, res.Output, "restored: off")
}

func TestFlag_RollbackRestoresAnEarlierRolloutOfAFlagThatWasOn(t *testing.T) {
	t.Parallel()
	acts, fake := flagSetup(t)
	fake.AddStrategy("new-cart", "production", flags.FakeStrategy{Name: flags.StrategyName, Parameters: map[string]string{"rollout": "10", "stickiness": "default", "groupId": "new-cart"}})
	req := flagRequest(0)
	require.NoError(t, acts.Deploy.Flags.Enable(t.Context(), "checkout", "new-cart", "production"))
	req.Undo = run(t, acts, acts.DeployTarget, req).Undo
	_, rollout := flagState(t, fake)
	require.Equal(t, "100", rollout, "a target without percent rolls out to everyone")

	run(t, acts, acts.RollbackTarget, req)

	on, rollout := flagState(t, fake)
	require.True(t, on)
	require.Equal(t, "10", rollout)
}

func TestFlag_UnknownFlagFailsWithoutRetrying(t *testing.T) {
	t.Parallel()
	acts, _ := flagSetup(t)
	req := flagRequest(10)
	req.Target.Flag.Flag = "no-such-flag"

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.DeployTarget, req)

	appErr := requireApplicationError(t, err)
	require.True(t, appErr.NonRetryable())
	require.Contains(t, appErr.Message(), "roll out flag no-such-flag in production")
}

func TestFlag_UnconfiguredFailsNamingTheKeys(t *testing.T) {
	t.Parallel()
	acts := &Activities{}
	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.DeployTarget, flagRequest(10))
	require.Contains(t, requireApplicationError(t, err).Message(), "rollout.unleash.url and rollout.unleash.token (TRAINYARD_UNLEASH_URL, TRAINYARD_UNLEASH_TOKEN)")
}
