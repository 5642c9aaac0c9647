// Package runbooks holds the runbook language: the Go types a runbook YAML file decodes
// into, parsing with line-numbered problems, validation, and the Catalog of runbook files.
// It must not talk to Temporal, the store or the network: runbooks are checked the same way
// by the CLI, the API and the workflows' input.
package runbooks
