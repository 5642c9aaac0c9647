package argocd

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trainyard/trainyard/internal/jsonhttp"
)

const (
	// MaxResponseBytes bounds how much of a response Client reads: an application with
	// hundreds of resources and its history stays well under it.
	MaxResponseBytes = 8 << 20
	// DefaultTimeout bounds each request when Client builds its own http.Client.
	DefaultTimeout = 30 * time.Second
	// DefaultCanaryPoll is how often SetCanaryWeight reads the Rollout while it moves.
	DefaultCanaryPoll = 5 * time.Second
	// maxErrorText bounds the message kept from an error body.
	maxErrorText = 500
)

// Client is the real Apps: Argo CD's REST API (the gRPC gateway under /api/v1) with a
// bearer token (an account's API token, `argocd account generate-token`).
type Client struct {
	// BaseURL is the Argo CD server, e.g. https://argocd.example.com.
	BaseURL string
	// Token is sent as "Authorization: Bearer <token>"; never logged or put in errors.
	Token string
	// HTTP sends the requests. When nil, Client uses its own with DefaultTimeout.
	HTTP *http.Client
	// InsecureSkipVerify accepts any TLS certificate (a self-signed Argo CD server); only
	// used when HTTP is nil. Prefer giving HTTP a client that trusts the server's CA.
	InsecureSkipVerify bool
	// CanaryPoll is how often SetCanaryWeight reads the Rollout; DefaultCanaryPoll when zero.
	CanaryPoll time.Duration

	once sync.Once
	hc   *http.Client
}

// App reads an application.
func (c *Client) App(ctx context.Context, name string) (App, error) {
	w, err := c.get(ctx, name, false)
	if err != nil {
		return App{}, fmt.Errorf("read argocd app %q: %w", name, err)
	}
	return w.app(), nil
}

func (c *Client) get(ctx context.Context, name string, refresh bool) (wireApp, error) {
	ref, err := parseRef(name)
	if err != nil {
		return wireApp{}, err
	}
	q := ref.query()
	if refresh {
		// A normal refresh compares with git again before answering, so drift is current.
		q.Set("refresh", "normal")
	}
	var w wireApp
	err = c.do(ctx, http.MethodGet, ref.path(""), q, nil, &w)
	return w, err
}

// SetRevision patches spec.source.targetRevision. Setting the revision the app already
// targets sends nothing.
func (c *Client) SetRevision(ctx context.Context, app, revision string) error {
	if err := c.setRevision(ctx, app, revision); err != nil {
		return fmt.Errorf("set revision of argocd app %q to %q: %w", app, revision, err)
	}
	return nil
}

func (c *Client) setRevision(ctx context.Context, app, revision string) error {
	if strings.TrimSpace(revision) == "" {
		return fmt.Errorf("%w: the revision is empty", ErrInvalidInput)
	}
	w, err := c.get(ctx, app, false)
	if err != nil {
		return err
	}
	if err := w.singleSource(); err != nil {
		return err
	}
	if w.Spec.Source.TargetRevision == revision {
		return nil
	}
	return c.patchSource(ctx, app, map[string]any{"targetRevision": revision})
}

// SetImage sets a kustomize image override: image is what `kustomize edit set image` takes
// (registry/name:tag, registry/name@sha256:..., or old=new:tag). The override for the same
// image name is replaced and the others kept: a JSON merge patch replaces the whole list,
// so SetImage reads it first.
func (c *Client) SetImage(ctx context.Context, app, image string) error {
	if err := c.setImage(ctx, app, image); err != nil {
		return fmt.Errorf("set image of argocd app %q to %q: %w", app, image, err)
	}
	return nil
}

func (c *Client) setImage(ctx context.Context, app, image string) error {
	name := imageName(image)
	if name == "" || strings.ContainsAny(image, " \t\n") {
		return fmt.Errorf("%w: %q is not an image reference", ErrInvalidInput, image)
	}
	w, err := c.get(ctx, app, false)
	if err != nil {
		return err
	}
	if err := w.singleSource(); err != nil {
		return err
	}
	src := w.Spec.Source
	if len(src.Helm) > 0 && string(src.Helm) != "null" {
		return fmt.Errorf("%w: the app's source is a Helm chart; kustomize image overrides apply to kustomize sources only", ErrInvalidInput)
	}
	var current, images []string
	if src.Kustomize != nil {
		current = src.Kustomize.Images
	}
	replaced := false
	for _, im := range current {
		switch {
		case imageName(im) != name:
			images = append(images, im)
		case !replaced:
			images = append(images, image)
			replaced = true
		}
	}
	if !replaced {
		images = append(images, image)
	}
	if slices.Equal(images, current) {
		return nil
	}
	return c.patchSource(ctx, app, map[string]any{"kustomize": map[string]any{"images": images}})
}

// patchSource merges fields into spec.source through PATCH /api/v1/applications/{name}.
func (c *Client) patchSource(ctx context.Context, app string, fields map[string]any) error {
	ref, err := parseRef(app)
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"source": fields}})
	if err != nil {
		return fmt.Errorf("encode patch: %w", err)
	}
	body := map[string]any{"name": ref.name, "patchType": "merge", "patch": string(patch)}
	if ref.namespace != "" {
		body["appNamespace"] = ref.namespace
	}
	return c.do(ctx, http.MethodPatch, ref.path(""), nil, body, nil)
}

// Sync starts a sync. It returns once Argo CD has accepted the operation; WaitHealthy
// follows it. Resources git no longer has are not pruned.
func (c *Client) Sync(ctx context.Context, app, revision string) error {
	ref, err := parseRef(app)
	if err != nil {
		return fmt.Errorf("sync argocd app %q: %w", app, err)
	}
	body := map[string]any{"name": ref.name, "prune": false}
	if revision != "" {
		body["revision"] = revision
	}
	if ref.namespace != "" {
		body["appNamespace"] = ref.namespace
	}
	if err := c.do(ctx, http.MethodPost, ref.path("/sync"), nil, body, nil); err != nil {
		return fmt.Errorf("sync argocd app %q: %w", app, err)
	}
	return nil
}

// Rollback starts a sync back to the deployment historyID (an id of App.History). Argo CD
// refuses it while automated sync is on (ErrAutoSyncEnabled): the app would sync forward
// again at once. Wait with Want{} afterwards, not WaitHealthy: the rolled back app is
// OutOfSync with git on purpose.
func (c *Client) Rollback(ctx context.Context, app string, historyID int64) error {
	ref, err := parseRef(app)
	if err != nil {
		return fmt.Errorf("roll back argocd app %q: %w", app, err)
	}
	body := map[string]any{"name": ref.name, "id": historyID, "prune": false}
	if ref.namespace != "" {
		body["appNamespace"] = ref.namespace
	}
	if err := c.do(ctx, http.MethodPost, ref.path("/rollback"), nil, body, nil); err != nil {
		return fmt.Errorf("roll back argocd app %q to history id %d: %w", app, historyID, err)
	}
	return nil
}

// WaitHealthy is Wait(ctx, app, Want{Synced: true}, poll, progress).
func (c *Client) WaitHealthy(ctx context.Context, app string, poll time.Duration, progress func(App)) (App, error) {
	return c.Wait(ctx, app, Want{Synced: true}, poll, progress)
}

// Wait reads the app every poll until no operation is pending, the last one succeeded and
// the app is Healthy (and Synced, or Suspended, as want says). progress, when set, gets every
// reading, so the caller can heartbeat. It ends with a *SyncFailedError when the operation
// Failed or Errored, or finished and left the app Degraded; with ctx's error when ctx ends.
// Read errors end the wait too: the caller's retry decides (IsRetryable).
func (c *Client) Wait(ctx context.Context, app string, want Want, poll time.Duration, progress func(App)) (App, error) {
	if poll <= 0 {
		return App{}, fmt.Errorf("wait for argocd app %q: %w: poll interval must be positive", app, ErrInvalidInput)
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		a, err := c.App(ctx, app)
		if err != nil {
			return a, err
		}
		if progress != nil {
			progress(a)
		}
		done, err := a.reached(want)
		if done || err != nil {
			return a, err
		}
		if err := sleep(ctx, t); err != nil {
			return a, fmt.Errorf("wait for argocd app %q (sync %s, health %s, operation %s): %w",
				app, a.SyncStatus, a.Health, orNone(string(a.OperationPhase)), err)
		}
	}
}

// reached says whether a is what want waits for, or has failed.
func (a App) reached(want Want) (bool, error) {
	if a.OperationPending || (a.OperationPhase != "" && !a.OperationPhase.Completed()) {
		return false, nil
	}
	if a.OperationPhase == PhaseFailed || a.OperationPhase == PhaseError {
		return false, &SyncFailedError{App: a.Name, Phase: a.OperationPhase, Message: a.OperationMessage, Health: a.Health}
	}
	if a.Health == HealthDegraded {
		phase := a.OperationPhase
		if phase == "" {
			phase = PhaseSucceeded
		}
		return false, &SyncFailedError{App: a.Name, Phase: phase, Message: a.HealthMessage, Health: a.Health}
	}
	healthy := a.Health == HealthHealthy || (want.Suspended && a.Health == HealthSuspended)
	return healthy && (!want.Synced || a.SyncStatus == SyncSynced), nil
}

// Drift refreshes the app (a comparison with git) and reports the resources out of sync,
// from status.resources.
func (c *Client) Drift(ctx context.Context, app string) (DriftReport, error) {
	w, err := c.get(ctx, app, true)
	if err != nil {
		return DriftReport{}, fmt.Errorf("check drift of argocd app %q: %w", app, err)
	}
	r := DriftReport{App: w.Metadata.Name, SyncStatus: SyncStatus(w.Status.Sync.Status)}
	r.OutOfSync = r.SyncStatus == SyncOutOfSync
	for _, res := range w.Status.Resources {
		if (SyncStatus(res.Status) == SyncSynced && !res.RequiresPruning) || res.Hook {
			continue
		}
		d := DriftResource{Group: res.Group, Kind: res.Kind, Namespace: res.Namespace, Name: res.Name,
			Status: SyncStatus(res.Status), RequiresPruning: res.RequiresPruning}
		if res.Health != nil {
			d.Health = Health(res.Health.Status)
		}
		r.Resources = append(r.Resources, d)
	}
	return r, nil
}

// do sends one request and decodes a 200 answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	base, err := jsonhttp.Base(c.BaseURL, "argocd")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	u := base.JoinPath(path)
	u.RawQuery = q.Encode()
	h := http.Header{}
	if c.Token != "" {
		h.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := jsonhttp.Send(ctx, c.client(), jsonhttp.Call{
		System: "argocd", Method: method, URL: u, Path: path, Body: body, Header: h, MaxResponse: MaxResponseBytes,
	})
	if err != nil {
		return err
	}
	if resp.Status != http.StatusOK {
		return responseError(method, path, resp.Status, resp.Body)
	}
	if err := resp.Decode(out, MaxResponseBytes); err != nil {
		return fmt.Errorf("%w: argocd %s %s: %v (is the URL the Argo CD server?)", ErrUnexpectedResponse, method, path, err)
	}
	return nil
}

func (c *Client) client() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	c.once.Do(func() {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if c.InsecureSkipVerify {
			// Asked for by configuration, for a server with a self-signed certificate.
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
		}
		c.hc = &http.Client{Timeout: DefaultTimeout, Transport: tr}
	})
	return c.hc
}

// responseError is an *APIError with the message of Argo CD's error body when there is one.
func responseError(method, path string, status int, data []byte) *APIError {
	e := &APIError{Method: method, Path: path, StatusCode: status}
	var body struct {
		Error   string `json:"error"`
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if len(data) <= MaxResponseBytes && json.Unmarshal(data, &body) == nil {
		e.Code = body.Code
		e.Message = body.Message
		if e.Message == "" {
			e.Message = body.Error
		}
	} else if len(data) > 0 && bytes.HasPrefix(bytes.TrimSpace(data), []byte("<")) {
		e.Message = "an HTML page, not Argo CD's JSON (is the URL the Argo CD server?)"
	} else {
		e.Message = strings.TrimSpace(string(data))
	}
	e.Message = jsonhttp.Truncate(e.Message, maxErrorText)
	return e
}

// appRef is an application name, with its namespace when apps live in several namespaces
// ("namespace/name", as the argocd CLI writes it).
type appRef struct{ namespace, name string }

// k8sName is a Kubernetes object name (DNS-1123 subdomain); checking it keeps names from
// reshaping the request path.
var k8sName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)

func parseRef(s string) (appRef, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok {
		ns, name = "", s
	}
	if !k8sName.MatchString(name) || (ok && !k8sName.MatchString(ns)) {
		return appRef{}, fmt.Errorf("%w: %q is not an application name (lowercase letters, digits, '-' and '.'; or namespace/name)", ErrInvalidInput, s)
	}
	return appRef{namespace: ns, name: name}, nil
}

func (r appRef) path(suffix string) string {
	return "/api/v1/applications/" + url.PathEscape(r.name) + suffix
}

func (r appRef) query() url.Values {
	q := url.Values{}
	if r.namespace != "" {
		q.Set("appNamespace", r.namespace)
	}
	return q
}

// wireApp is the part of Argo CD's Application JSON this package reads.
type wireApp struct {
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		Source     *wireSource  `json:"source"`
		Sources    []wireSource `json:"sources"`
		SyncPolicy *struct {
			Automated *struct {
				Enabled *bool `json:"enabled"`
			} `json:"automated"`
		} `json:"syncPolicy"`
	} `json:"spec"`
	// Operation is set while a requested operation has not finished.
	Operation json.RawMessage `json:"operation"`
	Status    struct {
		Sync struct {
			Status   string `json:"status"`
			Revision string `json:"revision"`
		} `json:"sync"`
		Health struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		} `json:"health"`
		OperationState *struct {
			Phase   string `json:"phase"`
			Message string `json:"message"`
		} `json:"operationState"`
		History []struct {
			ID         int64     `json:"id"`
			Revision   string    `json:"revision"`
			DeployedAt time.Time `json:"deployedAt"`
		} `json:"history"`
		Summary struct {
			Images []string `json:"images"`
		} `json:"summary"`
		Resources []struct {
			Group           string `json:"group"`
			Version         string `json:"version"`
			Kind            string `json:"kind"`
			Namespace       string `json:"namespace"`
			Name            string `json:"name"`
			Status          string `json:"status"`
			Hook            bool   `json:"hook"`
			RequiresPruning bool   `json:"requiresPruning"`
			Health          *struct {
				Status string `json:"status"`
			} `json:"health"`
		} `json:"resources"`
	} `json:"status"`
}

type wireSource struct {
	RepoURL        string `json:"repoURL"`
	Path           string `json:"path,omitempty"`
	Chart          string `json:"chart,omitempty"`
	TargetRevision string `json:"targetRevision"`
	Kustomize      *struct {
		Images []string `json:"images"`
	} `json:"kustomize,omitempty"`
	Helm json.RawMessage `json:"helm,omitempty"`
}

func (w wireApp) app() App {
	a := App{
		Name:             w.Metadata.Name,
		Images:           w.Status.Summary.Images,
		SyncStatus:       SyncStatus(w.Status.Sync.Status),
		SyncRevision:     w.Status.Sync.Revision,
		Health:           Health(w.Status.Health.Status),
		HealthMessage:    w.Status.Health.Message,
		OperationPending: len(w.Operation) > 0 && string(w.Operation) != "null",
	}
	if s := w.Spec.Source; s != nil {
		a.Revision = s.TargetRevision
		if s.Kustomize != nil {
			a.KustomizeImages = s.Kustomize.Images
		}
	}
	if p := w.Spec.SyncPolicy; p != nil && p.Automated != nil {
		a.AutoSync = p.Automated.Enabled == nil || *p.Automated.Enabled
	}
	if op := w.Status.OperationState; op != nil {
		a.OperationPhase = Phase(op.Phase)
		a.OperationMessage = op.Message
	}
	for _, h := range w.Status.History {
		a.History = append(a.History, HistoryEntry{ID: h.ID, Revision: h.Revision, DeployedAt: h.DeployedAt})
	}
	return a
}

func (w wireApp) singleSource() error {
	if w.Spec.Source == nil {
		if len(w.Spec.Sources) > 0 {
			return fmt.Errorf("%w: the app has several sources (spec.sources); trainyard changes single-source apps only", ErrInvalidInput)
		}
		return fmt.Errorf("%w: the app has no source", ErrUnexpectedResponse)
	}
	return nil
}

// imageName is the image a kustomize override applies to: the part before '=', or the
// reference without its tag or digest.
func imageName(ref string) string {
	if name, _, ok := strings.Cut(ref, "="); ok {
		return name
	}
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

// sleep waits for t's next tick, or ctx's end, which wins when both are ready.
func sleep(ctx context.Context, t *time.Ticker) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
