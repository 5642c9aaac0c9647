package runbooks

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHash_IsStableAcrossCallsAndYAMLReformatting(t *testing.T) {
	t.Parallel()
	block := `# the block style, with comments
name: hashed
description: Hashing example.
approvals:
  - name: signoff
    before: production
    roles: [release-manager, sre]
    timeout: 24h
stages:
  - name: production
    targets:
      - name: web
        kind: command
        site: local
        deploy: ./deploy.sh
        rollback: ./rollback.sh
`
	// The same content: flow style, other key order, other spacing, a duration written
	// differently, an anchor, no comments.
	flow := `x-cmd:
  deploy: &deploy ./deploy.sh
stages: [{targets: [{rollback: ./rollback.sh, deploy: *deploy, site: local, kind: command, name: web}], name: production}]
approvals:   [ {roles: [release-manager, sre], before: production, name: signoff, timeout: 1440m} ]
description: "Hashing example."
name:   hashed
`
	a, err := Parse("block.yaml", []byte(block))
	require.NoError(t, err)
	b, err := Parse("flow.yaml", []byte(flow))
	require.NoError(t, err)

	h := Hash(a)
	require.Regexp(t, regexp.MustCompile(`^sha256:[0-9a-f]{64}$`), h)
	require.Equal(t, h, Hash(a), "stable across calls")
	require.Equal(t, h, Hash(b), "stable across reformatting")
}

func TestHash_ChangesWithContent(t *testing.T) {
	t.Parallel()
	rb, err := LoadFile("examples/hello.yaml")
	require.NoError(t, err)
	h := Hash(rb)

	changed := []func(*Runbook){
		func(r *Runbook) { r.Description += "." },
		func(r *Runbook) { r.Approvals[0].Roles = append(r.Approvals[0].Roles, "sre") },
		func(r *Runbook) { r.Stages[0].Targets[0].Deploy += " --force" },
		func(r *Runbook) { r.Stabilization.Window++ },
		func(r *Runbook) { r.Readiness = &Readiness{Risk: &RiskModel{Weights: map[string]float64{"churn": 2}}} },
	}
	for i, change := range changed {
		c, err := LoadFile("examples/hello.yaml")
		require.NoError(t, err)
		change(&c)
		require.NotEqual(t, h, Hash(c), "change %d", i)
	}
}

func TestHash_MapsHashTheSameWhateverTheirOrder(t *testing.T) {
	t.Parallel()
	a := Runbook{Name: "m", Readiness: &Readiness{Risk: &RiskModel{Weights: map[string]float64{"churn": 2, "coverage": 1, "timing": 3}}}}
	b := Runbook{Name: "m", Readiness: &Readiness{Risk: &RiskModel{Weights: map[string]float64{"timing": 3, "coverage": 1, "churn": 2}}}}
	for range 20 {
		require.Equal(t, Hash(a), Hash(b))
	}
}
