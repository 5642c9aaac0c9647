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
