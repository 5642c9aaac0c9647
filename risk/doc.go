// Package risk scores a release from 0 to 100 from facts the caller gathers (history from the
// store, churn and coverage from CI, the runbook's scope, the time it will reach production),
// and says how much each factor contributed, so a person can check the number.
//
// It is pure: no I/O, no clock. The release workflow calls it from an activity, so a change to
// the weights here never changes a score already in a history.
package risk
