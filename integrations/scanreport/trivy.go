package scanreport

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The subset of Trivy's JSON report, schema version 2 (trivy --format json; pkg/types in
// aquasecurity/trivy), that findings are made of. Secrets' Match and Code fields are left
// out on purpose: they quote the secret's surroundings.
type trivyReport struct {
	ArtifactName string `json:"ArtifactName"`
	Results      []struct {
		Target          string `json:"Target"`
		Vulnerabilities []struct {
			VulnerabilityID  string `json:"VulnerabilityID"`
			PkgName          string `json:"PkgName"`
			InstalledVersion string `json:"InstalledVersion"`
			FixedVersion     string `json:"FixedVersion"`
			Severity         string `json:"Severity"`
			Title            string `json:"Title"`
			Description      string `json:"Description"`
		} `json:"Vulnerabilities"`
		Misconfigurations []struct {
			ID       string `json:"ID"`
			Title    string `json:"Title"`
			Message  string `json:"Message"`
			Severity string `json:"Severity"`
			// Status is FAIL, or PASS and EXCEPTION with --include-non-failures.
			Status        string `json:"Status"`
			CauseMetadata struct {
				StartLine int `json:"StartLine"`
			} `json:"CauseMetadata"`
		} `json:"Misconfigurations"`
		Secrets []struct {
			RuleID    string `json:"RuleID"`
			Title     string `json:"Title"`
			Severity  string `json:"Severity"`
			StartLine int    `json:"StartLine"`
		} `json:"Secrets"`
	} `json:"Results"`
}

// maxTitle bounds a title made from a vulnerability's description.
const maxTitle = 200

func parseTrivy(data []byte) (Report, error) {
	var tr trivyReport
	if err := json.Unmarshal(data, &tr); err != nil {
		return Report{}, malformed(data, "Trivy", err)
	}
	r := Report{Format: FormatTrivy, Tool: "Trivy", Artifact: tr.ArtifactName, Findings: []Finding{}}
	for _, res := range tr.Results {
		for _, v := range res.Vulnerabilities {
			loc := res.Target
			if v.PkgName != "" {
				loc = v.PkgName + "@" + v.InstalledVersion
			}
			title := oneLine(v.Title)
			if title == "" {
				// Many distribution advisories have no title; the description's start says
				// what the flaw is.
				title = cut(oneLine(v.Description), maxTitle)
			}
			r.Findings = append(r.Findings, Finding{
				ID:       v.VulnerabilityID,
				Severity: trivySeverity(v.Severity),
				Title:    title,
				Location: loc,
				Fixed:    v.FixedVersion,
			})
		}
		for _, m := range res.Misconfigurations {
			if m.Status != "" && m.Status != "FAIL" {
				continue
			}
			title := oneLine(m.Title)
			if title == "" {
				title = oneLine(m.Message)
			}
			r.Findings = append(r.Findings, Finding{
				ID:       m.ID,
				Severity: trivySeverity(m.Severity),
				Title:    title,
				Location: atLine(res.Target, m.CauseMetadata.StartLine),
			})
		}
		for _, s := range res.Secrets {
			r.Findings = append(r.Findings, Finding{
				ID:       s.RuleID,
				Severity: trivySeverity(s.Severity),
				Title:    oneLine(s.Title),
				Location: atLine(res.Target, s.StartLine),
			})
		}
	}
	return r, nil
}

// trivySeverity reads Trivy's UNKNOWN, LOW, MEDIUM, HIGH and CRITICAL; anything else is
// Unknown.
func trivySeverity(s string) Severity {
	sev, err := severityFromName(s)
	if err != nil {
		return Unknown
	}
	return sev
}

func atLine(target string, line int) string {
	if line > 0 && target != "" {
		return target + ":" + strconv.Itoa(line)
	}
	return target
}

// cut shortens s to at most n bytes at a rune boundary, marking the cut with "...".
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n - 3
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return strings.TrimSpace(s[:i]) + "..."
}
