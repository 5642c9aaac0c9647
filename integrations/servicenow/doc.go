// Package servicenow opens, annotates, moves and closes change requests in ServiceNow through
// its Table API (/api/now/table/change_request). It holds the Client interface activities
// use, HTTPClient (the real client, net/http only) and Fake (an in-memory http.Handler that
// answers the subset of the Table API HTTPClient calls, for tests).
//
// It knows nothing of Temporal or of releases: callers pass a correlation id (the release id)
// that makes Open idempotent, and decide what to do with errors through IsRetryable. It must
// never log or return credentials.
package servicenow
