package runbooks

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// decodeExample reads an example runbook the way Parse does (unknown keys are errors) but
// without validating it: these tests are about explaining, TestExamples_AreValid about
// validity.
func decodeExample(t *testing.T, file string) Runbook {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("examples", file))
	require.NoError(t, err)
	var rb Runbook
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&rb), file)
	return rb
}

func exampleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("examples/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for i, f := range files {
		files[i] = filepath.Base(f)
	}
	return files
}

func waveNames(p Plan) [][]string {
	var out [][]string
	for _, w := range p.Waves {
		var names []string
		for _, s := range w.Stages {
			names = append(names, s.Name)
		}
		out = append(out, names)
	}
	return out
}

func stagesNamed(specs ...string) []Stage {
	var out []Stage
	for _, spec := range specs {
		name, after, _ := strings.Cut(spec, "<")
		s := Stage{Name: name}
		if after != "" {
			s.After = strings.Split(after, ",")
		}
		out = append(out, s)
	}
	return out
}

func TestExplain_StagesRunInWavesOfKahnsAlgorithmInDeclarationOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		stages []Stage
		want   [][]string
	}{
		{"without after, each stage follows the one before", stagesNamed("a", "b", "c"), [][]string{{"a"}, {"b"}, {"c"}}},
		{"two regions after staging run at once", stagesNamed("staging", "eu<staging", "us<staging", "flag<eu,us"),
			[][]string{{"staging"}, {"eu", "us"}, {"flag"}}},
		{"a wave keeps declaration order", stagesNamed("a", "z<a", "m<a", "b<a"), [][]string{{"a"}, {"z", "m", "b"}}},
		{"after may name a stage declared later", stagesNamed("a", "c<b", "b<a"), [][]string{{"a"}, {"b"}, {"c"}}},
		{"uneven branches", stagesNamed("a", "b<a", "c<b", "d<a", "e<c,d"), [][]string{{"a"}, {"b", "d"}, {"c"}, {"e"}}},
		{"a cycle ends in one last wave", stagesNamed("a", "b<c", "c<b"), [][]string{{"a"}, {"b", "c"}}},
		{"unknown names are ignored", stagesNamed("a", "b<nowhere"), [][]string{{"a", "b"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := Explain(Runbook{Name: "r", Stages: tc.stages})
			require.Equal(t, tc.want, waveNames(p))
			for i, w := range p.Waves {
				require.Equal(t, i+1, w.Wave)
			}
		})
	}
}

func TestExplain_ResolvesDefaults(t *testing.T) {
	t.Parallel()
	p := Explain(decodeExample(t, "hello.yaml"))

	require.Equal(t, "hello", p.Runbook)
	require.Equal(t, [][]string{{"staging"}, {"production"}}, waveNames(p))
	prod := p.Waves[1].Stages[0]
	require.Equal(t, []string{"staging"}, prod.After, "a stage without after follows the one declared before it")
	require.Equal(t, []string{"production-signoff"}, prod.Approvals)
	require.Equal(t, PlanStrategy{Type: StrategyRolling, MaxParallel: 1}, prod.Strategy)
	require.Equal(t, 2*time.Minute, prod.Targets[0].Timeout.D())
	require.Equal(t, DefaultHeartbeat, prod.Targets[0].Heartbeat.D())
	require.Equal(t, "stages[1].targets[1]", prod.Targets[1].Path)

	require.Len(t, p.Governance.Approvals, 1)
	a := p.Governance.Approvals[0]
	require.Equal(t, PlanApproval{
		Name: "production-signoff", Path: "approvals[0]", Before: "production", Roles: []string{"release-manager"},
		Count: 1, Timeout: Duration(24 * time.Hour), OnTimeout: "reject",
	}, a)
	require.Equal(t, []string{"release-manager"}, p.Governance.RollbackAuthority)
	require.Equal(t, &PlanStabilization{Window: Duration(20 * time.Second)}, p.Stabilization)
	require.Equal(t, "release", p.Rollback.Scope)
	require.Contains(t, p.Rollback.Triggers, "abort by the requester or release-manager")
	require.Nil(t, p.Scope)
	require.Nil(t, p.Readiness)
}

func TestExplain_ApprovalsInTheOrderTheyAreMet(t *testing.T) {
	t.Parallel()
	rb := Runbook{
		Name:   "r",
		Stages: stagesNamed("staging", "prod<canary", "canary<staging"),
		Approvals: []ApprovalGate{
			{Name: "prod-ok", Before: "prod", Roles: []string{"rm"}},
			{Name: "canary-ok", Before: "canary", Roles: []string{"rm"}, OnTimeout: "wait", Timeout: Duration(time.Hour)},
			{Name: "staging-ok", Before: "staging", Roles: []string{"qa"}, Count: 2, AllowRequester: true},
		},
	}
	p := Explain(rb)
	var got []string
	for _, a := range p.Governance.Approvals {
		got = append(got, a.Name+"@"+a.Path)
	}
	require.Equal(t, []string{"staging-ok@approvals[2]", "canary-ok@approvals[1]", "prod-ok@approvals[0]"}, got)
	require.Equal(t, 2, p.Governance.Approvals[0].Count)
	require.True(t, p.Governance.Approvals[0].AllowRequester)
	require.Equal(t, "wait", p.Governance.Approvals[1].OnTimeout)
	require.Equal(t, []string{
		"approval staging-ok is rejected, or not decided within 24h",
		"approval canary-ok is rejected",
		"approval prod-ok is rejected, or not decided within 24h",
	}, p.Rollback.Triggers[:3])
}

func TestExplain_ListsParityRequirementsNotExercisedBefore(t *testing.T) {
	t.Parallel()
	p := Explain(decodeExample(t, "hardware-fleet.yaml"))
	prod := p.Waves[1].Stages[0]
	require.Equal(t, "production", prod.Name)
	require.Equal(t, []string{"hsm", "fpga-rev-c"}, prod.NotExercisedBefore)
	require.Empty(t, p.Waves[0].Stages[0].NotExercisedBefore)

	// Only what no earlier stage had: a stage after one with an HSM has exercised it.
	rb := Runbook{Name: "r", Stages: []Stage{
		{Name: "a", Requires: []string{"hsm"}},
		{Name: "b", Requires: []string{"hsm", "gpu"}},
		{Name: "c", After: []string{"a"}, Requires: []string{"gpu"}},
	}}
	p = Explain(rb)
	require.Equal(t, []string{"hsm"}, p.Waves[0].Stages[0].NotExercisedBefore, "the first stage exercises everything first")
	require.Equal(t, []string{"gpu"}, p.Waves[1].Stages[0].NotExercisedBefore)
	require.Equal(t, "c", p.Waves[1].Stages[1].Name)
	require.Equal(t, []string{"gpu"}, p.Waves[1].Stages[1].NotExercisedBefore, "b runs beside c, not before it")

	tg := p.Waves[0].Stages[0]
	require.Equal(t, "a", tg.Name)
	hw := Explain(decodeExample(t, "hardware-fleet.yaml")).Waves[1].Stages[0].Targets[0]
	require.Equal(t, []Wave{{Count: 1}, {Percent: 10}, {Rest: true}}, hw.Hardware.Waves)
	require.Equal(t, "plant-7", hw.Site)
	require.Equal(t, 2*time.Minute, hw.Heartbeat.D())
}

func TestExplain_CanaryAnalysesStabilizationAndRollback(t *testing.T) {
	t.Parallel()
	p := Explain(decodeExample(t, "web-argocd-canary.yaml"))
	prod := p.Waves[1].Stages[0]
	require.Equal(t, StrategyCanary, prod.Strategy.Type)
	var weights []int
	for _, s := range prod.Strategy.Steps {
		weights = append(weights, s.Weight)
	}
	require.Equal(t, []int{5, 25, 50, 100}, weights)
	require.Equal(t, "storefront-production", prod.Targets[0].ArgoCD.App)
	require.Zero(t, prod.Targets[0].Heartbeat, "argocd targets are not run by a site worker")

	require.Len(t, p.Analyses, 1)
	require.Equal(t, []string{
		"stage production canary at 5%", "stage production canary at 25%", "stage production canary at 50%",
		"stage production exit criteria", "stabilization",
	}, p.Analyses[0].UsedBy)
	require.Equal(t, "rollback", p.Stabilization.OnBreach)
	require.Equal(t, 99.9, p.Stabilization.SLO.Objective)
	require.True(t, p.Scope.Components[0].Pinned)
	require.Equal(t, "none", p.Scope.Components[0].SchemaChange)

	require.Equal(t, []string{
		"approval production-signoff is rejected, or not decided within 8h",
		"a target fails to deploy (its deploy fails or outlives its timeout)",
		"stage staging: a smoke check fails",
		"stage production: canary analysis error-rate fails",
		"stage production: exit criteria not met",
		"stabilization breach (SLO burn rate, analysis error-rate)",
		"abort by the requester or release-manager, sre",
	}, p.Rollback.Triggers)
	require.Equal(t, &CircuitBreaker{Scope: "runbook"}, p.Rollback.CircuitBreaker)
	require.Equal(t, 15*time.Minute, p.Rollback.Budget.D())
}

func TestExplain_DomainReleaseScopeGovernanceAndDAG(t *testing.T) {
	t.Parallel()
	p := Explain(decodeExample(t, "domain-release.yaml"))
	require.Equal(t, [][]string{{"staging"}, {"production-eu", "production-us"}, {"new-checkout"}}, waveNames(p))
	var approvals []string
	for _, a := range p.Governance.Approvals {
		approvals = append(approvals, a.Name)
	}
	require.Equal(t, []string{"eu-signoff", "schema-review", "us-signoff"}, approvals)
	require.Equal(t, "wait", p.Governance.OnFreeze)
	require.Equal(t, []string{"orders"}, p.Scope.Components[0].Groups)
	require.Equal(t, "expand", p.Scope.Components[0].SchemaChange)
	require.Equal(t, "separate", p.Scope.Infrastructure)
	require.Equal(t, []RiskWeight{
		{"changeFailureRate", 1}, {"churn", 2}, {"coverage", 1}, {"schemaChange", 3}, {"components", 1}, {"timing", 1},
	}, p.Readiness.Risk.Weights)
	flag := p.Waves[2].Stages[0].Targets[0]
	require.Equal(t, KindFlag, flag.Kind)
	require.Equal(t, 25, flag.Flag.Percent)
	require.Contains(t, p.Rollback.Triggers, "stabilization breach (checks): the rollback authority is paged and decides")
	require.True(t, p.Rollback.ForwardFix)
}

func TestPlan_SurvivesAJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, f := range exampleFiles(t) {
		t.Run(f, func(t *testing.T) {
			t.Parallel()
			rb := decodeExample(t, f)
			p := Explain(rb)
			p.NotYetEnforced = Unsupported(rb)
			data, err := json.Marshal(p)
			require.NoError(t, err)
			var back Plan
			require.NoError(t, json.Unmarshal(data, &back))
			require.Equal(t, p, back)
		})
	}
}

func TestPlanText_IsAlignedAndNamesWhatMatters(t *testing.T) {
	t.Parallel()
	for _, f := range exampleFiles(t) {
		t.Run(f, func(t *testing.T) {
			t.Parallel()
			rb := decodeExample(t, f)
			p := Explain(rb)
			p.NotYetEnforced = Unsupported(rb)
			var b bytes.Buffer
			require.NoError(t, p.Text(&b))
			out := b.String()
			require.True(t, strings.HasSuffix(out, "\n"))
			for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
				require.Equal(t, strings.TrimRight(line, " "), line, "no trailing spaces")
				require.NotContains(t, line, "\t")
				for _, r := range line {
					require.Less(t, r, rune(0x2000), "plain text, no emoji or symbols: %q", line)
				}
			}
			require.Contains(t, out, "Runbook            "+rb.Name+"\n")
			for _, s := range rb.Stages {
				require.Contains(t, out, "    "+s.Name+" ")
				for _, tg := range s.Targets {
					require.Contains(t, out, tg.Name+"  ")
				}
			}
			for _, a := range rb.Approvals {
				require.Contains(t, out, ". "+a.Name+", before stage "+a.Before+"\n")
			}
			if len(p.NotYetEnforced) > 0 {
				require.Contains(t, out, "[not yet enforced]")
				require.Contains(t, out, "\nNOT YET ENFORCED   ")
				for _, e := range p.NotYetEnforced {
					path, _, _ := strings.Cut(e, ": ")
					require.Contains(t, out, "\n  "+path+" ")
				}
			} else {
				require.NotContains(t, out, "not yet enforced")
			}
		})
	}
}

func TestPlanText_ShowsTheHelloPlan(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	require.NoError(t, Explain(decodeExample(t, "hello.yaml")).Text(&b))
	for _, want := range []string{
		"GOVERNANCE\n  Approvals        in the order they are met\n    1. production-signoff, before stage production\n",
		"      approvers    1 person with role release-manager\n",
		"      requester    may not approve, nor may the authors of the change\n",
		"      timeout      24h, then the release is rejected and rolled back\n",
		"  Wave 1\n    staging  environment staging\n",
		"      targets      production-web-eu  command  site local, timeout 2m, heartbeat 30s\n" +
			"                   production-web-us  command  site local, timeout 2m, heartbeat 30s\n",
		"  Window           20s",
	} {
		require.Contains(t, b.String(), want, "output:\n%s", b.String())
	}
}

func TestPlanText_MarksWhatIsNotYetEnforced(t *testing.T) {
	t.Parallel()
	rb := decodeExample(t, "hardware-fleet.yaml")
	p := Explain(rb)
	p.NotYetEnforced = []string{"approvals[0].distinctRoles: not yet", "stages[1].requires: not yet", "stages[1].targets[0]: not yet"}
	var b bytes.Buffer
	require.NoError(t, p.Text(&b))
	out := b.String()
	require.Contains(t, out, "together covering release-manager and approver  [not yet enforced]\n")
	require.Contains(t, out, "requires hsm, fpga-rev-c  [not yet enforced]\n")
	require.Contains(t, out, "not exercised before this stage: hsm, fpga-rev-c\n")
	require.Regexp(t, `line-controllers  hardware  site plant-7, waves 1 device / 10% / the rest, halts above 20% failed, .*  \[not yet enforced\]\n`, out)
	require.NotRegexp(t, `lab-bench .*not yet enforced`, out)
}
