// Package promserver runs a real Prometheus for tests, the way internal/pgserver runs
// PostgreSQL: Start runs the machine's /usr/bin/prometheus (Debian's prometheus package,
// installed by scripts/test-deps.sh; or prometheus on PATH) on 127.0.0.1 with a private
// data directory, scraping the targets given every second, and ForTest does that for one
// test, failing it (never skipping) with Prometheus' own log when it cannot start.
//
// TestService is a small HTTP service exposing request counters and a latency histogram
// whose error ratio and latency a test sets, so analyses and burn rates can be tested
// against what Prometheus really computes.
//
// It is for tests only: nothing outside _test.go files may import it.
package promserver
