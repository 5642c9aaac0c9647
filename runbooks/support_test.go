package runbooks

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestUnsupported_WalkingSkeletonSubsetIsFullyEnforced(t *testing.T) {
	t.Parallel()
	rb, err := Catalog{Dir: "examples"}.Get("hello")
	require.NoError(t, err)
	require.Empty(t, Unsupported(rb))
}

func TestUnsupported_NamesEveryDeclaredButUnenforcedPart(t *testing.T) {
	t.Parallel()
	cmd := Target{Name: "t", Kind: KindCommand, Site: "a", Deploy: "x", Rollback: "y"}
	cases := []struct {
		name string
		edit func(*Runbook)
		want string
	}{
		{"spinnaker canary", func(r *Runbook) {
			r.Stages[0].Strategy = &Strategy{Type: StrategyCanary, Steps: []CanaryStep{{Weight: 100}}}
			r.Stages[0].Targets[0] = Target{Name: "p", Kind: KindSpinnaker}
		}, "stages[0].targets[0]"},
		{"hardware blue-green", func(r *Runbook) {
			r.Stages[1].Strategy = &Strategy{Type: StrategyBlueGreen, BlueGreen: &BlueGreen{}}
			r.Stages[1].Targets[0] = Target{Name: "h", Kind: KindHardware, Site: "lab"}
		}, "stages[1].targets[0]"},
		{"flag blue-green", func(r *Runbook) {
			r.Stages[0].Strategy = &Strategy{Type: StrategyBlueGreen, BlueGreen: &BlueGreen{}}
			r.Stages[0].Targets[0] = Target{Name: "f", Kind: KindFlag}
		}, "stages[0].targets[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rb := Runbook{
				Name:      "r",
				Approvals: []ApprovalGate{{Name: "g", Before: "s2", Roles: []string{"rm"}}},
				Stages:    []Stage{{Name: "s1", Targets: []Target{cmd}}, {Name: "s2", Targets: []Target{cmd}}},
			}
			require.Empty(t, Unsupported(rb), "the base case is enforced")
			tc.edit(&rb)
			got := Unsupported(rb)
			require.Len(t, got, 1, "%v", got)
			require.True(t, strings.HasPrefix(got[0], tc.want+": "), got[0])
		})
	}
}

func TestUnsupported_GovernanceAndReadinessAreEnforced(t *testing.T) {
	t.Parallel()
	rb := Runbook{
		Name: "r",
		Readiness: &Readiness{
			Gates: []ReadinessGate{{Name: "g", Type: GateCoverage, MinCoverage: 80, When: "change.churn > 10"}},
			Risk:  &RiskModel{High: 70},
		},
		Approvals: []ApprovalGate{{Name: "g", Before: "s", Roles: []string{"rm"}, When: "risk.score > 50", OnTimeout: "wait",
			Escalation: &Escalation{After: Duration(time.Hour), Roles: []string{"x"}}}},
		CAB:           &CAB{Threshold: 60, Roles: []string{"cab"}},
		ChangeRequest: &ChangeRequest{Provider: "servicenow", When: "risk.score > 50"},
		Stages:        []Stage{{Name: "s", Requires: []string{"hsm"}, Targets: []Target{{Name: "t", Kind: KindCommand}}}},
	}
	require.Empty(t, Unsupported(rb))
}

func TestUnsupported_RollingOneAtATimeAndWholeReleaseRollbackAreEnforced(t *testing.T) {
	t.Parallel()
	rb := Runbook{
		Name:     "r",
		Stages:   []Stage{{Name: "s", Strategy: &Strategy{Type: StrategyRolling, MaxParallel: 1}, Targets: []Target{{Name: "t", Kind: KindCommand}}}},
		Rollback: &Rollback{Scope: "release"},
	}
	require.Empty(t, Unsupported(rb))
}

func TestUnsupported_RolloutIsEnforced(t *testing.T) {
	t.Parallel()
	steps := []CanaryStep{{Weight: 10, Pause: Duration(time.Minute), Analysis: "errors"}, {Weight: 100}}
	rb := Runbook{
		Name:     "r",
		Analyses: []Analysis{{Name: "errors", Provider: "prometheus", Query: "q", SuccessCondition: "result.value < 1"}},
		Stages: []Stage{
			{Name: "a", Strategy: &Strategy{Type: StrategyRolling, MaxParallel: 3}, Smoke: []HTTPCheck{{URL: "https://x.example"}},
				ExitCriteria: &ExitCriteria{Analyses: []string{"errors"}},
				Targets: []Target{
					{Name: "c", Kind: KindCommand, Drift: "check", OnDrift: DriftResync},
					{Name: "s", Kind: KindSpinnaker}, {Name: "h", Kind: KindHardware}, {Name: "f", Kind: KindFlag}, {Name: "g", Kind: KindArgoCD},
				}},
			{Name: "b", Strategy: &Strategy{Type: StrategyCanary, Steps: steps},
				Targets: []Target{{Name: "c2", Kind: KindCommand}, {Name: "h2", Kind: KindHardware}, {Name: "f2", Kind: KindFlag}, {Name: "g2", Kind: KindArgoCD}}},
			{Name: "c", Strategy: &Strategy{Type: StrategyBlueGreen, BlueGreen: &BlueGreen{RollbackWindow: Duration(time.Hour)}},
				Targets: []Target{{Name: "c3", Kind: KindCommand}, {Name: "g3", Kind: KindArgoCD}}},
		},
	}
	require.Empty(t, Unsupported(rb))
}

func TestUnsupported_StabilizationAndRollbackAreEnforced(t *testing.T) {
	t.Parallel()
	rb := Runbook{
		Name:              "r",
		RollbackAuthority: []string{"sre"},
		Analyses:          []Analysis{{Name: "errors", Provider: "prometheus", Query: "q", FailureCondition: "result.value > 0.05", Baseline: true}},
		Stages:            []Stage{{Name: "s", Environment: "production", Targets: []Target{{Name: "t", Kind: KindCommand}}}},
		Stabilization: Stabilization{
			Window: Duration(time.Hour), Analyses: []string{"errors"}, OnBreach: "page",
			SLO:    &SLO{Objective: 99.9, ErrorRatio: "q", BurnRates: []BurnRate{{Long: Duration(time.Hour), Short: Duration(5 * time.Minute), Factor: 14.4}}},
			Checks: []HTTPCheck{{Name: "checkout", URL: "https://shop.example/health"}},
		},
		Rollback: &Rollback{Scope: "stage", Budget: Duration(15 * time.Minute), ForwardFix: true, CircuitBreaker: &CircuitBreaker{Scope: "environment"}},
	}
	require.Empty(t, Unsupported(rb))
}
