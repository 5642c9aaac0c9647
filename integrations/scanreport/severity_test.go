package scanreport

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseSeverity_ReadsGateSeveritiesInAnyCase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Severity
	}{
		{"low", Low}, {"Medium", Medium}, {"HIGH", High}, {" critical ", Critical}, {"cRiTiCaL", Critical},
	}
	for _, tt := range tests {
		got, err := ParseSeverity(tt.in)
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
}

func TestParseSeverity_RefusesOtherNames(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "unknown", "severe", "3", "hi"} {
		_, err := ParseSeverity(in)
		require.ErrorIs(t, err, ErrInvalidSeverity, in)
		require.ErrorContains(t, err, "use low, medium, high or critical")
	}
}

func TestSeverity_IsOrdered(t *testing.T) {
	t.Parallel()
	require.True(t, Unknown < Low && Low < Medium && Medium < High && High < Critical)
	require.Equal(t, Unknown, Severity(0), "the zero value is Unknown")
}

func TestSeverity_StringNamesEachAndMarksStrangers(t *testing.T) {
	t.Parallel()
	names := map[Severity]string{Unknown: "unknown", Low: "low", Medium: "medium", High: "high", Critical: "critical", 9: "severity(9)"}
	for s, want := range names {
		require.Equal(t, want, s.String())
	}
}

func TestSeverity_JSONIsTheLowercaseName(t *testing.T) {
	t.Parallel()
	out, err := json.Marshal(Finding{ID: "CVE-1", Severity: Critical})
	require.NoError(t, err)
	require.JSONEq(t, `{"id": "CVE-1", "severity": "critical", "title": ""}`, string(out))

	for s := Unknown; s <= Critical; s++ {
		b, err := json.Marshal(s)
		require.NoError(t, err)
		var back Severity
		require.NoError(t, json.Unmarshal(b, &back))
		require.Equal(t, s, back)
	}

	var s Severity
	require.NoError(t, json.Unmarshal([]byte(`"HIGH"`), &s))
	require.Equal(t, High, s)
	require.ErrorIs(t, json.Unmarshal([]byte(`"severe"`), &s), ErrInvalidSeverity)
	_, err = json.Marshal(Severity(42))
	require.ErrorIs(t, err, ErrInvalidSeverity)
}
