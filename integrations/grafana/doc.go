// Package grafana draws release markers on Grafana dashboards as annotations, through
// Grafana's HTTP API (/api/annotations). It holds the Annotator interface activities use,
// Client (the real client, net/http only) and Fake (an in-memory http.Handler answering the
// part of the annotations API Client calls, for tests).
//
// An annotation starts as a point in time (Create) and becomes a region when its end is known
// (Update with TimeEnd), so a deploy in progress is visible at once. Grafana has no
// idempotency key for annotations: a retried Create may draw a second one, which is why
// callers remember the id they got. It knows nothing of Temporal or releases, and must never
// log or return the API token.
package grafana
