package freeze

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	}
	return dir
}

func TestLoadCatalog_LoadsValidFilesAndReportsBrokenOnes(t *testing.T) {
	t.Parallel()
	dir := writeFiles(t, map[string]string{
		"holidays.yaml": "name: holidays\ntimeZone: Europe/Berlin\nwindows:\n  - name: christmas\n    start: 2026-12-24\n    end: 2026-12-26\n",
		// No name: the file's base name.
		"weekend.yml":           "windows:\n  - name: friday\n    cron: \"0 16 * * 5\"\n    duration: 64h\n",
		"broken.yaml":           "name: broken\nwindows:\n  - name: w\n    rrule: FREQ=WEEKLY\n    cron: \"0 1 * * *\"\n    duration: 1h\n",
		"typo.yaml":             "name: typo\nwindow:\n  - name: w\n",
		"dup-a.yaml":            "name: twice\nwindows:\n  - name: x\n    start: 2026-01-01\n    end: 2026-01-01\n",
		"dup-b.yaml":            "name: twice\nwindows:\n  - name: x\n    start: 2026-01-02\n    end: 2026-01-02\n",
		"notes.txt":             "not a calendar",
		"examples/ignored.yaml": "name: ignored\nwindows:\n  - name: w\n    start: 2026-01-01\n    end: 2026-01-01\n",
	})
	cat, err := LoadCatalog(dir)
	require.Error(t, err)
	require.Contains(t, err.Error(), "not both")
	require.Contains(t, err.Error(), "field window not found")
	require.Contains(t, err.Error(), `calendar "twice" is also defined in`)

	names := []string{}
	for _, fc := range cat.All() {
		names = append(names, fc.Calendar.Name)
	}
	require.Equal(t, []string{"holidays", "weekend"}, names)
	fc, ok := cat.Get("holidays")
	require.True(t, ok)
	require.Equal(t, filepath.Join(dir, "holidays.yaml"), fc.File)
	frozen, _, window := fc.Schedule.FrozenAt(time.Date(2026, 12, 25, 0, 0, 0, 0, time.UTC), prod)
	require.True(t, frozen)
	require.Equal(t, "christmas", window)

	_, ok = cat.Get("ignored")
	require.False(t, ok, "subfolders are not read")
	require.ErrorContains(t, cat.Broken("broken"), "not both")
	require.ErrorContains(t, cat.Broken("typo"), "field window not found")
	require.NoError(t, cat.Broken("weekend"))
	require.Len(t, cat.Problems(), 3, "broken, typo, and the second file of one name")
	_, ok = cat.Get("twice")
	require.False(t, ok, "a name two files define is offered by neither")
	require.ErrorContains(t, cat.Broken("twice"), "rename or remove one of them")
	var inv *InvalidError
	require.True(t, errors.As(cat.Broken("broken"), &inv))
	require.Equal(t, filepath.Join(dir, "broken.yaml"), inv.Problems[0].File)
}

func TestLoadCatalog_MissingFolderIsEmpty(t *testing.T) {
	t.Parallel()
	cat, err := LoadCatalog(filepath.Join(t.TempDir(), "nope"))
	require.NoError(t, err)
	require.Empty(t, cat.All())
	var none *Catalog
	_, ok := none.Get("x")
	require.False(t, ok, "a nil catalog is empty")
	require.Empty(t, none.All())
}

func TestLoadCatalog_ExampleCalendarsAreValid(t *testing.T) {
	t.Parallel()
	cat, err := LoadCatalog("../calendars/examples")
	require.NoError(t, err)
	require.Len(t, cat.All(), 2)

	holidays, ok := cat.Get("holidays")
	require.True(t, ok)
	at := time.Date(2026, 12, 25, 12, 0, 0, 0, time.UTC)
	frozen, until, window := holidays.Schedule.FrozenAt(at, Subject{Environment: "staging", Runbook: "web"})
	require.True(t, frozen)
	require.Equal(t, "christmas", window)
	require.Equal(t, "2026-12-27T00:00:00+01:00", until.Format(time.RFC3339))
	// In production the year-end freeze spans christmas and new year.
	_, until, _ = holidays.Schedule.FrozenAt(at, Subject{Environment: "production", Runbook: "web"})
	require.Equal(t, "2027-01-04T00:00:00+01:00", until.Format(time.RFC3339))

	weekend, ok := cat.Get("weekend")
	require.True(t, ok)
	frozen, _, _ = weekend.Schedule.FrozenAt(time.Date(2026, 6, 9, 23, 0, 0, 0, time.UTC), Subject{Environment: "production", Runbook: "payments", Tier: 1})
	require.True(t, frozen, "tier 1 overnight")
	frozen, _, _ = weekend.Schedule.FrozenAt(time.Date(2026, 6, 9, 23, 0, 0, 0, time.UTC), Subject{Environment: "production", Runbook: "web", Tier: 2})
	require.False(t, frozen, "tier 2 overnight")
}

func TestParseCalendar_DatesStayText(t *testing.T) {
	t.Parallel()
	cal, err := ParseCalendar("x.yaml", []byte("name: x\nwindows:\n  - name: w\n    start: 2026-12-24\n    end: 2026-12-26T12:00:00+01:00\n"))
	require.NoError(t, err)
	require.Equal(t, "2026-12-24", cal.Windows[0].Start)
	require.Equal(t, "2026-12-26T12:00:00+01:00", cal.Windows[0].End)
}
