// Package tests runs the whole system end to end: the real trainyard binary as separate
// server, worker and site-worker processes against a real Temporal dev server and a private
// PostgreSQL, driven through the HTTP API. It also holds the API-versus-SDK benchmarks and
// the recorded workflow histories the replay tests use.
package tests
