// Package apiclient is the Go client of Trainyard's HTTP API v1, used by the CLI and by the
// end-to-end tests. It mirrors the wire format and nothing more: it must not import the server,
// the store or Temporal, so the CLI stays a thin HTTP caller.
package apiclient
