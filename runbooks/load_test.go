package runbooks

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
	require.Contains(t, err.Error(), "bad.yaml:16: stages[1].targets[0].kind: unknown target kind \"helm\"")
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
	require.Contains(t, err.Error(), "d.yaml:2: ")
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

func TestNewCatalog_SeesEditedFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "r.yaml")
	write := func(desc string) {
		src := "name: r\ndescription: " + desc + "\nstages:\n  - name: s\n    targets:\n      - {name: t, kind: command, site: a, deploy: x, rollback: y}\n"
		require.NoError(t, os.WriteFile(path, []byte(src), 0o644))
	}
	c := NewCatalog(dir)
	write("first")
	rb, err := c.Get("r")
	require.NoError(t, err)
	require.Equal(t, "first", rb.Description)
	write("second edit") // a different size, so the change is seen even within one mtime tick
	rb, err = c.Get("r")
	require.NoError(t, err)
	require.Equal(t, "second edit", rb.Description)
}
