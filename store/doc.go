// Package store is trainyard's system of record in PostgreSQL: releases as the workflows
// report them, approval decisions, and the append-only, hash-chained audit trail of every
// human action, allowed or denied (AppendAudit, ListAudit, VerifyAudit). Its schema lives in embedded SQL migrations applied by Migrate.
//
// Every write is idempotent, because its callers are retried activities and HTTP handlers:
// a repeated write changes nothing, and a late one never undoes a newer one.
//
// It must not know about Temporal or HTTP: it takes and returns plain records, and callers
// translate.
package store
