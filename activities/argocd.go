package activities

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"

	"go.temporal.io/sdk/activity"

	"github.com/trainyard/trainyard/integrations/argocd"
	"github.com/trainyard/trainyard/runbooks"
)

// ArgoCDUndo is what an argocd deploy changed: the app's spec fields it set, and the
// deployment of its history that ran before, which a rollback syncs back to.
type ArgoCDUndo struct {
	App    string `json:"app"`
	Server string `json:"server,omitempty"`
	// Revision and Images are spec.source.targetRevision and the kustomize image overrides
	// before the deploy; SetRevision and SetImage say which of them the deploy changed.
	Revision    string   `json:"revision,omitempty"`
	Images      []string `json:"images,omitempty"`
	SetRevision bool     `json:"setRevision,omitempty"`
	SetImage    string   `json:"setImage,omitempty"`
	// HistoryID is the history entry running before the deploy; HasHistory is false for an
	// app that had never synced.
	HistoryID  int64 `json:"historyId"`
	HasHistory bool  `json:"hasHistory"`
	// Rollouts are the Argo Rollouts the release changed, whose canary weights a canary
	// stage moves and a blue-green stage promotes.
	Rollouts []RolloutRef `json:"rollouts,omitempty"`
	// Synced is set once the deploy's sync was accepted, so a retry waits instead.
	Synced bool `json:"synced,omitempty"`
}

// RolloutRef names an Argo Rollouts Rollout.
type RolloutRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

func (a *Activities) argo(req TargetRequest) (argocd.Apps, error) {
	server := ""
	if req.Target.ArgoCD != nil {
		server = req.Target.ArgoCD.Server
	}
	if apps, ok := a.Deploy.ArgoCD[server]; ok && apps != nil {
		return apps, nil
	}
	if server != "" {
		return nil, misconfigured(req, "Argo CD server "+server,
			fmt.Sprintf("rollout.argocd.servers.%s.url and .token (or rollout.argocd.url, TRAINYARD_ARGOCD_URL, when it is that server)", server))
	}
	return nil, misconfigured(req, "Argo CD", "rollout.argocd.url and rollout.argocd.token (TRAINYARD_ARGOCD_URL, TRAINYARD_ARGOCD_TOKEN)")
}

// argoWant is what a deploy waits for: a canary or blue-green Rollout pauses (Suspended)
// until Trainyard moves it on.
func argoWant(req TargetRequest) argocd.Want {
	return argocd.Want{Synced: true, Suspended: req.Strategy == runbooks.StrategyCanary || req.Strategy == runbooks.StrategyBlueGreen}
}

// deployArgoCD points the app at the release (revision, or image set to the component's
// artifact), syncs it and waits until it is Synced and Healthy. A retry continues from the
// heartbeat details: the app as it was before is recorded once, before anything changes.
func (a *Activities) deployArgoCD(ctx context.Context, req TargetRequest) (TargetResult, error) {
	t := req.Target.ArgoCD
	if t == nil {
		return TargetResult{}, badTarget(req, "argocd")
	}
	apps, err := a.argo(req)
	if err != nil {
		return TargetResult{}, err
	}
	var undo ArgoCDUndo
	if !activity.HasHeartbeatDetails(ctx) || activity.GetHeartbeatDetails(ctx, &undo) != nil || undo.App == "" {
		app, err := apps.App(ctx, t.App)
		if err != nil {
			return TargetResult{}, finalOrRetry(ctx, err, argocd.IsRetryable(err), "deploy "+req.Target.Name, TargetFailure{})
		}
		undo = ArgoCDUndo{App: t.App, Server: t.Server, Revision: app.Revision, Images: app.KustomizeImages}
		if cur, ok := app.Current(); ok {
			undo.HistoryID, undo.HasHistory = cur.ID, true
		}
	}
	fail := func(err error) (TargetResult, error) {
		u := undo
		return TargetResult{}, finalOrRetry(ctx, err, argocd.IsRetryable(err), "deploy "+req.Target.Name, TargetFailure{Undo: &Undo{ArgoCD: &u}})
	}
	// beat records where the deploy is; the ticker repeats it while a call takes long (a
	// Rollout moving to a canary weight).
	var mu sync.Mutex
	last := undo
	beat := func() {
		u := undo
		u.Images, u.Rollouts = slices.Clone(u.Images), slices.Clone(u.Rollouts)
		mu.Lock()
		last = u
		mu.Unlock()
		activity.RecordHeartbeat(ctx, u)
	}
	beat()
	stop := a.heartbeat(ctx, func() any {
		mu.Lock()
		defer mu.Unlock()
		return last
	})
	defer stop()

	revision, image, err := argoDesired(req)
	if err != nil {
		return TargetResult{}, err
	}
	if revision != "" {
		undo.SetRevision = true
		if err := apps.SetRevision(ctx, t.App, revision); err != nil {
			return fail(err)
		}
	}
	if image != "" {
		undo.SetImage = image
		if err := apps.SetImage(ctx, t.App, image); err != nil {
			return fail(err)
		}
	}
	beat()
	if req.Strategy == runbooks.StrategyCanary || req.Strategy == runbooks.StrategyBlueGreen {
		if len(undo.Rollouts) == 0 {
			// Right after git changed, every resource the new version touches is OutOfSync:
			// among them, the Rollouts whose traffic the stage moves.
			d, err := apps.Drift(ctx, t.App)
			if err != nil {
				return fail(err)
			}
			for _, r := range d.Resources {
				if r.Group == "argoproj.io" && r.Kind == "Rollout" {
					undo.Rollouts = append(undo.Rollouts, RolloutRef{Namespace: r.Namespace, Name: r.Name})
				}
			}
			if len(undo.Rollouts) == 0 {
				return fail(fmt.Errorf("%w: a %s stage moves traffic through an Argo Rollouts Rollout, and app %q has none that this release changes",
					argocd.ErrInvalidInput, req.Strategy, t.App))
			}
			beat()
		}
	}
	if !undo.Synced {
		err := apps.Sync(ctx, t.App, "")
		switch {
		case errors.Is(err, argocd.ErrOperationInProgress):
			// Automated sync got there first: follow its operation.
		case err != nil:
			return fail(err)
		}
		undo.Synced = true
		beat()
	}
	app, err := apps.Wait(ctx, t.App, argoWant(req), a.Deploy.poll(), func(argocd.App) { beat() })
	if err != nil {
		return fail(err)
	}
	res := TargetResult{Attempt: activity.GetInfo(ctx).Attempt, Output: argoSummary("synced", app)}
	if req.Weight > 0 && req.Strategy == runbooks.StrategyCanary {
		for _, ro := range undo.Rollouts {
			if err := apps.SetCanaryWeight(ctx, t.App, ro.Name, ro.Namespace, req.Weight); err != nil {
				return fail(err)
			}
		}
		res.Weight = req.Weight
		res.Output += fmt.Sprintf("\ncanary weight %d%%", req.Weight)
	}
	u := undo
	res.Undo = &Undo{ArgoCD: &u}
	return res, nil
}

// shiftArgoCD moves the app's Rollouts to a canary weight, or promotes them (blue-green
// switch, or weight 100) and waits until the app is Synced and Healthy.
func (a *Activities) shiftArgoCD(ctx context.Context, req TargetRequest) (TargetResult, error) {
	if req.Undo == nil || req.Undo.ArgoCD == nil || len(req.Undo.ArgoCD.Rollouts) == 0 {
		return TargetResult{}, badTarget(req, "argocd rollouts")
	}
	apps, err := a.argo(req)
	if err != nil {
		return TargetResult{}, err
	}
	undo := req.Undo.ArgoCD
	weight := req.Weight
	if req.Switch {
		weight = 100
	}
	stop := a.heartbeat(ctx, func() any { return weight })
	defer stop()
	fail := func(err error) (TargetResult, error) {
		return TargetResult{}, finalOrRetry(ctx, err, argocd.IsRetryable(err), fmt.Sprintf("set traffic of %s to %d%%", req.Target.Name, weight), TargetFailure{Undo: req.Undo})
	}
	for _, ro := range undo.Rollouts {
		if err := apps.SetCanaryWeight(ctx, undo.App, ro.Name, ro.Namespace, weight); err != nil {
			return fail(err)
		}
	}
	res := TargetResult{Attempt: activity.GetInfo(ctx).Attempt, Weight: weight, Undo: req.Undo,
		Output: fmt.Sprintf("rollouts of %s at %d%%", undo.App, weight)}
	if weight == 100 {
		app, err := apps.Wait(ctx, undo.App, argocd.Want{Synced: true}, a.Deploy.poll(), nil)
		if err != nil {
			return fail(err)
		}
		res.Output = argoSummary("promoted", app)
	}
	if req.Switch {
		u := *req.Undo
		u.Switched = true
		res.Undo = &u
	}
	return res, nil
}

// rollbackArgoCD puts the app's spec back as the deploy found it and syncs the app back to
// the deployment that ran before: through Argo CD's rollback, or, with automated sync on
// (which refuses rollbacks), by syncing the restored spec.
func (a *Activities) rollbackArgoCD(ctx context.Context, req TargetRequest) (TargetResult, error) {
	if req.Undo == nil || req.Undo.ArgoCD == nil {
		return TargetResult{Output: "nothing to roll back: the deploy changed nothing in Argo CD"}, nil
	}
	apps, err := a.argo(req)
	if err != nil {
		return TargetResult{}, err
	}
	undo := req.Undo.ArgoCD
	fail := func(err error) (TargetResult, error) {
		return TargetResult{}, finalOrRetry(ctx, err, argocd.IsRetryable(err), "roll back "+req.Target.Name, TargetFailure{Undo: req.Undo})
	}
	stop := a.heartbeat(ctx, func() any { return "rolling back" })
	defer stop()

	restored := true
	if undo.SetRevision && undo.Revision != "" {
		if err := apps.SetRevision(ctx, undo.App, undo.Revision); err != nil {
			return fail(err)
		}
	}
	if undo.SetImage != "" {
		name := imageName(undo.SetImage)
		i := slices.IndexFunc(undo.Images, func(s string) bool { return imageName(s) == name })
		if i >= 0 {
			if err := apps.SetImage(ctx, undo.App, undo.Images[i]); err != nil {
				return fail(err)
			}
		} else {
			restored = false
		}
	}
	app, err := apps.App(ctx, undo.App)
	if err != nil {
		return fail(err)
	}
	switch {
	case app.AutoSync && !restored:
		return fail(fmt.Errorf("%w: automated sync is on, so Argo CD refuses rollbacks, and the app had no image override for %s before the release to put back: change git, or turn automated sync off",
			argocd.ErrAutoSyncEnabled, imageName(undo.SetImage)))
	case app.AutoSync || !undo.HasHistory:
		if !undo.HasHistory && !app.AutoSync {
			return TargetResult{Attempt: activity.GetInfo(ctx).Attempt, Undo: req.Undo,
				Output: fmt.Sprintf("app %s had never synced before this release: its spec is put back, its live state left as is", undo.App)}, nil
		}
		if err := apps.Sync(ctx, undo.App, ""); err != nil && !errors.Is(err, argocd.ErrOperationInProgress) {
			return fail(err)
		}
	default:
		err := apps.Rollback(ctx, undo.App, undo.HistoryID)
		if err != nil && !errors.Is(err, argocd.ErrOperationInProgress) {
			return fail(err)
		}
	}
	// Want{}: an app rolled back through its history runs an older revision than git may
	// name, so it may stay OutOfSync.
	app, err = apps.Wait(ctx, undo.App, argocd.Want{}, a.Deploy.poll(), nil)
	if err != nil {
		return fail(err)
	}
	return TargetResult{Attempt: activity.GetInfo(ctx).Attempt, Undo: req.Undo, Output: argoSummary("rolled back", app)}, nil
}

// resyncArgoCD syncs a drifted app to what git says, before the release changes it.
func (a *Activities) resyncArgoCD(ctx context.Context, req TargetRequest) (TargetResult, error) {
	t := req.Target.ArgoCD
	if t == nil {
		return TargetResult{}, badTarget(req, "argocd")
	}
	apps, err := a.argo(req)
	if err != nil {
		return TargetResult{}, err
	}
	stop := a.heartbeat(ctx, func() any { return "resyncing" })
	defer stop()
	fail := func(err error) (TargetResult, error) {
		return TargetResult{}, finalOrRetry(ctx, err, argocd.IsRetryable(err), "resync "+req.Target.Name, TargetFailure{})
	}
	if err := apps.Sync(ctx, t.App, ""); err != nil && !errors.Is(err, argocd.ErrOperationInProgress) {
		return fail(err)
	}
	app, err := apps.Wait(ctx, t.App, argocd.Want{Synced: true, Suspended: true}, a.Deploy.poll(), nil)
	if err != nil {
		return fail(err)
	}
	return TargetResult{Attempt: activity.GetInfo(ctx).Attempt, Output: argoSummary("resynced", app)}, nil
}

// driftArgoCD asks Argo CD whether the app's live state differs from git.
func (a *Activities) driftArgoCD(ctx context.Context, req TargetRequest) (DriftResult, error) {
	t := req.Target.ArgoCD
	if t == nil {
		return DriftResult{}, badTarget(req, "argocd")
	}
	apps, err := a.argo(req)
	if err != nil {
		return DriftResult{}, err
	}
	d, err := apps.Drift(ctx, t.App)
	if err != nil {
		return DriftResult{}, finalOrRetry(ctx, err, argocd.IsRetryable(err), "check drift of "+req.Target.Name, TargetFailure{})
	}
	if !d.OutOfSync {
		return DriftResult{Detail: "app " + t.App + " is Synced"}, nil
	}
	var res []string
	for _, r := range d.Resources {
		res = append(res, r.String())
	}
	detail := fmt.Sprintf("argocd app %s is OutOfSync", t.App)
	if len(res) > 0 {
		detail += ": " + listSome(res, 5)
	}
	return DriftResult{Drifted: true, Detail: detail}, nil
}

// argoDesired is what the release sets on the app: the image override naming the artifact
// of the component whose image the target names; the revision the target names (with
// $TRAINYARD_VERSION expanded); or, when it names neither, the release version as revision.
func argoDesired(req TargetRequest) (revision, image string, err error) {
	t := req.Target.ArgoCD
	if t.Image != "" {
		want := imageName(t.Image)
		for _, a := range req.Artifacts {
			if imageName(a) == want {
				image = a
				break
			}
		}
		if image == "" {
			return "", "", badRequest(req, fmt.Sprintf("argocd.image is %s, and no component of the release has an artifact of that image (artifacts: %s)",
				t.Image, listSome(req.Artifacts, 5)))
		}
	}
	switch {
	case t.Revision != "":
		revision = expand(t.Revision, releaseVars(req, req.Version))
	case t.Image == "":
		revision = req.Version
	}
	return revision, image, nil
}

// imageName is an image reference without its tag or digest (or the part before '=' of a
// kustomize override).
func imageName(ref string) string {
	if name, _, ok := strings.Cut(ref, "="); ok {
		return name
	}
	if at := strings.Index(ref, "@"); at >= 0 {
		ref = ref[:at]
	}
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		ref = ref[:colon]
	}
	return ref
}

func argoSummary(what string, app argocd.App) string {
	s := fmt.Sprintf("%s argocd app %s: %s, %s", what, app.Name, app.SyncStatus, app.Health)
	if cur, ok := app.Current(); ok {
		s += ", revision " + cur.Revision
	}
	if len(app.Images) > 0 {
		s += ", images " + strings.Join(app.Images, " ")
	}
	return s
}

func badTarget(req TargetRequest, block string) error {
	return badRequest(req, "the request carries no "+block+" block")
}

func badRequest(req TargetRequest, why string) error {
	return finalError("target "+req.Target.Name+": "+why, TargetFailure{})
}

func listSome(items []string, n int) string {
	if len(items) == 0 {
		return "none"
	}
	if len(items) > n {
		return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
	}
	return strings.Join(items, ", ")
}

// displayURL is a URL without user info or query, which may hold credentials.
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}
