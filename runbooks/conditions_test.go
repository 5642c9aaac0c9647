package runbooks

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCompileCondition_AcceptsValidConditions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr string
		kind ConditionKind
	}{
		{`risk.score >= 70`, WhenCondition},
		{`risk.level == "high" || change.schemaChange`, WhenCondition},
		{`runbook.dataClassification == "pci" && change.major`, WhenCondition},
		{`runbook.tier <= 2 && runbook.dataClassification in ["pci", "phi"]`, WhenCondition},
		{`change.coverage < 80`, WhenCondition}, // a double compared with an int literal
		{`change.churn > 500 || change.components >= 3 || size(change.authors) > 5`, WhenCondition},
		{`release.components.exists(c, c.name == "ledger" && c.version.startsWith("2."))`, WhenCondition},
		{`"payments" in runbook.owners && "gpu" in runbook.capabilities`, WhenCondition},
		{`risk.factors["churn"] > 20.5 || risk.factors.schemaChange > 0`, WhenCondition},
		{`risk.factors.exists(f, f == "timing" && risk.factors[f] > 10)`, WhenCondition},
		{`release.environment == "production" && release.requester != ""`, WhenCondition},
		{`stage.environment == "production" && stage.region.startsWith("eu-")`, ApprovalCondition},
		{"risk.score >= 70 &&\n  change.major", ApprovalCondition},
		{`result.value <= result.baseline * 1.1`, AnalysisCondition},
		{`result.value < 0.01 && stage.name == "production" && release.version != ""`, AnalysisCondition},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			t.Parallel()
			c, err := CompileCondition(tt.expr, tt.kind)
			require.NoError(t, err)
			require.Equal(t, tt.expr, c.Expr)
			require.Equal(t, tt.kind, c.Kind)
		})
	}
}

func TestCompileCondition_RefusesMistakesWithClearErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, expr string
		kind       ConditionKind
		want       string
	}{
		{"misspelt variable", `rsk.score > 50`, WhenCondition,
			"at column 1: unknown variable rsk (variables there: release, runbook, risk, impact, change)"},
		{"misspelt field", `risk.scroe >= 70`, WhenCondition,
			"at column 6: unknown field scroe of risk (fields: score, level, factors)"},
		{"misspelt field of a list element", `release.components.exists(c, c.nam == "api")`, WhenCondition,
			"unknown field nam of component (fields: name, version, artifact)"},
		{"misspelt function", `size2(release.components) > 1`, WhenCondition,
			"unknown function size2"},
		{"not true or false", `risk.score`, WhenCondition,
			"must be true or false, got int"},
		{"a list is not true or false", `release.components`, WhenCondition,
			"must be true or false, got list(component)"},
		{"result in a when", `result.value > 1`, WhenCondition,
			"result is not available in the when of a readiness gate, the CAB or a change request (variables there: release, runbook, risk, impact, change)"},
		{"result in an approval when", `result.value > 1`, ApprovalCondition,
			"result is not available in the when of an approval gate (variables there: release, runbook, risk, impact, change, stage)"},
		{"stage in a readiness when", `stage.name == "production"`, WhenCondition,
			"stage is not available in the when of a readiness gate"},
		{"risk in an analysis", `risk.score > 1 && result.value > 1`, AnalysisCondition,
			"risk is not available in an analysis condition (variables there: release, stage, result)"},
		{"a level no risk has", `risk.level == "hgih"`, WhenCondition,
			`risk.level is never "hgih" (values: "low", "medium", "high")`},
		{"a classification in capitals", `runbook.dataClassification == "PCI"`, WhenCondition,
			`runbook.dataClassification is never "PCI"`},
		{"a level in a list", `risk.level in ["high", "critical"]`, WhenCondition,
			`risk.level is never "critical"`},
		{"an unknown risk factor", `risk.factors["chrun"] > 10`, WhenCondition,
			`risk.factors has no key "chrun" (keys: changeFailureRate, churn, coverage, schemaChange, components, timing)`},
		{"incomplete", `risk.score >=`, WhenCondition,
			"the condition ends too early"},
		{"wrong operand type", `release.version > 2`, WhenCondition,
			"found no matching overload for '_>_' applied to '(string, int)'"},
		{"building an object", `trainyard.risk{score: 1}.score > 1`, WhenCondition,
			"conditions cannot build objects"},
		{"position in a multi-line condition", "change.major &&\n  risk.scroe > 1", WhenCondition,
			"at line 2, column 8: unknown field scroe of risk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := CompileCondition(tt.expr, tt.kind)
			var ce *ConditionError
			require.ErrorAs(t, err, &ce)
			require.Contains(t, ce.Msg, tt.want)
			require.NotContains(t, ce.Msg, "\n", "the message is one line")
			require.NotContains(t, ce.Msg, "trainyard.", "internal type names stay internal")
			require.Equal(t, tt.expr, ce.Expr)
			require.Contains(t, err.Error(), ce.Msg)
		})
	}
}

func TestCondition_Eval(t *testing.T) {
	t.Parallel()
	vars := func(score int, level, class string, tier int, major bool) map[string]any {
		return map[string]any{
			"release": map[string]any{
				"version": "2.0.0", "requester": "ana", "environment": "production",
				"components": []map[string]any{{"name": "api", "version": "2.0.0", "artifact": "ghcr.io/x/api@sha256:00"}},
			},
			"runbook": map[string]any{"name": "payments", "tier": tier, "dataClassification": class, "owners": []string{"payments"}},
			"risk":    map[string]any{"score": score, "level": level, "factors": map[string]float64{"churn": 30, "timing": 5}},
			"change":  map[string]any{"commit": "abc123", "authors": []string{"ana"}, "churn": 1200, "coverage": 78.5, "major": major, "components": 1},
			"stage":   map[string]any{"name": "production", "environment": "production", "region": "eu-west-1"},
		}
	}
	tests := []struct {
		name string
		expr string
		kind ConditionKind
		vars map[string]any
		want bool
	}{
		{"risk at the threshold", `risk.score >= 70`, WhenCondition, vars(70, "high", "internal", 2, false), true},
		{"risk below the threshold", `risk.score >= 70`, WhenCondition, vars(69, "medium", "internal", 2, false), false},
		{"risk level", `risk.level == "high"`, WhenCondition, vars(85, "high", "internal", 2, false), true},
		{"pci and major", `runbook.dataClassification == "pci" && change.major`, WhenCondition, vars(10, "low", "pci", 1, true), true},
		{"pci but not major", `runbook.dataClassification == "pci" && change.major`, WhenCondition, vars(10, "low", "pci", 1, false), false},
		{"major but not pci", `runbook.dataClassification == "pci" && change.major`, WhenCondition, vars(10, "low", "internal", 1, true), false},
		{"critical tiers", `runbook.tier <= 2 && runbook.dataClassification in ["pci", "phi"]`, WhenCondition, vars(10, "low", "phi", 1, false), true},
		{"a lower tier", `runbook.tier <= 2 && runbook.dataClassification in ["pci", "phi"]`, WhenCondition, vars(10, "low", "phi", 3, false), false},
		{"coverage double against an int", `change.coverage < 80`, WhenCondition, vars(10, "low", "", 0, false), true},
		{"a factor", `risk.factors["churn"] > 20`, WhenCondition, vars(10, "low", "", 0, false), true},
		{"a factor left out is zero", `risk.factors.schemaChange == 0.0`, WhenCondition, vars(10, "low", "", 0, false), true},
		{"a component", `release.components.exists(c, c.name == "api" && c.version == release.version)`, WhenCondition, vars(10, "low", "", 0, false), true},
		{"the gate's stage", `stage.region.startsWith("eu-")`, ApprovalCondition, vars(10, "low", "", 0, false), true},
		{"analysis within 10% of the baseline", `result.value <= result.baseline * 1.1`, AnalysisCondition,
			map[string]any{"result": map[string]any{"value": 0.105, "baseline": 0.1}}, true},
		{"analysis beyond 10% of the baseline", `result.value <= result.baseline * 1.1`, AnalysisCondition,
			map[string]any{"result": map[string]any{"value": 0.2, "baseline": 0.1}}, false},
		{"numbers that went through JSON", `risk.score + 1 == 71`, WhenCondition,
			map[string]any{"risk": map[string]any{"score": 70.0}}, true},
		{"a field left out is its zero value", `!change.schemaChange && change.churn == 0`, WhenCondition,
			map[string]any{"change": map[string]any{}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := CompileCondition(tt.expr, tt.kind)
			require.NoError(t, err)
			got, err := c.Eval(tt.vars)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestCondition_EvalReadsStructsThroughTheirJSONNames(t *testing.T) {
	t.Parallel()
	type component struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	type release struct {
		Version    string      `json:"version"`
		Components []component `json:"components"`
	}
	c, err := CompileCondition(`release.components.exists(c, c.name == "api") && release.version == "1.2.3"`, AnalysisCondition)
	require.NoError(t, err)
	got, err := c.Eval(map[string]any{"release": release{Version: "1.2.3", Components: []component{{Name: "api", Version: "1.2.3"}}}})
	require.NoError(t, err)
	require.True(t, got)
}

func TestCondition_EvalRefusesWrongOrMissingValues(t *testing.T) {
	t.Parallel()
	c, err := CompileCondition(`risk.score >= 70`, WhenCondition)
	require.NoError(t, err)

	_, err = c.Eval(map[string]any{"risk": map[string]any{"score": "high"}})
	require.ErrorContains(t, err, "risk.score: want int, got string")

	_, err = c.Eval(map[string]any{"risk": map[string]any{"scroe": 70}})
	require.ErrorContains(t, err, "risk: unknown field scroe")

	_, err = c.Eval(map[string]any{"risk": map[string]any{"score": 70.5}})
	require.ErrorContains(t, err, "want int")

	_, err = c.Eval(map[string]any{"change": map[string]any{}})
	require.ErrorContains(t, err, "variable risk is not given")
	require.Equal(t, []string{"risk"}, c.Uses())

	var nilCond *Condition
	_, err = nilCond.Eval(nil)
	require.Error(t, err)
}

func TestCondition_EvalIteratesMapsInOrder(t *testing.T) {
	t.Parallel()
	// Go maps iterate in random order; a replayed workflow must get the same answer.
	c, err := CompileCondition(`risk.factors.map(f, f)[0] == "changeFailureRate" && risk.factors.filter(f, risk.factors[f] > 0) == ["churn", "timing"]`, WhenCondition)
	require.NoError(t, err)
	vars := map[string]any{"risk": map[string]any{"factors": map[string]any{"timing": 3, "churn": 10}}}
	for range 50 {
		got, err := c.Eval(vars)
		require.NoError(t, err)
		require.True(t, got)
	}
}

func TestCheckConditions_ReportsEachBadConditionAtItsPath(t *testing.T) {
	t.Parallel()
	rb := Runbook{
		Approvals: []ApprovalGate{
			{Name: "fine", When: `stage.name == "production"`},
			{Name: "typo", When: `risk.scroe >= 70`},
		},
		Readiness: &Readiness{Gates: []ReadinessGate{
			{Name: "a"}, {Name: "b", When: `change.major`}, {Name: "c", When: `stage.name == "x"`},
		}},
		CAB:           &CAB{When: `risk.score`},
		ChangeRequest: &ChangeRequest{When: `result.value > 1`},
		Analyses: []Analysis{{
			Name:             "errors",
			SuccessCondition: `result.value < 0.01`,
			FailureCondition: `result.valeu > 0.05`,
		}},
	}
	got := map[string]string{}
	for _, p := range rb.checkConditions() {
		got[p.Path] = p.Msg
	}
	require.Len(t, got, 5, "%v", got)
	require.Contains(t, got["approvals[1].when"], "unknown field scroe of risk (fields: score, level, factors)")
	require.Contains(t, got["readiness.gates[2].when"], "stage is not available")
	require.Contains(t, got["cab.when"], "must be true or false, got int")
	require.Contains(t, got["changeRequest.when"], "result is not available")
	require.Contains(t, got["analyses[0].failureCondition"], "unknown field valeu of result (fields: value, baseline)")
}

func TestParse_LocatesABadConditionAtItsLine(t *testing.T) {
	t.Parallel()
	src := `name: conditions
approvals:
  - name: signoff
    before: production
    roles: [release-manager]
    when: risk.scroe >= 70
stages:
  - name: production
    targets:
      - {name: web, kind: command, site: local, deploy: ./deploy.sh, rollback: ./rollback.sh}
`
	_, err := Parse("c.yaml", []byte(src))
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	var found bool
	for _, p := range inv.Problems {
		if p.Path == "approvals[0].when" {
			found = true
			require.Equal(t, 6, p.Line)
			require.Contains(t, p.Msg, "unknown field scroe of risk")
		}
	}
	require.True(t, found, "no problem at approvals[0].when: %v", err)
}

func TestConditionVariables_DescribeEveryKind(t *testing.T) {
	t.Parallel()
	s, err := loadConditionSchema()
	require.NoError(t, err, "every documented type is one the schema understands")
	require.Equal(t, []string{"release", "runbook", "risk", "impact", "change"}, WhenCondition.Variables())
	require.Equal(t, []string{"release", "runbook", "risk", "impact", "change", "stage"}, ApprovalCondition.Variables())
	require.Equal(t, []string{"release", "stage", "result"}, AnalysisCondition.Variables())
	require.Equal(t, []string{"release", "runbook", "risk", "impact", "change", "stage", "governance"}, PolicyCondition.Variables())
	for _, v := range ConditionVariables {
		require.NotEmpty(t, v.Doc, v.Name)
		require.NotEmpty(t, v.Kinds, v.Name)
		require.Contains(t, s.vars, v.Name)
		for _, f := range v.Fields {
			require.NotEmpty(t, f.Doc, "%s.%s", v.Name, f.Name)
			require.NotEmpty(t, f.Type, "%s.%s", v.Name, f.Name)
		}
	}
	b, err := json.Marshal(ConditionVariables)
	require.NoError(t, err, "documentation tools can encode the list")
	require.Contains(t, string(b), `"Name":"dataClassification"`)
	require.Contains(t, string(b), `"Kinds":["approval when","analysis condition","policy"]`, "kinds are written by name")
	var back []VariableDoc
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, ConditionVariables, back)
}

func TestRunbookConditionVariable_MatchesTheRunbook(t *testing.T) {
	t.Parallel()
	c, err := CompileCondition(`runbook.name == "payments" && runbook.tier == 1 && runbook.dataClassification == "pci" && "payments" in runbook.owners`, WhenCondition)
	require.NoError(t, err)
	rb := Runbook{Name: "payments", Tier: 1, DataClassification: "pci", Owners: []string{"payments"}}
	got, err := c.Eval(map[string]any{"runbook": RunbookConditionVariable(rb)})
	require.NoError(t, err)
	require.True(t, got)
}

func TestCompileCondition_UnknownKind(t *testing.T) {
	t.Parallel()
	_, err := CompileCondition(`true`, ConditionKind(42))
	require.Error(t, err)
	var ce *ConditionError
	require.False(t, errors.As(err, &ce))
}
