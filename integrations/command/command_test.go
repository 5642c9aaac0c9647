package command

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestShell_RunsScriptWithEnvInDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "site")
	res, err := Shell{}.Run(context.Background(), Spec{
		Script: `echo "v=$TRAINYARD_VERSION"; echo "$TRAINYARD_VERSION" > out.txt`,
		Dir:    dir,
		Env:    []string{"TRAINYARD_VERSION=1.2.3"},
	}, nil)
	require.NoError(t, err)
	require.Equal(t, 0, res.ExitCode)
	require.Equal(t, "v=1.2.3\n", res.Output)
	b, err := os.ReadFile(filepath.Join(dir, "out.txt"))
	require.NoError(t, err)
	require.Equal(t, "1.2.3\n", string(b))
}

func TestShell_NonZeroExitIsExitErrorWithOutput(t *testing.T) {
	t.Parallel()
	res, err := Shell{}.Run(context.Background(), Spec{Script: "echo boom >&2; exit 3"}, nil)
	var ee *ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 3, ee.ExitCode)
	require.False(t, ee.TimedOut)
	require.Equal(t, "boom\n", res.Output)
}

func TestShell_TimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The background child would outlive a kill of the shell alone and write the file.
	_, err := Shell{}.Run(context.Background(), Spec{
		Script:  "(sleep 2; touch late) & sleep 30",
		Dir:     dir,
		Timeout: 300 * time.Millisecond,
	}, nil)
	var ee *ExitError
	require.ErrorAs(t, err, &ee)
	require.True(t, ee.TimedOut)
	time.Sleep(2500 * time.Millisecond)
	_, statErr := os.Stat(filepath.Join(dir, "late"))
	require.True(t, errors.Is(statErr, os.ErrNotExist), "the background child survived the timeout")
}

func TestShell_CancelStopsCommand(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	_, err := Shell{}.Run(ctx, Spec{Script: "sleep 30"}, nil)
	require.ErrorIs(t, err, context.Canceled)
}

func TestShell_KeepsOnlyTheTailOfLongOutput(t *testing.T) {
	t.Parallel()
	res, err := Shell{}.Run(context.Background(), Spec{Script: "yes line | head -n 20000; echo LAST"}, nil)
	require.NoError(t, err)
	require.LessOrEqual(t, len(res.Output), MaxOutput+64)
	require.True(t, strings.HasPrefix(res.Output, "[earlier output dropped]"))
	require.True(t, strings.HasSuffix(res.Output, "LAST\n"))
}

func TestShell_ReportsProgress(t *testing.T) {
	t.Parallel()
	var lines []string
	_, err := Shell{}.Run(context.Background(), Spec{Script: "echo one; echo two"}, func(s string) { lines = append(lines, s) })
	require.NoError(t, err)
	require.NotEmpty(t, lines)
	require.Equal(t, "two", lines[len(lines)-1])
}

func TestLastLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 400)
	tests := []struct {
		name string
		out  string
		want string
	}{
		{name: "empty", out: "", want: ""},
		{name: "only blank lines", out: "\n  \n\t\n", want: ""},
		{name: "one line without newline", out: "boom", want: "boom"},
		{name: "last of several", out: "a\nb\nc\n", want: "c"},
		{name: "skips trailing blank lines", out: "a\nfatal: no space\n\n   \n", want: "fatal: no space"},
		{name: "trims surrounding space", out: "a\n   indented error  \n", want: "indented error"},
		{name: "carriage returns", out: "a\r\nlast\r\n", want: "last"},
		{name: "long lines are cut to 300 bytes", out: "a\n" + long + "\n", want: strings.Repeat("x", 300) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, LastLine(tt.out))
		})
	}
}
