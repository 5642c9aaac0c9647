// Package probe answers "is it up, and fast enough?" over HTTP for readiness gates, smoke
// tests and stage exit criteria: Prober sends a Check's requests one after another and
// judges their statuses and latency percentile, and StatusPage reads a third party's
// Atlassian Statuspage to tell whether a dependency is operational.
//
// It knows nothing of Temporal or of releases: the activity around it decides what a failed
// check means. Probes send a bounded number of GET requests and read bounded bodies; they
// must never put credentials from a URL (user info or query) into a Reason or an error.
package probe
