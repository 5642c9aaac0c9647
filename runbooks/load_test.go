package runbooks

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestExamples_AreValid(t *testing.T) {
	t.Parallel()
	rbs, err := Catalog{Dir: "examples"}.All()
	require.NoError(t, err)
	require.NotEmpty(t, rbs)
	hello, err := Catalog{Dir: "examples"}.Get("hello")
	require.NoError(t, err)
	require.Equal(t, []string{"local"}, hello.Sites())
	require.Equal(t, 20*time.Second, hello.Stabilization.Window.D())
	require.Len(t, hello.GateBefore("production"), 1)
}

func TestParse_ReportsEveryProblemWithItsLine(t *testing.T) {
	t.Parallel()
	src := `name: Bad_Name
approvals:
  - name: signoff
    before: prod
    roles: []
stages:
  - name: staging
    targets:
      - name: web
        kind: command
        site: dc1
        deploy: ./deploy.sh
  - name: staging
    targets:
      - name: db
        kind: helm
`
	_, err := Parse("bad.yaml", []byte(src))
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	got := map[string]int{}
	for _, p := range inv.Problems {
		got[p.Path] = p.Line
	}
	require.Equal(t, 1, got["name"], "runbook name")
	require.Equal(t, 4, got["approvals[0].before"], "unknown stage")
	require.Equal(t, 5, got["approvals[0].roles"], "empty roles")
	require.Equal(t, 9, got["stages[0].targets[0]"]+got["stages[0].targets[0].rollback"], "missing rollback reported at its target")
	require.Equal(t, 13, got["stages[1].name"], "duplicate stage")
	require.Equal(t, 16, got["stages[1].targets[0].kind"], "unknown kind")
	require.Contains(t, err.Error(), "bad.yaml:16:9: stages[1].targets[0].kind: unknown target kind \"helm\"")
}

func TestParse_UnknownFieldIsLocated(t *testing.T) {
	t.Parallel()
	_, err := Parse("typo.yaml", []byte("name: x\nstagez: []\n"))
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	var found bool
	for _, p := range inv.Problems {
		if strings.Contains(p.Msg, `unknown field "stagez"`) {
			found = true
			require.Equal(t, 2, p.Line)
		}
	}
	require.True(t, found, "no problem names the unknown field: %v", inv)
	for i := 1; i < len(inv.Problems); i++ {
		require.LessOrEqual(t, inv.Problems[i-1].Line, inv.Problems[i].Line, "problems are in file order")
	}
}

func TestParse_BadDurationIsLocated(t *testing.T) {
	t.Parallel()
	_, err := Parse("d.yaml", []byte("name: x\nstabilization: soon\nstages: []\n"))
	require.Error(t, err)
	require.Contains(t, err.Error(), "d.yaml:2:1: stabilization: ")
	require.Contains(t, err.Error(), `"soon" is not a duration`)
}

func TestParse_EmptyFileSaysWhatIsNeeded(t *testing.T) {
	t.Parallel()
	_, err := Parse("empty.yaml", nil)
	require.ErrorContains(t, err, "the file is empty")
}

func TestCatalog_BrokenFileDoesNotHideOthers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := "name: good\nstages:\n  - name: s\n    targets:\n      - {name: t, kind: command, site: a, deploy: x, rollback: y}\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "good.yaml"), []byte(good), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("name: [\n"), 0o644))
	rbs, err := Catalog{Dir: dir}.All()
	require.Error(t, err)
	require.Len(t, rbs, 1)
	_, err = Catalog{Dir: dir}.Get("missing")
	require.True(t, errors.Is(err, ErrNotFound))
}

func TestParse_ExtensionFieldsHoldAnchors(t *testing.T) {
	t.Parallel()
	src := `x-scripts:
  deploy: &deploy echo deploy
stages:
  - name: s
    targets:
      - {name: t, kind: command, site: a, deploy: *deploy, rollback: undo}
name: anchors
`
	rb, err := Parse("a.yaml", []byte(src))
	require.NoError(t, err)
	require.Equal(t, "echo deploy", rb.Stages[0].Targets[0].Deploy)
}

func TestProblem_StringLeavesOutWhatIsUnknown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		p    Problem
		want string
	}{
		{Problem{File: "r.yaml", Line: 3, Column: 5, Path: "stages", Msg: "m"}, "r.yaml:3:5: stages: m"},
		{Problem{File: "r.yaml", Line: 3, Path: "stages", Msg: "m"}, "r.yaml:3: stages: m"},
		{Problem{File: "r.yaml", Msg: "m"}, "r.yaml: m"},
		{Problem{Line: 3, Column: 5, Msg: "m"}, "3:5: m"},
		{Problem{Column: 5, Path: "p", Msg: "m"}, "p: m"},
		{Problem{Msg: "m"}, "m"},
	} {
		require.Equal(t, tc.want, tc.p.String())
	}
}

func TestParse_ProblemsCarryLineAndColumn(t *testing.T) {
	t.Parallel()
	src := "name: r\nstages:\n  - name: s\n    targets:\n      - {name: t, kind: helm}\n"
	_, err := Parse("r.yaml", []byte(src))
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	got := map[string][2]int{}
	for _, p := range inv.Problems {
		got[p.Path] = [2]int{p.Line, p.Column}
	}
	require.Equal(t, [2]int{5, 19}, got["stages[0].targets[0].kind"], "at the key of the field")
	require.Contains(t, err.Error(), `r.yaml:5:19: stages[0].targets[0].kind: unknown target kind "helm": use one of command, argocd, spinnaker, hardware, flag`)
}

func TestParse_YAMLSyntaxErrorsHaveNoColumn(t *testing.T) {
	t.Parallel()
	_, err := Parse("s.yaml", []byte("name: x\nowners: [a\n"))
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	require.Len(t, inv.Problems, 1)
	require.Zero(t, inv.Problems[0].Column)
	require.Positive(t, inv.Problems[0].Line)
}

func TestParse_BadValueDoesNotHideTheRest(t *testing.T) {
	t.Parallel()
	src := "name: r\ntier: 9\nstages:\n  - name: s\n    targets:\n      - {name: t, kind: command, site: a, deploy: x, rollback: y, timeout: soon}\n"
	_, err := Parse("r.yaml", []byte(src))
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	var paths []string
	for _, p := range inv.Problems {
		paths = append(paths, p.Path)
	}
	require.Equal(t, []string{"tier", "stages[0].targets[0].timeout"}, paths)
}

func TestParse_EmptyListItemKeepsTheIndexOfLaterItems(t *testing.T) {
	t.Parallel()
	// yaml.v3 leaves out list items it cannot decode; Parse keeps them as zero values so a
	// path names the item the person wrote.
	src := "name: r\nstages:\n  -\n  - name: s\n    targets:\n      - [oops]\n      - {name: t, kind: helm}\n"
	_, err := Parse("r.yaml", []byte(src))
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	got := map[string]int{}
	for _, p := range inv.Problems {
		got[p.Path] = p.Line
	}
	require.Equal(t, 3, got["stages[0].name"])
	require.Equal(t, 6, got["stages[1].targets[0]"])
	require.Equal(t, 7, got["stages[1].targets[1].kind"])
	require.NotContains(t, got, "stages[1].targets[0].name", "nothing more is said about a value set aside")
}

func TestParse_UnknownFieldInStabilizationBlock(t *testing.T) {
	t.Parallel()
	// Stabilization decodes itself, out of reach of yaml.v3's KnownFields.
	_, err := Parse("r.yaml", []byte("name: r\nstabilization:\n  window: 1m\n  onBrech: page\n"+okStage))
	require.ErrorContains(t, err, `r.yaml:4:3: stabilization.onBrech: unknown field "onBrech" (did you mean "onBreach"?)`)
}

func TestParse_SecondDocumentIsReported(t *testing.T) {
	t.Parallel()
	_, err := Parse("r.yaml", []byte("name: r\n"+okStage+"---\nname: other\n"))
	require.ErrorContains(t, err, "r.yaml:6:1: a runbook file holds one YAML document")
	_, err = Parse("r.yaml", []byte("name: r\n"+okStage+"---\n"))
	require.NoError(t, err, "a trailing --- holds nothing")
}

func TestPositionOf_FollowsAliasesAndMerges(t *testing.T) {
	t.Parallel()
	src := "x-t: &t\n  kind: command\n  site: a\nname: r\nstages:\n  - name: s\n    targets:\n      - <<: *t\n        name: web\n      - *t\n"
	rb, err := Parse("r.yaml", []byte(src))
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	require.Len(t, rb.Stages[0].Targets, 2)
	got := map[string][2]int{}
	for _, p := range inv.Problems {
		got[p.Path] = [2]int{p.Line, p.Column}
	}
	require.Equal(t, [2]int{8, 9}, got["stages[0].targets[0].deploy"], "missing field: at its block")
	require.Equal(t, [2]int{10, 9}, got["stages[0].targets[1].name"], "missing field of an alias: at the alias")

	var root yaml.Node
	require.NoError(t, yaml.Unmarshal([]byte(src), &root))
	line, col := positionOf(&root, "stages[0].targets[0].site")
	require.Equal(t, [2]int{3, 3}, [2]int{line, col}, "a merged field: where the anchor declares it")
	require.Equal(t, 2, lineOf(&root, "stages[0].targets[1].kind"), "through an alias: where the anchor declares it")
}
