package flags

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Fake is an in-memory Unleash for tests: an http.Handler answering the part of the Admin
// API Client uses, with the paths, JSON shapes and status codes of Unleash's OpenAPI spec.
//
//   - GET  /api/admin/projects/{projectId}/features/{featureName} → featureSchema
//   - POST .../features/{featureName}/environments/{environment}/on and /off → 200, no body
//   - POST .../environments/{environment}/strategies → 200 featureStrategySchema
//   - PUT  .../environments/{environment}/strategies/{strategyId} → 200 featureStrategySchema
//
// It behaves as Unleash does where a client can tell: the token is the bare Authorization
// header (401 AuthenticationRequired without one, 401 UnauthorizedError for a wrong one,
// "Bearer" included); errors are {"id","name","message","details"}; a flag switched on
// with no active strategy gets a flexibleRollout at 100%; a flexibleRollout missing
// stickiness, groupId or rollout gets "default", the flag's name and "100"; PUT empties the
// constraints and variants it is not sent; parameters must be strings; a strategy of
// another flag or project is 403 InvalidOperationError.
type Fake struct {
	// Token is the admin token accepted for everything.
	Token string
	// ReadOnlyToken, when set, is accepted for reads and refused for writes with 403
	// PermissionError, as Unleash refuses a token without UPDATE_FEATURE_ENVIRONMENT.
	ReadOnlyToken string

	once     sync.Once
	mux      *http.ServeMux
	mu       sync.Mutex
	flags    map[string]*fakeFlag
	inject   []fakeAnswer
	requests []string
}

// FakeFlag is a flag as Fake holds it.
type FakeFlag struct {
	Name         string
	Project      string
	Environments []FakeEnvironment
}

// FakeEnvironment is a flag's state in one environment.
type FakeEnvironment struct {
	Name       string
	Enabled    bool
	Strategies []FakeStrategy
}

// FakeStrategy is an activation strategy as Fake holds it.
type FakeStrategy struct {
	ID          string
	Name        string
	Title       string
	Disabled    bool
	SortOrder   int
	Parameters  map[string]string
	Constraints []json.RawMessage
	Variants    []json.RawMessage
	Segments    []int64
}

type fakeFlag struct {
	name, project string
	created       time.Time
	envs          []*fakeEnv
}

type fakeEnv struct {
	name       string
	enabled    bool
	strategies []*FakeStrategy
}

type fakeAnswer struct {
	status        int
	name, message string
}

// fakeStrategyTypes are Unleash's built-in strategy types.
var fakeStrategyTypes = []string{"default", "flexibleRollout", "userWithId", "remoteAddress", "applicationHostname"}

// NewFake is a Fake accepting token.
func NewFake(token string) *Fake {
	return &Fake{Token: token}
}

// AddFlag creates flag in project with the given environments ("development" and
// "production" when none), switched off and without strategies, as Unleash creates one.
func (f *Fake) AddFlag(project, flag string, envs ...string) {
	if len(envs) == 0 {
		envs = []string{"development", "production"}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.flags == nil {
		f.flags = map[string]*fakeFlag{}
	}
	ff := &fakeFlag{name: flag, project: project, created: time.Now().UTC()}
	for _, e := range envs {
		ff.envs = append(ff.envs, &fakeEnv{name: e})
	}
	f.flags[flag] = ff
}

// AddStrategy adds s to flag's strategies in env, as if someone had added it in Unleash's
// UI, and returns its id. It panics when the flag or environment does not exist.
func (f *Fake) AddStrategy(flag, env string, s FakeStrategy) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.flags[flag].env(env)
	s.ID = fakeUUID()
	s.SortOrder = nextSortOrder(e)
	s.Parameters = cloneParams(s.Parameters)
	e.strategies = append(e.strategies, &s)
	return s.ID
}

// Flag returns a copy of flag, false when it does not exist.
func (f *Fake) Flag(flag string) (FakeFlag, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ff, ok := f.flags[flag]
	if !ok {
		return FakeFlag{}, false
	}
	out := FakeFlag{Name: ff.name, Project: ff.project}
	for _, e := range ff.envs {
		fe := FakeEnvironment{Name: e.name, Enabled: e.enabled}
		for _, s := range e.strategies {
			c := *s
			c.Parameters = cloneParams(s.Parameters)
			fe.Strategies = append(fe.Strategies, c)
		}
		out.Environments = append(out.Environments, fe)
	}
	return out, true
}

// FailNext makes the next authenticated request answer status with Unleash's error body.
func (f *Fake) FailNext(status int, name, message string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject = append(f.inject, fakeAnswer{status: status, name: name, message: message})
}

// Requests returns "METHOD path" of every request received, oldest first.
func (f *Fake) Requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// ServeHTTP answers one Admin API request.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.once.Do(f.routes)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.EscapedPath())

	auth := r.Header.Get("Authorization")
	readOnly := f.ReadOnlyToken != "" && equal(auth, f.ReadOnlyToken)
	switch {
	case auth == "":
		fakeJSON(w, http.StatusUnauthorized, map[string]any{
			"id": fakeUUID(), "name": "AuthenticationRequired", "type": "password", "path": "/auth/simple/login",
			"message": "You must log in to use Unleash. Your request had no authorization header, so we could not authorize you. Try logging in at /auth/simple/login",
		})
		return
	case !readOnly && (f.Token == "" || !equal(auth, f.Token)):
		fakeError(w, http.StatusUnauthorized, "UnauthorizedError", "You must log in to use Unleash.")
		return
	}
	if len(f.inject) > 0 {
		a := f.inject[0]
		f.inject = f.inject[1:]
		fakeError(w, a.status, a.name, a.message)
		return
	}
	if readOnly && r.Method != http.MethodGet {
		_, rest, _ := strings.Cut(r.URL.Path, "/environments/")
		env, _, _ := strings.Cut(rest, "/")
		fakeError(w, http.StatusForbidden, "PermissionError", fmt.Sprintf(
			`You don't have the required permissions to perform this operation. To perform this action, you need the "UPDATE_FEATURE_ENVIRONMENT" permission in the %q environment.`,
			env))
		return
	}
	f.mux.ServeHTTP(w, r)
}

func (f *Fake) routes() {
	const feat = "/api/admin/projects/{projectId}/features/{featureName}"
	const env = feat + "/environments/{environment}"
	f.mux = http.NewServeMux()
	f.mux.HandleFunc("GET "+feat, f.getFeature)
	f.mux.HandleFunc("POST "+env+"/on", func(w http.ResponseWriter, r *http.Request) { f.toggle(w, r, true) })
	f.mux.HandleFunc("POST "+env+"/off", func(w http.ResponseWriter, r *http.Request) { f.toggle(w, r, false) })
	f.mux.HandleFunc("POST "+env+"/strategies", f.addStrategy)
	f.mux.HandleFunc("PUT "+env+"/strategies/{strategyId}", f.updateStrategy)
}

// flag finds the flag of the request's path as Unleash's validateFeatureBelongsToProject
// does, answering 404 when it is not in the project.
func (f *Fake) flag(w http.ResponseWriter, r *http.Request) *fakeFlag {
	name, project := r.PathValue("featureName"), r.PathValue("projectId")
	ff, ok := f.flags[name]
	if ok && ff.project == project {
		return ff
	}
	msg := fmt.Sprintf("There's no feature named %q in project %q.", name, project)
	if ok {
		msg = fmt.Sprintf("There's no feature named %q in project %q, but there's a feature with that name in project %q", name, project, ff.project)
	}
	fakeError(w, http.StatusNotFound, "NotFoundError", msg)
	return nil
}

func (f *Fake) flagEnv(w http.ResponseWriter, r *http.Request) (*fakeFlag, *fakeEnv) {
	ff := f.flag(w, r)
	if ff == nil {
		return nil, nil
	}
	e := ff.env(r.PathValue("environment"))
	if e == nil {
		fakeError(w, http.StatusNotFound, "NotFoundError",
			fmt.Sprintf("Could not find environment %s for feature: %s", r.PathValue("environment"), ff.name))
		return nil, nil
	}
	return ff, e
}

func (ff *fakeFlag) env(name string) *fakeEnv {
	for _, e := range ff.envs {
		if e.name == name {
			return e
		}
	}
	return nil
}

func (f *Fake) getFeature(w http.ResponseWriter, r *http.Request) {
	ff := f.flag(w, r)
	if ff == nil {
		return
	}
	envs := make([]map[string]any, 0, len(ff.envs))
	for i, e := range ff.envs {
		typ := "development"
		if e.name == "production" {
			typ = "production"
		}
		strategies := make([]map[string]any, 0, len(e.strategies))
		for _, s := range e.strategies {
			strategies = append(strategies, s.json(""))
		}
		envs = append(envs, map[string]any{
			"name": e.name, "enabled": e.enabled, "type": typ, "sortOrder": i + 1,
			"strategies": strategies, "yes": 0, "no": 0, "lastSeenAt": nil,
		})
	}
	fakeJSON(w, http.StatusOK, map[string]any{
		"name": ff.name, "type": "release", "description": "", "project": ff.project,
		"enabled": false, "stale": false, "favorite": false, "impressionData": false,
		"archived": false, "createdAt": ff.created.Format(time.RFC3339Nano), "environments": envs,
		"variants": []any{}, "tags": []any{}, "children": []any{}, "dependencies": []any{},
	})
}

func (f *Fake) toggle(w http.ResponseWriter, r *http.Request, on bool) {
	ff, e := f.flagEnv(w, r)
	if e == nil {
		return
	}
	if on && !slices.ContainsFunc(e.strategies, func(s *FakeStrategy) bool { return !s.Disabled }) {
		e.strategies = append(e.strategies, &FakeStrategy{
			ID: fakeUUID(), Name: StrategyName, SortOrder: nextSortOrder(e),
			Parameters: map[string]string{"rollout": "100", "stickiness": "default", "groupId": ff.name},
		})
	}
	e.enabled = on
	w.WriteHeader(http.StatusOK)
}

// strategyBody is createFeatureStrategySchema and updateFeatureStrategySchema.
type strategyBody struct {
	Name        *string            `json:"name"`
	Title       *string            `json:"title"`
	Disabled    *bool              `json:"disabled"`
	SortOrder   *int               `json:"sortOrder"`
	Parameters  map[string]string  `json:"parameters"`
	Constraints *[]json.RawMessage `json:"constraints"`
	Variants    *[]json.RawMessage `json:"variants"`
	Segments    *[]int64           `json:"segments"`
}

func (f *Fake) readStrategy(w http.ResponseWriter, r *http.Request) (strategyBody, bool) {
	var b strategyBody
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		fakeError(w, http.StatusUnsupportedMediaType, "ContentTypeError",
			"We do not accept the content-type you provided ("+ct+"). Try using one of the content-types we do accept instead (application/json) and make sure the body is in the corresponding format.")
		return b, false
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&b); err != nil {
		fakeError(w, http.StatusBadRequest, "ValidationError", "Request validation failed: your request body or params contain invalid data: "+err.Error())
		return b, false
	}
	if b.Name != nil && !slices.Contains(fakeStrategyTypes, *b.Name) {
		fakeError(w, http.StatusNotFound, "NotFoundError", "Could not find strategy type with name "+*b.Name)
		return b, false
	}
	return b, true
}

func (f *Fake) addStrategy(w http.ResponseWriter, r *http.Request) {
	ff, e := f.flagEnv(w, r)
	if e == nil {
		return
	}
	b, ok := f.readStrategy(w, r)
	if !ok {
		return
	}
	if b.Name == nil || *b.Name == "" {
		fakeError(w, http.StatusBadRequest, "ValidationError", `Request validation failed: your request body or params contain invalid data: The "name" property is required`)
		return
	}
	s := &FakeStrategy{ID: fakeUUID(), Name: *b.Name, SortOrder: nextSortOrder(e)}
	f.apply(s, b, ff.name)
	if b.SortOrder != nil {
		s.SortOrder = *b.SortOrder
	}
	e.strategies = append(e.strategies, s)
	slices.SortStableFunc(e.strategies, func(a, b *FakeStrategy) int { return a.SortOrder - b.SortOrder })
	fakeJSON(w, http.StatusOK, s.json(ff.name))
}

func (f *Fake) updateStrategy(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("strategyId")
	var owner *fakeFlag
	var env *fakeEnv
	var s *FakeStrategy
	for _, ff := range f.flags {
		for _, e := range ff.envs {
			for _, cand := range e.strategies {
				if cand.ID == id {
					owner, env, s = ff, e, cand
				}
			}
		}
	}
	switch {
	case s == nil:
		fakeError(w, http.StatusNotFound, "NotFoundError", "Could not find strategy with id "+id)
		return
	case owner.project != r.PathValue("projectId"):
		fakeError(w, http.StatusForbidden, "InvalidOperationError", "You can not change the projectId for an activation strategy.")
		return
	case owner.name != r.PathValue("featureName"):
		fakeError(w, http.StatusForbidden, "InvalidOperationError", "You can not change the featureName for an activation strategy.")
		return
	}
	b, ok := f.readStrategy(w, r)
	if !ok {
		return
	}
	if b.Name != nil {
		s.Name = *b.Name
	}
	f.apply(s, b, owner.name)
	// Unleash switches off an environment whose strategies are all disabled.
	if !slices.ContainsFunc(env.strategies, func(s *FakeStrategy) bool { return !s.Disabled }) {
		env.enabled = false
	}
	fakeJSON(w, http.StatusOK, s.json(owner.name))
}

// apply writes a create or update body into s the way Unleash's strategy store does.
func (f *Fake) apply(s *FakeStrategy, b strategyBody, flag string) {
	if b.Title != nil {
		s.Title = *b.Title
	}
	if b.Disabled != nil {
		s.Disabled = *b.Disabled
	}
	s.Parameters = cloneParams(b.Parameters)
	if s.Name == StrategyName {
		if s.Parameters["rollout"] == "" {
			s.Parameters["rollout"] = "100"
		}
		if s.Parameters["stickiness"] == "" {
			s.Parameters["stickiness"] = "default"
		}
		if s.Parameters["groupId"] == "" {
			s.Parameters["groupId"] = flag
		}
	}
	s.Constraints, s.Variants = nil, nil
	if b.Constraints != nil {
		s.Constraints = *b.Constraints
	}
	if b.Variants != nil {
		s.Variants = *b.Variants
	}
	if b.Segments != nil {
		s.Segments = *b.Segments
	}
}

// json is featureStrategySchema; featureName is left out when empty, as in a feature's
// environments.
func (s *FakeStrategy) json(featureName string) map[string]any {
	orEmpty := func(v []json.RawMessage) []json.RawMessage {
		if v == nil {
			return []json.RawMessage{}
		}
		return v
	}
	segments := s.Segments
	if segments == nil {
		segments = []int64{}
	}
	var title any
	if s.Title != "" {
		title = s.Title
	}
	out := map[string]any{
		"id": s.ID, "name": s.Name, "title": title, "disabled": s.Disabled, "sortOrder": s.SortOrder,
		"parameters": s.Parameters, "constraints": orEmpty(s.Constraints), "variants": orEmpty(s.Variants),
		"segments": segments,
	}
	if featureName != "" {
		out["featureName"] = featureName
	}
	return out
}

func nextSortOrder(e *fakeEnv) int {
	n := 0
	for _, s := range e.strategies {
		n = max(n, s.SortOrder+1)
	}
	return n
}

func cloneParams(p map[string]string) map[string]string {
	out := make(map[string]string, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// fakeUUID is a random version 4 UUID, the form of Unleash's strategy and error ids.
func fakeUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func fakeError(w http.ResponseWriter, status int, name, message string) {
	fakeJSON(w, status, map[string]any{
		"id": fakeUUID(), "name": name, "message": message,
		"details": []map[string]string{{"message": message}},
	})
}

func fakeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
