package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

const example = `
policies:
  - name: pii-production-two-approvals
    description: Production releases of services holding personal data need two people.
    when: stage.environment == "production" && runbook.dataClassification == "pii"
    rule: governance.approvalsRequired >= 2
    message: production releases of PII services need two approvals; add count 2 to the gate before production
    at: [stage]
  - name: scan-report-required
    rule: governance.scanReports > 0
    message: attach a scan report (POST /api/v1/releases/{id}/reports) before the release starts
    at: [start]
`

func vars(env, class string, approvals, reports int) map[string]any {
	return map[string]any{
		"release":    map[string]any{"version": "1.0.0"},
		"runbook":    map[string]any{"name": "payments", "dataClassification": class},
		"risk":       map[string]any{"score": 10, "level": "low"},
		"impact":     map[string]any{"score": 0},
		"change":     map[string]any{},
		"stage":      map[string]any{"name": env, "environment": env},
		"governance": map[string]any{"approvalsRequired": approvals, "scanReports": reports},
	}
}

func TestEvaluate_ViolationsNameThePolicyAndSayWhatToDo(t *testing.T) {
	t.Parallel()
	set, err := Parse("policies.yaml", []byte(example))
	require.NoError(t, err)
	require.Equal(t, []string{"pii-production-two-approvals", "scan-report-required"}, set.Names())

	tests := []struct {
		name  string
		point string
		vars  map[string]any
		want  []string
	}{
		{"pii production with one approval", AtStage, vars("production", "pii", 1, 1), []string{"pii-production-two-approvals"}},
		{"pii production with two approvals", AtStage, vars("production", "pii", 2, 1), nil},
		{"pii staging with one approval", AtStage, vars("staging", "pii", 1, 1), nil},
		{"public data in production", AtStage, vars("production", "public", 0, 1), nil},
		{"no scan report at start", AtStart, vars("", "public", 0, 0), []string{"scan-report-required"}},
		{"scan report rule is not checked before stages", AtStage, vars("staging", "public", 0, 0), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, v := range set.Evaluate(tt.point, tt.vars) {
				got = append(got, v.Policy)
				require.NotEmpty(t, v.Message)
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestEvaluate_AnUnevaluablePolicyCountsAsViolated(t *testing.T) {
	t.Parallel()
	set, err := Parse("p.yaml", []byte("policies:\n  - {name: p, rule: 'risk.score < 50', message: m}\n"))
	require.NoError(t, err)
	vs := set.Evaluate(AtStart, map[string]any{})
	require.Len(t, vs, 1)
	require.Contains(t, vs[0].Message, "cannot be evaluated")
}

func TestParse_ReportsEveryProblemWithItsLine(t *testing.T) {
	t.Parallel()
	_, err := Parse("policies.yaml", []byte(`policies:
  - name: Bad Name
    rule: governance.scanReprts > 0
    message: m
  - name: ok
    rule: risk.score < 50
  - name: ok
    rule: risk.score
    message: m
    at: [deploy]
`))
	var pe *Error
	require.ErrorAs(t, err, &pe)
	require.Equal(t, []string{
		`policies.yaml:2: "Bad Name" is not a valid policy name: use lowercase letters, digits and dashes`,
		`policies.yaml:2: policy Bad Name: rule: at column 12: unknown field scanReprts of governance (fields: approvalsRequired, approvalRoles, scanReports, readinessGates, changeRequest)`,
		`policies.yaml:5: policy ok has no message: say what the requester must do`,
		`policies.yaml:7: policy ok is defined twice (first at line 5): rename one`,
		`policies.yaml:7: policy ok: at "deploy" is not start or stage`,
		`policies.yaml:7: policy ok: rule: must be true or false, got int`,
	}, pe.Problems)
}

func TestLoad_EmptyPathAndEmptyFileAreEmptySets(t *testing.T) {
	t.Parallel()
	set, err := Load("")
	require.NoError(t, err)
	require.Empty(t, set.Evaluate(AtStart, nil))
	path := filepath.Join(t.TempDir(), "p.yaml")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	set, err = Load(path)
	require.NoError(t, err)
	require.Empty(t, set.Policies)
	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorContains(t, err, "read policy file")
}

func TestParse_UnknownKeysAreRefused(t *testing.T) {
	t.Parallel()
	_, err := Parse("p.yaml", []byte("policies:\n  - {name: p, rule: 'true', message: m, severity: high}\n"))
	require.ErrorContains(t, err, "p.yaml:2")
	require.ErrorContains(t, err, "severity")
}
