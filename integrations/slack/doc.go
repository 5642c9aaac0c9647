// Package slack holds everything Trainyard knows about Slack except its HTTP routes and its
// Temporal wiring: verifying Slack's signed requests (VerifyRequest, Sign), reading /release
// commands (ParseCommand) and button and modal payloads (ParseInteraction), rendering release
// and approval messages from plain view types (ReleaseBlocks, ApprovalBlocks, EventBatches for
// the thread, BroadcastText, OperatorConfirmBlocks for /release abort|rollback), the narrow
// outbound Client Trainyard calls with its real implementation over slack-go (WebClient, which
// waits out Slack's rate limits) and an in-memory Fake, the mapping of Slack users to
// principals and roles (Directory), and the Socket Mode transport (RunSocketMode) that feeds the
// same Handler as the HTTP endpoints.
//
// It knows nothing of Temporal, the store or the workflow types: callers translate release
// state into ReleaseView and turn Command and Action into Updates. It must never log or return
// tokens or the signing secret, and never trust anything of a request that the signature does
// not cover.
package slack
