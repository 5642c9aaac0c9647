package runbooks

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// FuzzParse feeds Parse arbitrary bytes, seeded with the example runbooks and the golden
// inputs. Parse must never panic; its problems must be in file order; the shape check must
// foresee every type error yaml.v3 would raise; Validate must be stable; and a runbook must
// survive the JSON round trip a release makes (its runbook travels in the workflow input)
// with the same problems, or be invalid when it cannot make it.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"examples/*.yaml", "testdata/golden/*.yaml"} {
		files, err := filepath.Glob(pattern)
		require.NoError(f, err)
		for _, file := range files {
			data, err := os.ReadFile(file)
			require.NoError(f, err)
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rb, err := Parse("fuzz.yaml", data)
		if err != nil {
			var inv *InvalidError
			require.ErrorAs(t, err, &inv)
			require.NotEmpty(t, inv.Problems)
			for i, p := range inv.Problems {
				require.NotEmpty(t, p.Msg)
				if i > 0 {
					prev := inv.Problems[i-1]
					require.True(t, prev.Line < p.Line || prev.Line == p.Line && prev.Column <= p.Column, "problems out of file order: %v", inv)
				}
			}
		}

		if root, _ := parseYAML(data); root != nil {
			if shape := checkShape(root); !shape.fatal {
				var again Runbook
				var te *yaml.TypeError
				err := root.Decode(&again)
				require.False(t, errors.As(err, &te), "the shape check missed a type error: %v", err)
			}
		}

		first := rb.Validate()
		require.Equal(t, first, rb.Validate(), "Validate must be stable")

		js, err := json.Marshal(rb)
		if err != nil {
			require.NotEmpty(t, first, "a runbook that cannot travel as JSON must be invalid: %v", err)
			return
		}
		var back Runbook
		require.NoError(t, json.Unmarshal(js, &back), "JSON: %s", js)
		own := rb
		own.Extensions = nil // json:"-": only unknown top-level keys depend on it
		require.Equal(t, own.Validate(), back.Validate(), "JSON: %s", js)
	})
}
