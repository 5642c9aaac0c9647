package scanreport

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds Parse mutations of the samples: whatever it is given, it returns a report
// or an error, never panics, and a report it returns can be evaluated.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	for _, seed := range []string{
		``, `{}`, `[]`, `null`, `{"version": "2.1.0", "runs": [{}]}`,
		`{"version": "2.1.0", "runs": [{"results": [{"ruleIndex": -1, "rule": {"index": 99, "toolComponent": {"index": -5}}, "locations": [{"physicalLocation": {"artifactLocation": {"index": 3}}}]}]}]}`,
		`{"version": "2.1.0", "runs": [{"tool": {"driver": {"rules": [{"id": "a", "properties": {"security-severity": "NaN"}}]}}, "results": [{"ruleId": "a", "message": {"id": "x", "arguments": ["{0}"]}}]}]}`,
		`{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{}], "Misconfigurations": [{}], "Secrets": [{}]}]}`,
		`{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"Description": "` + "\xff\xfe ünïcödé ✓ " + `"}]}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			return
		}
		if r.Format != FormatSARIF && r.Format != FormatTrivy {
			t.Fatalf("parsed with format %q", r.Format)
		}
		for _, fd := range r.Findings {
			if !fd.Severity.valid() {
				t.Fatalf("finding %q has severity %d", fd.ID, fd.Severity)
			}
		}
		for s := Unknown; s <= Critical; s++ {
			v := Evaluate(r, s, func(id string) bool { return len(id)%2 == 0 })
			if len(v.Blocking)+len(v.Waived) > len(r.Findings) || v.Summary == "" {
				t.Fatalf("verdict at %s: %+v", s, v)
			}
		}
	})
}
