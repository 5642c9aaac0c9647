package scanreport

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return data
}

func parseSample(t testing.TB, name string) Report {
	t.Helper()
	r, err := Parse(readSample(t, name))
	require.NoError(t, err)
	return r
}

func TestParse_ReadsEverySample(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want Report
	}{
		{
			file: "codeql-go.sarif",
			want: Report{
				Format:   FormatSARIF,
				Tool:     "CodeQL",
				Artifact: "https://github.com/acme/shop@9f3c2e1d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e",
				Findings: []Finding{
					{ID: "go/sql-injection", Severity: High, Title: "This query depends on a [user-provided value](1).", Location: "internal/orders/store.go:42"},
					{ID: "go/command-injection", Severity: Critical, Title: "This command depends on a [user-provided value](1).", Location: "cmd/worker/exec.go:88"},
					{ID: "go/uncontrolled-allocation-size", Severity: Medium, Title: "This memory allocation depends on a [user-provided value](1).", Location: "internal/api/upload.go:57"},
					{ID: "go/clear-text-logging", Severity: High, Title: "[Sensitive data returned by an access to Password](1) flows to a logging call.", Location: "internal/auth/login.go:31"},
					// No security-severity: the rule's default level, warning.
					{ID: "go/redundant-recover", Severity: Medium, Title: "This call to 'recover' has no effect because [enclosing function](1) is never called using a defer statement.", Location: "internal/jobs/runner.go:140"},
				},
			},
		},
		{
			file: "semgrep.sarif",
			want: Report{
				Format: FormatSARIF,
				Tool:   "Semgrep OSS",
				Findings: []Finding{
					{ID: "python.django.security.injection.tainted-sql-string.tainted-sql-string", Severity: High, Title: "Detected user input used to manually construct a SQL string. This is usually bad practice because manual construction could accidentally result in a SQL injection. An attacker could use a SQL injection to steal or modify contents of the database. Instead, use a parameterized query which is available by default in most database engines.", Location: "app/orders/views.py:64"},
					{ID: "javascript.lang.security.audit.unsafe-formatstring.unsafe-formatstring", Severity: Medium, Title: "Detected string concatenation with a non-literal variable in a util.format / console.log function. If an attacker injects a format specifier in the string, it will forge the log message. Try to use constant values for the format string.", Location: "web/src/api/client.ts:17"},
					{ID: "python.lang.best-practice.open-never-closed.open-never-closed", Severity: Low, Title: "file object opened without corresponding close", Location: "scripts/migrate.py:9"},
					{ID: "dockerfile.security.missing-user-entrypoint.missing-user-entrypoint", Severity: High, Title: "By not specifying a USER, a program in the container may run as 'root'. This is a security hazard. If an attacker can control a process running as root, they may have control over the container. Ensure that the last USER in a Dockerfile is a USER other than 'root'.", Location: "Dockerfile:23"},
				},
			},
		},
		{
			file: "trivy-image.json",
			want: Report{
				Format:   FormatTrivy,
				Tool:     "Trivy",
				Artifact: "ghcr.io/acme/shop-api:1.4.0",
				Findings: []Finding{
					{ID: "CVE-2023-45853", Severity: Critical, Title: "zlib: integer overflow and resultant heap-based buffer overflow in zipOpenNewFileInZip4_6", Location: "zlib1g@1:1.2.13.dfsg-1"},
					{ID: "CVE-2024-0727", Severity: Medium, Title: "openssl: denial of service via null dereference", Location: "libssl3@3.0.11-1~deb12u2", Fixed: "3.0.13-1~deb12u1"},
					{ID: "CVE-2024-2511", Severity: Low, Title: "openssl: Unbounded memory growth with session handling in TLSv1.3", Location: "libssl3@3.0.11-1~deb12u2", Fixed: "3.0.13-1~deb12u1"},
					{ID: "TEMP-0841856-B18BAF", Severity: Unknown, Title: "[Privilege escalation possible to other user than root]", Location: "bash@5.2.15-2+b2"},
					{ID: "CVE-2024-24790", Severity: Critical, Title: "golang: net/netip: Unexpected behavior from Is methods for IPv4-mapped IPv6 addresses", Location: "stdlib@v1.21.5", Fixed: "1.21.11, 1.22.4"},
					{ID: "CVE-2023-45288", Severity: Medium, Title: "golang: net/http, x/net/http2: unlimited number of CONTINUATION frames causes DoS", Location: "golang.org/x/net@v0.17.0", Fixed: "0.23.0"},
					{ID: "CVE-2024-45337", Severity: High, Title: "golang.org/x/crypto/ssh: Misuse of ServerConfig.PublicKeyCallback may cause authorization bypass in golang.org/x/crypto", Location: "golang.org/x/crypto@v0.21.0", Fixed: "0.31.0"},
					{ID: "aws-access-key-id", Severity: Critical, Title: "AWS Access Key ID", Location: "/app/config/.env:3"},
				},
			},
		},
		{
			file: "trivy-config.json",
			want: Report{
				Format:   FormatTrivy,
				Tool:     "Trivy",
				Artifact: "deploy",
				Findings: []Finding{
					{ID: "DS002", Severity: High, Title: "Image user should not be 'root'", Location: "Dockerfile"},
					{ID: "DS026", Severity: Low, Title: "No HEALTHCHECK defined", Location: "Dockerfile"},
					{ID: "KSV001", Severity: Medium, Title: "Can elevate its own privileges", Location: "k8s/deployment.yaml:21"},
					{ID: "KSV014", Severity: High, Title: "Root file system is not read-only", Location: "k8s/deployment.yaml:21"},
				},
			},
		},
		{
			file: "trivy-clean.json",
			want: Report{Format: FormatTrivy, Tool: "Trivy", Artifact: "ghcr.io/acme/edge-proxy:2.0.3", Findings: []Finding{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, parseSample(t, tt.file))
		})
	}
}

func TestParse_NeverCopiesSecretMatches(t *testing.T) {
	t.Parallel()
	r := parseSample(t, "trivy-image.json")
	out, err := json.Marshal(r)
	require.NoError(t, err)
	require.NotContains(t, string(out), "AWS_ACCESS_KEY_ID=")
}

func TestParse_AcceptsByteOrderMark(t *testing.T) {
	t.Parallel()
	data := append([]byte("\xef\xbb\xbf"), readSample(t, "trivy-clean.json")...)
	r, err := Parse(data)
	require.NoError(t, err)
	require.Equal(t, FormatTrivy, r.Format)
}

// sarif wraps one run's JSON in a SARIF 2.1.0 log.
func sarif(run string) []byte {
	return []byte(`{"version": "2.1.0", "runs": [` + run + `]}`)
}

func TestParse_SARIFSeverityFromSecuritySeverityThenLevel(t *testing.T) {
	t.Parallel()
	// rule builds a driver with one rule carrying props and a default level, and one result
	// at level.
	run := func(props, defaultLevel, level string) []byte {
		rule := `{"id": "r1"`
		if props != "" {
			rule += `, "properties": {` + props + `}`
		}
		if defaultLevel != "" {
			rule += `, "defaultConfiguration": {"level": "` + defaultLevel + `"}`
		}
		rule += `}`
		res := `{"ruleId": "r1", "message": {"text": "m"}`
		if level != "" {
			res += `, "level": "` + level + `"`
		}
		res += `}`
		return sarif(`{"tool": {"driver": {"name": "t", "rules": [` + rule + `]}}, "results": [` + res + `]}`)
	}
	tests := []struct {
		name                       string
		props, defaultLevel, level string
		want                       Severity
	}{
		{name: "10.0 is critical", props: `"security-severity": "10.0"`, level: "note", want: Critical},
		{name: "9.0 is critical", props: `"security-severity": "9.0"`, level: "note", want: Critical},
		{name: "8.9 is high", props: `"security-severity": "8.9"`, level: "note", want: High},
		{name: "7.0 is high", props: `"security-severity": "7.0"`, want: High},
		{name: "6.9 is medium", props: `"security-severity": "6.9"`, level: "error", want: Medium},
		{name: "4.0 is medium", props: `"security-severity": "4.0"`, want: Medium},
		{name: "3.9 is low", props: `"security-severity": "3.9"`, level: "error", want: Low},
		{name: "0.1 is low", props: `"security-severity": "0.1"`, level: "error", want: Low},
		{name: "a JSON number counts too", props: `"security-severity": 9.1`, want: Critical},
		{name: "zero falls back to level", props: `"security-severity": "0.0"`, level: "error", want: High},
		{name: "over ten falls back to level", props: `"security-severity": "11"`, level: "note", want: Low},
		{name: "text falls back to level", props: `"security-severity": "high"`, level: "warning", want: Medium},
		{name: "error is high", level: "error", want: High},
		{name: "warning is medium", level: "warning", want: Medium},
		{name: "note is low", level: "note", want: Low},
		{name: "none is low", level: "none", want: Low},
		{name: "result level wins over default", defaultLevel: "note", level: "error", want: High},
		{name: "no level takes the rule's default", defaultLevel: "error", want: High},
		{name: "no level anywhere is warning", want: Medium},
		{name: "a level SARIF does not define is unknown", level: "fatal", want: Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Parse(run(tt.props, tt.defaultLevel, tt.level))
			require.NoError(t, err)
			require.Len(t, r.Findings, 1)
			require.Equal(t, tt.want, r.Findings[0].Severity)
		})
	}
}

func TestParse_SARIFResolvesRulesMessagesAndLocations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  string
		want []Finding
	}{
		{
			name: "rule by ruleIndex in the driver, without ruleId",
			run: `{"tool": {"driver": {"name": "t", "rules": [{"id": "a"}, {"id": "b", "properties": {"security-severity": "9.5"}}]}},
			       "results": [{"ruleIndex": 1, "message": {"text": "m"}}]}`,
			want: []Finding{{ID: "b", Severity: Critical, Title: "m"}},
		},
		{
			name: "a ruleIndex naming another rule loses to the ruleId",
			run: `{"tool": {"driver": {"name": "t", "rules": [{"id": "a", "properties": {"security-severity": "2"}}, {"id": "b", "properties": {"security-severity": "9.5"}}]}},
			       "results": [{"ruleId": "b", "ruleIndex": 0, "message": {"text": "m"}}]}`,
			want: []Finding{{ID: "b", Severity: Critical, Title: "m"}},
		},
		{
			name: "rule by id in an extension",
			run: `{"tool": {"driver": {"name": "t"}, "extensions": [{"name": "pack", "rules": [{"id": "x/y", "properties": {"security-severity": "7.1"}}]}]},
			       "results": [{"ruleId": "x/y", "message": {"text": "m"}}]}`,
			want: []Finding{{ID: "x/y", Severity: High, Title: "m"}},
		},
		{
			name: "an out-of-range index is ignored",
			run: `{"tool": {"driver": {"name": "t", "rules": [{"id": "a"}]}},
			       "results": [{"ruleId": "a", "ruleIndex": 7, "rule": {"index": -3, "toolComponent": {"index": 9}}, "level": "note", "message": {"text": "m"}}]}`,
			want: []Finding{{ID: "a", Severity: Low, Title: "m"}},
		},
		{
			name: "message from the rule's messageStrings with arguments",
			run: `{"tool": {"driver": {"name": "t", "rules": [{"id": "a", "messageStrings": {"default": {"text": "Variable '{0}' is unused in {1}."}}}]}},
			       "results": [{"ruleId": "a", "message": {"id": "default", "arguments": ["x", "main"]}}]}`,
			want: []Finding{{ID: "a", Severity: Medium, Title: "Variable 'x' is unused in main."}},
		},
		{
			name: "no message takes the rule's short description, folded to one line",
			run: `{"tool": {"driver": {"name": "t", "rules": [{"id": "a", "shortDescription": {"text": "Weak\n   hash"}}]}},
			       "results": [{"ruleId": "a", "message": {}}]}`,
			want: []Finding{{ID: "a", Severity: Medium, Title: "Weak hash"}},
		},
		{
			name: "no message and no rule is the id",
			run:  `{"tool": {"driver": {"name": "t"}}, "results": [{"ruleId": "lonely", "message": {}}]}`,
			want: []Finding{{ID: "lonely", Severity: Medium, Title: "lonely"}},
		},
		{
			name: "location from the run's artifacts by index, without a line",
			run: `{"tool": {"driver": {"name": "t"}}, "artifacts": [{"location": {"uri": "file:///src/main.go"}}],
			       "results": [{"ruleId": "a", "message": {"text": "m"}, "locations": [{"physicalLocation": {"artifactLocation": {"index": 0}}}]}]}`,
			want: []Finding{{ID: "a", Severity: Medium, Title: "m", Location: "/src/main.go"}},
		},
		{
			name: "the first location with a file",
			run: `{"tool": {"driver": {"name": "t"}},
			       "results": [{"ruleId": "a", "message": {"text": "m"}, "locations": [{"logicalLocations": [{"name": "f"}]}, {"physicalLocation": {"artifactLocation": {"uri": "b.go"}, "region": {"startLine": 3}}}]}]}`,
			want: []Finding{{ID: "a", Severity: Medium, Title: "m", Location: "b.go:3"}},
		},
		{
			name: "passes and informational results are not findings; review is",
			run: `{"tool": {"driver": {"name": "t"}}, "results": [
			       {"ruleId": "p", "kind": "pass", "message": {"text": "ok"}},
			       {"ruleId": "n", "kind": "notApplicable", "message": {"text": "n/a"}},
			       {"ruleId": "i", "kind": "informational", "message": {"text": "fyi"}},
			       {"ruleId": "r", "kind": "review", "message": {"text": "look"}}]}`,
			want: []Finding{{ID: "r", Severity: Low, Title: "look"}},
		},
		{
			name: "a rejected or pending suppression does not hide a result",
			run: `{"tool": {"driver": {"name": "t"}}, "results": [
			       {"ruleId": "a", "level": "error", "message": {"text": "m"}, "suppressions": [{"kind": "external", "status": "rejected"}]},
			       {"ruleId": "b", "level": "error", "message": {"text": "m"}, "suppressions": [{"kind": "external", "status": "underReview"}]},
			       {"ruleId": "c", "level": "error", "message": {"text": "m"}, "suppressions": [{"kind": "external", "status": "accepted"}]}]}`,
			want: []Finding{{ID: "a", Severity: High, Title: "m"}, {ID: "b", Severity: High, Title: "m"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := Parse(sarif(tt.run))
			require.NoError(t, err)
			require.Equal(t, tt.want, r.Findings)
		})
	}
}

func TestParse_SARIFNamesEveryToolOfSeveralRuns(t *testing.T) {
	t.Parallel()
	data := []byte(`{"version": "2.1.0", "runs": [
		{"tool": {"driver": {"name": "CodeQL"}}, "results": [{"ruleId": "a", "message": {"text": "x"}}]},
		{"tool": {"driver": {"name": "gosec"}}, "results": [{"ruleId": "G101", "level": "error", "message": {"text": "y"}}]},
		{"tool": {"driver": {"name": "CodeQL"}}, "results": []}]}`)
	r, err := Parse(data)
	require.NoError(t, err)
	require.Equal(t, "CodeQL, gosec", r.Tool)
	require.Equal(t, []string{"a", "G101"}, []string{r.Findings[0].ID, r.Findings[1].ID})
}

func TestParse_TrivyTitleFallsBackToShortenedDescription(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("overflow ", 60)
	data := []byte(`{"SchemaVersion": 2, "ArtifactName": "img", "Results": [{"Target": "t", "Vulnerabilities": [
		{"VulnerabilityID": "CVE-1", "PkgName": "p", "InstalledVersion": "1", "Severity": "HIGH", "Description": "` + long + `"},
		{"VulnerabilityID": "CVE-2", "Severity": "bogus", "Title": "t"}]}]}`)
	r, err := Parse(data)
	require.NoError(t, err)
	require.LessOrEqual(t, len(r.Findings[0].Title), maxTitle)
	require.True(t, strings.HasPrefix(r.Findings[0].Title, "overflow overflow"), r.Findings[0].Title)
	require.True(t, strings.HasSuffix(r.Findings[0].Title, "..."), r.Findings[0].Title)
	// Without a package the target locates it; an unknown severity is Unknown.
	require.Equal(t, Finding{ID: "CVE-2", Severity: Unknown, Title: "t", Location: "t"}, r.Findings[1])
}

func TestParse_RejectsOtherFormatsNamingTheAcceptedOnes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, data, says string
	}{
		{name: "empty", data: "", says: "empty"},
		{name: "white space", data: " \n\t", says: "empty"},
		{name: "an array (trivy before schema 2)", data: `[{"Target": "x", "Vulnerabilities": null}]`, says: "JSON array"},
		{name: "a string", data: `"sarif"`, says: "JSON string"},
		{name: "null", data: `null`, says: "neither"},
		{name: "CycloneDX", data: `{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}`, says: "neither"},
		{name: "SARIF 2.0", data: `{"version": "2.0.0", "runs": []}`, says: "SARIF version 2.0.0"},
		{name: "SARIF without version", data: `{"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "runs": []}`, says: "without a version"},
		{name: "SARIF with a numeric version", data: `{"version": 2.1, "runs": []}`, says: "SARIF version 2.1"},
		{name: "Trivy schema 1", data: `{"SchemaVersion": 1, "Results": []}`, says: "SchemaVersion 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.data))
			require.ErrorIs(t, err, ErrUnsupportedFormat)
			require.ErrorContains(t, err, tt.says)
			require.ErrorContains(t, err, "SARIF 2.1.0")
			require.ErrorContains(t, err, "Trivy JSON")
		})
	}
}

func TestParse_MalformedInputSaysWhere(t *testing.T) {
	t.Parallel()
	codeql := readSample(t, "codeql-go.sarif")
	tests := []struct {
		name string
		data []byte
		says []string
	}{
		{name: "truncated SARIF", data: codeql[:len(codeql)/2], says: []string{"not valid JSON", "unexpected end of JSON input"}},
		{name: "a stray comma", data: []byte("{\n  \"SchemaVersion\": 2,\n  \"Results\": [,]\n}"), says: []string{"line 3, column 15 (byte 39)", "invalid character ','"}},
		{name: "not JSON at all", data: []byte("<html>502 Bad Gateway</html>"), says: []string{"line 1, column 1 (byte 1)"}},
		{name: "results is a string", data: []byte("{\"version\": \"2.1.0\",\n\"runs\": [{\"results\": \"none\"}]}"), says: []string{"scan report: SARIF report at line 2", "runs.results is a JSON string, want array"}},
		{name: "startLine is text", data: sarif(`{"tool": {"driver": {"name": "t"}}, "results": [{"ruleId": "a", "locations": [{"physicalLocation": {"region": {"startLine": "12"}}}]}]}`), says: []string{"line 1", "startLine is a JSON string, want number"}},
		{name: "Trivy severity is a number", data: []byte("{\"SchemaVersion\": 2,\n\"Results\": [{\"Target\": \"t\",\n \"Vulnerabilities\": [{\"Severity\": 4}]}]}"), says: []string{"scan report: Trivy report at line 3", "Results.Vulnerabilities.Severity is a JSON number, want string"}},
		{name: "runs is an object", data: []byte(`{"version": "2.1.0", "runs": {}}`), says: []string{"without a runs array"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tt.data)
			require.ErrorIs(t, err, ErrMalformed)
			for _, s := range tt.says {
				require.ErrorContains(t, err, s)
			}
		})
	}
}
