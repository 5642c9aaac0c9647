package server

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/workflows"
)

// digestPattern is an artifact pinned by content: promotion must ship exactly what was
// tested, never whatever a tag points at today.
var digestPattern = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)

// checkEnforceable refuses a release of a runbook that declares what this version cannot
// enforce: better no release than one that silently skips a gate.
func checkEnforceable(rb runbooks.Runbook) *problem {
	missing := runbooks.Unsupported(rb)
	if len(missing) == 0 {
		return nil
	}
	p := newProblem(http.StatusUnprocessableEntity, fmt.Sprintf(
		"runbook %q declares %d part(s) this version of Trainyard does not enforce yet, so no release of it is started "+
			"(running it would skip them): %s. Remove those parts from the runbook, or run it on a version that enforces them; "+
			"`trainyard runbook explain %s` marks them.", rb.Name, len(missing), strings.Join(missing, "; "), rb.Name))
	for _, m := range missing {
		path, msg, _ := strings.Cut(m, ": ")
		p.Problems = append(p.Problems, runbooks.Problem{Path: path, Msg: msg})
	}
	return p
}

// checkComponents holds the request's components to the runbook's scope: only declared
// components, each artifact pinned by digest unless the runbook allows a tag for it.
func checkComponents(rb runbooks.Runbook, comps []workflows.Component) *problem {
	declared := map[string]runbooks.Component{}
	var names []string
	if rb.Scope != nil {
		for _, c := range rb.Scope.Components {
			declared[c.Name] = c
			names = append(names, c.Name)
		}
	}
	for i, c := range comps {
		decl, ok := declared[c.Name]
		if len(declared) > 0 && !ok {
			return newProblem(http.StatusBadRequest, fmt.Sprintf(
				"components[%d]: runbook %q does not ship a component %q (it ships %s); fix the name or add it to the runbook's scope",
				i, rb.Name, c.Name, strings.Join(names, ", ")))
		}
		if c.Artifact != "" && !decl.AllowTag && !digestPattern.MatchString(c.Artifact) {
			return newProblem(http.StatusBadRequest, fmt.Sprintf(
				"components[%d].artifact %q is not pinned by digest: send it as <repository>@sha256:<64 hex digits> so the release ships exactly what was built and tested (a runbook may set allowTag: true for a component)",
				i, c.Artifact))
		}
	}
	return nil
}
