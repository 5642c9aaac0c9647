// Package argocd deploys through Argo CD's REST API (the gRPC gateway under /api/v1) with a
// bearer token: it points an application at a revision or a kustomize image, syncs it,
// follows it until Synced and Healthy, rolls it back to a deployment of its history, reports
// drift, and moves Argo Rollouts canaries. It holds the Apps interface activities use,
// Client (the real one, net/http only) and Fake (an httptest server following the API).
//
// Canary weights. Argo Rollouts has no "set weight" call, and patching a Rollout's steps
// would make it drift from git (and be reverted by self-heal). So the Rollout's steps in git
// must pause without a duration after each weight the runbook uses (setWeight: 5, pause: {},
// setWeight: 25, pause: {}, ...), and SetCanaryWeight advances it with Argo CD's built-in
// Rollout resource actions, as the Argo CD UI does: `resume` until the step setting the
// weight has run, `promote-full` for 100. It runs them through
// POST /api/v1/applications/{name}/resource/actions/v2 (Argo CD 3.2 and later), or the
// older POST .../resource/actions on servers without it, and reads the Rollout through
// GET /api/v1/applications/{name}/resource. The token's RBAC needs
// `applications, action/argoproj.io/Rollout/*`.
//
// Rollback. Argo CD refuses rollbacks while the app's automated sync is on (ErrAutoSyncEnabled,
// with Argo CD's message), because auto-sync would move the app forward again at once; apps
// Trainyard rolls back must have automated sync off. A rolled back app stays OutOfSync with
// git until git is changed too, so wait for it with Wait(Want{}), not WaitHealthy.
//
// It knows nothing of Temporal or releases: Wait and SetCanaryWeight block until done or
// until ctx ends, calling a progress callback the activity heartbeats from; IsRetryable
// tells retryable failures from final ones. It must never log the token or put it in errors.
package argocd
