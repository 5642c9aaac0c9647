// Package scanreport reads the security scan reports CI attaches to a release — SARIF 2.1.0
// from any tool (CodeQL, Semgrep, ...) and Trivy JSON (schema version 2) — into one Report of
// Findings with an ordered Severity, and decides with Evaluate whether a readiness gate
// passes: a finding at or above the gate's severity blocks unless it is waived.
//
// It only parses and judges bytes it is given: it does no I/O, reads no clock, and keeps no
// state, so Evaluate may run anywhere, workflow code included. Callers bound the size of what
// they read before calling Parse. It must never copy a secret scanner's matched text into a
// Finding.
package scanreport
