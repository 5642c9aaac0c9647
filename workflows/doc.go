// Package workflows holds the release workflow, its stage child workflow, and the types
// callers use to start, query and steer a release (input, status, Updates, names).
//
// Everything here runs inside Temporal's deterministic replay: no I/O, no clock, no
// randomness, no goroutines or map iteration that reaches output, except through the
// workflow package. Changes that alter the commands an in-flight release would issue go
// through workflow.GetVersion; the replay test over tests/testdata/histories guards that.
package workflows
