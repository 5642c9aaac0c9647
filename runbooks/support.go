package runbooks

import "fmt"

// Unsupported lists what the runbook declares that this version of Trainyard cannot enforce
// yet, each as "path: what". The API refuses to start a release of such a runbook: running
// it with a readiness gate, a freeze or a canary analysis silently skipped would be worse than
// not running it. Each entry disappears as the issue that implements it lands.
//
// Enforced today: command targets, stages in order, readiness gates and the risk score,
// approvals (roles, count, distinctRoles, allowRequester, when, escalation, onTimeout), the
// CAB, freeze calendars (wait or fail, waivers), change requests (with their condition), the
// stabilization window, rollbackAuthority, and the descriptive metadata and scope fields,
// which need no enforcement.
func Unsupported(rb Runbook) []string {
	var out []string
	add := func(path, format string, args ...any) {
		out = append(out, path+": "+fmt.Sprintf(format, args...))
	}
	if len(rb.Analyses) > 0 {
		add("analyses", "metric analyses are not run yet")
	}
	for i, s := range rb.Stages {
		p := fmt.Sprintf("stages[%d]", i)
		if len(s.After) > 0 {
			add(p+".after", "stages run in declaration order; DAG scheduling is not implemented yet")
		}
		if len(s.Requires) > 0 {
			add(p+".requires", "environment parity is not checked yet")
		}
		if s.Strategy != nil && (s.Strategy.Type != StrategyRolling || s.Strategy.MaxParallel > 1) {
			add(p+".strategy", "only rolling one target at a time is implemented")
		}
		if len(s.Smoke) > 0 {
			add(p+".smoke", "smoke checks are not run yet")
		}
		if s.ExitCriteria != nil {
			add(p+".exitCriteria", "exit criteria are not checked yet")
		}
		for j, t := range s.Targets {
			if t.Kind != KindCommand {
				add(fmt.Sprintf("%s.targets[%d]", p, j), "%s targets are not implemented yet (only command)", t.Kind)
			}
		}
	}
	st := rb.Stabilization
	if len(st.Analyses) > 0 || st.SLO != nil || len(st.Checks) > 0 || (st.OnBreach != "" && st.OnBreach != "rollback") {
		add("stabilization", "only the window is implemented; analyses, SLO burn rates, checks and paging are not")
	}
	if r := rb.Rollback; r != nil && ((r.Scope != "" && r.Scope != "release") || r.Budget > 0 || r.ForwardFix || r.CircuitBreaker != nil) {
		add("rollback", "only whole-release rollback is implemented; scope, budget, forward fixes and circuit breakers are not")
	}
	return out
}
