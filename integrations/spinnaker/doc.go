// Package spinnaker runs Spinnaker pipelines through Gate's API: it triggers a pipeline of
// an application with parameters (POST /pipelines/{application}/{pipeline}), follows the
// execution to its end (GET /pipelines/{id}), names the stage that failed and why, and
// cancels executions (PUT /pipelines/{id}/cancel). It holds the Pipelines interface
// activities use, Client (the real one, net/http only) and Fake (an httptest Gate).
//
// Gate authenticates in several ways; Client sends a bearer Token (OAuth2 or an
// authenticating proxy) and any Headers (X-Spinnaker-User for a service account behind x509
// or a trusted proxy, a session Cookie); x509 client certificates go in the HTTP client's
// transport.
//
// It knows nothing of Temporal or releases: Wait blocks until the execution ends or ctx
// does, calling a progress callback the activity heartbeats from; IsRetryable tells
// retryable failures from final ones. Triggers are not idempotent in Spinnaker, so callers
// keep the execution id (in heartbeat details) and Wait on it after a retry rather than
// trigger again. It must never log the token or headers, or put them in errors.
package spinnaker
