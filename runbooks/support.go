package runbooks

import "fmt"

// Unsupported lists what the runbook declares that this version of Trainyard cannot enforce
// yet, each as "path: what". The API refuses to start a release of such a runbook: running
// it with a readiness gate, a freeze or a canary analysis silently skipped would be worse than
// not running it. Each entry disappears as the issue that implements it lands.
//
// Enforced today: every target kind (command, argocd, spinnaker, hardware, flag), the
// rolling, canary and blue-green strategies (see below for the kinds each supports), smoke
// tests, exit criteria, the analyses canary steps and exit criteria run, drift checks,
// stages in order, readiness gates and the risk score,
// approvals (roles, count, distinctRoles, allowRequester, when, escalation, onTimeout), the
// CAB, freeze calendars (wait or fail, waivers), change requests (with their condition), the
// stabilization window with its analyses, SLO burn rates, checks and paging, rollback (scope,
// budget, forward fixes, circuit breakers), rollbackAuthority, and the descriptive metadata
// and scope fields, which need no enforcement.
func Unsupported(rb Runbook) []string {
	var out []string
	add := func(path, format string, args ...any) {
		out = append(out, path+": "+fmt.Sprintf(format, args...))
	}
	for i, s := range rb.Stages {
		p := fmt.Sprintf("stages[%d]", i)
		for j, t := range s.Targets {
			if why := strategyRefuses(s.Strategy, t.Kind); why != "" {
				add(fmt.Sprintf("%s.targets[%d]", p, j), "%s", why)
			}
		}
	}
	return out
}

// strategyRefuses says why a stage's strategy cannot move a target of kind, or "". A canary
// needs traffic weights (argocd Rollouts, flag percentages, hardware fleet shares, command
// targets' TRAINYARD_WEIGHT); blue-green needs two sides (command targets, argocd
// blue-green Rollouts).
func strategyRefuses(s *Strategy, kind string) string {
	if s == nil {
		return ""
	}
	switch {
	case s.Type == StrategyCanary && kind == KindSpinnaker:
		return "spinnaker targets take no canary weights: run the canary inside the pipeline (Kayenta) and use a rolling stage"
	case s.Type == StrategyBlueGreen && (kind == KindSpinnaker || kind == KindFlag || kind == KindHardware):
		return kind + " targets have no second side to switch to: use a rolling or canary stage"
	}
	return ""
}
