// Package flags rolls feature flags out through the Unleash Admin API: it switches a flag on
// or off in one environment (the kill switch rollback flips) and sets the percentage of its
// gradual rollout (the flexibleRollout strategy's "rollout" parameter). It holds Manager, the
// interface activities use; Client, the real client (net/http only); and Fake, an in-memory
// Unleash answering the part of the Admin API Client calls, for tests.
//
// It knows nothing of Temporal or of releases, and it must never log or return the API token.
// It does not create flags, projects or environments: those belong to the teams owning them,
// and a missing one is ErrNotFound, which retrying will not fix.
package flags
