// Package testpg is the one way tests get PostgreSQL: URL gives each caller a fresh, empty
// database on a real server, started once per test binary from the machine's binaries (or
// the server named by TRAINYARD_TEST_DATABASE_URL).
//
// When no server can be had the test fails with the reason; it never skips, so CI cannot
// pass without the database tests having run. Packages that use URL must call Main from
// TestMain so the server is stopped and its files removed.
//
// It is for tests only: nothing outside _test.go files may import it.
package testpg
