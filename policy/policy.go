package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/trainyard/trainyard/runbooks"
)

// Points at which policies are checked.
const (
	AtStart = "start"
	AtStage = "stage"
)

// Policy is one rule releases must follow.
type Policy struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// When chooses the releases the policy applies to (CEL); empty means all.
	When string `yaml:"when,omitempty" json:"when,omitempty"`
	// Rule must hold for a release the policy applies to (CEL).
	Rule string `yaml:"rule" json:"rule"`
	// Message tells the requester what is wrong and how to fix it.
	Message string `yaml:"message" json:"message"`
	// At lists where the policy is checked: start, stage, or both (the default).
	At []string `yaml:"at,omitempty" json:"at,omitempty"`

	when, rule *runbooks.Condition
}

// Set is a loaded, compiled policy file.
type Set struct {
	Policies []Policy
	// Source is the file the set came from, for messages.
	Source string
}

// Violation is a policy a release breaks.
type Violation struct {
	Policy  string `json:"policy"`
	Message string `json:"message"`
}

func (v Violation) String() string { return fmt.Sprintf("policy %s: %s", v.Policy, v.Message) }

// Error lists everything wrong with a policy file, one "file:line: message" per problem.
type Error struct {
	Problems []string
}

func (e *Error) Error() string { return strings.Join(e.Problems, "\n") }

var policyKeys = []string{"name", "description", "when", "rule", "message", "at"}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$`)

// Load reads and compiles the policy file at path; an empty path is an empty set.
func Load(path string) (*Set, error) {
	if path == "" {
		return &Set{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy file: %w", err)
	}
	return Parse(path, data)
}

// Parse compiles a policy file's content. Every problem is reported with its line.
func Parse(source string, data []byte) (*Set, error) {
	var doc struct {
		Policies []yaml.Node `yaml:"policies"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// An empty file (io.EOF) is an empty set.
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, &Error{Problems: []string{fmt.Sprintf("%s: %s", source, strings.TrimPrefix(err.Error(), "yaml: "))}}
	}
	set := &Set{Source: source}
	var probs []string
	seen := map[string]int{}
	for _, n := range doc.Policies {
		at := func(format string, args ...any) {
			probs = append(probs, fmt.Sprintf("%s:%d: %s", source, n.Line, fmt.Sprintf(format, args...)))
		}
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if k := n.Content[i]; !slices.Contains(policyKeys, k.Value) {
					probs = append(probs, fmt.Sprintf("%s:%d: unknown key %q (keys: %s)", source, k.Line, k.Value, strings.Join(policyKeys, ", ")))
				}
			}
		}
		var p Policy
		if err := n.Decode(&p); err != nil {
			at("%s", strings.TrimPrefix(err.Error(), "yaml: "))
			continue
		}
		label := "policy"
		if p.Name != "" {
			label = "policy " + p.Name
		}
		switch {
		case p.Name == "":
			at("a policy needs a name (lowercase letters, digits and dashes); waivers name it")
		case !nameRE.MatchString(p.Name):
			at("%q is not a valid policy name: use lowercase letters, digits and dashes", p.Name)
		case seen[p.Name] > 0:
			at("policy %s is defined twice (first at line %d): rename one", p.Name, seen[p.Name])
		default:
			seen[p.Name] = n.Line
		}
		if p.Message == "" {
			at("%s has no message: say what the requester must do", label)
		}
		for _, a := range p.At {
			if a != AtStart && a != AtStage {
				at("%s: at %q is not start or stage", label, a)
			}
		}
		if len(p.At) == 0 {
			p.At = []string{AtStart, AtStage}
		}
		var err error
		if strings.TrimSpace(p.Rule) == "" {
			at("%s has no rule: write the condition releases must meet, such as governance.scanReports > 0", label)
		} else if p.rule, err = runbooks.CompileCondition(p.Rule, runbooks.PolicyCondition); err != nil {
			at("%s: rule: %s", label, conditionMessage(err))
		}
		if p.When != "" {
			if p.when, err = runbooks.CompileCondition(p.When, runbooks.PolicyCondition); err != nil {
				at("%s: when: %s", label, conditionMessage(err))
			}
		}
		set.Policies = append(set.Policies, p)
	}
	if len(probs) > 0 {
		return nil, &Error{Problems: probs}
	}
	return set, nil
}

func conditionMessage(err error) string {
	var ce *runbooks.ConditionError
	if errors.As(err, &ce) {
		return ce.Msg
	}
	return err.Error()
}

// Names lists the policies' names.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	out := make([]string, len(s.Policies))
	for i, p := range s.Policies {
		out[i] = p.Name
	}
	return out
}

// Evaluate checks the policies that apply at point against vars (the variables of a policy
// condition: release, runbook, risk, impact, change, stage, governance). A policy that cannot
// be evaluated counts as violated: a broken policy must not let releases through silently.
func (s *Set) Evaluate(point string, vars map[string]any) []Violation {
	if s == nil {
		return nil
	}
	var out []Violation
	for _, p := range s.Policies {
		if !slices.Contains(p.At, point) {
			continue
		}
		if p.when != nil {
			applies, err := p.when.Eval(vars)
			if err != nil {
				out = append(out, Violation{Policy: p.Name, Message: "cannot be evaluated: " + err.Error()})
				continue
			}
			if !applies {
				continue
			}
		}
		ok, err := p.rule.Eval(vars)
		switch {
		case err != nil:
			out = append(out, Violation{Policy: p.Name, Message: "cannot be evaluated: " + err.Error()})
		case !ok:
			out = append(out, Violation{Policy: p.Name, Message: p.Message})
		}
	}
	return out
}
