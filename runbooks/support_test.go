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
		{"analysis", func(r *Runbook) { r.Analyses = []Analysis{{Name: "a"}} }, "analyses"},
		{"dag", func(r *Runbook) { r.Stages[1].After = []string{"s1"} }, "stages[1].after"},
		{"parity", func(r *Runbook) { r.Stages[1].Requires = []string{"hsm"} }, "stages[1].requires"},
		{"canary", func(r *Runbook) { r.Stages[0].Strategy = &Strategy{Type: StrategyCanary} }, "stages[0].strategy"},
		{"parallel rolling", func(r *Runbook) { r.Stages[0].Strategy = &Strategy{Type: StrategyRolling, MaxParallel: 2} }, "stages[0].strategy"},
		{"smoke", func(r *Runbook) { r.Stages[0].Smoke = []HTTPCheck{{URL: "http://x"}} }, "stages[0].smoke"},
		{"exit criteria", func(r *Runbook) { r.Stages[0].ExitCriteria = &ExitCriteria{} }, "stages[0].exitCriteria"},
		{"argocd target", func(r *Runbook) { r.Stages[0].Targets[0] = Target{Name: "w", Kind: KindArgoCD} }, "stages[0].targets[0]"},
		{"slo", func(r *Runbook) { r.Stabilization.SLO = &SLO{Objective: 99.9} }, "stabilization"},
		{"paging", func(r *Runbook) { r.Stabilization.OnBreach = "page" }, "stabilization"},
		{"circuit breaker", func(r *Runbook) { r.Rollback = &Rollback{CircuitBreaker: &CircuitBreaker{Scope: "runbook"}} }, "rollback"},
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
		Stages:        []Stage{{Name: "s", Targets: []Target{{Name: "t", Kind: KindCommand}}}},
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
