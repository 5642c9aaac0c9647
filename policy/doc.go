// Package policy holds the organisation's release policies: rules written as CEL conditions
// in one policy file (governance.policyFile), checked when a release starts and before each
// stage. A violated policy stops the release with its name and message unless a waiver names
// that policy.
//
// It only loads and evaluates; the release workflow asks through an activity, so a policy
// file edited while releases run changes the next check, never a recorded one.
package policy
