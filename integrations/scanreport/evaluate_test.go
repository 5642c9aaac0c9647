package scanreport

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// waivers waives the ids given.
func waivers(ids ...string) func(string) bool {
	return func(id string) bool { return slices.Contains(ids, id) }
}

func ids(fs []Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

func TestEvaluate_DecidesEachSample(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		file      string
		failAt    Severity
		waived    func(string) bool
		passed    bool
		blocking  []string
		waivedIDs []string
		counts    map[string]int
		summary   string
	}{
		{
			name: "image scan at high, with the unfixable zlib CVE waived",
			file: "trivy-image.json", failAt: High, waived: waivers("CVE-2023-45853", "CVE-2024-0727"),
			blocking:  []string{"CVE-2024-24790", "aws-access-key-id", "CVE-2024-45337"},
			waivedIDs: []string{"CVE-2023-45853"},
			counts:    map[string]int{"critical": 3, "high": 1, "medium": 2, "low": 1, "unknown": 1},
			summary:   "2 critical, 1 high blocking (CVE-2024-24790 in stdlib@v1.21.5, aws-access-key-id in /app/config/.env:3, CVE-2024-45337 in golang.org/x/crypto@v0.21.0); 1 waived",
		},
		{
			name: "image scan at critical with every critical waived passes",
			file: "trivy-image.json", failAt: Critical, waived: waivers("CVE-2023-45853", "CVE-2024-24790", "aws-access-key-id"),
			passed:    true,
			blocking:  []string{},
			waivedIDs: []string{"CVE-2023-45853", "CVE-2024-24790", "aws-access-key-id"},
			counts:    map[string]int{"critical": 3, "high": 1, "medium": 2, "low": 1, "unknown": 1},
			summary:   "none at or above critical; 1 high, 2 medium, 1 low, 1 unknown below; 3 waived",
		},
		{
			name: "unknown as the bar blocks on everything and names five",
			file: "trivy-image.json", failAt: Unknown,
			blocking:  []string{"CVE-2023-45853", "CVE-2024-24790", "aws-access-key-id", "CVE-2024-45337", "CVE-2024-0727", "CVE-2023-45288", "CVE-2024-2511", "TEMP-0841856-B18BAF"},
			waivedIDs: []string{},
			counts:    map[string]int{"critical": 3, "high": 1, "medium": 2, "low": 1, "unknown": 1},
			summary:   "3 critical, 1 high, 2 medium, 1 low, 1 unknown blocking (CVE-2023-45853 in zlib1g@1:1.2.13.dfsg-1, CVE-2024-24790 in stdlib@v1.21.5, aws-access-key-id in /app/config/.env:3, CVE-2024-45337 in golang.org/x/crypto@v0.21.0, CVE-2024-0727 in libssl3@3.0.11-1~deb12u2, and 3 more)",
		},
		{
			name: "config scan at medium",
			file: "trivy-config.json", failAt: Medium, waived: waivers("DS002", "KSV014", "DS026"),
			blocking:  []string{"KSV001"},
			waivedIDs: []string{"DS002", "KSV014"},
			counts:    map[string]int{"critical": 0, "high": 2, "medium": 1, "low": 1, "unknown": 0},
			summary:   "1 medium blocking (KSV001 in k8s/deployment.yaml:21); 2 waived",
		},
		{
			name: "CodeQL at high, nothing waived",
			file: "codeql-go.sarif", failAt: High,
			blocking:  []string{"go/command-injection", "go/sql-injection", "go/clear-text-logging"},
			waivedIDs: []string{},
			counts:    map[string]int{"critical": 1, "high": 2, "medium": 2, "low": 0, "unknown": 0},
			summary:   "1 critical, 2 high blocking (go/command-injection in cmd/worker/exec.go:88, go/sql-injection in internal/orders/store.go:42, go/clear-text-logging in internal/auth/login.go:31)",
		},
		{
			name: "Semgrep at critical passes",
			file: "semgrep.sarif", failAt: Critical,
			passed:    true,
			blocking:  []string{},
			waivedIDs: []string{},
			counts:    map[string]int{"critical": 0, "high": 2, "medium": 1, "low": 1, "unknown": 0},
			summary:   "none at or above critical; 2 high, 1 medium, 1 low below",
		},
		{
			name: "a clean report passes at low",
			file: "trivy-clean.json", failAt: Low, waived: waivers("CVE-2024-0001"),
			passed:    true,
			blocking:  []string{},
			waivedIDs: []string{},
			counts:    map[string]int{"critical": 0, "high": 0, "medium": 0, "low": 0, "unknown": 0},
			summary:   "no findings",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := Evaluate(parseSample(t, tt.file), tt.failAt, tt.waived)
			require.Equal(t, tt.passed, v.Passed)
			require.Equal(t, tt.blocking, ids(v.Blocking))
			require.Equal(t, tt.waivedIDs, ids(v.Waived))
			require.Equal(t, tt.counts, v.Counts)
			require.Equal(t, tt.summary, v.Summary)
		})
	}
}

func TestEvaluate_AsksOnlyAboutFindingsThatWouldBlock(t *testing.T) {
	t.Parallel()
	r := Report{Findings: []Finding{
		{ID: "CVE-low", Severity: Low},
		{ID: "CVE-high", Severity: High},
	}}
	var asked []string
	v := Evaluate(r, High, func(id string) bool {
		asked = append(asked, id)
		return true
	})
	require.Equal(t, []string{"CVE-high"}, asked)
	require.True(t, v.Passed)
	require.Equal(t, []string{"CVE-high"}, ids(v.Waived), "a waiver on a finding below the bar is not counted as used")
}

func TestEvaluate_SummaryNamesEachBlockingPlaceOnce(t *testing.T) {
	t.Parallel()
	// Two Go binaries in one image built with the same toolchain report the same CVE twice.
	var fs []Finding
	for range 2 {
		fs = append(fs, Finding{ID: "CVE-2024-24790", Severity: Critical, Location: "stdlib@v1.21.5"})
	}
	fs = append(fs, Finding{Title: "Hard-coded password", Severity: High})
	v := Evaluate(Report{Findings: fs}, High, nil)
	require.False(t, v.Passed)
	require.Len(t, v.Blocking, 3)
	require.Equal(t, "2 critical, 1 high blocking (CVE-2024-24790 in stdlib@v1.21.5, Hard-coded password)", v.Summary)
}

func TestEvaluate_ListsAtMostFiveBlockingFindings(t *testing.T) {
	t.Parallel()
	var fs []Finding
	for i := range 12 {
		fs = append(fs, Finding{ID: fmt.Sprintf("CVE-2024-%04d", i), Severity: High})
	}
	v := Evaluate(Report{Findings: fs}, Medium, nil)
	require.Equal(t, "12 high blocking (CVE-2024-0000, CVE-2024-0001, CVE-2024-0002, CVE-2024-0003, CVE-2024-0004, and 7 more)", v.Summary)
}
