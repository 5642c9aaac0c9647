package scanreport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Report formats.
const (
	FormatSARIF = "sarif"
	FormatTrivy = "trivy"
)

// Report is one parsed scan report.
type Report struct {
	// Format is FormatSARIF or FormatTrivy.
	Format string `json:"format"`
	// Tool names the scanner ("CodeQL", "Semgrep OSS", "Trivy"); several SARIF runs of
	// different tools are joined with ", ".
	Tool string `json:"tool"`
	// Artifact is what was scanned: Trivy's ArtifactName (an image, a directory), or a SARIF
	// run's repository@revision when it names one.
	Artifact string    `json:"artifact,omitempty"`
	Findings []Finding `json:"findings"`
}

// Finding is one problem a scanner reported.
type Finding struct {
	// ID is the rule id (SARIF, Trivy misconfigurations and secrets) or the vulnerability id
	// (CVE-2024-1234, GHSA-...); waivers name it.
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	Title    string   `json:"title"`
	// Location is file:line for code findings and package@version for vulnerable packages.
	Location string `json:"location,omitempty"`
	// Fixed is the version that fixes a vulnerability, when one is known.
	Fixed string `json:"fixed,omitempty"`
}

// Errors callers branch on. Neither is helped by parsing again.
var (
	// ErrUnsupportedFormat: the bytes are JSON but neither SARIF 2.1.0 nor Trivy JSON v2.
	ErrUnsupportedFormat = errors.New("unsupported scan report format")
	// ErrMalformed: the bytes are not JSON, or a field has the wrong JSON type.
	ErrMalformed = errors.New("malformed scan report")
)

const accepted = `accepted formats are SARIF 2.1.0 ("version": "2.1.0" with a "runs" array) and Trivy JSON ("SchemaVersion": 2, from trivy --format json)`

// Parse detects the report's format and reads its findings, in the order the report lists
// them. What the scanner itself marks as settled is not a finding: SARIF results with an
// accepted suppression or of kind pass, notApplicable or informational, and Trivy
// misconfigurations whose Status is PASS or EXCEPTION.
func Parse(data []byte) (Report, error) {
	// Editors and PowerShell on Windows write a byte order mark that JSON does not allow.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(data)) == 0 {
		return Report{}, fmt.Errorf("%w: the report is empty; %s", ErrUnsupportedFormat, accepted)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// Valid JSON, but not an object: trivy before schema version 2 wrote an array.
			return Report{}, fmt.Errorf("%w: the report is a JSON %s, not an object; %s", ErrUnsupportedFormat, te.Value, accepted)
		}
		return Report{}, malformed(data, "", err)
	}

	runs, hasRuns := top["runs"]
	schemaVersion, hasSchemaVersion := top["SchemaVersion"]
	switch {
	case hasRuns || bytes.Contains(bytes.ToLower(top["$schema"]), []byte("sarif")):
		if v := jsonString(top["version"]); v != "2.1.0" {
			if v == "" {
				v = strings.TrimSpace(string(top["version"]))
			}
			if v == "" {
				return Report{}, fmt.Errorf("%w: a SARIF log without a version; %s", ErrUnsupportedFormat, accepted)
			}
			return Report{}, fmt.Errorf("%w: SARIF version %s; %s", ErrUnsupportedFormat, v, accepted)
		}
		if !hasRuns || !bytes.HasPrefix(bytes.TrimSpace(runs), []byte("[")) {
			return Report{}, fmt.Errorf("%w: a SARIF 2.1.0 log without a runs array", ErrMalformed)
		}
		return parseSARIF(data)
	case hasSchemaVersion:
		if v := strings.TrimSpace(string(schemaVersion)); v != "2" {
			return Report{}, fmt.Errorf("%w: Trivy JSON with SchemaVersion %s; %s", ErrUnsupportedFormat, v, accepted)
		}
		return parseTrivy(data)
	default:
		return Report{}, fmt.Errorf("%w: a JSON object with neither \"runs\" nor \"SchemaVersion\"; %s", ErrUnsupportedFormat, accepted)
	}
}

// malformed turns a decoding error into an ErrMalformed that says where in the text it is.
func malformed(data []byte, format string, err error) error {
	what := "the report is not valid JSON"
	if format != "" {
		what = format + " report"
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%w: %s: %s", ErrMalformed, where(data, se.Offset, what), se.Error())
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "a value"
		}
		return fmt.Errorf("%w: %s: %s is a JSON %s, want %s", ErrMalformed, where(data, te.Offset, what), field, te.Value, jsonKind(te.Type.Kind().String()))
	default:
		return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
	}
}

// where names the line, column and byte (all counted from 1) of the byte that decoding
// stopped at: encoding/json's offsets count the bytes read, that one included.
func where(data []byte, offset int64, what string) string {
	if len(data) == 0 {
		return what
	}
	offset = min(max(offset, 1), int64(len(data)))
	before := data[:offset-1]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("%s at line %d, column %d (byte %d)", what, line, col, offset)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	case "bool":
		return "boolean"
	default:
		return "number"
	}
}

// jsonString is raw's value when raw is a JSON string, else "".
func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// oneLine folds runs of white space, newlines included, into single spaces: titles end up
// in one-line summaries and Slack messages.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
