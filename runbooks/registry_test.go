package runbooks

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeRunbook(t *testing.T, dir, file, name, desc string) {
	t.Helper()
	src := "name: " + name + "\ndescription: " + desc + "\nstages:\n  - name: s\n    targets:\n      - {name: t, kind: command, site: a, deploy: x, rollback: y}\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, file), []byte(src), 0o644))
}

func TestRegistry_ServesWhatWasLoadedUntilReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeRunbook(t, dir, "a.yaml", "a", "first")
	reg, err := NewRegistry(dir)
	require.NoError(t, err)

	writeRunbook(t, dir, "a.yaml", "a", "edited")
	writeRunbook(t, dir, "b.yaml", "b", "new")
	rb, err := reg.Get("a")
	require.NoError(t, err)
	require.Equal(t, "first", rb.Description, "an edit applies only on reload")
	_, err = reg.Get("b")
	require.ErrorIs(t, err, ErrNotFound)

	require.NoError(t, reg.Reload())
	rb, err = reg.Get("a")
	require.NoError(t, err)
	require.Equal(t, "edited", rb.Description)
	all, problems := reg.All()
	require.NoError(t, problems)
	require.Len(t, all, 2)
}

func TestRegistry_ReloadWithABrokenFileKeepsEverythingAsItWas(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeRunbook(t, dir, "a.yaml", "a", "good")
	reg, err := NewRegistry(dir)
	require.NoError(t, err)

	writeRunbook(t, dir, "a.yaml", "a", "better")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.yaml"), []byte("name: [\n"), 0o644))
	err = reg.Reload()
	require.Error(t, err)
	require.Contains(t, err.Error(), "stay in use")
	require.Contains(t, err.Error(), "b.yaml")
	rb, err := reg.Get("a")
	require.NoError(t, err)
	require.Equal(t, "good", rb.Description, "all or nothing")
}

func TestNewRegistry_ServesValidFilesBesideABrokenOne(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeRunbook(t, dir, "a.yaml", "a", "good")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.yaml"), []byte("name: [\n"), 0o644))
	reg, err := NewRegistry(dir)
	require.NoError(t, err)
	_, err = reg.Get("a")
	require.NoError(t, err)
	_, problems := reg.All()
	require.Error(t, problems)
}

func TestNewRegistry_UnreadableFolderFails(t *testing.T) {
	t.Parallel()
	_, err := NewRegistry(filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err)
}
