package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Records travel through Temporal as JSON activity inputs: every field must survive.
func TestReleaseRecord_SurvivesJSONRoundTrip(t *testing.T) {
	t.Parallel()
	ended := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	in := ReleaseRecord{ID: "r", Runbook: "rb", Version: "1", Requester: "ci", Phase: "succeeded", Environment: "prod",
		Failure: "f", Seq: 7, StartedAt: ended.Add(-time.Hour), UpdatedAt: ended, EndedAt: &ended}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	var out ReleaseRecord
	require.NoError(t, json.Unmarshal(b, &out))
	require.Equal(t, in, out)
}

func TestOneRoundTrip_AddsBinaryParametersUnlessSet(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"postgres://u@h:5432/db?sslmode=disable": "postgres://u@h:5432/db?binary_parameters=yes&sslmode=disable",
		"postgresql://u@h/db":                    "postgresql://u@h/db?binary_parameters=yes",
		"host=h dbname=db":                       "host=h dbname=db binary_parameters=yes",
		"postgres://u@h/db?binary_parameters=no": "postgres://u@h/db?binary_parameters=no",
		"host=h binary_parameters=no":            "host=h binary_parameters=no",
	}
	for in, want := range cases {
		require.Equal(t, want, oneRoundTrip(in), in)
	}
}
