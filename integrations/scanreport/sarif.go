package scanreport

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// The subset of SARIF 2.1.0 (OASIS sarif-v2.1.0, sarif-schema-2.1.0.json) that findings are
// made of.
type sarifLog struct {
	Runs []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool struct {
		Driver sarifComponent `json:"driver"`
		// Extensions hold the rules of plugins and query packs: CodeQL puts its queries here
		// and points at them with result.rule.toolComponent.
		Extensions []sarifComponent `json:"extensions"`
	} `json:"tool"`
	Results   []sarifResult `json:"results"`
	Artifacts []struct {
		Location sarifArtifactLocation `json:"location"`
	} `json:"artifacts"`
	VersionControlProvenance []struct {
		RepositoryURI string `json:"repositoryUri"`
		RevisionID    string `json:"revisionId"`
	} `json:"versionControlProvenance"`
}

type sarifComponent struct {
	Name  string      `json:"name"`
	Rules []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string                  `json:"id"`
	Name                 string                  `json:"name"`
	ShortDescription     sarifMessage            `json:"shortDescription"`
	MessageStrings       map[string]sarifMessage `json:"messageStrings"`
	DefaultConfiguration struct {
		Level string `json:"level"`
	} `json:"defaultConfiguration"`
	Properties map[string]json.RawMessage `json:"properties"`
}

type sarifResult struct {
	RuleID    string `json:"ruleId"`
	RuleIndex *int   `json:"ruleIndex"`
	Rule      *struct {
		ID            string `json:"id"`
		Index         *int   `json:"index"`
		ToolComponent *struct {
			Index *int `json:"index"`
		} `json:"toolComponent"`
	} `json:"rule"`
	Kind      string       `json:"kind"`
	Level     string       `json:"level"`
	Message   sarifMessage `json:"message"`
	Locations []struct {
		PhysicalLocation *struct {
			ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
			Region           *struct {
				StartLine int `json:"startLine"`
			} `json:"region"`
		} `json:"physicalLocation"`
	} `json:"locations"`
	Suppressions []struct {
		Status string `json:"status"`
	} `json:"suppressions"`
}

type sarifMessage struct {
	Text      string   `json:"text"`
	ID        string   `json:"id"`
	Arguments []string `json:"arguments"`
}

type sarifArtifactLocation struct {
	URI   string `json:"uri"`
	Index *int   `json:"index"`
}

func parseSARIF(data []byte) (Report, error) {
	var log sarifLog
	if err := json.Unmarshal(data, &log); err != nil {
		return Report{}, malformed(data, "SARIF", err)
	}
	r := Report{Format: FormatSARIF, Findings: []Finding{}}
	var tools []string
	for _, run := range log.Runs {
		if name := strings.TrimSpace(run.Tool.Driver.Name); name != "" && !slices.Contains(tools, name) {
			tools = append(tools, name)
		}
		if r.Artifact == "" && len(run.VersionControlProvenance) > 0 {
			vcp := run.VersionControlProvenance[0]
			r.Artifact = vcp.RepositoryURI
			if vcp.RevisionID != "" && vcp.RepositoryURI != "" {
				r.Artifact += "@" + vcp.RevisionID
			}
		}
		for i := range run.Results {
			res := &run.Results[i]
			if res.suppressed() || !res.failure() {
				continue
			}
			rule := run.rule(res)
			id := res.RuleID
			if id == "" && res.Rule != nil {
				id = res.Rule.ID
			}
			if id == "" && rule != nil {
				id = rule.ID
			}
			r.Findings = append(r.Findings, Finding{
				ID:       id,
				Severity: sarifSeverity(res, rule),
				Title:    sarifTitle(res, rule, id),
				Location: run.location(res),
			})
		}
	}
	r.Tool = strings.Join(tools, ", ")
	return r, nil
}

// suppressed: SARIF §3.27.23 — a result with an accepted suppression (a status left out
// means accepted) was dismissed in the tool or in the source, as a nosemgrep comment does.
func (res *sarifResult) suppressed() bool {
	for _, s := range res.Suppressions {
		if s.Status == "" || s.Status == "accepted" {
			return true
		}
	}
	return false
}

// failure: kinds pass, notApplicable and informational report no problem; fail (the
// default), review and open ask someone to look.
func (res *sarifResult) failure() bool {
	switch res.Kind {
	case "pass", "notApplicable", "informational":
		return false
	}
	return true
}

// rule finds the reportingDescriptor a result refers to: by index into the component the
// result names (the driver by default), else by id in the driver and every extension.
func (run *sarifRun) rule(res *sarifResult) *sarifRule {
	comp := &run.Tool.Driver
	idx := res.RuleIndex
	id := res.RuleID
	if res.Rule != nil {
		if res.Rule.ToolComponent != nil && res.Rule.ToolComponent.Index != nil {
			if i := *res.Rule.ToolComponent.Index; i >= 0 && i < len(run.Tool.Extensions) {
				comp = &run.Tool.Extensions[i]
			}
		}
		if res.Rule.Index != nil {
			idx = res.Rule.Index
		}
		if id == "" {
			id = res.Rule.ID
		}
	}
	if idx != nil && *idx >= 0 && *idx < len(comp.Rules) {
		if r := &comp.Rules[*idx]; id == "" || r.ID == id {
			return r
		}
	}
	if id == "" {
		return nil
	}
	comps := []*sarifComponent{&run.Tool.Driver}
	for i := range run.Tool.Extensions {
		comps = append(comps, &run.Tool.Extensions[i])
	}
	for _, c := range comps {
		for i := range c.Rules {
			if c.Rules[i].ID == id {
				return &c.Rules[i]
			}
		}
	}
	return nil
}

// location is the first physical location as uri:line, or uri alone.
func (run *sarifRun) location(res *sarifResult) string {
	for _, l := range res.Locations {
		pl := l.PhysicalLocation
		if pl == nil {
			continue
		}
		uri := pl.ArtifactLocation.URI
		if uri == "" && pl.ArtifactLocation.Index != nil {
			if i := *pl.ArtifactLocation.Index; i >= 0 && i < len(run.Artifacts) {
				uri = run.Artifacts[i].Location.URI
			}
		}
		if uri == "" {
			continue
		}
		uri = strings.TrimPrefix(uri, "file://")
		if pl.Region != nil && pl.Region.StartLine > 0 {
			return uri + ":" + strconv.Itoa(pl.Region.StartLine)
		}
		return uri
	}
	return ""
}

// sarifSeverity prefers the rule's CVSS-like security-severity (GitHub code scanning's
// convention, which CodeQL and others follow), then the result's level, then the rule's
// default level, then SARIF's default of warning.
func sarifSeverity(res *sarifResult, rule *sarifRule) Severity {
	if rule != nil {
		if score, ok := securitySeverity(rule.Properties["security-severity"]); ok {
			switch {
			case score >= 9:
				return Critical
			case score >= 7:
				return High
			case score >= 4:
				return Medium
			default:
				return Low
			}
		}
	}
	level := res.Level
	if level == "" && rule != nil {
		level = rule.DefaultConfiguration.Level
	}
	if level == "" {
		level = "warning"
		if res.Kind != "" && res.Kind != "fail" {
			level = "none"
		}
	}
	switch level {
	case "error":
		return High
	case "warning":
		return Medium
	case "note", "none":
		return Low
	}
	return Unknown
}

// securitySeverity reads a score in (0, 10], written as a string ("9.8", as CodeQL does) or
// a number.
func securitySeverity(raw json.RawMessage) (float64, bool) {
	if len(raw) == 0 {
		return 0, false
	}
	text := string(raw)
	if s := jsonString(raw); s != "" {
		text = s
	}
	score, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
	if err != nil || !(score > 0 && score <= 10) {
		return 0, false
	}
	return score, true
}

// sarifTitle is the result's message with its arguments filled in, else the rule's
// description or name, else the id.
func sarifTitle(res *sarifResult, rule *sarifRule, id string) string {
	text := res.Message.Text
	if text == "" && res.Message.ID != "" && rule != nil {
		text = rule.MessageStrings[res.Message.ID].Text
	}
	if text != "" && len(res.Message.Arguments) > 0 {
		pairs := make([]string, 0, 2*len(res.Message.Arguments))
		for i, a := range res.Message.Arguments {
			pairs = append(pairs, "{"+strconv.Itoa(i)+"}", a)
		}
		text = strings.NewReplacer(pairs...).Replace(text)
	}
	if t := oneLine(text); t != "" {
		return t
	}
	if rule != nil {
		if t := oneLine(rule.ShortDescription.Text); t != "" {
			return t
		}
		if t := oneLine(rule.Name); t != "" {
			return t
		}
	}
	return id
}
