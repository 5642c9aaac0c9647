package argocd

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// FakeToken is the bearer token a Fake accepts.
const FakeToken = "fake-argocd-token"

// gRPC status codes Argo CD's gateway puts in error bodies.
const (
	codeUnknown            = 2
	codeInvalidArgument    = 3
	codeNotFound           = 5
	codeFailedPrecondition = 9
	codeUnauthenticated    = 16
)

// Fake is an Argo CD server for tests, on an httptest.Server: applications in memory,
// answering the part of the REST API Client uses the way Argo CD does.
//
//   - GET, PATCH /api/v1/applications/{name} (?refresh=, ?appNamespace=; merge patches of
//     spec.source.targetRevision and spec.source.kustomize.images)
//   - POST /api/v1/applications/{name}/sync and /rollback
//   - GET /api/v1/applications/{name}/resource (a Rollout's live manifest)
//   - POST /api/v1/applications/{name}/resource/actions/v2, and the older
//     /resource/actions (query parameters, the action name as a JSON string body)
//
// Requests need "Authorization: Bearer " + FakeToken (401, gRPC code 16, otherwise). Errors
// are the gateway's {"error", "code", "message"} with Argo CD's messages: 404 (code 5) for an
// unknown app, 400 (code 9) for "another operation is already in progress" and the
// auto-sync refusals, 400 (code 3) for a history id the app does not have. A path the
// server does not know answers a plain-text 404, as the gateway does.
//
// An operation (sync or rollback) is carried out over reads of the app: the reads before
// the last of SetSyncPolls show it Running and the app Progressing; the last finishes it:
// the revision is deployed and recorded in the history (ids from 0, as Argo CD counts), and
// the app is Healthy (Suspended while a Rollout's canary is paused). Knobs make the next
// operation fail or leave the app Degraded, turn automated sync on, or make resources drift.
type Fake struct {
	srv *httptest.Server

	mu            sync.Mutex
	syncPolls     int
	legacyActions bool
	apps          map[string]*fakeApp
	inject        []fakeAnswer
	requests      []FakeRequest
}

// FakeApp is an application to add to a Fake.
type FakeApp struct {
	Name string
	// Namespace is the app's own namespace (apps in any namespace); argocd when empty.
	Namespace string
	// Revision is spec.source.targetRevision.
	Revision string
	// Images are spec.source.kustomize.images.
	Images []string
	// Helm makes the source a Helm chart; MultiSource gives the app spec.sources instead.
	Helm        bool
	MultiSource bool
	// AutoSync turns automated sync on.
	AutoSync bool
	// Deployed is the revision running, recorded as history id 0 with Images; an app with
	// none has never synced (OutOfSync, Missing).
	Deployed string
	// Resources are the app's resources; a Deployment named after the app when empty.
	Resources []FakeResource
}

// FakeResource is a Kubernetes resource an app manages.
type FakeResource struct {
	Group, Version, Kind, Namespace, Name string
}

// FakeRequest is one request a Fake received.
type FakeRequest struct {
	Method, Path, Query string
	Body                string
}

type fakeAnswer struct {
	status, code int
	message      string
}

type fakeApp struct {
	spec      FakeApp
	resources []FakeResource
	// drifted are resources whose live state differs from git; extra are live resources
	// git no longer has.
	drifted map[string]bool
	extra   []FakeResource

	deployedRev    string
	deployedImages []string
	history        []fakeHistory
	health         Health
	healthMessage  string

	op      *fakeOp
	opState *fakeOpState

	failNext, degradeNext *string
	rollouts              []*fakeRollout
}

type fakeHistory struct {
	id         int64
	revision   string
	images     []string
	deployedAt time.Time
}

type fakeOp struct {
	rollback  bool
	revision  string
	images    []string
	pollsLeft int
	startedAt time.Time
}

type fakeOpState struct {
	op                    *fakeOp
	phase                 Phase
	message               string
	startedAt, finishedAt time.Time
}

type fakeRollout struct {
	namespace, name string
	// steps are setWeight values; 0 is a pause without a duration.
	steps           []int
	cur             int
	paused, resumed bool
	abort           bool
	message         string
	stable, current string
	generation      int
	weights         []int
}

// NewFake starts a Fake; Close stops it.
func NewFake() *Fake {
	f := &Fake{syncPolls: 2, apps: map[string]*fakeApp{}}
	f.srv = httptest.NewServer(f)
	return f
}

// URL is the server's base URL.
func (f *Fake) URL() string { return f.srv.URL }

// Close shuts the server down.
func (f *Fake) Close() { f.srv.Close() }

// Client is a Client of the Fake holding its token, polling canaries every millisecond.
func (f *Fake) Client() *Client {
	return &Client{BaseURL: f.srv.URL, Token: FakeToken, HTTP: f.srv.Client(), CanaryPoll: time.Millisecond}
}

// SetSyncPolls sets how many reads of an app an operation takes (at least 1; 2 at first).
func (f *Fake) SetSyncPolls(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.syncPolls = max(n, 1)
}

// SetLegacyActions makes the Fake an Argo CD before 3.2, without /resource/actions/v2.
func (f *Fake) SetLegacyActions(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.legacyActions = on
}

// AddApp adds (or replaces) an application.
func (f *Fake) AddApp(spec FakeApp) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if spec.Namespace == "" {
		spec.Namespace = "argocd"
	}
	a := &fakeApp{spec: spec, resources: spec.Resources, drifted: map[string]bool{}, health: HealthMissing}
	a.spec.Images = slices.Clone(spec.Images)
	if len(a.resources) == 0 {
		a.resources = []FakeResource{{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "default", Name: spec.Name}}
	}
	if spec.Deployed != "" {
		a.deployedRev, a.deployedImages = spec.Deployed, slices.Clone(spec.Images)
		a.history = []fakeHistory{{id: 0, revision: spec.Deployed, images: a.deployedImages, deployedAt: time.Now().UTC().Add(-time.Hour).Truncate(time.Second)}}
		a.health = HealthHealthy
	}
	f.apps[spec.Namespace+"/"+spec.Name] = a
}

// FailNextSync makes the app's next operation end Failed with message.
func (f *Fake) FailNextSync(app, message string) {
	f.with(app, func(a *fakeApp) { a.failNext = &message })
}

// DegradeNextSync makes the app's next operation succeed and leave the app Degraded.
func (f *Fake) DegradeNextSync(app, message string) {
	f.with(app, func(a *fakeApp) { a.degradeNext = &message })
}

// SetAutoSync turns the app's automated sync on or off.
func (f *Fake) SetAutoSync(app string, on bool) {
	f.with(app, func(a *fakeApp) { a.spec.AutoSync = on })
}

// SetDrift changes a resource's live state behind Argo CD's back: the resource kind/name
// goes OutOfSync, or, when the app has no such resource, appears as a live resource git
// does not have (requiring pruning). The next sync undoes it.
func (f *Fake) SetDrift(app, kind, name string) {
	f.with(app, func(a *fakeApp) {
		for _, r := range a.resources {
			if r.Kind == kind && r.Name == name {
				a.drifted[kind+"/"+name] = true
				return
			}
		}
		a.extra = append(a.extra, FakeResource{Version: "v1", Kind: kind, Namespace: "default", Name: name})
	})
}

// AddRollout gives the app an Argo Rollouts Rollout whose canary steps set each weight
// and pause without a duration after each but the last, fully promoted to what is deployed.
func (f *Fake) AddRollout(app, namespace, name string, weights ...int) {
	f.with(app, func(a *fakeApp) {
		var steps []int
		for i, w := range weights {
			steps = append(steps, w)
			if i < len(weights)-1 {
				steps = append(steps, 0)
			}
		}
		h := podHash(a.deployedRev, a.deployedImages)
		a.rollouts = append(a.rollouts, &fakeRollout{namespace: namespace, name: name, steps: steps,
			cur: len(steps), stable: h, current: h, generation: 1})
		a.resources = append(a.resources, FakeResource{Group: rolloutGroup, Version: rolloutVersion, Kind: rolloutKind, Namespace: namespace, Name: name})
	})
}

// AbortRollout aborts the rollout's canary, as a failed analysis does.
func (f *Fake) AbortRollout(app, rollout, message string) {
	f.with(app, func(a *fakeApp) {
		for _, r := range a.rollouts {
			if r.name == rollout {
				r.abort, r.message, r.paused = true, message, false
			}
		}
	})
}

// CanaryWeights are the weights the rollout's canary steps have set, in order (100 when
// fully promoted).
func (f *Fake) CanaryWeights(app, rollout string) []int {
	var out []int
	f.with(app, func(a *fakeApp) {
		for _, r := range a.rollouts {
			if r.name == rollout {
				out = slices.Clone(r.weights)
			}
		}
	})
	return out
}

// FailNext makes the next authenticated request answer status with the gateway's error
// body carrying the gRPC code and message.
func (f *Fake) FailNext(status, code int, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject = append(f.inject, fakeAnswer{status: status, code: code, message: message})
}

// Requests returns the requests received, oldest first.
func (f *Fake) Requests() []FakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// with runs fn on the app named "name" or "namespace/name"; unknown apps panic, as a test
// naming one is wrong.
func (f *Fake) with(app string, fn func(*fakeApp)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := app
	if !strings.Contains(key, "/") {
		key = "argocd/" + key
	}
	a, ok := f.apps[key]
	if !ok {
		panic(fmt.Sprintf("argocd fake: no app %q", app))
	}
	fn(a)
}

// ServeHTTP answers one request.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, FakeRequest{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body)})

	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok:
		gatewayError(w, http.StatusUnauthorized, codeUnauthenticated, "no session information")
		return
	case subtle.ConstantTimeCompare([]byte(token), []byte(FakeToken)) != 1:
		gatewayError(w, http.StatusUnauthorized, codeUnauthenticated, "invalid session: token signature is invalid")
		return
	}
	if len(f.inject) > 0 {
		a := f.inject[0]
		f.inject = f.inject[1:]
		gatewayError(w, a.status, a.code, a.message)
		return
	}

	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/applications/")
	name, sub, _ := strings.Cut(rest, "/")
	if !ok || name == "" {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	ns := q.Get("appNamespace")
	var req map[string]any
	if len(body) > 0 && r.Method != http.MethodGet {
		if err := json.Unmarshal(body, &req); err == nil {
			if s, ok := req["appNamespace"].(string); ok && ns == "" {
				ns = s
			}
		}
	}
	if ns == "" {
		ns = "argocd"
	}
	route := r.Method + " " + sub
	known := map[string]bool{"GET ": true, "PATCH ": true, "POST sync": true, "POST rollback": true,
		"GET resource": true, "POST resource/actions": true, "POST resource/actions/v2": !f.legacyActions}
	if !known[route] {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	a, ok := f.apps[ns+"/"+name]
	if !ok {
		gatewayError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("applications.argoproj.io %q not found", name))
		return
	}
	switch route {
	case "GET ":
		f.advance(a)
		writeJSON(w, f.render(a))
	case "PATCH ":
		f.patch(w, a, body)
	case "POST sync":
		f.sync(w, a, body)
	case "POST rollback":
		f.rollback(w, a, body)
	case "GET resource":
		f.resource(w, a, q.Get("group"), q.Get("kind"), q.Get("namespace"), q.Get("resourceName"))
	case "POST resource/actions":
		var action string
		if err := json.Unmarshal(body, &action); err != nil {
			gatewayError(w, http.StatusBadRequest, codeInvalidArgument, "the body must be the action name as a JSON string: "+err.Error())
			return
		}
		f.action(w, a, q.Get("group"), q.Get("kind"), q.Get("namespace"), q.Get("resourceName"), action)
	case "POST resource/actions/v2":
		var in struct {
			Namespace, ResourceName, Group, Kind, Action string
		}
		if err := json.Unmarshal(body, &in); err != nil {
			gatewayError(w, http.StatusBadRequest, codeInvalidArgument, err.Error())
			return
		}
		f.action(w, a, in.Group, in.Kind, in.Namespace, in.ResourceName, in.Action)
	}
}

func (f *Fake) patch(w http.ResponseWriter, a *fakeApp, body []byte) {
	var in struct {
		Patch     string `json:"patch"`
		PatchType string `json:"patchType"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		gatewayError(w, http.StatusBadRequest, codeInvalidArgument, err.Error())
		return
	}
	if in.PatchType != "merge" {
		gatewayError(w, http.StatusBadRequest, codeInvalidArgument, fmt.Sprintf("Patch type '%s' is not supported by the fake (merge only)", in.PatchType))
		return
	}
	var p struct {
		Spec map[string]json.RawMessage `json:"spec"`
	}
	if err := json.Unmarshal([]byte(in.Patch), &p); err != nil {
		gatewayError(w, codeUnknownStatus, codeUnknown, "error calculating merge patch: "+err.Error())
		return
	}
	var src struct {
		TargetRevision *string `json:"targetRevision"`
		Kustomize      *struct {
			Images *[]string `json:"images"`
		} `json:"kustomize"`
	}
	for k, v := range p.Spec {
		if k != "source" {
			gatewayError(w, http.StatusBadRequest, codeInvalidArgument, "the fake patches spec.source only, not spec."+k)
			return
		}
		dec := json.NewDecoder(strings.NewReader(string(v)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&src); err != nil {
			gatewayError(w, http.StatusBadRequest, codeInvalidArgument, "the fake patches targetRevision and kustomize.images only: "+err.Error())
			return
		}
	}
	if a.spec.MultiSource {
		gatewayError(w, http.StatusBadRequest, codeInvalidArgument, "application spec for "+a.spec.Name+" is invalid: InvalidSpecError: application has both source and sources")
		return
	}
	if src.Kustomize != nil && a.spec.Helm {
		gatewayError(w, http.StatusBadRequest, codeInvalidArgument, "application spec for "+a.spec.Name+" is invalid: InvalidSpecError: Unable to generate manifests: multiple application sources defined: Helm,Kustomize")
		return
	}
	if src.TargetRevision != nil {
		a.spec.Revision = *src.TargetRevision
	}
	if src.Kustomize != nil && src.Kustomize.Images != nil {
		a.spec.Images = slices.Clone(*src.Kustomize.Images)
	}
	writeJSON(w, f.render(a))
}

// codeUnknownStatus is the HTTP status of gRPC code Unknown, which Argo CD uses for
// errors it does not classify.
const codeUnknownStatus = http.StatusInternalServerError

func (f *Fake) sync(w http.ResponseWriter, a *fakeApp, body []byte) {
	var in struct {
		Revision string `json:"revision"`
		Prune    bool   `json:"prune"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		gatewayError(w, http.StatusBadRequest, codeInvalidArgument, err.Error())
		return
	}
	if a.op != nil {
		gatewayError(w, http.StatusBadRequest, codeFailedPrecondition, "another operation is already in progress")
		return
	}
	if a.spec.AutoSync && in.Revision != "" && in.Revision != a.spec.Revision {
		gatewayError(w, http.StatusBadRequest, codeFailedPrecondition, fmt.Sprintf("Cannot sync to %s: auto-sync currently set to %s", in.Revision, a.spec.Revision))
		return
	}
	rev := in.Revision
	if rev == "" {
		rev = a.spec.Revision
	}
	a.op = &fakeOp{revision: rev, images: slices.Clone(a.spec.Images), pollsLeft: f.syncPolls}
	writeJSON(w, f.render(a))
}

func (f *Fake) rollback(w http.ResponseWriter, a *fakeApp, body []byte) {
	var in struct {
		ID *int64 `json:"id"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.ID == nil {
		gatewayError(w, http.StatusBadRequest, codeInvalidArgument, "the rollback request needs an id")
		return
	}
	if a.spec.AutoSync {
		gatewayError(w, http.StatusBadRequest, codeFailedPrecondition, "rollback cannot be initiated when auto-sync is enabled")
		return
	}
	if a.op != nil {
		gatewayError(w, http.StatusBadRequest, codeFailedPrecondition, "another operation is already in progress")
		return
	}
	i := slices.IndexFunc(a.history, func(h fakeHistory) bool { return h.id == *in.ID })
	if i < 0 {
		gatewayError(w, http.StatusBadRequest, codeInvalidArgument, fmt.Sprintf("application %s/%s does not have deployment with id %v", a.spec.Namespace, a.spec.Name, *in.ID))
		return
	}
	h := a.history[i]
	a.op = &fakeOp{rollback: true, revision: h.revision, images: slices.Clone(h.images), pollsLeft: f.syncPolls}
	writeJSON(w, f.render(a))
}

// advance carries the app's operation one read further.
func (f *Fake) advance(a *fakeApp) {
	op := a.op
	if op == nil {
		return
	}
	now := time.Now().UTC().Truncate(time.Second)
	if op.startedAt.IsZero() {
		op.startedAt = now
		a.opState = &fakeOpState{op: op, phase: PhaseRunning, message: "waiting for healthy state of apps/Deployment/" + a.spec.Name, startedAt: now}
	}
	op.pollsLeft--
	if op.pollsLeft > 0 {
		return
	}
	a.op = nil
	a.opState.finishedAt = now
	if a.failNext != nil {
		a.opState.phase, a.opState.message = PhaseFailed, *a.failNext
		a.failNext = nil
		return
	}
	a.opState.phase, a.opState.message = PhaseSucceeded, "successfully synced (all tasks run)"
	changed := podHash(op.revision, op.images) != podHash(a.deployedRev, a.deployedImages)
	a.deployedRev, a.deployedImages = op.revision, op.images
	a.drifted, a.extra = map[string]bool{}, nil
	var id int64
	if n := len(a.history); n > 0 {
		id = a.history[n-1].id + 1
	}
	a.history = append(a.history, fakeHistory{id: id, revision: op.revision, images: op.images, deployedAt: now})
	if len(a.history) > 10 {
		a.history = a.history[len(a.history)-10:]
	}
	a.health, a.healthMessage = HealthHealthy, ""
	if a.degradeNext != nil {
		a.health, a.healthMessage = HealthDegraded, *a.degradeNext
		a.degradeNext = nil
	}
	if changed {
		for _, r := range a.rollouts {
			r.startCanary(podHash(op.revision, op.images))
		}
	}
}

// synced: the live state is what git says.
func (a *fakeApp) synced() bool {
	return !a.gitChanged() && len(a.drifted) == 0 && len(a.extra) == 0
}

// gitChanged: git names another revision or other images than those deployed.
func (a *fakeApp) gitChanged() bool {
	return a.deployedRev == "" || a.deployedRev != a.spec.Revision || !slices.Equal(a.deployedImages, a.spec.Images)
}

func (a *fakeApp) currentHealth() (Health, string) {
	if a.op != nil && !a.op.startedAt.IsZero() {
		return HealthProgressing, "waiting for rollout to finish"
	}
	if a.health != HealthHealthy {
		return a.health, a.healthMessage
	}
	for _, r := range a.rollouts {
		switch {
		case r.abort:
			return HealthDegraded, "Rollout aborted update to revision: " + r.message
		case r.paused:
			return HealthSuspended, "Rollout is paused"
		case r.current != r.stable:
			return HealthProgressing, "more replicas need to be updated"
		}
	}
	return a.health, a.healthMessage
}

func (f *Fake) render(a *fakeApp) map[string]any {
	source := func(rev string, images []string) map[string]any {
		if a.spec.Helm {
			return map[string]any{"repoURL": "https://charts.example.com", "chart": a.spec.Name, "targetRevision": rev,
				"helm": map[string]any{"releaseName": a.spec.Name}}
		}
		s := map[string]any{"repoURL": "https://git.example.com/deploy.git", "path": "apps/" + a.spec.Name, "targetRevision": rev}
		if len(images) > 0 {
			s["kustomize"] = map[string]any{"images": images}
		}
		return s
	}
	spec := map[string]any{
		"project":     "default",
		"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": "default"},
	}
	if a.spec.MultiSource {
		spec["sources"] = []any{source(a.spec.Revision, a.spec.Images), map[string]any{"repoURL": "https://git.example.com/values.git", "targetRevision": "main", "ref": "values"}}
	} else {
		spec["source"] = source(a.spec.Revision, a.spec.Images)
	}
	if a.spec.AutoSync {
		spec["syncPolicy"] = map[string]any{"automated": map[string]any{"prune": false, "selfHeal": false}}
	}

	var resources []any
	for _, r := range a.resources {
		st := SyncSynced
		if a.drifted[r.Kind+"/"+r.Name] || a.gitChanged() {
			st = SyncOutOfSync
		}
		h, _ := a.currentHealth()
		if a.deployedRev == "" {
			h = HealthMissing
		}
		resources = append(resources, map[string]any{"group": r.Group, "version": r.Version, "kind": r.Kind,
			"namespace": r.Namespace, "name": r.Name, "status": st, "health": map[string]any{"status": h}})
	}
	for _, r := range a.extra {
		resources = append(resources, map[string]any{"version": r.Version, "kind": r.Kind, "namespace": r.Namespace,
			"name": r.Name, "status": SyncOutOfSync, "requiresPruning": true})
	}
	var history []any
	for _, h := range a.history {
		history = append(history, map[string]any{"id": h.id, "revision": h.revision,
			"deployedAt": h.deployedAt.Format(time.RFC3339), "source": source(h.revision, h.images)})
	}
	syncStatus := SyncOutOfSync
	if a.synced() {
		syncStatus = SyncSynced
	}
	health, healthMsg := a.currentHealth()
	status := map[string]any{
		"resources":    resources,
		"sync":         map[string]any{"status": syncStatus, "revision": a.deployedRev, "comparedTo": map[string]any{"source": source(a.spec.Revision, a.spec.Images)}},
		"health":       map[string]any{"status": health, "message": healthMsg},
		"history":      history,
		"summary":      map[string]any{"images": a.deployedImages},
		"reconciledAt": time.Now().UTC().Format(time.RFC3339),
		"sourceType":   "Kustomize",
	}
	if a.spec.Helm {
		status["sourceType"] = "Helm"
	}
	opJSON := func(op *fakeOp) map[string]any {
		if op.rollback {
			return map[string]any{"sync": map[string]any{"revision": op.revision, "prune": false}, "initiatedBy": map[string]any{"username": "trainyard"}, "info": []any{map[string]any{"name": "Rollback", "value": "true"}}}
		}
		return map[string]any{"sync": map[string]any{"revision": op.revision, "prune": false}, "initiatedBy": map[string]any{"username": "trainyard"}}
	}
	if s := a.opState; s != nil {
		st := map[string]any{"operation": opJSON(s.op), "phase": s.phase, "message": s.message, "startedAt": s.startedAt.Format(time.RFC3339)}
		if !s.finishedAt.IsZero() {
			st["finishedAt"] = s.finishedAt.Format(time.RFC3339)
		}
		status["operationState"] = st
	}
	out := map[string]any{
		"apiVersion": "argoproj.io/v1alpha1",
		"kind":       "Application",
		"metadata":   map[string]any{"name": a.spec.Name, "namespace": a.spec.Namespace},
		"spec":       spec,
		"status":     status,
	}
	if a.op != nil {
		out["operation"] = opJSON(a.op)
	}
	return out
}

func (a *fakeApp) findRollout(group, kind, namespace, name string) *fakeRollout {
	if group != rolloutGroup || kind != rolloutKind {
		return nil
	}
	for _, r := range a.rollouts {
		if r.name == name && r.namespace == namespace {
			return r
		}
	}
	return nil
}

func (f *Fake) resource(w http.ResponseWriter, a *fakeApp, group, kind, namespace, name string) {
	r := a.findRollout(group, kind, namespace, name)
	if r == nil {
		gatewayError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("%s %s %s not found as part of application %s", kind, group, name, a.spec.Name))
		return
	}
	r.run()
	manifest, _ := json.Marshal(r.manifest())
	writeJSON(w, map[string]any{"manifest": string(manifest)})
}

func (f *Fake) action(w http.ResponseWriter, a *fakeApp, group, kind, namespace, name, action string) {
	r := a.findRollout(group, kind, namespace, name)
	if r == nil {
		gatewayError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("%s %s %s not found as part of application %s", kind, group, name, a.spec.Name))
		return
	}
	switch action {
	case actionResume:
		if r.paused {
			r.paused, r.resumed = false, true
		}
	case actionPromoteFull:
		r.promote()
	case "abort":
		r.abort = true
	default:
		gatewayError(w, codeUnknownStatus, codeUnknown, fmt.Sprintf("error getting Lua resource action: action '%s' not found for %s", action, kind))
		return
	}
	writeJSON(w, map[string]any{})
}

// startCanary is the controller seeing a new pod template. Going back to the stable one
// (a rollback during a canary) is immediate, as in Argo Rollouts.
func (r *fakeRollout) startCanary(hash string) {
	r.generation++
	r.current, r.paused, r.resumed, r.abort, r.message, r.weights = hash, false, false, false, "", nil
	if hash == r.stable {
		r.cur = len(r.steps)
		return
	}
	r.cur = 0
	r.run()
}

// run is the Rollouts controller: it carries the canary through its steps until a pause.
func (r *fakeRollout) run() {
	if r.abort || r.current == r.stable {
		return
	}
	for r.cur < len(r.steps) {
		if w := r.steps[r.cur]; w > 0 {
			r.weights = append(r.weights, w)
			r.cur++
			continue
		}
		if !r.resumed {
			r.paused = true
			return
		}
		r.resumed = false
		r.cur++
	}
	r.promote()
}

func (r *fakeRollout) promote() {
	if r.current == r.stable {
		return
	}
	r.stable, r.cur, r.paused, r.resumed = r.current, len(r.steps), false, false
	if n := len(r.weights); n == 0 || r.weights[n-1] != 100 {
		r.weights = append(r.weights, 100)
	}
}

func (r *fakeRollout) manifest() map[string]any {
	var steps []any
	for _, w := range r.steps {
		if w > 0 {
			steps = append(steps, map[string]any{"setWeight": w})
		} else {
			steps = append(steps, map[string]any{"pause": map[string]any{}})
		}
	}
	status := map[string]any{
		"currentStepIndex":   r.cur,
		"stableRS":           r.stable,
		"currentPodHash":     r.current,
		"observedGeneration": fmt.Sprint(r.generation),
		"phase":              "Healthy",
	}
	switch {
	case r.abort:
		status["abort"], status["message"], status["phase"] = true, r.message, "Degraded"
	case r.paused:
		status["pauseConditions"] = []any{map[string]any{"reason": "CanaryPauseStep", "startTime": time.Now().UTC().Format(time.RFC3339)}}
		status["phase"] = "Paused"
	case r.current != r.stable:
		status["phase"] = "Progressing"
	}
	return map[string]any{
		"apiVersion": rolloutGroup + "/" + rolloutVersion,
		"kind":       rolloutKind,
		"metadata":   map[string]any{"name": r.name, "namespace": r.namespace, "generation": r.generation},
		"spec":       map[string]any{"replicas": 4, "strategy": map[string]any{"canary": map[string]any{"steps": steps}}},
		"status":     status,
	}
}

// podHash stands for the pod template hash: what the revision and images render to.
func podHash(revision string, images []string) string {
	sum := sha256.Sum256([]byte(revision + "\n" + strings.Join(images, "\n")))
	return hex.EncodeToString(sum[:5])
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// gatewayError writes the gRPC gateway's error body.
func gatewayError(w http.ResponseWriter, status, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": message, "code": code, "message": message, "details": []any{}})
}
