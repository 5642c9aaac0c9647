package runbooks

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// NamePattern is what runbook, stage, target, gate and site names look like: they end up in
// workflow ids, task queue names and URLs.
var NamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$`)

const nameRule = "use lowercase letters, digits and dashes (at most 64), starting and ending with a letter or digit"

// Validate returns every problem with the runbook, each with the path of the field at fault.
// Lines are filled in by Parse, which knows the source.
func (r Runbook) Validate() []Problem {
	var ps []Problem
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	checkName := func(path, what, v string) {
		switch {
		case v == "":
			add(path, "%s is required", what)
		case !NamePattern.MatchString(v):
			add(path, "%q is not a valid %s: %s", v, what, nameRule)
		}
	}

	keys := make([]string, 0, len(r.Extensions))
	for k := range r.Extensions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !strings.HasPrefix(k, "x-") {
			add(k, "unknown field %q (check its spelling; only extension fields starting with x- may be added)", k)
		}
	}
	checkName("name", "runbook name", r.Name)
	if r.Stabilization.Window < 0 {
		add("stabilization", "must not be negative")
	}
	if len(r.Stages) == 0 {
		add("stages", "a runbook needs at least one stage")
	}
	stageIndex := map[string]int{}
	targetNames := map[string]string{}
	for i, s := range r.Stages {
		sp := fmt.Sprintf("stages[%d]", i)
		checkName(sp+".name", "stage name", s.Name)
		if prev, dup := stageIndex[s.Name]; dup && s.Name != "" {
			add(sp+".name", "stage %q is declared twice (also stages[%d])", s.Name, prev)
		}
		stageIndex[s.Name] = i
		if len(s.Targets) == 0 {
			add(sp+".targets", "stage %q needs at least one target", s.Name)
		}
		for j, t := range s.Targets {
			tp := fmt.Sprintf("%s.targets[%d]", sp, j)
			checkName(tp+".name", "target name", t.Name)
			if prev, dup := targetNames[t.Name]; dup && t.Name != "" {
				add(tp+".name", "target %q is declared twice (also in %s); target names are unique in a runbook", t.Name, prev)
			}
			targetNames[t.Name] = sp
			switch t.Kind {
			case KindCommand:
				checkName(tp+".site", "site", t.Site)
				if t.Deploy == "" {
					add(tp+".deploy", "a command target needs a deploy command")
				}
				if t.Rollback == "" {
					add(tp+".rollback", "a command target needs a rollback command, so a failed release can be undone")
				}
			case "":
				add(tp+".kind", "kind is required (supported: %s)", KindCommand)
			default:
				add(tp+".kind", "unknown target kind %q (supported: %s)", t.Kind, KindCommand)
			}
			if t.Timeout < 0 {
				add(tp+".timeout", "must not be negative")
			}
			if t.Heartbeat < 0 {
				add(tp+".heartbeat", "must not be negative")
			}
		}
	}

	gateNames := map[string]bool{}
	for i, g := range r.Approvals {
		gp := fmt.Sprintf("approvals[%d]", i)
		checkName(gp+".name", "approval gate name", g.Name)
		if gateNames[g.Name] && g.Name != "" {
			add(gp+".name", "approval gate %q is declared twice", g.Name)
		}
		gateNames[g.Name] = true
		if g.Before == "" {
			add(gp+".before", "name the stage this gate holds")
		} else if _, ok := stageIndex[g.Before]; !ok {
			add(gp+".before", "no stage is named %q", g.Before)
		}
		if len(g.Roles) == 0 {
			add(gp+".roles", "list the roles allowed to approve")
		}
		if g.Count < 0 {
			add(gp+".count", "must be at least 1")
		}
		if g.Timeout < 0 {
			add(gp+".timeout", "must not be negative")
		}
	}
	return ps
}
