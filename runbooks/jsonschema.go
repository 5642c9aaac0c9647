package runbooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// JSONSchemaID names the schema; editors only need it to be stable.
const JSONSchemaID = "https://trainyard.dev/schemas/runbook.json"

// schemaDurationPattern is what a Go duration string looks like: 30s, 5m, 1h30m, 1.5h.
const schemaDurationPattern = `^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`

// JSONSchema returns a JSON Schema (draft 2020-12) of runbook files for editors. It is built
// by reflection over the Runbook type and its yaml tags, so it cannot drift from what Parse
// accepts: every object lists its fields and allows no others (the top level also allows
// x- extension keys), fields whose yaml tag lacks omitempty are required, enumerations come
// from the lists the validator uses, and durations are strings such as "30s".
//
// The schema checks shape, not meaning (stage references, unique names, conditions):
// `trainyard runbook validate` does that.
func JSONSchema() ([]byte, error) {
	g := &schemaGen{defs: map[string]any{}}
	root := g.object(reflect.TypeOf(Runbook{}))
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["$id"] = JSONSchemaID
	root["title"] = "Trainyard runbook"
	root["patternProperties"] = map[string]any{"^x-": map[string]any{"description": "extension key, ignored: a place for YAML anchors several targets share"}}
	root["$defs"] = g.defs
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // conditions such as "result.value < 0.01" stay readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("marshal runbook schema: %w", err)
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

type schemaGen struct {
	defs map[string]any
}

var (
	schemaDurationType      = reflect.TypeOf(Duration(0))
	schemaStabilizationType = reflect.TypeOf(Stabilization{})
)

// schemaEnums are the allowed values of fields, by Go type and yaml key.
var schemaEnums = map[string][]string{
	"Runbook.dataClassification": DataClassifications,
	"Runbook.onFreeze":           {"wait", "fail"},
	"Scope.infrastructure":       InfrastructureModes,
	"Component.schemaChange":     SchemaChanges,
	"ReadinessGate.type":         GateTypes,
	"ReadinessGate.maxSeverity":  {"low", "medium", "high", "critical"},
	"ApprovalGate.onTimeout":     {"reject", "wait"},
	"ChangeRequest.provider":     ChangeRequestProviders,
	"Analysis.provider":          AnalysisProviders,
	"Strategy.type":              Strategies,
	"Target.kind":                TargetKinds,
	"Stabilization.onBreach":     BreachActions,
	"Rollback.scope":             RollbackScopes,
	"CircuitBreaker.scope":       CircuitBreakerScopes,
}

// schemaNamed are the fields that hold names used in ids, queues and URLs.
var schemaNamed = map[string]bool{
	"Runbook.name": true, "Stage.name": true, "Target.name": true, "Target.site": true,
	"ApprovalGate.name": true, "ApprovalGate.before": true, "ReadinessGate.name": true,
	"ReadinessGate.site": true,
}

// schemaBounds are numeric limits, as [minimum, maximum].
var schemaBounds = map[string][2]float64{
	"Runbook.tier":                   {1, 4},
	"ApprovalGate.count":             {1, 100},
	"Strategy.maxParallel":           {1, 1000},
	"CanaryStep.weight":              {1, 100},
	"Wave.percent":                   {1, 100},
	"FlagTarget.percent":             {0, 100},
	"HardwareTarget.maxFailureRatio": {0, 1},
	"SLO.objective":                  {0, 100},
	"ReadinessGate.minCoverage":      {0, 100},
	"RiskModel.medium":               {0, 100},
	"RiskModel.high":                 {0, 100},
}

// schemaDocs describe fields (Type.key) and types (Type) to a person in an editor.
var schemaDocs = map[string]string{
	"Runbook":                     "How one kind of release goes. Reference: docs/runbooks.md.",
	"Runbook.name":                "The runbook's name, used in release ids (release-<name>-<version>): lowercase letters, digits and dashes.",
	"Runbook.description":         "One line shown in listings.",
	"Runbook.owners":              "Teams accountable for what this runbook releases.",
	"Runbook.tier":                "Criticality, 1 (most critical) to 4.",
	"Runbook.dataClassification":  "The most sensitive data the released services touch.",
	"Runbook.capabilities":        "What the released services do (free text, shown in plans).",
	"Runbook.channel":             "Slack channel the release is announced in.",
	"Runbook.extends":             "Base runbook file (relative to this one) whose approvals and readiness gates are mandatory here.",
	"Runbook.exceptions":          "Mandatory items of the base runbook dropped here, each backed by a waiver.",
	"Runbook.scope":               "What ships together: components pinned by digest, version groups, infrastructure.",
	"Runbook.readiness":           "Gates checked in parallel before the release touches production, and the risk model.",
	"Runbook.approvals":           "Approval gates: each holds the release before a stage until enough people with the named roles approve.",
	"Runbook.freezes":             "Freeze calendars that apply.",
	"Runbook.onFreeze":            "What a release does at a frozen stage: wait (default) or fail.",
	"Runbook.cab":                 "When the change advisory board must approve, and who it is.",
	"Runbook.changeRequest":       "An ITSM change request opened and closed with the release.",
	"Runbook.rollbackAuthority":   "Roles that may abort a release or order a rollback (the requester always may abort).",
	"Runbook.analyses":            "Named metric checks used by canary steps, exit criteria and stabilization.",
	"Runbook.stages":              "The stages the release rolls through: in order, or after the stages each names in after.",
	"Runbook.stabilization":       "How long production must stay healthy after the last stage (a duration such as 30m), or a block with analyses, an SLO and checks.",
	"Runbook.rollback":            "How a release is undone: scope, time budget, forward fixes, circuit breaker.",
	"ApprovalGate.before":         "The stage this gate holds.",
	"ApprovalGate.roles":          "An approver must hold one of these roles.",
	"ApprovalGate.count":          "How many distinct people must approve (default 1).",
	"ApprovalGate.allowRequester": "Lets the requester and the change's authors approve (default false).",
	"ApprovalGate.timeout":        "How long the gate waits for a decision (default 24h).",
	"ApprovalGate.when":           "CEL condition choosing whether the gate applies, e.g. risk.score >= 50.",
	"Stage.after":                 "Stages this one waits for; without it, the stage declared before it.",
	"Stage.requires":              "Hardware or capabilities this stage has that earlier stages may lack (environment parity).",
	"Target.kind":                 "Which kind-specific fields apply: command (site, deploy, rollback), argocd, spinnaker, hardware (site), flag.",
	"Target.site":                 "The site worker (trainyard worker --site NAME) that runs command and hardware targets.",
	"Target.deploy":               "Shell command run by /bin/sh -c on the site worker; exit 0 is success.",
	"Target.rollback":             "Shell command that puts TRAINYARD_PREVIOUS_VERSION back.",
	"Target.timeout":              "Longest one operation may run (default 10m).",
	"Target.heartbeat":            "Silence after which the site worker counts as lost (default 30s).",
	"Component.artifact":          "Image or package reference, pinned by digest (repo@sha256:...) unless allowTag.",
	"Analysis.successCondition":   "CEL over result.value and result.baseline, e.g. result.value < 0.01.",
	"Analysis.failureCondition":   "CEL over result.value and result.baseline.",
	"Duration":                    "A duration such as 30s, 5m, 2h or 1h30m.",
}

// typeSchema returns the schema of a Go type, as a $ref for structs.
func (g *schemaGen) typeSchema(t reflect.Type) map[string]any {
	switch {
	case t == schemaDurationType:
		return map[string]any{"type": "string", "pattern": schemaDurationPattern, "description": schemaDocs["Duration"]}
	case t == schemaStabilizationType:
		g.define(t)
		return map[string]any{"oneOf": []any{
			map[string]any{"type": "string", "pattern": schemaDurationPattern, "description": "the window alone, e.g. 30m"},
			map[string]any{"$ref": "#/$defs/" + t.Name()},
		}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.typeSchema(t.Elem())
	case reflect.Struct:
		g.define(t)
		return map[string]any{"$ref": "#/$defs/" + t.Name()}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": g.typeSchema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.typeSchema(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	}
	return map[string]any{}
}

// define adds the object schema of a struct to $defs once.
func (g *schemaGen) define(t reflect.Type) {
	if _, done := g.defs[t.Name()]; done {
		return
	}
	g.defs[t.Name()] = nil // breaks recursion
	g.defs[t.Name()] = g.object(t)
}

// object is the schema of a struct: its yaml fields, closed to others.
func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || strings.Contains(opts, "inline") {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		key := t.Name() + "." + name
		s := g.typeSchema(f.Type)
		if vals, ok := schemaEnums[key]; ok {
			s["enum"] = vals
		}
		if schemaNamed[key] {
			s["pattern"] = NamePattern.String()
		}
		if b, ok := schemaBounds[key]; ok {
			s["minimum"], s["maximum"] = b[0], b[1]
		}
		if doc, ok := schemaDocs[key]; ok {
			if _, isRef := s["$ref"]; isRef {
				// Siblings of $ref are allowed in 2020-12, but keep the ref schema reusable.
				s = map[string]any{"allOf": []any{s}, "description": doc}
			} else {
				s["description"] = doc
			}
		}
		props[name] = s
		if !strings.Contains(opts, "omitempty") {
			required = append(required, name)
		}
	}
	switch key := t.Name(); key {
	case "Runbook":
		props["stages"].(map[string]any)["minItems"] = 1
	case "Stage":
		props["targets"].(map[string]any)["minItems"] = 1
	case "ApprovalGate":
		props["roles"].(map[string]any)["minItems"] = 1
	}
	obj := map[string]any{
		"type":                 "object",
		"properties":           props,
		"additionalProperties": false,
	}
	if len(required) > 0 {
		obj["required"] = required
	}
	if doc, ok := schemaDocs[t.Name()]; ok {
		obj["description"] = doc
	}
	if t.Name() == "Target" {
		obj["allOf"] = schemaTargetKindRules()
	}
	return obj
}

// schemaTargetKindRules require each kind's own fields.
func schemaTargetKindRules() []any {
	need := []struct {
		kind   string
		fields []string
	}{
		{KindCommand, []string{"site", "deploy", "rollback"}},
		{KindArgoCD, []string{"argocd"}},
		{KindSpinnaker, []string{"spinnaker"}},
		{KindHardware, []string{"site", "hardware"}},
		{KindFlag, []string{"flag"}},
	}
	rules := make([]any, 0, len(need))
	for _, n := range need {
		rules = append(rules, map[string]any{
			"if":   map[string]any{"properties": map[string]any{"kind": map[string]any{"const": n.kind}}, "required": []string{"kind"}},
			"then": map[string]any{"required": n.fields},
		})
	}
	return rules
}
