package logtail

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBuffer_KeepsTheLastBytesAndLines(t *testing.T) {
	t.Parallel()
	b := New(20)
	for i := range 10 {
		_, _ = fmt.Fprintf(b, "line %d\n", i)
	}
	require.Equal(t, "line 8\nline 9", b.LastLines(2))
	require.LessOrEqual(t, len(b.LastLines(100)), 20)
	require.Equal(t, "c", LastLines("a\nb\nc\n", 1))
}

func TestStartupError_SaysWhatWhyHintAndLog(t *testing.T) {
	t.Parallel()
	cause := fmt.Errorf("exit status 1")
	e := &StartupError{Msg: "start postgres", Err: cause, Hint: "remove postmaster.pid", Log: "postgres log", Tail: "FATAL: lock file"}
	require.Equal(t, "start postgres: exit status 1\nhint: remove postmaster.pid\npostgres log, last lines:\nFATAL: lock file", e.Error())
	require.ErrorIs(t, e, cause)
}
