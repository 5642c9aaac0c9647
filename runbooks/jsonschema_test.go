package runbooks

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func loadSchema(t *testing.T) map[string]any {
	t.Helper()
	data, err := JSONSchema()
	require.NoError(t, err)
	var schema map[string]any
	require.NoError(t, json.Unmarshal(data, &schema), "the schema is JSON")
	return schema
}

func TestJSONSchema_IsDraft2020WithEveryTopLevelKey(t *testing.T) {
	t.Parallel()
	schema := loadSchema(t)
	require.Equal(t, "https://json-schema.org/draft/2020-12/schema", schema["$schema"])
	props := schema["properties"].(map[string]any)

	rt := reflect.TypeOf(Runbook{})
	var want []string
	for i := range rt.NumField() {
		name, opts, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ",")
		if strings.Contains(opts, "inline") {
			continue
		}
		want = append(want, name)
		require.Contains(t, props, name)
	}
	require.Len(t, props, len(want), "no key the type does not have")
	require.Equal(t, false, schema["additionalProperties"])
	require.Contains(t, schema["patternProperties"], "^x-")
	require.ElementsMatch(t, []any{"name", "stages"}, schema["required"])
	for _, section := range []string{"scope", "readiness", "approvals", "stages", "stabilization", "rollback", "analyses"} {
		require.NotEmpty(t, props[section].(map[string]any)["description"], section)
	}
}

func TestJSONSchema_EnumsComeFromTheLanguagesLists(t *testing.T) {
	t.Parallel()
	defs := loadSchema(t)["$defs"].(map[string]any)
	enum := func(def, field string) []string {
		p := defs[def].(map[string]any)["properties"].(map[string]any)[field].(map[string]any)
		var out []string
		for _, v := range p["enum"].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	require.Equal(t, TargetKinds, enum("Target", "kind"))
	require.Equal(t, GateTypes, enum("ReadinessGate", "type"))
	require.Equal(t, Strategies, enum("Strategy", "type"))
	require.Equal(t, SchemaChanges, enum("Component", "schemaChange"))
	require.Equal(t, RollbackScopes, enum("Rollback", "scope"))
	timeout := defs["Target"].(map[string]any)["properties"].(map[string]any)["timeout"].(map[string]any)
	require.Equal(t, "string", timeout["type"])
	require.Regexp(t, timeout["pattern"].(string), "1h30m")
	require.NotRegexp(t, timeout["pattern"].(string), "90")
}

func TestJSONSchema_ExamplesConform(t *testing.T) {
	t.Parallel()
	schema := loadSchema(t)
	files, err := filepath.Glob("examples/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			var doc any
			require.NoError(t, yaml.Unmarshal(data, &doc))
			require.Empty(t, checkSchema(schema, schema, "", doc))
		})
	}
}

func TestJSONSchema_CheckerCatchesWhatTheSchemaForbids(t *testing.T) {
	t.Parallel()
	schema := loadSchema(t)
	const base = `name: r
stages:
  - name: s
    targets:
      - {name: t, kind: command, site: a, deploy: x, rollback: y}
`
	tests := []struct {
		name, yaml, want string
	}{
		{"valid", base, ""},
		{"extension key", base + "x-shared: {anything: 1}\n", ""},
		{"stabilization as a duration", base + "stabilization: 30m\n", ""},
		{"stabilization as a block", base + "stabilization: {window: 30m, onBreach: page}\n", ""},
		{"misspelt section", base + "aprovals: []\n", `aprovals: not allowed`},
		{"missing stages", "name: r\n", `stages: required`},
		{"unknown kind", strings.Replace(base, "kind: command", "kind: helm", 1), `stages[0].targets[0].kind: "helm" is not one of`},
		{"command without deploy", strings.Replace(base, "deploy: x, ", "", 1), `stages[0].targets[0].deploy: required`},
		{"argocd without its block", strings.Replace(base, "kind: command", "kind: argocd", 1), `stages[0].targets[0].argocd: required`},
		{"bad duration", base + "stabilization: soon\n", `stabilization: matches none of oneOf`},
		{"bad nested duration", strings.Replace(base, "rollback: y}", "rollback: y, timeout: 10}", 1), `stages[0].targets[0].timeout: want string`},
		{"tier out of range", base + "tier: 7\n", `tier: 7 is above 4`},
		{"bad name", strings.Replace(base, "name: r", "name: Bad_Name", 1), `name: "Bad_Name" does not match`},
		{"no targets", "name: r\nstages:\n  - name: s\n    targets: []\n", `stages[0].targets: fewer than 1 items`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var doc any
			require.NoError(t, yaml.Unmarshal([]byte(tc.yaml), &doc))
			got := checkSchema(schema, schema, "", doc)
			if tc.want == "" {
				require.Empty(t, got)
				return
			}
			require.NotEmpty(t, got)
			require.Contains(t, strings.Join(got, "\n"), tc.want)
		})
	}
}

// checkSchema is a minimal JSON Schema checker, enough to hold documents to the shape the
// schema describes: $ref, allOf (with if/then), oneOf, type, enum, const, pattern, minimum,
// maximum, minItems, properties, patternProperties, additionalProperties, required, items.
func checkSchema(root, s map[string]any, path string, v any) []string {
	var errs []string
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s: ", path)+fmt.Sprintf(format, args...))
	}
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/$defs/")
		def, ok := root["$defs"].(map[string]any)[name].(map[string]any)
		if !ok {
			fail("unresolved $ref %s", ref)
			return errs
		}
		errs = append(errs, checkSchema(root, def, path, v)...)
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			sub := sub.(map[string]any)
			if cond, ok := sub["if"].(map[string]any); ok {
				if len(checkSchema(root, cond, path, v)) == 0 {
					if then, ok := sub["then"].(map[string]any); ok {
						errs = append(errs, checkSchema(root, then, path, v)...)
					}
				}
				continue
			}
			errs = append(errs, checkSchema(root, sub, path, v)...)
		}
	}
	if one, ok := s["oneOf"].([]any); ok {
		n := 0
		for _, sub := range one {
			if len(checkSchema(root, sub.(map[string]any), path, v)) == 0 {
				n++
			}
		}
		if n != 1 {
			fail("matches none of oneOf (or more than one)")
		}
	}
	if typ, ok := s["type"].(string); ok && !hasType(typ, v) {
		fail("want %s, got %T", typ, v)
		return errs
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		fail("%q is not one of %v", fmt.Sprint(v), enum)
	}
	if c, ok := s["const"]; ok && fmt.Sprint(c) != fmt.Sprint(v) {
		fail("want %v", c)
	}
	if pat, ok := s["pattern"].(string); ok {
		if str, isStr := v.(string); isStr && !regexp.MustCompile(pat).MatchString(str) {
			fail("%q does not match %s", str, pat)
		}
	}
	if n, isNum := number(v); isNum {
		if lo, ok := s["minimum"].(float64); ok && n < lo {
			fail("%v is below %v", n, lo)
		}
		if hi, ok := s["maximum"].(float64); ok && n > hi {
			fail("%v is above %v", n, hi)
		}
	}
	switch val := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		patterns, _ := s["patternProperties"].(map[string]any)
		keys := make([]string, 0, len(val))
		for k := range val {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sub := path + "." + k
			if path == "" {
				sub = k
			}
			if ps, ok := props[k].(map[string]any); ok {
				errs = append(errs, checkSchema(root, ps, sub, val[k])...)
				continue
			}
			matched := false
			for pat, ps := range patterns {
				if regexp.MustCompile(pat).MatchString(k) {
					matched = true
					errs = append(errs, checkSchema(root, ps.(map[string]any), sub, val[k])...)
				}
			}
			if matched {
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					errs = append(errs, sub+": not allowed")
				}
			case map[string]any:
				errs = append(errs, checkSchema(root, ap, sub, val[k])...)
			}
		}
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := val[r.(string)]; !ok {
					sub := path + "." + r.(string)
					if path == "" {
						sub = r.(string)
					}
					errs = append(errs, sub+": required")
				}
			}
		}
	case []any:
		if lo, ok := s["minItems"].(float64); ok && float64(len(val)) < lo {
			fail("fewer than %v items", lo)
		}
		if items, ok := s["items"].(map[string]any); ok {
			for i, item := range val {
				errs = append(errs, checkSchema(root, items, fmt.Sprintf("%s[%d]", path, i), item)...)
			}
		}
	}
	return errs
}

func hasType(typ string, v any) bool {
	switch typ {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "integer":
		n, ok := number(v)
		return ok && n == float64(int64(n))
	case "number":
		_, ok := number(v)
		return ok
	}
	return true
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}
