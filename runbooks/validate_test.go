package runbooks

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// okStage is a valid stage, added to documents that declare none.
const okStage = `stages:
  - name: s
    targets:
      - {name: t, kind: command, site: a, deploy: x, rollback: y}
`

// doc makes a runbook from body: named r unless body names it, with okStage unless body
// declares stages.
func doc(body string) string {
	if !strings.HasPrefix(body, "stages:") && !strings.Contains(body, "\nstages:") {
		body += "\n" + okStage
	}
	if strings.HasPrefix(body, "name:") {
		return body
	}
	return "name: r\n" + body
}

type validateCase struct {
	name string
	yaml string
	// path and msg locate the problem expected; both empty when the document is valid.
	path, msg string
}

func runValidateCases(t *testing.T, cases []validateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("r.yaml", []byte(doc(tc.yaml)))
			if tc.path == "" && tc.msg == "" {
				require.NoError(t, err)
				return
			}
			var inv *InvalidError
			require.ErrorAs(t, err, &inv)
			for _, p := range inv.Problems {
				if p.Path == tc.path && strings.Contains(p.Msg, tc.msg) {
					require.Positive(t, p.Line, "every problem is located")
					return
				}
			}
			require.Failf(t, "problem not reported", "want %s: ...%s...\ngot:\n%v", tc.path, tc.msg, err)
		})
	}
}

func TestValidate_Metadata(t *testing.T) {
	t.Parallel()
	runValidateCases(t, []validateCase{
		{name: "valid", yaml: "owners: [payments]\ntier: 1\ndataClassification: pci\ncapabilities: [gpu]\nchannel: \"#releases\""},
		{name: "valid channel id", yaml: "channel: C0123ABCD9"},
		{name: "bad name suggests a fix", yaml: "name: Bad_Name", path: "name", msg: `such as "bad-name"`},
		{name: "tier above 4", yaml: "tier: 5", path: "tier", msg: "tier 5 is out of range: use 1 (most critical) to 4"},
		{name: "negative tier", yaml: "tier: -1", path: "tier", msg: "out of range"},
		{name: "misspelt classification", yaml: "dataClassification: piii", path: "dataClassification", msg: `did you mean "pii"?`},
		{name: "unknown classification", yaml: "dataClassification: secret", path: "dataClassification", msg: "use one of public, internal, pii, pci, phi"},
		{name: "empty owner", yaml: "owners: [a, \"\"]", path: "owners[1]", msg: "name a team"},
		{name: "empty capability", yaml: "capabilities: [\" \"]", path: "capabilities[0]", msg: "name a capability"},
		{name: "channel without #", yaml: "channel: releases", path: "channel", msg: "write it as #name"},
		{name: "misspelt top-level field", yaml: "stagez: []", path: "stagez", msg: `unknown field "stagez" (did you mean "stages"?)`},
		{name: "unknown top-level field", yaml: "colour: blue", path: "colour", msg: "only extension fields starting with x- may be added"},
	})
}

func TestValidate_Exceptions(t *testing.T) {
	t.Parallel()
	runValidateCases(t, []validateCase{
		{name: "valid", yaml: "extends: base.yaml\nexceptions:\n  - {remove: approvals/security, waiver: W-1, reason: reviewed}\n  - {remove: readiness/load-test, waiver: W-2, reason: no load}"},
		{name: "no item", yaml: "exceptions:\n  - {remove: approvals, waiver: W, reason: r}", path: "exceptions[0].remove", msg: "write approvals/<name> or readiness/<name>"},
		{name: "misspelt section", yaml: "exceptions:\n  - {remove: aproval/x, waiver: W, reason: r}", path: "exceptions[0].remove", msg: `did you mean "approvals/x"?`},
		{name: "other section", yaml: "exceptions:\n  - {remove: stages/x, waiver: W, reason: r}", path: "exceptions[0].remove", msg: "only approvals/<name> and readiness/<name>"},
		{name: "bad item name", yaml: "exceptions:\n  - {remove: readiness/Load_Test, waiver: W, reason: r}", path: "exceptions[0].remove", msg: `such as "readiness/load-test"`},
		{name: "no waiver", yaml: "exceptions:\n  - {remove: approvals/x, reason: r}", path: "exceptions[0].waiver", msg: "waiver is required"},
		{name: "no reason", yaml: "exceptions:\n  - {remove: approvals/x, waiver: W}", path: "exceptions[0].reason", msg: "reason is required"},
		{name: "dropped twice", yaml: "exceptions:\n  - {remove: approvals/x, waiver: W, reason: r}\n  - {remove: approvals/x, waiver: W, reason: r}", path: "exceptions[1].remove", msg: "already dropped by exceptions[0]"},
	})
}

const digest = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestValidate_Scope(t *testing.T) {
	t.Parallel()
	runValidateCases(t, []validateCase{
		{name: "valid", yaml: "scope:\n  infrastructure: bundled\n  components:\n    - {name: web, artifact: r/web" + digest + ", schemaChange: expand, libraries: [{name: libssl, version: '3'}]}\n    - {name: api, artifact: r/api:1.2, allowTag: true}\n  groups:\n    - {name: checkout, components: [web, api]}"},
		{name: "tag without allowTag", yaml: "scope:\n  components:\n    - {name: web, artifact: registry/web:1.2}", path: "scope.components[0].artifact",
			msg: `artifact "registry/web:1.2" is a tag, not a digest: pin it as registry/web@sha256:<digest> (promotion never rebuilds), or set allowTag: true`},
		{name: "unpinned", yaml: "scope:\n  components:\n    - {name: web, artifact: registry/web}", path: "scope.components[0].artifact", msg: "is not pinned"},
		{name: "short digest", yaml: "scope:\n  components:\n    - {name: web, artifact: r/web@sha256:abc}", path: "scope.components[0].artifact", msg: "64 lowercase hex digits"},
		{name: "no artifact", yaml: "scope:\n  components:\n    - {name: web}", path: "scope.components[0].artifact", msg: "artifact is required"},
		{name: "duplicate component", yaml: "scope:\n  components:\n    - {name: web, artifact: a, allowTag: true}\n    - {name: web, artifact: a, allowTag: true}", path: "scope.components[1].name", msg: "declared twice"},
		{name: "schema change", yaml: "scope:\n  components:\n    - {name: web, artifact: a, allowTag: true, schemaChange: expnad}", path: "scope.components[0].schemaChange", msg: `did you mean "expand"?`},
		{name: "library without version", yaml: "scope:\n  components:\n    - {name: web, artifact: a, allowTag: true, libraries: [{name: libssl}]}", path: "scope.components[0].libraries[0].version", msg: "version is required"},
		{name: "group of one", yaml: "scope:\n  components:\n    - {name: web, artifact: a, allowTag: true}\n  groups:\n    - {name: g, components: [web]}", path: "scope.groups[0].components", msg: "at least two components"},
		{name: "group of unknown", yaml: "scope:\n  components:\n    - {name: web, artifact: a, allowTag: true}\n    - {name: api, artifact: a, allowTag: true}\n  groups:\n    - {name: g, components: [web, ap]}", path: "scope.groups[0].components[1]", msg: `did you mean "api"?`},
		{name: "group twice", yaml: "scope:\n  components:\n    - {name: web, artifact: a, allowTag: true}\n    - {name: api, artifact: a, allowTag: true}\n  groups:\n    - {name: g, components: [web, api]}\n    - {name: g, components: [web, api]}", path: "scope.groups[1].name", msg: "declared twice"},
		{name: "infrastructure", yaml: "scope: {infrastructure: inline}", path: "scope.infrastructure", msg: "use one of separate, bundled"},
	})
}

func TestValidate_Readiness(t *testing.T) {
	t.Parallel()
	gate := func(fields string) string { return "readiness:\n  gates:\n    - {" + fields + "}" }
	runValidateCases(t, []validateCase{
		{name: "valid", yaml: `readiness:
  gates:
    - {name: scan, type: scanReport, maxSeverity: high}
    - {name: probe, type: synthetic, url: "https://web.example.com/healthz", expectStatus: 200, latencyP95: 300ms, requests: 10}
    - {name: cover, type: coverage, minCoverage: 80}
    - {name: perf, type: performance, query: "rate(x[5m])", maxRegression: 10}
    - {name: dr, type: drValidation, maxDrillAge: 720h}
    - {name: dr-run, type: drValidation, run: ./drill.sh, site: dc1}
    - {name: vendor, type: thirdParty, url: "https://status.example.com"}
    - {name: sox, type: compliance, run: ./sox.sh, site: dc1}
    - {name: custom, type: command, run: ./check.sh, site: dc1, timeout: 5m}
  risk:
    weights: {churn: 2, coverage: 0}
    medium: 40
    high: 70`},
		{name: "unknown type", yaml: gate("name: g, type: smoke"), path: "readiness.gates[0].type", msg: "use one of scanReport, synthetic"},
		{name: "misspelt type", yaml: gate("name: g, type: scanreport"), path: "readiness.gates[0].type", msg: `did you mean "scanReport"?`},
		{name: "no type", yaml: gate("name: g"), path: "readiness.gates[0].type", msg: "gate type is required"},
		{name: "duplicate name", yaml: "readiness:\n  gates:\n    - {name: g, type: coverage, minCoverage: 1}\n    - {name: g, type: coverage, minCoverage: 1}", path: "readiness.gates[1].name", msg: "declared twice"},
		{name: "negative timeout", yaml: gate("name: g, type: coverage, minCoverage: 1, timeout: -1m"), path: "readiness.gates[0].timeout", msg: "is negative"},
		{name: "scan without severity", yaml: gate("name: g, type: scanReport"), path: "readiness.gates[0].maxSeverity", msg: "use one of low, medium, high, critical"},
		{name: "synthetic without url", yaml: gate("name: g, type: synthetic"), path: "readiness.gates[0].url", msg: "url is required"},
		{name: "synthetic ftp", yaml: gate("name: g, type: synthetic, url: 'ftp://x'"), path: "readiness.gates[0].url", msg: "is not an http(s) URL"},
		{name: "synthetic status", yaml: gate("name: g, type: synthetic, url: 'https://x', expectStatus: 99"), path: "readiness.gates[0].expectStatus", msg: "use 100 to 599"},
		{name: "coverage without minimum", yaml: gate("name: g, type: coverage"), path: "readiness.gates[0].minCoverage", msg: "minCoverage is required"},
		{name: "coverage above 100", yaml: gate("name: g, type: coverage, minCoverage: 101"), path: "readiness.gates[0].minCoverage", msg: "out of range"},
		{name: "url on coverage", yaml: gate("name: g, type: coverage, minCoverage: 80, url: 'https://x'"), path: "readiness.gates[0].url", msg: "only for synthetic and thirdParty gates: remove it from this coverage gate"},
		{name: "performance without query", yaml: gate("name: g, type: performance, maxRegression: 5"), path: "readiness.gates[0].query", msg: "query is required"},
		{name: "performance regression", yaml: gate("name: g, type: performance, query: q, maxRegression: -5"), path: "readiness.gates[0].maxRegression", msg: "is negative"},
		{name: "performance infinite", yaml: gate("name: g, type: performance, query: q, maxRegression: .inf"), path: "readiness.gates[0].maxRegression", msg: "not a usable number"},
		{name: "dr without age or run", yaml: gate("name: g, type: drValidation"), path: "readiness.gates[0].maxDrillAge", msg: "needs maxDrillAge"},
		{name: "dr run without site", yaml: gate("name: g, type: drValidation, run: x"), path: "readiness.gates[0].site", msg: "site is required"},
		{name: "third party without url", yaml: gate("name: g, type: thirdParty"), path: "readiness.gates[0].url", msg: "url is required"},
		{name: "compliance without run", yaml: gate("name: g, type: compliance, site: a"), path: "readiness.gates[0].run", msg: "run is required"},
		{name: "command without site", yaml: gate("name: g, type: command, run: x"), path: "readiness.gates[0].site", msg: "site is required"},
		{name: "run on synthetic", yaml: gate("name: g, type: synthetic, url: 'https://x', run: x"), path: "readiness.gates[0].run", msg: "only for command, compliance and drValidation gates"},
		{name: "unknown risk factor", yaml: "readiness:\n  risk:\n    weights: {chrun: 1}", path: "readiness.risk.weights.chrun", msg: `did you mean "churn"?`},
		{name: "negative weight", yaml: "readiness:\n  risk:\n    weights: {churn: -1}", path: "readiness.risk.weights.churn", msg: "is negative"},
		{name: "nan weight", yaml: "readiness:\n  risk:\n    weights: {churn: .nan}", path: "readiness.risk.weights.churn", msg: "not a usable number"},
		{name: "medium above high", yaml: "readiness:\n  risk: {medium: 70, high: 40}", path: "readiness.risk.medium", msg: "is not below high"},
		{name: "threshold range", yaml: "readiness:\n  risk: {high: 140}", path: "readiness.risk.high", msg: "use a score from 0 to 100"},
	})
}

func TestValidate_Approvals(t *testing.T) {
	t.Parallel()
	two := "stages:\n  - {name: staging, targets: [{name: a, kind: command, site: s, deploy: x, rollback: y}]}\n  - {name: production, targets: [{name: b, kind: command, site: s, deploy: x, rollback: y}]}\n"
	gate := func(fields string) string {
		return "approvals:\n  - {name: g, before: production, roles: [rm, owner], " + fields + "}\n" + two
	}
	runValidateCases(t, []validateCase{
		{name: "valid", yaml: gate("count: 2, timeout: 8h, onTimeout: wait, escalation: {after: 4h, roles: [em]}, distinctRoles: [rm, owner]")},
		{name: "unknown stage", yaml: "approvals:\n  - {name: g, before: prodution, roles: [a]}\n" + two, path: "approvals[0].before", msg: `no stage is named "prodution" (did you mean "production"?)`},
		{name: "no roles", yaml: "approvals:\n  - {name: g, before: production, roles: []}\n" + two, path: "approvals[0].roles", msg: "list the roles allowed to approve"},
		{name: "negative count", yaml: gate("count: -1"), path: "approvals[0].count", msg: "is negative"},
		{name: "onTimeout", yaml: gate("onTimeout: wiat"), path: "approvals[0].onTimeout", msg: `did you mean "wait"?`},
		{name: "wait without escalation", yaml: gate("onTimeout: wait"), path: "approvals[0].onTimeout", msg: "needs an escalation"},
		{name: "escalation after timeout", yaml: gate("timeout: 2h, escalation: {after: 2h, roles: [em]}"), path: "approvals[0].escalation.after", msg: "is not before the gate's timeout (2h)"},
		{name: "escalation after default timeout", yaml: gate("escalation: {after: 25h, roles: [em]}"), path: "approvals[0].escalation.after", msg: "(24h)"},
		{name: "escalation without after", yaml: gate("escalation: {roles: [em]}"), path: "approvals[0].escalation.after", msg: "after is required"},
		{name: "escalation without roles", yaml: gate("escalation: {after: 1h}"), path: "approvals[0].escalation.roles", msg: "roles is empty"},
		{name: "distinct role not a role", yaml: gate("count: 2, distinctRoles: [rm, security]"), path: "approvals[0].distinctRoles[1]", msg: `"security" is not one of the gate's roles`},
		{name: "count below distinct roles", yaml: gate("distinctRoles: [rm, owner]"), path: "approvals[0].count", msg: "set count to at least 2"},
		{name: "duplicate gate", yaml: "approvals:\n  - {name: g, before: production, roles: [a]}\n  - {name: g, before: production, roles: [a]}\n" + two, path: "approvals[1].name", msg: "declared twice"},
	})
}

func TestValidate_Governance(t *testing.T) {
	t.Parallel()
	runValidateCases(t, []validateCase{
		{name: "valid", yaml: "freezes: [black-friday, year-end]\nonFreeze: fail\ncab: {when: risk.score >= 70, roles: [cab]}\nchangeRequest: {provider: servicenow, assignmentGroup: changes}\nrollbackAuthority: [sre]"},
		{name: "freeze name", yaml: "freezes: [Year End]", path: "freezes[0]", msg: `such as "year-end"`},
		{name: "freeze twice", yaml: "freezes: [a, a]", path: "freezes[1]", msg: "listed twice"},
		{name: "onFreeze", yaml: "onFreeze: queue", path: "onFreeze", msg: "use one of wait, fail"},
		{name: "cab without when or threshold", yaml: "cab: {roles: [cab]}", path: "cab", msg: "neither when nor threshold"},
		{name: "cab threshold out of range", yaml: "cab: {threshold: 120, roles: [cab]}", path: "cab.threshold", msg: "out of range"},
		{name: "cab before an unknown stage", yaml: "cab: {threshold: 60, roles: [cab], before: prod}", path: "cab.before", msg: "no stage is named"},
		{name: "cab without roles", yaml: "cab: {when: risk.score >= 70}", path: "cab.roles", msg: "roles is empty"},
		{name: "change request provider", yaml: "changeRequest: {provider: servicenwo}", path: "changeRequest.provider", msg: `did you mean "servicenow"?`},
		{name: "change request without provider", yaml: "changeRequest: {template: std}", path: "changeRequest.provider", msg: "change request provider is required"},
		{name: "pre-mortem without mitigation", yaml: "preMortem: [{failure: the index build locks orders}]", path: "preMortem[0].mitigation", msg: "mitigation is required"},
		{name: "empty rollback authority", yaml: "rollbackAuthority: [\"\"]", path: "rollbackAuthority[0]", msg: "name a role"},
	})
}

func TestValidate_Analyses(t *testing.T) {
	t.Parallel()
	an := func(fields string) string { return "analyses:\n  - {name: errors, " + fields + "}" }
	runValidateCases(t, []validateCase{
		{name: "valid", yaml: an("provider: prometheus, query: up, successCondition: result.value < 0.01, interval: 1m, count: 5, failureLimit: 1, baseline: true")},
		{name: "provider", yaml: an("provider: datadog, query: up, successCondition: result.value < 0.01"), path: "analyses[0].provider", msg: "use one of prometheus"},
		{name: "no provider", yaml: an("query: up, successCondition: result.value < 0.01"), path: "analyses[0].provider", msg: "analysis provider is required"},
		{name: "no query", yaml: an("provider: prometheus, successCondition: result.value < 0.01"), path: "analyses[0].query", msg: "query is required"},
		{name: "no condition", yaml: an("provider: prometheus, query: up"), path: "analyses[0]", msg: "needs a successCondition or a failureCondition"},
		{name: "failure limit not below count", yaml: an("provider: prometheus, query: up, successCondition: result.value < 0.01, count: 3, failureLimit: 3"), path: "analyses[0].failureLimit", msg: "make it less than count"},
		{name: "negative interval", yaml: an("provider: prometheus, query: up, successCondition: result.value < 0.01, interval: -1m"), path: "analyses[0].interval", msg: "is negative"},
		{name: "negative count", yaml: an("provider: prometheus, query: up, successCondition: result.value < 0.01, count: -1"), path: "analyses[0].count", msg: "is negative"},
		{name: "duplicate", yaml: "analyses:\n  - {name: a, provider: prometheus, query: up, successCondition: result.value < 0.01}\n  - {name: a, provider: prometheus, query: up, successCondition: result.value < 0.01}", path: "analyses[1].name", msg: "declared twice"},
	})
}

func TestValidate_Stages(t *testing.T) {
	t.Parallel()
	st := func(name, after string) string {
		return "  - {name: " + name + ", after: [" + after + "], targets: [{name: t-" + name + ", kind: command, site: s, deploy: x, rollback: y}]}\n"
	}
	runValidateCases(t, []validateCase{
		{name: "valid DAG", yaml: "stages:\n" + st("build", "") + st("eu", "build") + st("us", "build") + st("verify", "eu, us")},
		{name: "after itself", yaml: "stages:\n" + st("a", "a"), path: "stages[0].after[0]", msg: "cannot be after itself"},
		{name: "after unknown", yaml: "stages:\n" + st("a", "") + st("b", "c"), path: "stages[1].after[0]", msg: `no stage is named "c": use one of a, b`},
		{name: "waiting for a later stage (a cycle needs one)", yaml: "stages:\n" + st("a", "b") + st("b", "a"), path: "stages[0].after[0]", msg: `stage "b" is declared below "a"`},
		{name: "long loop through a later stage", yaml: "stages:\n" + st("x", "") + st("a", "c") + st("b", "a") + st("c", "b"), path: "stages[1].after[0]", msg: `move "c" above "a"`},
		{name: "no targets", yaml: "stages:\n  - {name: a, targets: []}", path: "stages[0].targets", msg: "needs at least one target"},
		{name: "no stages", yaml: "stages: []", path: "stages", msg: "at least one stage"},
		{name: "duplicate stage", yaml: "stages:\n" + st("a", "") + "  - {name: a, targets: [{name: t2, kind: command, site: s, deploy: x, rollback: y}]}\n", path: "stages[1].name", msg: "declared twice"},
	})
}

func TestValidate_Strategy(t *testing.T) {
	t.Parallel()
	stage := func(strategy string) string {
		return "analyses:\n  - {name: errors, provider: prometheus, query: up, successCondition: result.value < 0.01}\nstages:\n  - name: s\n    strategy: " + strategy + "\n    targets: [{name: t, kind: command, site: s, deploy: x, rollback: y}]\n"
	}
	runValidateCases(t, []validateCase{
		{name: "valid canary", yaml: stage("{type: canary, steps: [{weight: 10, pause: 5m, analysis: errors}, {weight: 50}, {weight: 100}]}")},
		{name: "valid blue green", yaml: stage("{type: blueGreen, blueGreen: {rollbackWindow: 1h}}")},
		{name: "valid rolling", yaml: stage("{type: rolling, maxParallel: 3}")},
		{name: "unknown type", yaml: stage("{type: shadow}"), path: "stages[0].strategy.type", msg: "use one of rolling, canary, blueGreen"},
		{name: "canary without steps", yaml: stage("{type: canary}"), path: "stages[0].strategy.steps", msg: "needs steps"},
		{name: "weight zero", yaml: stage("{type: canary, steps: [{weight: 0}, {weight: 100}]}"), path: "stages[0].strategy.steps[0].weight", msg: "use 1 to 100"},
		{name: "weights not increasing", yaml: stage("{type: canary, steps: [{weight: 50}, {weight: 20}, {weight: 100}]}"), path: "stages[0].strategy.steps[1].weight", msg: "is not above the previous step's 50"},
		{name: "last below 100", yaml: stage("{type: canary, steps: [{weight: 50}]}"), path: "stages[0].strategy.steps[0].weight", msg: "the last step must set weight 100"},
		{name: "undeclared analysis", yaml: stage("{type: canary, steps: [{weight: 100, analysis: latency}]}"), path: "stages[0].strategy.steps[0].analysis", msg: `no analysis is named "latency"`},
		{name: "blue green without block", yaml: stage("{type: blueGreen}"), path: "stages[0].strategy.blueGreen", msg: "needs a blueGreen block"},
		{name: "blue green with steps", yaml: stage("{type: blueGreen, blueGreen: {}, steps: [{weight: 100}]}"), path: "stages[0].strategy.steps", msg: "only for strategy type canary"},
		{name: "negative rollback window", yaml: stage("{type: blueGreen, blueGreen: {rollbackWindow: -1h}}"), path: "stages[0].strategy.blueGreen.rollbackWindow", msg: "is negative"},
		{name: "negative max parallel", yaml: stage("{type: rolling, maxParallel: -1}"), path: "stages[0].strategy.maxParallel", msg: "is negative"},
		{name: "max parallel on canary", yaml: stage("{type: canary, maxParallel: 2, steps: [{weight: 100}]}"), path: "stages[0].strategy.maxParallel", msg: "only for strategy type rolling"},
	})
}

func TestValidate_Checks(t *testing.T) {
	t.Parallel()
	stage := func(extra string) string {
		return "analyses:\n  - {name: errors, provider: prometheus, query: up, successCondition: result.value < 0.01}\nstages:\n  - name: s\n" + extra + "    targets: [{name: t, kind: command, site: s, deploy: x, rollback: y}]\n"
	}
	runValidateCases(t, []validateCase{
		{name: "valid", yaml: stage("    smoke: [{name: home, url: 'https://x.example.com/', expectStatus: 204, timeout: 5s}]\n    exitCriteria: {analyses: [errors], checks: [{url: 'http://x.example.com'}]}\n")},
		{name: "smoke without url", yaml: stage("    smoke: [{name: home}]\n"), path: "stages[0].smoke[0].url", msg: "url is required"},
		{name: "smoke relative url", yaml: stage("    smoke: [{url: /healthz}]\n"), path: "stages[0].smoke[0].url", msg: "is not an http(s) URL"},
		{name: "smoke status", yaml: stage("    smoke: [{url: 'https://x', expectStatus: 600}]\n"), path: "stages[0].smoke[0].expectStatus", msg: "600 is not an HTTP status"},
		{name: "exit analysis", yaml: stage("    exitCriteria: {analyses: [eror]}\n"), path: "stages[0].exitCriteria.analyses[0]", msg: `did you mean "errors"?`},
		{name: "exit check", yaml: stage("    exitCriteria: {checks: [{url: 'x'}]}\n"), path: "stages[0].exitCriteria.checks[0].url", msg: "is not an http(s) URL"},
	})
}

func TestValidate_Targets(t *testing.T) {
	t.Parallel()
	target := func(fields string) string {
		return "stages:\n  - name: s\n    targets:\n      - {name: t, " + fields + "}\n"
	}
	hw := func(hardware string) string {
		return target("kind: hardware, site: plant, hardware: {inventory: i, flash: f, probe: p, " + hardware + "}")
	}
	runValidateCases(t, []validateCase{
		{name: "valid argocd", yaml: target("kind: argocd, argocd: {app: web, revision: main}")},
		{name: "valid spinnaker", yaml: target("kind: spinnaker, spinnaker: {application: web, pipeline: deploy, parameters: {a: b}}")},
		{name: "valid hardware", yaml: hw("waves: [{count: 1}, {percent: 10}, {rest: true}], maxFailureRatio: 0.2")},
		{name: "valid flag", yaml: target("kind: flag, flag: {flag: new-checkout, environment: production, percent: 25}")},
		{name: "unknown kind", yaml: target("kind: helm"), path: "stages[0].targets[0].kind", msg: `unknown target kind "helm": use one of command, argocd, spinnaker, hardware, flag`},
		{name: "misspelt kind", yaml: target("kind: comand, site: a, deploy: x, rollback: y"), path: "stages[0].targets[0].kind", msg: `did you mean "command"?`},
		{name: "command without rollback", yaml: target("kind: command, site: a, deploy: x"), path: "stages[0].targets[0].rollback", msg: "needs a rollback command"},
		{name: "argocd without block", yaml: target("kind: argocd"), path: "stages[0].targets[0].argocd", msg: "needs an argocd block"},
		{name: "argocd without app", yaml: target("kind: argocd, argocd: {server: s}"), path: "stages[0].targets[0].argocd.app", msg: "app is required"},
		{name: "argocd with site", yaml: target("kind: argocd, site: a, argocd: {app: web}"), path: "stages[0].targets[0].site", msg: "only for command and hardware targets"},
		{name: "argocd with deploy", yaml: target("kind: argocd, deploy: x, argocd: {app: web}"), path: "stages[0].targets[0].deploy", msg: "only for command targets"},
		{name: "argocd block on command", yaml: target("kind: command, site: a, deploy: x, rollback: y, argocd: {app: web}"), path: "stages[0].targets[0].argocd", msg: "only for kind argocd"},
		{name: "spinnaker without pipeline", yaml: target("kind: spinnaker, spinnaker: {application: web}"), path: "stages[0].targets[0].spinnaker.pipeline", msg: "pipeline is required"},
		{name: "hardware without site", yaml: target("kind: hardware, hardware: {inventory: i, flash: f, probe: p, waves: [{rest: true}]}"), path: "stages[0].targets[0].site", msg: "site is required"},
		{name: "hardware without waves", yaml: hw("waves: []"), path: "stages[0].targets[0].hardware.waves", msg: "at least one wave"},
		{name: "wave of nothing", yaml: hw("waves: [{}]"), path: "stages[0].targets[0].hardware.waves[0]", msg: "needs one of count"},
		{name: "wave of two", yaml: hw("waves: [{count: 1, rest: true}]"), path: "stages[0].targets[0].hardware.waves[0]", msg: "sets count and rest: keep one"},
		{name: "rest not last", yaml: hw("waves: [{rest: true}, {count: 1}]"), path: "stages[0].targets[0].hardware.waves[0].rest", msg: "must be the last wave"},
		{name: "percent above 100", yaml: hw("waves: [{percent: 101}]"), path: "stages[0].targets[0].hardware.waves[0].percent", msg: "use 1 to 100"},
		{name: "failure ratio", yaml: hw("waves: [{rest: true}], maxFailureRatio: 2"), path: "stages[0].targets[0].hardware.maxFailureRatio", msg: "use 0 to 1"},
		{name: "flag without environment", yaml: target("kind: flag, flag: {flag: f}"), path: "stages[0].targets[0].flag.environment", msg: "environment is required"},
		{name: "flag percent", yaml: target("kind: flag, flag: {flag: f, environment: e, percent: -1}"), path: "stages[0].targets[0].flag.percent", msg: "use 0 to 100"},
		{name: "negative timeout", yaml: target("kind: command, site: a, deploy: x, rollback: y, timeout: -1s"), path: "stages[0].targets[0].timeout", msg: "is negative"},
	})
}

func TestValidate_Stabilization(t *testing.T) {
	t.Parallel()
	const an = "analyses:\n  - {name: errors, provider: prometheus, query: up, successCondition: result.value < 0.01}\n"
	runValidateCases(t, []validateCase{
		{name: "valid duration", yaml: "stabilization: 30m"},
		{name: "valid block", yaml: an + "stabilization:\n  window: 30m\n  analyses: [errors]\n  slo: {objective: 99.9, errorRatio: q, burnRates: [{long: 1h, short: 5m, factor: 14.4}]}\n  checks: [{url: 'https://x'}]\n  onBreach: page"},
		{name: "negative duration", yaml: "stabilization: -1m", path: "stabilization.window", msg: "is negative"},
		{name: "watch without window", yaml: an + "stabilization: {analyses: [errors]}", path: "stabilization.window", msg: "window is required"},
		{name: "undeclared analysis", yaml: an + "stabilization: {window: 1m, analyses: [erors]}", path: "stabilization.analyses[0]", msg: `did you mean "errors"?`},
		{name: "objective 100", yaml: "stabilization: {window: 1m, slo: {objective: 100, errorRatio: q}}", path: "stabilization.slo.objective", msg: "between 0 and 100"},
		{name: "no error ratio", yaml: "stabilization: {window: 1m, slo: {objective: 99}}", path: "stabilization.slo.errorRatio", msg: "errorRatio is required"},
		{name: "long not above short", yaml: "stabilization: {window: 1m, slo: {objective: 99, errorRatio: q, burnRates: [{long: 5m, short: 5m, factor: 1}]}}", path: "stabilization.slo.burnRates[0].long", msg: "must be longer than short"},
		{name: "no factor", yaml: "stabilization: {window: 1m, slo: {objective: 99, errorRatio: q, burnRates: [{long: 1h, short: 5m}]}}", path: "stabilization.slo.burnRates[0].factor", msg: "must be a number above 0"},
		{name: "on breach", yaml: "stabilization: {window: 1m, onBreach: rollbak}", path: "stabilization.onBreach", msg: `did you mean "rollback"?`},
		{name: "check url", yaml: "stabilization: {window: 1m, checks: [{url: 'x'}]}", path: "stabilization.checks[0].url", msg: "is not an http(s) URL"},
		{name: "unknown field in block", yaml: "stabilization: {window: 1m, windw: 2m}", path: "stabilization.windw", msg: `did you mean "window"?`},
	})
}

func TestValidate_Rollback(t *testing.T) {
	t.Parallel()
	runValidateCases(t, []validateCase{
		{name: "valid", yaml: "rollback: {scope: stage, budget: 15m, forwardFix: true, circuitBreaker: {scope: environment}}"},
		{name: "scope", yaml: "rollback: {scope: everything}", path: "rollback.scope", msg: "use one of release, stage, target"},
		{name: "budget", yaml: "rollback: {budget: -1m}", path: "rollback.budget", msg: "is negative"},
		{name: "breaker scope", yaml: "rollback: {circuitBreaker: {scope: enviroment}}", path: "rollback.circuitBreaker.scope", msg: `did you mean "environment"?`},
		{name: "breaker without scope", yaml: "rollback: {circuitBreaker: {}}", path: "rollback.circuitBreaker.scope", msg: "circuit breaker scope is required"},
	})
}

func TestValidate_ReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := Parse("r.yaml", []byte(doc("tier: 9\nonFreeze: queue\nrollback: {scope: all}\nstabilization: {window: -1m}")))
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	var paths []string
	for _, p := range inv.Problems {
		paths = append(paths, p.Path)
	}
	require.Equal(t, []string{"tier", "onFreeze", "rollback.scope", "stabilization.window"}, paths)
}

func TestValidate_NeverPanicsOnRunbooksBuiltInGo(t *testing.T) {
	t.Parallel()
	for _, rb := range []Runbook{
		{},
		{Stages: []Stage{{Targets: []Target{{Kind: KindHardware, Hardware: &HardwareTarget{}}, {Kind: KindFlag}, {Kind: KindArgoCD}, {Kind: KindSpinnaker}}}}},
		{Stages: []Stage{{Name: "a", After: []string{"a", "b", ""}}, {Name: "b", After: []string{"a"}, Strategy: &Strategy{Type: StrategyBlueGreen}}}},
		{Readiness: &Readiness{Gates: []ReadinessGate{{}, {Type: GateDR}}, Risk: &RiskModel{Weights: map[string]float64{"": math.NaN()}}}},
		{Approvals: []ApprovalGate{{Escalation: &Escalation{}, DistinctRoles: []string{"x"}, Count: -3}}, CAB: &CAB{}, ChangeRequest: &ChangeRequest{}},
		{Stabilization: Stabilization{SLO: &SLO{Objective: math.Inf(1), BurnRates: []BurnRate{{}}}}, Rollback: &Rollback{CircuitBreaker: &CircuitBreaker{}}},
		{Scope: &Scope{Components: []Component{{}}, Groups: []VersionGroup{{}}}, Exceptions: []Exception{{}}},
	} {
		require.NotPanics(t, func() { require.NotEmpty(t, rb.Validate()) })
	}
}

func TestClosest_SuggestsOnlySmallEdits(t *testing.T) {
	t.Parallel()
	kinds := TargetKinds
	require.Equal(t, "command", closest("comand", kinds))
	require.Equal(t, "argocd", closest("ArgoCD", kinds), "case alone")
	require.Equal(t, "argocd", closest("argcod", kinds), "a swap is one edit")
	require.Empty(t, closest("helm", kinds))
	require.Empty(t, closest("x", []string{"y"}), "a one-letter word is not a typo of another")
	require.Equal(t, "stages", closest("stagez", fieldNames(runbookType)))
}
