package runbooks

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// ConditionKind says where a condition sits, which decides the variables it sees.
type ConditionKind int

const (
	// WhenCondition is the when of a readiness gate, the CAB or the change request: it sees
	// release, runbook, risk and change.
	WhenCondition ConditionKind = iota
	// ApprovalCondition is the when of an approval gate: a WhenCondition that also sees the
	// stage the gate holds.
	ApprovalCondition
	// AnalysisCondition is an analysis's success or failure condition: it sees result,
	// release and stage.
	AnalysisCondition
	// PolicyCondition is an organisation policy's rule: it sees what a when condition sees,
	// the stage about to start (empty when the release starts), and governance.
	PolicyCondition
)

var conditionKinds = []ConditionKind{WhenCondition, ApprovalCondition, AnalysisCondition, PolicyCondition}

func (k ConditionKind) String() string {
	switch k {
	case WhenCondition:
		return "when"
	case ApprovalCondition:
		return "approval when"
	case AnalysisCondition:
		return "analysis condition"
	case PolicyCondition:
		return "policy"
	}
	return fmt.Sprintf("ConditionKind(%d)", int(k))
}

// MarshalText writes the kind as its name ("when", "approval when", "analysis condition"),
// so documentation tools read ConditionVariables as JSON.
func (k ConditionKind) MarshalText() ([]byte, error) {
	if !slices.Contains(conditionKinds, k) {
		return nil, fmt.Errorf("unknown condition kind %d", int(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText reads a kind's name.
func (k *ConditionKind) UnmarshalText(b []byte) error {
	for _, c := range conditionKinds {
		if c.String() == string(b) {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("unknown condition kind %q (kinds: when, approval when, analysis condition, policy)", b)
}

// where describes the kind in a message: "result is not available in <where>".
func (k ConditionKind) where() string {
	switch k {
	case WhenCondition:
		return "the when of a readiness gate, the CAB or a change request"
	case ApprovalCondition:
		return "the when of an approval gate"
	case AnalysisCondition:
		return "an analysis condition"
	case PolicyCondition:
		return "a policy rule"
	}
	return k.String()
}

// Variables names the variables a condition of this kind sees, in documentation order.
func (k ConditionKind) Variables() []string {
	var names []string
	for _, v := range ConditionVariables {
		if slices.Contains(v.Kinds, k) {
			names = append(names, v.Name)
		}
	}
	return names
}

// VariableDoc documents one variable conditions see.
type VariableDoc struct {
	Name   string
	Doc    string
	Fields []FieldDoc
	// Kinds are the conditions that see the variable.
	Kinds []ConditionKind
}

// FieldDoc documents one field of a condition variable. Type is written the CEL way: string,
// int, double, bool, list(T), map(string, T), or the name of an object whose Fields follow.
type FieldDoc struct {
	Name string
	Type string
	Doc  string
	// Values are the values a string field takes, or the keys a map field has; a condition
	// comparing with any other literal is refused as a typo.
	Values []string `json:",omitempty"`
	// Fields are the fields of the objects of an object (or list of objects) field.
	Fields []FieldDoc `json:",omitempty"`
}

var (
	whenKinds     = []ConditionKind{WhenCondition, ApprovalCondition, PolicyCondition}
	stageKinds    = []ConditionKind{ApprovalCondition, AnalysisCondition, PolicyCondition}
	releaseKinds  = []ConditionKind{WhenCondition, ApprovalCondition, AnalysisCondition, PolicyCondition}
	analysisKinds = []ConditionKind{AnalysisCondition}
	policyKinds   = []ConditionKind{PolicyCondition}
)

// Conditions are CEL expressions (https://cel.dev) that say when a gate applies and when an
// analysis passes or fails. They are compiled and type-checked when the runbook loads, so a
// misspelt variable, field or function, or a condition that is not true-or-false, fails at
// load time with its line, never in the middle of a release.
//
// Where a condition sits decides what it sees:
//
//   - approvals[].when: release, runbook, risk, impact, change, stage (the stage the gate holds)
//   - readiness.gates[].when, cab.when, changeRequest.when: release, runbook, risk, impact, change
//   - analyses[].successCondition, analyses[].failureCondition: result, release, stage
//   - policy rules (the policy file): release, runbook, risk, impact, change, stage, governance
//
// The variables:
//
//	release.version             string               the version being released
//	release.requester           string               who started the release
//	release.components          list(component)      what ships; each has name, version and artifact (strings)
//	release.environment         string               the environment the release ends in (its last stage's)
//	runbook.name                string               the runbook's name
//	runbook.tier                int                  criticality, 1 (most critical) to 4; 0 when unset
//	runbook.dataClassification  string               public, internal, pii, pci or phi; "" when unset
//	runbook.owners              list(string)         the accountable teams
//	runbook.capabilities        list(string)         the runbook's capabilities
//	risk.score                  int                  the release's risk score, 0 to 100
//	risk.level                  string               low, medium or high (the score against the risk model's thresholds)
//	risk.factors                map(string, double)  each factor's contribution to the score, keyed by changeFailureRate, churn, coverage, schemaChange, components, timing
//	impact.score                int                  the impact score, 0 to 100, from the runbook catalog's dependency mapping
//	impact.dependents           list(string)         the components of other runbooks that depend on what ships
//	impact.capabilities         list(string)         the business capabilities touched (the runbook's and its dependents')
//	change.commit               string               the commit released
//	change.authors              list(string)         the authors of the commits since the last release
//	change.churn                int                  lines changed since the last release
//	change.coverage             double               line coverage reported by CI, in percent
//	change.schemaChange         bool                 whether a component changes a database schema
//	change.major                bool                 whether the version is a major version bump
//	change.components           int                  how many components changed
//	stage.name                  string               the stage the approval gate holds, or the analysis runs in
//	stage.environment           string               that stage's environment
//	stage.region                string               that stage's region
//	governance.approvalsRequired int                 approvals the release needs before the stage (all gates holding it)
//	governance.approvalRoles    list(string)         the roles those gates accept
//	governance.scanReports      int                  scan reports CI attached to the release
//	governance.readinessGates   list(string)         the types of the readiness gates that applied and passed or were waived
//	governance.changeRequest    bool                 whether a change request was filed
//	result.value                double               the analysis query's measurement
//	result.baseline             double               the measurement before the release touched production (0 without a baseline)
//
// Examples: `risk.score >= 70`, `risk.level == "high" || change.schemaChange`,
// `runbook.dataClassification == "pci" && change.major`, `runbook.tier <= 2`,
// `release.components.exists(c, c.name == "ledger")`, `result.value <= result.baseline * 1.1`.
//
// Integers and doubles compare with each other (`change.coverage < 80` works). Conditions use
// CEL's standard library only: there is no clock and no randomness, so a condition evaluates
// the same way every time for the same variables.
//
// ConditionVariables holds this list, with each field's type and meaning, for the reference
// documentation and `trainyard runbook explain`; the conditions are checked against it.
var ConditionVariables = []VariableDoc{
	{Name: "release", Doc: "The release being run.", Kinds: releaseKinds, Fields: []FieldDoc{
		{Name: "version", Type: "string", Doc: "The version being released."},
		{Name: "requester", Type: "string", Doc: "Who started the release."},
		{Name: "components", Type: "list(component)", Doc: "The components that ship, each with name, version and artifact.", Fields: []FieldDoc{
			{Name: "name", Type: "string", Doc: "The component's name."},
			{Name: "version", Type: "string", Doc: "The version of the component that ships."},
			{Name: "artifact", Type: "string", Doc: "The image or package reference."},
		}},
		{Name: "environment", Type: "string", Doc: "The environment the release ends in (its last stage's)."},
	}},
	{Name: "runbook", Doc: "The runbook the release follows.", Kinds: whenKinds, Fields: []FieldDoc{
		{Name: "name", Type: "string", Doc: "The runbook's name."},
		{Name: "tier", Type: "int", Doc: "Criticality: 1 (most critical) to 4; 0 when unset."},
		{Name: "dataClassification", Type: "string", Doc: "The most sensitive data the released services touch; \"\" when unset.", Values: append([]string{""}, DataClassifications...)},
		{Name: "owners", Type: "list(string)", Doc: "The teams accountable for what the runbook releases."},
		{Name: "capabilities", Type: "list(string)", Doc: "The runbook's capabilities."},
	}},
	{Name: "risk", Doc: "The release's risk, scored by the runbook's risk model.", Kinds: whenKinds, Fields: []FieldDoc{
		{Name: "score", Type: "int", Doc: "The risk score, 0 to 100."},
		{Name: "level", Type: "string", Doc: "The score against the risk model's thresholds.", Values: []string{"low", "medium", "high"}},
		{Name: "factors", Type: "map(string, double)", Doc: "Each factor's contribution to the score.", Values: RiskFactors},
	}},
	{Name: "impact", Doc: "What the release touches, from the runbook catalog's dependency mapping.", Kinds: whenKinds, Fields: []FieldDoc{
		{Name: "score", Type: "int", Doc: "The impact score, 0 to 100."},
		{Name: "dependents", Type: "list(string)", Doc: "The components of other runbooks that depend on what ships."},
		{Name: "capabilities", Type: "list(string)", Doc: "The business capabilities touched: the runbook's and its dependents'."},
	}},
	{Name: "change", Doc: "What changed since the last release.", Kinds: whenKinds, Fields: []FieldDoc{
		{Name: "commit", Type: "string", Doc: "The commit released."},
		{Name: "authors", Type: "list(string)", Doc: "The authors of the commits since the last release."},
		{Name: "churn", Type: "int", Doc: "Lines changed since the last release."},
		{Name: "coverage", Type: "double", Doc: "Line coverage reported by CI, in percent."},
		{Name: "schemaChange", Type: "bool", Doc: "Whether a component changes a database schema."},
		{Name: "major", Type: "bool", Doc: "Whether the version is a major version bump."},
		{Name: "components", Type: "int", Doc: "How many components changed."},
	}},
	{Name: "stage", Doc: "The stage an approval gate holds, or an analysis runs in.", Kinds: stageKinds, Fields: []FieldDoc{
		{Name: "name", Type: "string", Doc: "The stage's name."},
		{Name: "environment", Type: "string", Doc: "The stage's environment."},
		{Name: "region", Type: "string", Doc: "The stage's region."},
	}},
	{Name: "governance", Doc: "What governance the release is under, as a policy sees it before a stage.", Kinds: policyKinds, Fields: []FieldDoc{
		{Name: "approvalsRequired", Type: "int", Doc: "Approvals the release needs before the stage: the sum over the gates holding it."},
		{Name: "approvalRoles", Type: "list(string)", Doc: "The roles the gates holding the stage accept."},
		{Name: "scanReports", Type: "int", Doc: "Scan reports CI attached to the release."},
		{Name: "readinessGates", Type: "list(string)", Doc: "The types of the readiness gates that applied and passed or were waived."},
		{Name: "changeRequest", Type: "bool", Doc: "Whether a change request was filed."},
	}},
	{Name: "result", Doc: "One measurement of an analysis.", Kinds: analysisKinds, Fields: []FieldDoc{
		{Name: "value", Type: "double", Doc: "The query's measurement."},
		{Name: "baseline", Type: "double", Doc: "The measurement before the release touched production (0 without a baseline)."},
	}},
}

// checkConditions compiles and type-checks every condition (the when of approvals, readiness
// gates, CAB and change requests; analyses' success and failure conditions) so a typo fails
// when the runbook loads, never mid-release.
func (r Runbook) checkConditions() []Problem {
	var ps []Problem
	check := func(path, expr string, kind ConditionKind) {
		if strings.TrimSpace(expr) == "" {
			return
		}
		if _, err := CompileCondition(expr, kind); err != nil {
			msg := err.Error()
			var ce *ConditionError
			if errors.As(err, &ce) {
				msg = ce.Msg
			}
			ps = append(ps, Problem{Path: path, Msg: msg})
		}
	}
	for i, g := range r.Approvals {
		check(fmt.Sprintf("approvals[%d].when", i), g.When, ApprovalCondition)
	}
	if r.Readiness != nil {
		for i, g := range r.Readiness.Gates {
			check(fmt.Sprintf("readiness.gates[%d].when", i), g.When, WhenCondition)
		}
	}
	if r.CAB != nil {
		check("cab.when", r.CAB.When, WhenCondition)
	}
	if r.ChangeRequest != nil {
		check("changeRequest.when", r.ChangeRequest.When, WhenCondition)
	}
	for i, a := range r.Analyses {
		check(fmt.Sprintf("analyses[%d].successCondition", i), a.SuccessCondition, AnalysisCondition)
		check(fmt.Sprintf("analyses[%d].failureCondition", i), a.FailureCondition, AnalysisCondition)
	}
	return ps
}

// Condition is a compiled, type-checked condition, ready to evaluate.
type Condition struct {
	Expr string
	Kind ConditionKind
	prg  cel.Program
	uses []string
}

// ConditionError says why a condition does not compile.
type ConditionError struct {
	Expr string
	Kind ConditionKind
	// Msg is compact, one line per CEL error joined by "; ", each with its column.
	Msg string
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("condition %q: %s", e.Expr, e.Msg)
}

// conditionCostLimit bounds the work one evaluation may do (comprehensions over the release's
// components are the only loops), so a condition cannot stall a workflow.
const conditionCostLimit = 1_000_000

// CompileCondition parses and type-checks a condition of the given kind. The error is a
// *ConditionError naming the offending variable, field or function and the variables the
// condition may use.
func CompileCondition(expr string, kind ConditionKind) (*Condition, error) {
	s, err := loadConditionSchema()
	if err != nil {
		return nil, err
	}
	env, ok := s.envs[kind]
	if !ok {
		return nil, fmt.Errorf("compile condition: unknown condition kind %d", int(kind))
	}
	fail := func(msg string) (*Condition, error) {
		return nil, &ConditionError{Expr: expr, Kind: kind, Msg: msg}
	}
	parsed, iss := env.Parse(expr)
	if iss.Err() != nil {
		return fail(compactIssues(iss, nil, expr, kind))
	}
	w := condWalker{schema: s, kind: kind, src: parsed.NativeRep().SourceInfo(), expr: expr, exprs: map[int64]ast.Expr{}}
	w.walk(parsed.NativeRep().Expr(), nil)
	if len(w.msgs) > 0 {
		return fail(strings.Join(w.msgs, "; "))
	}
	checked, iss := env.Check(parsed)
	if iss.Err() != nil {
		return fail(compactIssues(iss, w.exprs, expr, kind))
	}
	if out := checked.OutputType(); !out.IsExactType(types.BoolType) {
		return fail(fmt.Sprintf("must be true or false, got %s", typeName(out)))
	}
	prg, err := env.Program(checked, cel.CostLimit(conditionCostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return fail(err.Error())
	}
	return &Condition{Expr: expr, Kind: kind, prg: prg, uses: w.uses}, nil
}

// Eval evaluates the condition. vars maps variable names to their values: maps keyed by
// field name (or structs, encoded through their JSON tags), with numbers of any Go numeric
// type, as ConditionVariables documents. A field a provided variable leaves out is its zero
// value (a missing risk factor contributes 0); a variable the condition uses that vars lack
// is an error. Variables the condition's kind does not see are ignored. Eval is pure: the
// same variables give the same answer, on any machine, at any time (a workflow replay).
func (c *Condition) Eval(vars map[string]any) (bool, error) {
	if c == nil || c.prg == nil {
		return false, errors.New("evaluate condition: not compiled (use CompileCondition)")
	}
	s, err := loadConditionSchema()
	if err != nil {
		return false, err
	}
	for _, name := range c.uses {
		if _, ok := vars[name]; !ok {
			return false, fmt.Errorf("evaluate condition %q: variable %s is not given", c.Expr, name)
		}
	}
	act := make(map[string]any, len(vars))
	for _, name := range c.Kind.Variables() {
		v, ok := vars[name]
		if !ok {
			continue
		}
		nv, err := s.vars[name].normalize(v, name)
		if err != nil {
			return false, fmt.Errorf("evaluate condition %q: %w", c.Expr, err)
		}
		act[name] = nv
	}
	out, _, err := c.prg.Eval(act)
	if err != nil {
		return false, fmt.Errorf("evaluate condition %q: %w", c.Expr, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("evaluate condition %q: got %v, not true or false", c.Expr, out.Value())
	}
	return b, nil
}

// Uses returns the variables the condition refers to, so a caller builds only those.
func (c *Condition) Uses() []string { return slices.Clone(c.uses) }

// RunbookConditionVariable is the runbook variable of a release of r.
func RunbookConditionVariable(r Runbook) map[string]any {
	return map[string]any{
		"name":               r.Name,
		"tier":               int64(r.Tier),
		"dataClassification": r.DataClassification,
		"owners":             stringsToAny(r.Owners),
		"capabilities":       stringsToAny(r.Capabilities),
	}
}

func stringsToAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// The schema: ConditionVariables turned into CEL types, one environment per kind.

type nodeKind int

const (
	nodeString nodeKind = iota
	nodeInt
	nodeDouble
	nodeBool
	nodeList
	nodeMap
	nodeObject
)

// typeNode is the type of a variable or field: its CEL type plus what the load-time checks
// and Eval's normalization need.
type typeNode struct {
	kind nodeKind
	cel  *types.Type
	// desc names it in messages: "risk", "risk.level", "component".
	desc string
	// elem is a list's element or a map's value.
	elem *typeNode
	// values are a string's allowed values or a map's keys.
	values []string
	// fields of an object, in documentation order.
	fields []string
	field  map[string]*typeNode
}

type conditionSchema struct {
	vars     map[string]*typeNode
	provider *conditionTypes
	envs     map[ConditionKind]*cel.Env
}

// conditionTypes declares the variables' object types to CEL (no protobuf needed). Fields
// have no getters, so at run time a field of an object is looked up as a key of the map
// Eval provides.
type conditionTypes struct {
	*types.Registry
	objects map[string]*typeNode
}

func (p *conditionTypes) FindStructType(name string) (*types.Type, bool) {
	if o, ok := p.objects[name]; ok {
		return types.NewTypeTypeWithParam(o.cel), true
	}
	return p.Registry.FindStructType(name)
}

func (p *conditionTypes) FindStructFieldNames(name string) ([]string, bool) {
	if o, ok := p.objects[name]; ok {
		return slices.Clone(o.fields), true
	}
	return p.Registry.FindStructFieldNames(name)
}

func (p *conditionTypes) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if o, ok := p.objects[name]; ok {
		f, ok := o.field[field]
		if !ok {
			return nil, false
		}
		return &types.FieldType{Type: f.cel}, true
	}
	return p.Registry.FindStructFieldType(name, field)
}

const conditionTypePrefix = "trainyard."

var loadConditionSchema = sync.OnceValues(buildConditionSchema)

func buildConditionSchema() (*conditionSchema, error) {
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, fmt.Errorf("condition types: %w", err)
	}
	s := &conditionSchema{
		vars:     map[string]*typeNode{},
		provider: &conditionTypes{Registry: reg, objects: map[string]*typeNode{}},
		envs:     map[ConditionKind]*cel.Env{},
	}
	for _, v := range ConditionVariables {
		n, err := s.object(v.Name, v.Name, v.Fields)
		if err != nil {
			return nil, fmt.Errorf("condition variable %s: %w", v.Name, err)
		}
		s.vars[v.Name] = n
	}
	for _, k := range conditionKinds {
		opts := []cel.EnvOption{
			cel.CustomTypeProvider(s.provider),
			cel.CrossTypeNumericComparisons(true),
		}
		for _, name := range k.Variables() {
			opts = append(opts, cel.Variable(name, s.vars[name].cel))
		}
		env, err := cel.NewEnv(opts...)
		if err != nil {
			return nil, fmt.Errorf("condition environment %s: %w", k, err)
		}
		s.envs[k] = env
	}
	return s, nil
}

func (s *conditionSchema) object(typName, desc string, fields []FieldDoc) (*typeNode, error) {
	full := conditionTypePrefix + typName
	if _, dup := s.provider.objects[full]; dup {
		return nil, fmt.Errorf("object type %s is declared twice", typName)
	}
	n := &typeNode{kind: nodeObject, cel: types.NewObjectType(full), desc: desc, field: map[string]*typeNode{}}
	s.provider.objects[full] = n
	for _, f := range fields {
		ft, err := s.parseType(f.Type, desc+"."+f.Name, f)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		n.fields = append(n.fields, f.Name)
		n.field[f.Name] = ft
	}
	return n, nil
}

// parseType reads a FieldDoc type: string, int, double, bool, list(T), map(string, T), or
// an object name (whose fields are f.Fields).
func (s *conditionSchema) parseType(t, desc string, f FieldDoc) (*typeNode, error) {
	t = strings.TrimSpace(t)
	switch t {
	case "string":
		return &typeNode{kind: nodeString, cel: types.StringType, desc: desc, values: f.Values}, nil
	case "int":
		return &typeNode{kind: nodeInt, cel: types.IntType, desc: desc}, nil
	case "double":
		return &typeNode{kind: nodeDouble, cel: types.DoubleType, desc: desc}, nil
	case "bool":
		return &typeNode{kind: nodeBool, cel: types.BoolType, desc: desc}, nil
	}
	if inner, ok := strings.CutPrefix(t, "list("); ok && strings.HasSuffix(inner, ")") {
		elemName := strings.TrimSuffix(inner, ")")
		elemDesc := fmt.Sprintf("an element of %s", desc)
		if isObjectTypeName(elemName) {
			elemDesc = elemName
		}
		elem, err := s.parseType(elemName, elemDesc, FieldDoc{Fields: f.Fields})
		if err != nil {
			return nil, err
		}
		return &typeNode{kind: nodeList, cel: types.NewListType(elem.cel), desc: desc, elem: elem}, nil
	}
	if inner, ok := strings.CutPrefix(t, "map(string,"); ok && strings.HasSuffix(inner, ")") {
		val, err := s.parseType(strings.TrimSuffix(inner, ")"), "a value of "+desc, FieldDoc{Fields: f.Fields})
		if err != nil {
			return nil, err
		}
		return &typeNode{kind: nodeMap, cel: types.NewMapType(types.StringType, val.cel), desc: desc, elem: val, values: f.Values}, nil
	}
	if isObjectTypeName(t) && len(f.Fields) > 0 {
		return s.object(t, desc, f.Fields)
	}
	return nil, fmt.Errorf("unsupported type %q", t)
}

func isObjectTypeName(t string) bool {
	if t == "" || strings.ContainsAny(t, "(), ") {
		return false
	}
	switch t {
	case "string", "int", "double", "bool":
		return false
	}
	return true
}

// typeName writes a CEL type the way the documentation does.
func typeName(t *types.Type) string {
	return strings.ReplaceAll(t.String(), conditionTypePrefix, "")
}

// The load-time checks CEL's type checker does not make, or makes with a vaguer message: a
// variable the condition's kind does not see, a misspelt field, a literal a string
// enumeration never takes.

type condWalker struct {
	schema *conditionSchema
	kind   ConditionKind
	src    *ast.SourceInfo
	expr   string
	msgs   []string
	exprs  map[int64]ast.Expr
	// uses are the variables the condition refers to.
	uses []string
}

func (w *condWalker) report(id int64, format string, args ...any) {
	w.reportAt(id, 0, format, args...)
}

// reportAt reports at shift characters after the start of expression id (a selection starts
// at its dot; its field one character later).
func (w *condWalker) reportAt(id int64, shift int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if pos := w.position(id, shift); pos != "" {
		msg = pos + ": " + msg
	}
	if !slices.Contains(w.msgs, msg) {
		w.msgs = append(w.msgs, msg)
	}
}

// position is "at column 7" (or "at line 2, column 3" in a multi-line condition), 1-based.
func (w *condWalker) position(id int64, shift int) string {
	if w.src == nil {
		return ""
	}
	loc := w.src.GetStartLocation(id)
	if loc.Line() <= 0 {
		return ""
	}
	return formatPosition(w.expr, loc.Line(), loc.Column()+shift)
}

func formatPosition(expr string, line, col0 int) string {
	if strings.Contains(strings.TrimRight(expr, "\n"), "\n") {
		return fmt.Sprintf("at line %d, column %d", line, col0+1)
	}
	return fmt.Sprintf("at column %d", col0+1)
}

// walk visits e and returns its type where the schema knows it (variables, their fields,
// elements of their lists, comprehension variables over them), nil elsewhere. locals are
// the comprehension variables in scope (a nil type: unknown).
func (w *condWalker) walk(e ast.Expr, locals map[string]*typeNode) *typeNode {
	if e == nil {
		return nil
	}
	w.exprs[e.ID()] = e
	switch e.Kind() {
	case ast.IdentKind:
		name := e.AsIdent()
		if t, ok := locals[name]; ok {
			return t
		}
		if t, ok := w.schema.vars[name]; ok {
			if slices.Contains(w.kind.Variables(), name) {
				if !slices.Contains(w.uses, name) {
					w.uses = append(w.uses, name)
				}
				return t
			}
			w.report(e.ID(), "%s is not available in %s (variables there: %s)", name, w.kind.where(), strings.Join(w.kind.Variables(), ", "))
		}
		return nil
	case ast.SelectKind:
		sel := e.AsSelect()
		op := w.walk(sel.Operand(), locals)
		return w.field(e.ID(), op, sel.FieldName())
	case ast.CallKind:
		call := e.AsCall()
		if call.IsMemberFunction() {
			w.walk(call.Target(), locals)
		}
		args := make([]*typeNode, len(call.Args()))
		for i, a := range call.Args() {
			args[i] = w.walk(a, locals)
		}
		return w.call(call, args)
	case ast.ComprehensionKind:
		c := e.AsComprehension()
		rng := w.walk(c.IterRange(), locals)
		w.walk(c.AccuInit(), locals)
		inner := make(map[string]*typeNode, len(locals)+3)
		for k, v := range locals {
			inner[k] = v
		}
		inner[c.AccuVar()] = nil
		inner[c.IterVar()] = nil
		if c.HasIterVar2() {
			inner[c.IterVar2()] = nil
		}
		if rng != nil {
			switch rng.kind {
			case nodeList:
				inner[c.IterVar()] = rng.elem
			case nodeMap:
				inner[c.IterVar()] = &typeNode{kind: nodeString, cel: types.StringType, desc: "a key of " + rng.desc, values: rng.values}
			}
		}
		w.walk(c.LoopCondition(), inner)
		w.walk(c.LoopStep(), inner)
		w.walk(c.Result(), inner)
		return nil
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			w.walk(el, locals)
		}
	case ast.MapKind:
		for _, en := range e.AsMap().Entries() {
			me := en.AsMapEntry()
			w.walk(me.Key(), locals)
			w.walk(me.Value(), locals)
		}
	case ast.StructKind:
		w.report(e.ID(), "conditions cannot build objects: compare the fields of the variables instead")
	}
	return nil
}

// field checks the selection of name on a value of type op.
func (w *condWalker) field(id int64, op *typeNode, name string) *typeNode {
	if op == nil {
		return nil
	}
	switch op.kind {
	case nodeObject:
		if f, ok := op.field[name]; ok {
			return f
		}
		w.reportAt(id, 1, "unknown field %s of %s (fields: %s)", name, op.desc, strings.Join(op.fields, ", "))
	case nodeMap:
		w.checkKey(id, op, name)
		return op.elem
	}
	return nil
}

func (w *condWalker) checkKey(id int64, m *typeNode, key string) {
	if len(m.values) > 0 && !slices.Contains(m.values, key) {
		w.report(id, "%s has no key %q (keys: %s)", m.desc, key, strings.Join(m.values, ", "))
	}
}

func (w *condWalker) checkValue(id int64, t *typeNode, lit ast.Expr) {
	s, ok := stringLiteral(lit)
	if !ok || t == nil || t.kind != nodeString || len(t.values) == 0 || slices.Contains(t.values, s) {
		return
	}
	w.report(id, "%s is never %q (values: %s)", t.desc, s, quoteList(t.values))
}

func (w *condWalker) call(call ast.CallExpr, args []*typeNode) *typeNode {
	a := call.Args()
	switch call.FunctionName() {
	case "_[_]":
		if len(args) != 2 || args[0] == nil {
			return nil
		}
		switch args[0].kind {
		case nodeList:
			return args[0].elem
		case nodeMap:
			if s, ok := stringLiteral(a[1]); ok {
				w.checkKey(a[1].ID(), args[0], s)
			}
			return args[0].elem
		}
	case "_==_", "_!=_":
		if len(args) == 2 {
			w.checkValue(a[1].ID(), args[0], a[1])
			w.checkValue(a[0].ID(), args[1], a[0])
		}
	case "@in":
		if len(args) != 2 {
			return nil
		}
		if args[1] != nil && args[1].kind == nodeMap {
			if s, ok := stringLiteral(a[0]); ok {
				w.checkKey(a[0].ID(), args[1], s)
			}
		}
		if args[0] != nil && a[1].Kind() == ast.ListKind {
			for _, el := range a[1].AsList().Elements() {
				w.checkValue(el.ID(), args[0], el)
			}
		}
	}
	return nil
}

func stringLiteral(e ast.Expr) (string, bool) {
	if e == nil || e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// compactIssues turns CEL's multi-line error report (with a caret under the source) into one
// line per error, with its position, in this package's words where they are clearer.
func compactIssues(iss *cel.Issues, exprs map[int64]ast.Expr, expr string, kind ConditionKind) string {
	var msgs []string
	vars := strings.Join(kind.Variables(), ", ")
	for _, e := range iss.Errors() {
		msg := e.Message
		if name, ok := undeclaredName(msg); ok {
			if ex, found := exprs[e.ExprID]; found && ex.Kind() == ast.CallKind {
				msg = fmt.Sprintf("unknown function %s (conditions use CEL's standard functions)", name)
			} else {
				msg = fmt.Sprintf("unknown variable %s (variables there: %s)", name, vars)
			}
		} else {
			msg = compactSyntaxError(strings.TrimPrefix(msg, "Syntax error: "))
			msg = strings.ReplaceAll(msg, conditionTypePrefix, "")
			msg += fmt.Sprintf(" (variables there: %s)", vars)
		}
		if loc := e.Location; loc != nil && loc.Line() > 0 {
			msg = formatPosition(expr, loc.Line(), loc.Column()) + ": " + msg
		}
		if !slices.Contains(msgs, msg) {
			msgs = append(msgs, msg)
		}
	}
	if len(msgs) == 0 {
		return strings.TrimSpace(iss.String())
	}
	return strings.Join(msgs, "; ")
}

// compactSyntaxError drops the parser's list of every token it would have accepted.
func compactSyntaxError(msg string) string {
	before, _, found := strings.Cut(msg, " expecting {")
	if !found {
		return msg
	}
	if before == "mismatched input '<EOF>'" {
		return "the condition ends too early"
	}
	if input, ok := strings.CutPrefix(before, "mismatched input "); ok {
		return "unexpected " + input
	}
	return before
}

// undeclaredName reads the name out of CEL's "undeclared reference to 'x' (in container ...)".
func undeclaredName(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, "undeclared reference to '")
	if !ok {
		return "", false
	}
	name, _, ok := strings.Cut(rest, "'")
	return name, ok
}

// Eval's normalization: the values a workflow passes, checked against the schema and turned
// into the types CEL expects (int64, float64, []any, map[string]any), so an int that went
// through JSON as 70.0 is still an int, and a map's iteration order is stable.

func (t *typeNode) normalize(v any, path string) (any, error) {
	if v == nil {
		return t.zero(), nil
	}
	if val, ok := v.(ref.Val); ok {
		v = val.Value()
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return t.zero(), nil
		}
		rv = rv.Elem()
	}
	switch t.kind {
	case nodeString:
		if rv.Kind() == reflect.String {
			return rv.String(), nil
		}
	case nodeBool:
		if rv.Kind() == reflect.Bool {
			return rv.Bool(), nil
		}
	case nodeInt:
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				return i, nil
			}
		}
		switch {
		case rv.CanInt():
			return rv.Int(), nil
		case rv.CanUint() && rv.Uint() <= math.MaxInt64:
			return int64(rv.Uint()), nil
		case rv.CanFloat() && rv.Float() == math.Trunc(rv.Float()) && math.Abs(rv.Float()) < 1<<53:
			return int64(rv.Float()), nil
		}
	case nodeDouble:
		if n, ok := v.(json.Number); ok {
			if f, err := n.Float64(); err == nil {
				return f, nil
			}
		}
		switch {
		case rv.CanFloat():
			return rv.Float(), nil
		case rv.CanInt():
			return float64(rv.Int()), nil
		case rv.CanUint():
			return float64(rv.Uint()), nil
		}
	case nodeList:
		if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
			out := make([]any, rv.Len())
			for i := range out {
				el, err := t.elem.normalize(rv.Index(i).Interface(), fmt.Sprintf("%s[%d]", path, i))
				if err != nil {
					return nil, err
				}
				out[i] = el
			}
			return out, nil
		}
	case nodeMap:
		if rv.Kind() == reflect.Map && rv.Type().Key().Kind() == reflect.String {
			m := make(map[string]any, rv.Len())
			iter := rv.MapRange()
			for iter.Next() {
				k := iter.Key().String()
				val, err := t.elem.normalize(iter.Value().Interface(), fmt.Sprintf("%s[%q]", path, k))
				if err != nil {
					return nil, err
				}
				m[k] = val
			}
			for _, k := range t.values {
				if _, ok := m[k]; !ok {
					m[k] = t.elem.zero()
				}
			}
			return newSortedMap(m), nil
		}
	case nodeObject:
		return t.normalizeObject(rv, path)
	}
	return nil, fmt.Errorf("%s: want %s, got %T", path, typeName(t.cel), v)
}

func (t *typeNode) normalizeObject(rv reflect.Value, path string) (any, error) {
	if rv.Kind() == reflect.Struct {
		// A struct goes through its JSON encoding, so its json tags name the fields.
		b, err := json.Marshal(rv.Interface())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		rv = reflect.ValueOf(m)
	}
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return nil, fmt.Errorf("%s: want an object with fields %s, got %s", path, strings.Join(t.fields, ", "), rv.Type())
	}
	out := make(map[string]any, len(t.fields))
	iter := rv.MapRange()
	for iter.Next() {
		k := iter.Key().String()
		ft, ok := t.field[k]
		if !ok {
			return nil, fmt.Errorf("%s: unknown field %s (fields: %s)", path, k, strings.Join(t.fields, ", "))
		}
		v, err := ft.normalize(iter.Value().Interface(), path+"."+k)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	for _, k := range t.fields {
		if _, ok := out[k]; !ok {
			out[k] = t.field[k].zero()
		}
	}
	return out, nil
}

func (t *typeNode) zero() any {
	switch t.kind {
	case nodeString:
		return ""
	case nodeInt:
		return int64(0)
	case nodeDouble:
		return float64(0)
	case nodeBool:
		return false
	case nodeList:
		return []any{}
	case nodeMap:
		m := map[string]any{}
		for _, k := range t.values {
			m[k] = t.elem.zero()
		}
		return newSortedMap(m)
	}
	m := make(map[string]any, len(t.fields))
	for _, k := range t.fields {
		m[k] = t.field[k].zero()
	}
	return m
}

// sortedMap is a CEL map that iterates its keys in sorted order: Go maps iterate in random
// order, and a condition such as risk.factors.map(k, k)[0] must give the same answer on a
// workflow's replay.
type sortedMap struct {
	traits.Mapper
	keys []string
}

func newSortedMap(m map[string]any) sortedMap {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return sortedMap{Mapper: types.DefaultTypeAdapter.NativeToValue(m).(traits.Mapper), keys: keys}
}

func (m sortedMap) Iterator() traits.Iterator {
	return types.NewStringList(types.DefaultTypeAdapter, m.keys).Iterator()
}
