// Package server is Trainyard's HTTP front door: the REST API v1 that CI systems, the CLI and
// people use to start releases, read their status and decide on approvals, plus /healthz and
// /readyz.
//
// It holds no release state of its own. Every release question goes to the Temporal workflow
// (through Engine) and every human action is written to the audit trail (through Store),
// denied attempts included. It must not run workflow logic or decide who may approve: the
// workflow's Update validators do that, so the rule lives in one place and the answer is the
// same from HTTP and Slack.
package server
