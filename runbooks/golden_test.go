package runbooks

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.golden from the current messages")

// TestGolden_Messages parses each testdata/golden/<name>.yaml and compares the exact error
// (file:line:column: path: message lines) with <name>.golden. Run with -update to rewrite
// the goldens after changing a message on purpose, then read the diff.
func TestGolden_Messages(t *testing.T) {
	t.Parallel()
	inputs, err := filepath.Glob(filepath.Join("testdata", "golden", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(in)
			require.NoError(t, err)
			_, err = Parse(filepath.Base(in), data)
			require.Error(t, err, "a golden input must be invalid")
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "no golden yet: run go test ./runbooks/ -run TestGolden -update")
			require.Equal(t, string(want), got)
		})
	}
}
