// Package pgserver runs a private PostgreSQL server from the machine's own binaries (Debian's
// /usr/lib/postgresql/<version>/bin, or PATH) for `trainyard dev` and for tests.
//
// The server is a child process of the caller, in its own process group, listening on
// 127.0.0.1 only with trust authentication for the role "trainyard". The data directory is
// kept between runs, so a second Start on the same directory finds the same data.
//
// It must not be used to run production databases, and it knows nothing of trainyard's
// schema: migrations belong to package store.
package pgserver
