package runbooks

import (
	"fmt"
	"math"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
)

// NamePattern is what runbook, stage, target, gate and site names look like: they end up in
// workflow ids, task queue names and URLs.
var NamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$`)

const nameRule = "use lowercase letters, digits and dashes (at most 64), starting and ending with a letter or digit"

var (
	// digestPattern is a pinned artifact: repo@sha256:<64 hex digits>.
	digestPattern = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
	// slackChannelID is a Slack channel id such as C0123456789.
	slackChannelID = regexp.MustCompile(`^C[A-Z0-9]{8,}$`)
)

// Enumerations of the language that schema.go leaves as strings.
var (
	severities        = []string{"low", "medium", "high", "critical"}
	onTimeoutActions  = []string{"reject", "wait"}
	onFreezeActions   = []string{"wait", "fail"}
	exceptionSections = []string{"approvals", "readiness"}
	targetBlockOfKind = map[string]string{KindArgoCD: "argocd", KindSpinnaker: "spinnaker", KindHardware: "hardware", KindFlag: "flag"}
)

// gateFields are the type-specific fields of a readiness gate, with the types they belong to.
var gateFields = []struct {
	key   string
	types []string
}{
	{"maxSeverity", []string{GateScanReport}},
	{"url", []string{GateSynthetic, GateThirdParty}},
	{"expectStatus", []string{GateSynthetic}},
	{"latencyP95", []string{GateSynthetic}},
	{"requests", []string{GateSynthetic}},
	{"minCoverage", []string{GateCoverage}},
	{"query", []string{GatePerformance}},
	{"maxRegression", []string{GatePerformance}},
	{"maxDrillAge", []string{GateDR}},
	{"run", []string{GateCommand, GateCompliance, GateDR}},
	{"site", []string{GateCommand, GateCompliance, GateDR}},
}

// Validate returns every problem with the runbook, each with the path of the field at fault
// and a message that says how to fix it. Lines and columns are filled in by Parse, which
// knows the source. Validate never stops at the first problem.
func (r Runbook) Validate() []Problem {
	v := &validator{}
	v.metadata(r)
	v.exceptions(r.Exceptions)
	v.scope(r.Scope)
	v.readiness(r.Readiness)
	stages := r.stageNames()
	analyses := r.analysisNames()
	v.approvals(r.Approvals, stages)
	v.governance(r)
	v.analyses(r.Analyses)
	v.stages(r.Stages, analyses)
	v.stabilization(r.Stabilization, analyses)
	v.rollback(r.Rollback)
	return v.ps
}

func (r Runbook) stageNames() []string {
	var names []string
	for _, s := range r.Stages {
		if s.Name != "" && !contains(names, s.Name) {
			names = append(names, s.Name)
		}
	}
	return names
}

func (r Runbook) analysisNames() []string {
	var names []string
	for _, a := range r.Analyses {
		if a.Name != "" && !contains(names, a.Name) {
			names = append(names, a.Name)
		}
	}
	return names
}

// validator collects problems; its helpers word the common ones the same way everywhere.
type validator struct {
	ps []Problem
}

func (v *validator) add(path, format string, args ...any) {
	v.ps = append(v.ps, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// name checks a required name.
func (v *validator) name(path, what, s string) {
	if s == "" {
		v.add(path, "%s is required: %s", what, nameRule)
		return
	}
	v.optName(path, what, s)
}

// optName checks a name that may be left out.
func (v *validator) optName(path, what, s string) {
	if s == "" || NamePattern.MatchString(s) {
		return
	}
	if fixed := slug(s); fixed != "" {
		v.add(path, "%q is not a valid %s: %s, such as %q", s, what, nameRule, fixed)
		return
	}
	v.add(path, "%q is not a valid %s: %s", s, what, nameRule)
}

// site checks the name of the site worker that runs a command.
func (v *validator) site(path, s string) {
	if s == "" {
		v.add(path, "site is required: name the site worker that runs it (trainyard worker --site <name>)")
		return
	}
	v.optName(path, "site", s)
}

// required checks that a free-text field is set; hint says what to write.
func (v *validator) required(path, s, hint string) {
	if strings.TrimSpace(s) == "" {
		v.add(path, "%s is required: %s", lastKey(path), hint)
	}
}

// enum checks a value against its allowed values; an empty value is left to the caller
// unless required.
func (v *validator) enum(path, what, s string, allowed []string, required bool) {
	switch {
	case s == "" && required:
		v.add(path, "%s is required: use one of %s", what, strings.Join(allowed, ", "))
	case s == "" || contains(allowed, s):
	case closest(s, allowed) != "":
		v.add(path, "unknown %s %q (did you mean %q?)", what, s, closest(s, allowed))
	default:
		v.add(path, "unknown %s %q: use one of %s", what, s, strings.Join(allowed, ", "))
	}
}

// ref checks that a name refers to something declared under section.
func (v *validator) ref(path, what, s string, declared []string, section string) {
	switch {
	case s == "":
		v.add(path, "%s is required: name one declared under %s", lastKey(path), section)
	case contains(declared, s):
	case closest(s, declared) != "":
		v.add(path, "no %s is named %q (did you mean %q?)", what, s, closest(s, declared))
	case len(declared) == 0:
		v.add(path, "no %s is named %q: declare it under %s", what, s, section)
	case len(declared) <= 10:
		v.add(path, "no %s is named %q: use one of %s", what, s, strings.Join(declared, ", "))
	default:
		v.add(path, "no %s is named %q: check the names under %s", what, s, section)
	}
}

// nonNegative checks a duration that may be zero.
func (v *validator) nonNegative(path string, d Duration) {
	if d < 0 {
		v.add(path, "%s is negative: write a duration such as 30s or 5m", fmtDuration(d))
	}
}

// texts checks that no entry of a list is blank.
func (v *validator) texts(path, what string, list []string) {
	for i, s := range list {
		if strings.TrimSpace(s) == "" {
			v.add(fmt.Sprintf("%s[%d]", path, i), "an empty entry: name a %s, or remove the entry", what)
		}
	}
}

// unique reports names listed twice.
func (v *validator) unique(path, what string, list []string) {
	seen := map[string]bool{}
	for i, s := range list {
		if seen[s] && s != "" {
			v.add(fmt.Sprintf("%s[%d]", path, i), "%s %q is listed twice: remove one", what, s)
		}
		seen[s] = true
	}
}

// httpURL checks a URL probed over HTTP.
func (v *validator) httpURL(path, s string, required bool) {
	if s == "" {
		if required {
			v.add(path, "url is required: give the http(s) URL to probe, such as https://web.example.com/healthz")
		}
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(path, "%q is not an http(s) URL: write it like https://web.example.com/healthz", s)
	}
}

// status checks an expected HTTP status, 0 meaning the default.
func (v *validator) status(path string, code int) {
	if code != 0 && (code < 100 || code > 599) {
		v.add(path, "%d is not an HTTP status: use 100 to 599, or leave it out for the default", code)
	}
}

// finite checks a number YAML may have written as .inf or .nan.
func (v *validator) finite(path string, f float64) bool {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		v.add(path, "%v is not a usable number: write a finite number, such as 1", f)
		return false
	}
	return true
}

func (v *validator) metadata(r Runbook) {
	keys := make([]string, 0, len(r.Extensions))
	for k := range r.Extensions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !strings.HasPrefix(k, "x-") {
			v.add(k, "%s", unknownFieldMsg(k, runbookType))
		}
	}
	v.name("name", "runbook name", r.Name)
	v.texts("owners", "team", r.Owners)
	if r.Tier != 0 && (r.Tier < 1 || r.Tier > 4) {
		v.add("tier", "tier %d is out of range: use 1 (most critical) to 4", r.Tier)
	}
	v.enum("dataClassification", "data classification", r.DataClassification, DataClassifications, false)
	v.texts("capabilities", "capability", r.Capabilities)
	if c := r.Channel; c != "" && !slackChannelID.MatchString(c) &&
		(!strings.HasPrefix(c, "#") || len(c) < 2 || strings.IndexFunc(c, unicode.IsSpace) >= 0) {
		v.add("channel", "%q is not a Slack channel: write it as #name or as a channel id such as C0123456789", c)
	}
}

func (v *validator) exceptions(es []Exception) {
	seen := map[string]int{}
	for i, e := range es {
		p := fmt.Sprintf("exceptions[%d]", i)
		section, item, found := strings.Cut(e.Remove, "/")
		switch {
		case e.Remove == "":
			v.add(p+".remove", "remove is required: name what is dropped, as approvals/<name> or readiness/<name>")
		case !found || item == "":
			v.add(p+".remove", "%q does not say what to drop: write approvals/<name> or readiness/<name>", e.Remove)
		case !contains(exceptionSections, section):
			if s := closest(section, exceptionSections); s != "" {
				v.add(p+".remove", "%q names no droppable section (did you mean %q?)", e.Remove, s+"/"+item)
			} else {
				v.add(p+".remove", "%q names no droppable section: only approvals/<name> and readiness/<name> can be dropped", e.Remove)
			}
		case !NamePattern.MatchString(item):
			if fixed := slug(item); fixed != "" {
				v.add(p+".remove", "%q is not a valid gate name: %s, such as %q", item, nameRule, section+"/"+fixed)
			} else {
				v.add(p+".remove", "%q is not a valid gate name: %s", item, nameRule)
			}
		default:
			if prev, dup := seen[e.Remove]; dup {
				v.add(p+".remove", "%q is already dropped by exceptions[%d]: remove one", e.Remove, prev)
			}
			seen[e.Remove] = i
		}
		v.required(p+".waiver", e.Waiver, "give the id of the waiver that allows dropping it (granted through the governance API)")
		v.required(p+".reason", e.Reason, "say why the release may go without it")
	}
}

func (v *validator) scope(s *Scope) {
	if s == nil {
		return
	}
	var names []string
	index := map[string]int{}
	for i, c := range s.Components {
		p := fmt.Sprintf("scope.components[%d]", i)
		v.name(p+".name", "component name", c.Name)
		if prev, dup := index[c.Name]; dup && c.Name != "" {
			v.add(p+".name", "component %q is declared twice (also scope.components[%d]): rename or remove one", c.Name, prev)
		} else if c.Name != "" {
			index[c.Name] = i
			names = append(names, c.Name)
		}
		v.artifact(p+".artifact", c.Artifact, c.AllowTag)
		v.enum(p+".schemaChange", "schema change", c.SchemaChange, SchemaChanges, false)
		libs := map[string]bool{}
		for j, l := range c.Libraries {
			lp := fmt.Sprintf("%s.libraries[%d]", p, j)
			v.required(lp+".name", l.Name, "name the shared library, such as libssl")
			v.required(lp+".version", l.Version, "give the version this component consumes, such as 3.0.13")
			if libs[l.Name] && l.Name != "" {
				v.add(lp+".name", "library %q is listed twice: keep one", l.Name)
			}
			libs[l.Name] = true
		}
	}
	groups := map[string]bool{}
	for i, g := range s.Groups {
		p := fmt.Sprintf("scope.groups[%d]", i)
		v.name(p+".name", "group name", g.Name)
		if groups[g.Name] && g.Name != "" {
			v.add(p+".name", "group %q is declared twice: rename or remove one", g.Name)
		}
		groups[g.Name] = true
		if len(g.Components) < 2 {
			v.add(p+".components", "a group needs at least two components (one ships together with itself anyway): add another, or remove the group")
		}
		for j, c := range g.Components {
			v.ref(fmt.Sprintf("%s.components[%d]", p, j), "component", c, names, "scope.components")
		}
		v.unique(p+".components", "component", g.Components)
	}
	v.enum("scope.infrastructure", "infrastructure mode", s.Infrastructure, InfrastructureModes, false)
}

// artifact checks that an artifact is pinned by digest, unless tags are allowed.
func (v *validator) artifact(path, a string, allowTag bool) {
	switch {
	case a == "":
		v.add(path, "artifact is required: give the image or package pinned by digest, as registry/name@sha256:<digest>")
	case allowTag || digestPattern.MatchString(a):
	case strings.Contains(a, "@sha256:"):
		v.add(path, "artifact %q has a malformed digest: a sha256 digest is 64 lowercase hex digits", a)
	default:
		repo := a
		if at := strings.LastIndexByte(repo, '@'); at >= 0 {
			repo = repo[:at]
		}
		if colon := strings.LastIndexByte(repo, ':'); colon > strings.LastIndexByte(repo, '/') {
			v.add(path, "artifact %q is a tag, not a digest: pin it as %s@sha256:<digest> (promotion never rebuilds), or set allowTag: true", a, repo[:colon])
			return
		}
		v.add(path, "artifact %q is not pinned: pin it as %s@sha256:<digest> (promotion never rebuilds), or set allowTag: true", a, repo)
	}
}

func (v *validator) readiness(rd *Readiness) {
	if rd == nil {
		return
	}
	seen := map[string]int{}
	for i, g := range rd.Gates {
		p := fmt.Sprintf("readiness.gates[%d]", i)
		v.name(p+".name", "readiness gate name", g.Name)
		if prev, dup := seen[g.Name]; dup && g.Name != "" {
			v.add(p+".name", "readiness gate %q is declared twice (also readiness.gates[%d]): rename or remove one", g.Name, prev)
		} else {
			seen[g.Name] = i
		}
		v.enum(p+".type", "gate type", g.Type, GateTypes, true)
		v.nonNegative(p+".timeout", g.Timeout)
		v.gate(p, g)
	}
	if rk := rd.Risk; rk != nil {
		factors := make([]string, 0, len(rk.Weights))
		for f := range rk.Weights {
			factors = append(factors, f)
		}
		sort.Strings(factors)
		for _, f := range factors {
			fp := "readiness.risk.weights." + f
			v.enum(fp, "risk factor", f, RiskFactors, true)
			if w := rk.Weights[f]; v.finite(fp, w) && w < 0 {
				v.add(fp, "weight %v is negative: use 0 to ignore the factor, or more to weigh it", w)
			}
		}
		for _, t := range []struct {
			key   string
			score int
		}{{"medium", rk.Medium}, {"high", rk.High}} {
			if t.score < 0 || t.score > 100 {
				v.add("readiness.risk."+t.key, "%s %d is out of range: use a score from 0 to 100", t.key, t.score)
			}
		}
		if rk.Medium > 0 && rk.High > 0 && rk.Medium >= rk.High {
			v.add("readiness.risk.medium", "medium %d is not below high %d: lower medium or raise high", rk.Medium, rk.High)
		}
	}
}

// gate checks the fields specific to a readiness gate's type.
func (v *validator) gate(p string, g ReadinessGate) {
	if !contains(GateTypes, g.Type) {
		return
	}
	set := map[string]bool{
		"maxSeverity": g.MaxSeverity != "", "url": g.URL != "", "expectStatus": g.ExpectStatus != 0,
		"latencyP95": g.LatencyP95 != 0, "requests": g.Requests != 0, "minCoverage": g.MinCoverage != 0,
		"query": g.Query != "", "maxRegression": g.MaxRegression != 0, "maxDrillAge": g.MaxDrillAge != 0,
		"run": g.Run != "", "site": g.Site != "",
	}
	for _, f := range gateFields {
		if set[f.key] && !contains(f.types, g.Type) {
			v.add(p+"."+f.key, "only for %s gates: remove it from this %s gate", joinAnd(f.types), g.Type)
		}
	}
	switch g.Type {
	case GateScanReport:
		v.enum(p+".maxSeverity", "severity", g.MaxSeverity, severities, true)
	case GateSynthetic:
		v.httpURL(p+".url", g.URL, true)
		v.status(p+".expectStatus", g.ExpectStatus)
		v.nonNegative(p+".latencyP95", g.LatencyP95)
		if g.Requests < 0 {
			v.add(p+".requests", "requests %d is negative: say how many requests to send, such as 10", g.Requests)
		}
	case GateCoverage:
		switch {
		case g.MinCoverage == 0:
			v.add(p+".minCoverage", "minCoverage is required: give the least line coverage in percent, such as 80")
		case !(g.MinCoverage > 0 && g.MinCoverage <= 100):
			v.add(p+".minCoverage", "minCoverage %v is out of range: use a percentage from 0 to 100, such as 80", g.MinCoverage)
		}
	case GatePerformance:
		v.required(p+".query", g.Query, "give the PromQL query of the metric compared between the new and old version")
		switch {
		case g.MaxRegression == 0:
			v.add(p+".maxRegression", "maxRegression is required: give the largest regression allowed in percent, such as 10")
		case v.finite(p+".maxRegression", g.MaxRegression) && g.MaxRegression < 0:
			v.add(p+".maxRegression", "maxRegression %v is negative: give the largest regression allowed in percent, such as 10", g.MaxRegression)
		}
	case GateDR:
		v.nonNegative(p+".maxDrillAge", g.MaxDrillAge)
		if g.MaxDrillAge == 0 && g.Run == "" {
			v.add(p+".maxDrillAge", "a drValidation gate needs maxDrillAge (the oldest acceptable restore drill, such as 720h) or run (a command that validates recovery)")
		}
		if g.Run != "" {
			v.site(p+".site", g.Site)
		}
	case GateThirdParty:
		v.httpURL(p+".url", g.URL, true)
	case GateCompliance, GateCommand:
		v.required(p+".run", g.Run, "give the command a site worker runs; exit status 0 passes")
		v.site(p+".site", g.Site)
	}
}

func (v *validator) approvals(gates []ApprovalGate, stages []string) {
	seen := map[string]bool{}
	for i, g := range gates {
		p := fmt.Sprintf("approvals[%d]", i)
		v.name(p+".name", "approval gate name", g.Name)
		if seen[g.Name] && g.Name != "" {
			v.add(p+".name", "approval gate %q is declared twice: rename or remove one", g.Name)
		}
		seen[g.Name] = true
		v.ref(p+".before", "stage", g.Before, stages, "stages")
		if len(g.Roles) == 0 {
			v.add(p+".roles", "roles is empty: list the roles allowed to approve, such as [release-manager]")
		}
		v.texts(p+".roles", "role", g.Roles)
		if g.Count < 0 {
			v.add(p+".count", "count %d is negative: say how many distinct people must approve (at least 1), or leave it out for 1", g.Count)
		}
		v.nonNegative(p+".timeout", g.Timeout)
		v.enum(p+".onTimeout", "onTimeout action", g.OnTimeout, onTimeoutActions, false)
		if g.OnTimeout == "wait" && g.Escalation == nil {
			v.add(p+".onTimeout", "wait keeps the gate open past its timeout, so it needs an escalation: add escalation with after and roles")
		}
		if e := g.Escalation; e != nil {
			ep := p + ".escalation"
			switch timeout := Duration(g.TimeoutOrDefault()); {
			case e.After < 0:
				v.nonNegative(ep+".after", e.After)
			case e.After == 0:
				v.add(ep+".after", "after is required: say how long the gate waits before more people are told, such as 4h")
			case e.After >= timeout:
				v.add(ep+".after", "%s is not before the gate's timeout (%s): escalate earlier, or raise timeout", fmtDuration(e.After), fmtDuration(timeout))
			}
			if len(e.Roles) == 0 {
				v.add(ep+".roles", "roles is empty: list the roles told when the gate waits too long, such as [engineering-manager]")
			}
			v.texts(ep+".roles", "role", e.Roles)
		}
		for j, r := range g.DistinctRoles {
			if !contains(g.Roles, r) {
				v.add(fmt.Sprintf("%s.distinctRoles[%d]", p, j), "%q is not one of the gate's roles: add it to roles, or remove it here", r)
			}
		}
		v.unique(p+".distinctRoles", "role", g.DistinctRoles)
		if n := len(g.DistinctRoles); n > 0 && g.Count >= 0 && g.RequiredCount() < n {
			v.add(p+".count", "the %d distinct roles need at least %d approvals, but count is %d: set count to at least %d", n, n, g.RequiredCount(), n)
		}
	}
}

// governance checks freezes, the CAB, change requests and the rollback authority.
func (v *validator) governance(r Runbook) {
	for i, f := range r.Freezes {
		v.name(fmt.Sprintf("freezes[%d]", i), "freeze calendar name", f)
	}
	v.unique("freezes", "freeze calendar", r.Freezes)
	v.enum("onFreeze", "onFreeze action", r.OnFreeze, onFreezeActions, false)
	if c := r.CAB; c != nil {
		if c.When == "" && c.Threshold == 0 {
			v.add("cab", "the CAB block says neither when nor threshold: give a threshold (an impact score such as 60) or a condition such as risk.score >= 70")
		}
		if c.Threshold < 0 || c.Threshold > 100 {
			v.add("cab.threshold", "threshold %d is out of range: use an impact score from 0 to 100", c.Threshold)
		}
		if c.Count < 0 {
			v.add("cab.count", "count %d is negative: use at least 1", c.Count)
		}
		v.nonNegative("cab.timeout", c.Timeout)
		if _, clash := r.Gate(CABGateName); clash {
			v.add("cab", "an approval gate is named %q, the name of the gate the CAB block adds: rename that approval", CABGateName)
		}
		if c.Before != "" {
			v.ref("cab.before", "stage", c.Before, r.stageNames(), "stages")
		}
		if len(c.Roles) == 0 {
			v.add("cab.roles", "roles is empty: list the roles of the CAB members who approve, such as [cab]")
		}
		v.texts("cab.roles", "role", c.Roles)
	}
	if cr := r.ChangeRequest; cr != nil {
		v.enum("changeRequest.provider", "change request provider", cr.Provider, ChangeRequestProviders, true)
	}
	v.texts("rollbackAuthority", "role", r.RollbackAuthority)
	for i, fm := range r.PreMortem {
		p := fmt.Sprintf("preMortem[%d]", i)
		v.required(p+".failure", fm.Failure, "say how the release could fail, such as: the new index build locks the orders table")
		v.required(p+".mitigation", fm.Mitigation, "say what is ready when it does, such as: the migration builds the index concurrently; rollback drops it")
	}
}

func (v *validator) analyses(as []Analysis) {
	seen := map[string]int{}
	for i, a := range as {
		p := fmt.Sprintf("analyses[%d]", i)
		v.name(p+".name", "analysis name", a.Name)
		if prev, dup := seen[a.Name]; dup && a.Name != "" {
			v.add(p+".name", "analysis %q is declared twice (also analyses[%d]): rename or remove one", a.Name, prev)
		} else {
			seen[a.Name] = i
		}
		v.enum(p+".provider", "analysis provider", a.Provider, AnalysisProviders, true)
		v.required(p+".query", a.Query, "give the PromQL query measured, such as sum(rate(http_errors_total[5m]))")
		v.nonNegative(p+".interval", a.Interval)
		if a.Count < 0 {
			v.add(p+".count", "count %d is negative: say how many measurements make one run, such as 5", a.Count)
		}
		switch {
		case a.FailureLimit < 0:
			v.add(p+".failureLimit", "failureLimit %d is negative: say how many measurements may fail, such as 1", a.FailureLimit)
		case a.Count > 0 && a.FailureLimit >= a.Count:
			v.add(p+".failureLimit", "failureLimit %d lets all %d measurements fail: make it less than count", a.FailureLimit, a.Count)
		}
		if a.SuccessCondition == "" && a.FailureCondition == "" {
			v.add(p, "an analysis needs a successCondition or a failureCondition: add one, such as successCondition: result.value < 0.01")
		}
	}
}

func (v *validator) stages(stages []Stage, analyses []string) {
	if len(stages) == 0 {
		v.add("stages", "a runbook needs at least one stage: add stages with a name and targets")
	}
	declared := make([]string, 0, len(stages))
	index := map[string]int{}
	for i, s := range stages {
		if _, dup := index[s.Name]; !dup && s.Name != "" {
			index[s.Name] = i
			declared = append(declared, s.Name)
		}
	}
	seenStage := map[string]int{}
	targetNames := map[string]string{}
	for i, s := range stages {
		sp := fmt.Sprintf("stages[%d]", i)
		v.name(sp+".name", "stage name", s.Name)
		if prev, dup := seenStage[s.Name]; dup && s.Name != "" {
			v.add(sp+".name", "stage %q is declared twice (also stages[%d]): rename or remove one", s.Name, prev)
		} else {
			seenStage[s.Name] = i
		}
		for j, a := range s.After {
			ap := fmt.Sprintf("%s.after[%d]", sp, j)
			if a == s.Name && a != "" {
				v.add(ap, "stage %q cannot be after itself: remove it from after", a)
				continue
			}
			if _, earlier := seenStage[a]; !earlier && slices.Contains(declared, a) {
				// A stage without after waits for the one above it, so waiting for a later
				// stage could close a loop the after entries alone do not show.
				v.add(ap, "stage %q is declared below %q: a stage may only wait for stages declared above it; move %q above %q", a, s.Name, a, s.Name)
				continue
			}
			v.ref(ap, "stage", a, declared, "stages")
		}
		v.unique(sp+".after", "stage", s.After)
		v.texts(sp+".requires", "capability", s.Requires)
		v.strategy(sp+".strategy", s.Strategy, analyses)
		for j, c := range s.Smoke {
			v.check(fmt.Sprintf("%s.smoke[%d]", sp, j), c)
		}
		if ec := s.ExitCriteria; ec != nil {
			for j, a := range ec.Analyses {
				v.ref(fmt.Sprintf("%s.exitCriteria.analyses[%d]", sp, j), "analysis", a, analyses, "analyses")
			}
			for j, c := range ec.Checks {
				v.check(fmt.Sprintf("%s.exitCriteria.checks[%d]", sp, j), c)
			}
		}
		if len(s.Targets) == 0 {
			v.add(sp+".targets", "stage %q needs at least one target: add targets with a name and a kind", s.Name)
		}
		for j, t := range s.Targets {
			tp := fmt.Sprintf("%s.targets[%d]", sp, j)
			v.name(tp+".name", "target name", t.Name)
			if prev, dup := targetNames[t.Name]; dup && t.Name != "" {
				v.add(tp+".name", "target %q is declared twice (also in %s); target names are unique in a runbook: rename one", t.Name, prev)
			} else {
				targetNames[t.Name] = sp
			}
			v.target(tp, t)
		}
	}
}

func (v *validator) strategy(p string, s *Strategy, analyses []string) {
	if s == nil {
		return
	}
	v.enum(p+".type", "strategy type", s.Type, Strategies, true)
	if s.MaxParallel < 0 {
		v.add(p+".maxParallel", "maxParallel %d is negative: say how many targets deploy at once, such as 2", s.MaxParallel)
	}
	if s.MaxParallel != 0 && s.Type != StrategyRolling && contains(Strategies, s.Type) {
		v.add(p+".maxParallel", "only for strategy type rolling: remove it, or set type: rolling")
	}
	if len(s.Steps) > 0 && s.Type != StrategyCanary && contains(Strategies, s.Type) {
		v.add(p+".steps", "only for strategy type canary: remove them, or set type: canary")
	}
	if s.BlueGreen != nil && s.Type != StrategyBlueGreen && contains(Strategies, s.Type) {
		v.add(p+".blueGreen", "only for strategy type blueGreen: remove it, or set type: blueGreen")
	}
	switch s.Type {
	case StrategyCanary:
		if len(s.Steps) == 0 {
			v.add(p+".steps", "a canary strategy needs steps: add them, such as [{weight: 10, pause: 5m}, {weight: 100}]")
		}
		prev := 0
		for i, st := range s.Steps {
			sp := fmt.Sprintf("%s.steps[%d]", p, i)
			switch {
			case st.Weight < 1 || st.Weight > 100:
				v.add(sp+".weight", "weight %d is out of range: use 1 to 100 (the percent of traffic on the new version)", st.Weight)
			case st.Weight <= prev:
				v.add(sp+".weight", "weight %d is not above the previous step's %d: canary weights must increase step by step", st.Weight, prev)
			}
			if st.Weight > prev {
				prev = st.Weight
			}
			v.nonNegative(sp+".pause", st.Pause)
			if st.Analysis != "" {
				v.ref(sp+".analysis", "analysis", st.Analysis, analyses, "analyses")
			}
		}
		if n := len(s.Steps); n > 0 && s.Steps[n-1].Weight != 100 {
			v.add(fmt.Sprintf("%s.steps[%d].weight", p, n-1), "the last step must set weight 100, so the new version ends with all traffic: add a step {weight: 100}")
		}
	case StrategyBlueGreen:
		if s.BlueGreen == nil {
			v.add(p+".blueGreen", "a blueGreen strategy needs a blueGreen block: add blueGreen: {rollbackWindow: 1h}")
		} else {
			v.nonNegative(p+".blueGreen.rollbackWindow", s.BlueGreen.RollbackWindow)
		}
	}
}

// check validates a smoke test or synthetic probe.
func (v *validator) check(p string, c HTTPCheck) {
	v.optName(p+".name", "check name", c.Name)
	v.httpURL(p+".url", c.URL, true)
	v.status(p+".expectStatus", c.ExpectStatus)
	v.nonNegative(p+".timeout", c.Timeout)
}

func (v *validator) target(tp string, t Target) {
	switch {
	case t.Kind == "":
		v.add(tp+".kind", "kind is required: use one of %s", strings.Join(TargetKinds, ", "))
	case !contains(TargetKinds, t.Kind):
		v.enum(tp+".kind", "target kind", t.Kind, TargetKinds, true)
	}
	v.nonNegative(tp+".timeout", t.Timeout)
	v.nonNegative(tp+".heartbeat", t.Heartbeat)
	if !contains(TargetKinds, t.Kind) {
		return
	}
	// Fields of other kinds.
	blocks := []struct {
		kind string
		set  bool
	}{{KindArgoCD, t.ArgoCD != nil}, {KindSpinnaker, t.Spinnaker != nil}, {KindHardware, t.Hardware != nil}, {KindFlag, t.Flag != nil}}
	for _, b := range blocks {
		if b.set && b.kind != t.Kind {
			v.add(tp+"."+targetBlockOfKind[b.kind], "only for kind %s: remove it, or set kind: %s", b.kind, b.kind)
		}
	}
	kind := article(t.Kind) + " " + t.Kind + " target"
	via := "its " + targetBlockOfKind[t.Kind] + " block"
	if t.Site != "" && t.Kind != KindCommand && t.Kind != KindHardware {
		v.add(tp+".site", "only for command and hardware targets: remove it (%s deploys through %s)", kind, via)
	}
	if t.Kind != KindCommand {
		if t.Deploy != "" {
			v.add(tp+".deploy", "only for command targets: remove it (%s deploys through %s)", kind, via)
		}
		if t.Rollback != "" {
			v.add(tp+".rollback", "only for command targets: remove it (%s rolls back through %s)", kind, via)
		}
	}

	v.drift(tp, t)

	switch t.Kind {
	case KindCommand:
		v.site(tp+".site", t.Site)
		if t.Deploy == "" {
			v.add(tp+".deploy", "a command target needs a deploy command: add deploy: with the shell command that installs $TRAINYARD_VERSION")
		}
		if t.Rollback == "" {
			v.add(tp+".rollback", "a command target needs a rollback command, so a failed release can be undone: add rollback: with the shell command that restores $TRAINYARD_PREVIOUS_VERSION")
		}
	case KindArgoCD:
		if t.ArgoCD == nil {
			v.add(tp+".argocd", "an argocd target needs an argocd block: add argocd: {app: <application>}")
			return
		}
		v.required(tp+".argocd.app", t.ArgoCD.App, "name the Argo CD application to sync")
	case KindSpinnaker:
		if t.Spinnaker == nil {
			v.add(tp+".spinnaker", "a spinnaker target needs a spinnaker block: add spinnaker: {application: <application>, pipeline: <pipeline>}")
			return
		}
		v.required(tp+".spinnaker.application", t.Spinnaker.Application, "name the Spinnaker application")
		v.required(tp+".spinnaker.pipeline", t.Spinnaker.Pipeline, "name the pipeline to trigger")
	case KindHardware:
		v.site(tp+".site", t.Site)
		if t.Hardware == nil {
			v.add(tp+".hardware", "a hardware target needs a hardware block: add hardware: with inventory, flash, probe and waves")
			return
		}
		v.hardware(tp+".hardware", t.Hardware)
	case KindFlag:
		if t.Flag == nil {
			v.add(tp+".flag", "a flag target needs a flag block: add flag: {flag: <feature flag>, environment: <environment>}")
			return
		}
		v.required(tp+".flag.flag", t.Flag.Flag, "name the Unleash feature flag to roll out")
		v.required(tp+".flag.environment", t.Flag.Environment, "name the Unleash environment, such as production")
		if t.Flag.Percent < 0 || t.Flag.Percent > 100 {
			v.add(tp+".flag.percent", "percent %d is out of range: use 0 to 100", t.Flag.Percent)
		}
	}
}

// drift checks a target's drift command and what it does about drift: argocd targets
// compare with git by themselves, command targets need a drift command to compare at all.
func (v *validator) drift(tp string, t Target) {
	if t.Drift != "" && t.Kind != KindCommand {
		v.add(tp+".drift", "only for command targets: remove it (an argocd target is compared with git by Argo CD; other kinds have no drift check)")
	}
	if t.OnDrift == "" {
		return
	}
	v.enum(tp+".onDrift", "drift action", t.OnDrift, DriftActions, false)
	switch {
	case t.Kind != KindCommand && t.Kind != KindArgoCD:
		v.add(tp+".onDrift", "only for command and argocd targets: remove it (%s %s target has no drift check)", article(t.Kind), t.Kind)
	case t.Kind == KindCommand && strings.TrimSpace(t.Drift) == "":
		v.add(tp+".onDrift", "a command target's drift is found by its drift command: add drift: with a command that exits 1 when the target drifted, or remove onDrift")
	}
}

func (v *validator) hardware(p string, h *HardwareTarget) {
	v.required(p+".inventory", h.Inventory, "give the file on the site worker, or the http(s) URL, that lists the devices")
	v.required(p+".flash", h.Flash, "give the command that flashes one device")
	v.required(p+".probe", h.Probe, "give the command that checks a flashed device is healthy")
	if len(h.Waves) == 0 {
		v.add(p+".waves", "a hardware target needs at least one wave: add waves, such as [{count: 1}, {percent: 10}, {rest: true}]")
	}
	for i, w := range h.Waves {
		wp := fmt.Sprintf("%s.waves[%d]", p, i)
		var set []string
		if w.Count != 0 {
			set = append(set, "count")
		}
		if w.Percent != 0 {
			set = append(set, "percent")
		}
		if w.Rest {
			set = append(set, "rest")
		}
		switch {
		case len(set) == 0:
			v.add(wp, "a wave needs one of count (devices), percent (1 to 100) or rest: true")
		case len(set) > 1:
			v.add(wp, "a wave is one of count, percent or rest, and this one sets %s: keep one", strings.Join(set, " and "))
		}
		if w.Count < 0 {
			v.add(wp+".count", "count %d is negative: give the number of devices in the wave, such as 5", w.Count)
		}
		if w.Percent < 0 || w.Percent > 100 {
			v.add(wp+".percent", "percent %d is out of range: use 1 to 100", w.Percent)
		}
		if w.Rest && i != len(h.Waves)-1 {
			v.add(wp+".rest", "rest takes the remaining devices, so it must be the last wave: move this wave to the end")
		}
	}
	if r := h.MaxFailureRatio; !(r >= 0 && r <= 1) {
		v.add(p+".maxFailureRatio", "maxFailureRatio %v is out of range: use 0 to 1, such as 0.05 for 5%%", r)
	}
}

func (v *validator) stabilization(s Stabilization, analyses []string) {
	v.nonNegative("stabilization.window", s.Window)
	if s.Window == 0 && (len(s.Analyses) > 0 || s.SLO != nil || len(s.Checks) > 0) {
		v.add("stabilization.window", "window is required when analyses, slo or checks are watched: give how long to watch, such as 30m")
	}
	for i, a := range s.Analyses {
		v.ref(fmt.Sprintf("stabilization.analyses[%d]", i), "analysis", a, analyses, "analyses")
	}
	v.unique("stabilization.analyses", "analysis", s.Analyses)
	if slo := s.SLO; slo != nil {
		switch o := slo.Objective; {
		case o == 0:
			v.add("stabilization.slo.objective", "objective is required: give the target success ratio in percent, such as 99.9")
		case !(o > 0 && o < 100):
			v.add("stabilization.slo.objective", "objective %v is out of range: give a percentage between 0 and 100 (exclusive), such as 99.9", o)
		}
		v.required("stabilization.slo.errorRatio", slo.ErrorRatio, "give the PromQL query of the ratio of failed requests (0 to 1)")
		for i, br := range slo.BurnRates {
			bp := fmt.Sprintf("stabilization.slo.burnRates[%d]", i)
			switch {
			case br.Long <= 0:
				v.add(bp+".long", "long must be above 0: give the long window, such as 1h")
			case br.Short <= 0:
				v.add(bp+".short", "short must be above 0: give the short window, such as 5m")
			case br.Long <= br.Short:
				v.add(bp+".long", "long (%s) must be longer than short (%s): swap them, or widen long", fmtDuration(br.Long), fmtDuration(br.Short))
			}
			if !(br.Factor > 0) || math.IsInf(br.Factor, 0) {
				v.add(bp+".factor", "factor %v must be a number above 0: give how many times faster than sustainable the budget may burn, such as 14.4", br.Factor)
			}
		}
	}
	for i, c := range s.Checks {
		v.check(fmt.Sprintf("stabilization.checks[%d]", i), c)
	}
	v.enum("stabilization.onBreach", "onBreach action", s.OnBreach, BreachActions, false)
}

func (v *validator) rollback(rb *Rollback) {
	if rb == nil {
		return
	}
	v.enum("rollback.scope", "rollback scope", rb.Scope, RollbackScopes, false)
	v.nonNegative("rollback.budget", rb.Budget)
	if cb := rb.CircuitBreaker; cb != nil {
		v.enum("rollback.circuitBreaker.scope", "circuit breaker scope", cb.Scope, CircuitBreakerScopes, true)
	}
}

// unknownFieldMsg words an unknown key of the block decoded into t.
func unknownFieldMsg(key string, t reflect.Type) string {
	names := fieldNames(t)
	switch {
	case closest(key, names) != "":
		return fmt.Sprintf("unknown field %q (did you mean %q?)", key, closest(key, names))
	case t == runbookType:
		return fmt.Sprintf("unknown field %q: check its spelling; only extension fields starting with x- may be added", key)
	case len(names) <= 13:
		return fmt.Sprintf("unknown field %q: remove it, or use one of %s", key, strings.Join(names, ", "))
	default:
		return fmt.Sprintf("unknown field %q: remove it, or check its spelling in docs/runbooks.md", key)
	}
}

// yamlFields lists the YAML keys of a struct in declaration order, with their types, and
// the type of the values of the inline map unknown keys land in (nil when none).
func yamlFields(t reflect.Type) (names []string, types map[string]reflect.Type, inline reflect.Type) {
	types = map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		switch {
		case !f.IsExported() || name == "-":
			continue
		case strings.Contains(opts, "inline"):
			if f.Type.Kind() == reflect.Map {
				inline = f.Type.Elem()
			}
			continue
		case name == "":
			name = strings.ToLower(f.Name)
		}
		names = append(names, name)
		types[name] = f.Type
	}
	return names, types, inline
}

func fieldNames(t reflect.Type) []string {
	names, _, _ := yamlFields(t)
	return names
}

// closest returns the candidate a misspelt s most likely meant, or "" when none is close.
func closest(s string, candidates []string) string {
	best, bestDist := "", 0
	ls := strings.ToLower(s)
	for _, c := range candidates {
		d := editDistance(ls, strings.ToLower(c))
		if d == 0 && s != c {
			return c // differs only in case
		}
		limit := 1
		switch n := len([]rune(c)); {
		case n > 8:
			limit = 3
		case n > 4:
			limit = 2
		}
		if d > 0 && d <= limit && d < len([]rune(ls)) && (best == "" || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, counting a swap of two
// neighbouring letters as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return math.MaxInt32 // too long to be a typo of a field name
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// slug turns a name into one NamePattern accepts, or "" when nothing is left.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 64 {
		out = strings.TrimRight(out[:64], "-")
	}
	if !NamePattern.MatchString(out) {
		return ""
	}
	return out
}

// fmtDuration writes a duration as a person would: 24h rather than 24h0m0s.
func fmtDuration(d Duration) string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// joinAnd lists words as a person would: "a", "a and b", "a, b and c".
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}

func lastKey(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
