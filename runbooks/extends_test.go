package runbooks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func extendsFixture(name string) string { return filepath.Join("testdata", "extends", name) }

// problemsOf returns the problems of an *InvalidError, failing the test for any other error.
func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	require.NotEmpty(t, inv.Problems)
	return inv.Problems
}

func approvalNames(rb Runbook) []string {
	var names []string
	for _, g := range rb.Approvals {
		names = append(names, g.Name)
	}
	return names
}

func gateNames(rb Runbook) []string {
	var names []string
	if rb.Readiness != nil {
		for _, g := range rb.Readiness.Gates {
			names = append(names, g.Name)
		}
	}
	return names
}

func TestLoadResolved_MergesMandatoryItemsFirstAndKeepsTeamAdditions(t *testing.T) {
	t.Parallel()
	res, err := LoadResolved(extendsFixture("team.yaml"))
	require.NoError(t, err)
	rb := res.Runbook
	require.Equal(t, "base/standard.yaml", res.Base)
	require.Equal(t, []string{"security-review", "team-signoff"}, approvalNames(rb))
	require.Equal(t, []string{"image-scan", "team-coverage"}, gateNames(rb), "org-coverage is dropped by the exception")
	require.Equal(t, []string{"holidays", "quarter-end"}, rb.Freezes, "freezes are the union")
	require.Equal(t, []string{"release-manager", "team-lead"}, rb.RollbackAuthority, "rollback authority is the union")
	require.Equal(t, &CAB{When: `(risk.score >= 70) || (runbook.dataClassification == "pci")`, Roles: []string{"cab"}}, rb.CAB,
		"a team may only widen when the CAB applies")
	require.NotNil(t, rb.Rollback, "rollback comes from the base when the team sets none")
	require.Equal(t, 30*time.Minute, rb.Rollback.Budget.D())
	require.Equal(t, []Exception{{Remove: "readiness/org-coverage", Waiver: "WVR-2026-001", Reason: "The team's own coverage gate is stricter."}}, res.Applied)
	require.Equal(t, Hash(rb), res.Hash)

	loaded, err := LoadFile(extendsFixture("team.yaml"))
	require.NoError(t, err)
	require.Equal(t, rb, loaded, "LoadFile returns the resolved runbook")
}

func TestLoadResolved_RefusesRedefiningAMandatoryItem(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, path, want string
		line             int
	}{
		{"redefine.yaml", "approvals[0].name", "approvals/security-review is mandatory from base/standard.yaml; it cannot be redefined; add an exception with a waiver to replace it", 4},
		{"redefine-gate.yaml", "readiness.gates[0].name", "readiness/image-scan is mandatory from base/standard.yaml; it cannot be redefined", 5},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			_, err := LoadResolved(extendsFixture(tt.file))
			ps := problemsOf(t, err)
			require.Len(t, ps, 1, "%v", err)
			require.Equal(t, tt.file, ps[0].File)
			require.Equal(t, tt.path, ps[0].Path)
			require.Equal(t, tt.line, ps[0].Line)
			require.Contains(t, ps[0].Msg, tt.want)
		})
	}
}

func TestLoadResolved_ExceptionReplacesAnInheritedItemAndIsReported(t *testing.T) {
	t.Parallel()
	res, err := LoadResolved(extendsFixture("replace.yaml"))
	require.NoError(t, err)
	require.Equal(t, []string{"security-review"}, approvalNames(res.Runbook))
	require.Equal(t, []string{"platform-security"}, res.Runbook.Approvals[0].Roles, "the team's own gate replaces the base's")
	require.Len(t, res.Applied, 1)
	require.Equal(t, "approvals/security-review", res.Applied[0].Remove)
	require.Equal(t, "WVR-2026-002", res.Applied[0].Waiver)
}

func TestLoadResolved_RefusesAnExceptionForAnUndeclaredItem(t *testing.T) {
	t.Parallel()
	_, err := LoadResolved(extendsFixture("missing-exception.yaml"))
	ps := problemsOf(t, err)
	require.Len(t, ps, 1)
	require.Equal(t, "exceptions[0].remove", ps[0].Path)
	require.Equal(t, 4, ps[0].Line)
	require.Contains(t, ps[0].Msg, `base/standard.yaml declares no readiness gate named "dr-drill" (readiness: image-scan, org-coverage)`)
}

func TestLoadResolved_RefusesExceptionsWithoutExtends(t *testing.T) {
	t.Parallel()
	_, err := LoadResolved(extendsFixture("no-extends.yaml"))
	ps := problemsOf(t, err)
	require.Equal(t, "exceptions", ps[0].Path)
	require.Contains(t, ps[0].Msg, "this runbook extends nothing")

	_, err = LoadFile(extendsFixture("no-extends.yaml"))
	require.ErrorContains(t, err, "extends nothing", "LoadFile refuses it too")
}

func TestLoadResolved_RefusesCycles(t *testing.T) {
	t.Parallel()
	_, err := LoadResolved(extendsFixture("cycle.yaml"))
	ps := problemsOf(t, err)
	require.Equal(t, "base/cycle-b.yaml", ps[0].File)
	require.Equal(t, "extends", ps[0].Path)
	require.Equal(t, 1, ps[0].Line)
	require.Contains(t, ps[0].Msg, "makes a cycle: cycle.yaml → base/cycle-a.yaml → base/cycle-b.yaml → base/cycle-a.yaml")
}

func TestLoadResolved_RefusesASelfReference(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "self.yaml", "name: self\nextends: self.yaml\n"+fixtureStages)
	_, err := LoadResolved(filepath.Join(dir, "self.yaml"))
	require.ErrorContains(t, err, "makes a cycle: self.yaml → self.yaml")
}

func TestLoadResolved_AllowsThreeBasesAndRefusesFour(t *testing.T) {
	t.Parallel()
	res, err := LoadResolved(extendsFixture("three-deep.yaml"))
	require.NoError(t, err)
	require.Equal(t, []string{"level-4-review", "level-3-review", "level-2-review"}, approvalNames(res.Runbook),
		"the deepest base's items come first")

	_, err = LoadResolved(extendsFixture("deep.yaml"))
	ps := problemsOf(t, err)
	require.Equal(t, "base/deep-3.yaml", ps[0].File)
	require.Contains(t, ps[0].Msg, "more than 3 bases: deep.yaml → base/deep-1.yaml → base/deep-2.yaml → base/deep-3.yaml → base/deep-4.yaml")
}

func TestLoadResolved_RefusesPathsLeavingTheFolder(t *testing.T) {
	t.Parallel()
	tests := []struct{ file, want string }{
		{"escape.yaml", `"../outside/standard.yaml" leaves the folder of escape.yaml`},
		{"absolute.yaml", `"/etc/trainyard/standard.yaml" is absolute`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			_, err := LoadResolved(extendsFixture(tt.file))
			ps := problemsOf(t, err)
			require.Equal(t, "extends", ps[0].Path)
			require.Equal(t, 2, ps[0].Line)
			require.Contains(t, ps[0].Msg, tt.want)
		})
	}
}

func TestLoadResolved_BaseMayClimbWithinTheFolderButNotAbove(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "org.yaml", "rollbackAuthority: [sre]\n")
	writeFile(t, dir, "base/team.yaml", "extends: ../org.yaml\nrollbackAuthority: [lead]\n")
	writeFile(t, dir, "base/escape.yaml", "extends: ../../org.yaml\n")
	writeFile(t, dir, "ok.yaml", "name: ok\nextends: base/team.yaml\n"+fixtureStages)
	writeFile(t, dir, "bad.yaml", "name: bad\nextends: base/escape.yaml\n"+fixtureStages)

	res, err := LoadResolved(filepath.Join(dir, "ok.yaml"))
	require.NoError(t, err)
	require.Equal(t, []string{"sre", "lead"}, res.Runbook.RollbackAuthority)

	_, err = LoadResolved(filepath.Join(dir, "bad.yaml"))
	ps := problemsOf(t, err)
	require.Equal(t, "base/escape.yaml", ps[0].File)
	require.Contains(t, ps[0].Msg, "leaves the folder of bad.yaml")
}

func TestLoadResolved_RefusesASymlinkLeavingTheFolder(t *testing.T) {
	t.Parallel()
	outside, dir := t.TempDir(), t.TempDir()
	writeFile(t, outside, "standard.yaml", "rollbackAuthority: [sre]\n")
	if err := os.Symlink(outside, filepath.Join(dir, "base")); err != nil {
		t.Fatalf("create a symbolic link for the test: %v", err)
	}
	writeFile(t, dir, "team.yaml", "name: team\nextends: base/standard.yaml\n"+fixtureStages)
	_, err := LoadResolved(filepath.Join(dir, "team.yaml"))
	require.ErrorContains(t, err, "through a symbolic link")
}

func TestLoadResolved_RefusesABaseWithStages(t *testing.T) {
	t.Parallel()
	_, err := LoadResolved(extendsFixture("base-stages.yaml"))
	ps := problemsOf(t, err)
	require.Len(t, ps, 1, "%v", err)
	require.Equal(t, "base/with-stages.yaml", ps[0].File)
	require.Equal(t, 5, ps[0].Line)
	require.Equal(t, "a base runbook declares standards, not stages; stages belong in the runbooks that extend it", ps[0].Msg)
}

func TestLoadResolved_RefusesSectionsABaseCannotPassOn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "base/standard.yaml", "tier: 1\nstabilization: 30m\n")
	writeFile(t, dir, "team.yaml", "name: team\nextends: base/standard.yaml\n"+fixtureStages)
	_, err := LoadResolved(filepath.Join(dir, "team.yaml"))
	ps := problemsOf(t, err)
	require.Len(t, ps, 2, "%v", err)
	require.Contains(t, ps[0].Msg, "tier is not inherited from a base")
	require.Contains(t, ps[1].Msg, "stabilization is not inherited from a base")
}

func TestLoadResolved_ReportsBaseProblemsInTheBaseFileAtTheirLines(t *testing.T) {
	t.Parallel()
	_, err := LoadResolved(extendsFixture("base-broken.yaml"))
	ps := problemsOf(t, err)
	got := map[string]Problem{}
	for _, p := range ps {
		require.Equal(t, "base/broken.yaml", p.File, "%v", err)
		got[p.Path] = p
	}
	require.Equal(t, 5, got["approvals[0].roles"].Line, "%v", err)
	require.Equal(t, 6, got["approvals[0].when"].Line, "%v", err)
	require.Contains(t, got["approvals[0].when"].Msg, "unknown field scroe of risk")
	require.Contains(t, err.Error(), "base/broken.yaml:6:")
}

func TestLoadResolved_InheritedApprovalNeedsItsStage(t *testing.T) {
	t.Parallel()
	_, err := LoadResolved(extendsFixture("missing-stage.yaml"))
	ps := problemsOf(t, err)
	require.Len(t, ps, 1, "%v", err)
	require.Equal(t, "missing-stage.yaml", ps[0].File)
	require.Equal(t, "stages", ps[0].Path)
	require.Contains(t, ps[0].Msg, `approvals/security-review is mandatory from base/standard.yaml and holds stage "production", which this runbook does not have (stages: staging, prod)`)
	require.Contains(t, ps[0].Msg, "remove: approvals/security-review", "the fix is named")
}

func TestLoadResolved_TeamCannotChangeWhoSitsOnTheCAB(t *testing.T) {
	t.Parallel()
	_, err := LoadResolved(extendsFixture("cab-roles.yaml"))
	ps := problemsOf(t, err)
	require.Equal(t, "cab.roles", ps[0].Path)
	require.Contains(t, ps[0].Msg, "the CAB's roles [cab] are set by base/standard.yaml")
}

func TestLoadResolved_MissingBaseIsReportedAtExtends(t *testing.T) {
	t.Parallel()
	_, err := LoadResolved(extendsFixture("missing-base.yaml"))
	ps := problemsOf(t, err)
	require.Equal(t, "extends", ps[0].Path)
	require.Equal(t, 2, ps[0].Line)
	require.Contains(t, ps[0].Msg, "cannot read base/nonexistent.yaml: no such file")
}

func TestLoadResolved_TeamMayOnlyTightenRollback(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "base/standard.yaml", "rollback:\n  budget: 30m\n  forwardFix: true\n  circuitBreaker: {scope: runbook}\nchangeRequest:\n  provider: servicenow\n  when: risk.score >= 50\n")
	writeFile(t, dir, "team.yaml", "name: team\nextends: base/standard.yaml\nrollback:\n  budget: 2h\n  scope: stage\nchangeRequest:\n  provider: servicenow\n  assignmentGroup: payments\n  when: change.major\n"+fixtureStages)
	res, err := LoadResolved(filepath.Join(dir, "team.yaml"))
	require.NoError(t, err)
	rb := res.Runbook.Rollback
	require.Equal(t, 30*time.Minute, rb.Budget.D(), "the shorter budget")
	require.False(t, rb.ForwardFix, "forward fix needs both")
	require.Equal(t, "stage", rb.Scope)
	require.Equal(t, &CircuitBreaker{Scope: "runbook"}, rb.CircuitBreaker, "the base's circuit breaker stays")
	require.Equal(t, &ChangeRequest{Provider: "servicenow", AssignmentGroup: "payments", When: "(risk.score >= 50) || (change.major)"}, res.Runbook.ChangeRequest)
}

func TestLoadResolved_WithoutExtendsIsTheRunbookItself(t *testing.T) {
	t.Parallel()
	res, err := LoadResolved("examples/hello.yaml")
	require.NoError(t, err)
	rb, err := LoadFile("examples/hello.yaml")
	require.NoError(t, err)
	require.Equal(t, rb, res.Runbook)
	require.Empty(t, res.Base)
	require.Empty(t, res.Applied)
	require.Equal(t, Hash(rb), res.Hash)
}

func TestLoadResolved_EditingTheBaseChangesTheHash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "base/standard.yaml", "rollbackAuthority: [sre]\n")
	writeFile(t, dir, "team.yaml", "name: team\nextends: base/standard.yaml\n"+fixtureStages)
	before, err := LoadResolved(filepath.Join(dir, "team.yaml"))
	require.NoError(t, err)
	writeFile(t, dir, "base/standard.yaml", "rollbackAuthority: [sre, incident-commander]\n")
	after, err := LoadResolved(filepath.Join(dir, "team.yaml"))
	require.NoError(t, err)
	require.NotEqual(t, before.Hash, after.Hash)
}

func TestExamples_TeamPaymentsExtendsTheStandard(t *testing.T) {
	t.Parallel()
	rbs, err := Catalog{Dir: "examples"}.All()
	require.NoError(t, err)
	for _, rb := range rbs {
		require.NotEmpty(t, rb.Stages, "%s: the catalog offers releasable runbooks only, never a base", rb.Name)
	}
	res, err := LoadResolved("examples/team-payments.yaml")
	require.NoError(t, err)
	require.Equal(t, "base/standard.yaml", res.Base)
	require.Equal(t, []string{"security-review", "payments-lead-signoff"}, approvalNames(res.Runbook))
	require.NotContains(t, gateNames(res.Runbook), "image-scan")
	require.Contains(t, gateNames(res.Runbook), "unit-coverage")
	require.Contains(t, res.Runbook.RollbackAuthority, "release-manager")
	require.Len(t, res.Applied, 1)
	require.Equal(t, "WVR-2026-014", res.Applied[0].Waiver)
	require.True(t, strings.HasPrefix(res.Applied[0].Remove, "readiness/"))

	got, err := Catalog{Dir: "examples"}.Get("team-payments")
	require.NoError(t, err)
	require.Equal(t, res.Runbook, got)
}

const fixtureStages = `stages:
  - name: production
    targets:
      - {name: web, kind: command, site: local, deploy: ./deploy.sh, rollback: ./rollback.sh}
`

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(name))
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}
