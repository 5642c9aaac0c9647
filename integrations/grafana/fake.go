package grafana

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fake is an in-memory Grafana for tests: an http.Handler answering the part of the
// annotations API Client uses, the way Grafana documents it.
//
//   - POST /api/annotations {"time", "timeEnd", "tags", "text"} → 200 {"message": "Annotation
//     added", "id": n}
//   - PATCH /api/annotations/{id} with any of those fields → 200 {"message": "Annotation
//     patched"}; 404 {"message": "Could not find annotation to update"} for an unknown id
//   - GET /api/annotations?from=&to=&tags=&limit= → 200 [annotation, ...], newest first, each
//     with id, time, timeEnd, tags, text
//
// Errors are {"message": "..."}: 401 "Unauthorized" without the token, 400 for a body that is
// not JSON. Only organisation annotations are kept (dashboard and panel ids are ignored).
type Fake struct {
	// Token is the bearer token accepted; any request is accepted when empty.
	Token string

	mu          sync.Mutex
	annotations []FakeAnnotation
	failNext    []int
}

// FakeAnnotation is an annotation as Fake holds it, in the API's JSON shape.
type FakeAnnotation struct {
	ID      int64    `json:"id"`
	Time    int64    `json:"time"`
	TimeEnd int64    `json:"timeEnd"`
	Tags    []string `json:"tags"`
	Text    string   `json:"text"`
}

// Start is when the annotation begins.
func (a FakeAnnotation) Start() time.Time { return fromMillis(a.Time) }

// End is when the region ends; zero for a point annotation.
func (a FakeAnnotation) End() time.Time { return fromMillis(a.TimeEnd) }

// Annotations returns the stored annotations, oldest first.
func (f *Fake) Annotations() []FakeAnnotation {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FakeAnnotation, len(f.annotations))
	for i, a := range f.annotations {
		a.Tags = slices.Clone(a.Tags)
		out[i] = a
	}
	return out
}

// FailNext makes the next requests answer with these statuses (a 500, a 429), in order.
func (f *Fake) FailNext(statuses ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = append(f.failNext, statuses...)
}

func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Token != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(f.Token)) != 1 {
			fakeError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
	}
	if len(f.failNext) > 0 {
		status := f.failNext[0]
		f.failNext = f.failNext[1:]
		fakeError(w, status, http.StatusText(status))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, annotationsPath)
	if !ok {
		fakeError(w, http.StatusNotFound, "Not found")
		return
	}
	switch {
	case rest == "" && r.Method == http.MethodPost:
		f.create(w, r)
	case rest == "" && r.Method == http.MethodGet:
		f.find(w, r)
	case strings.HasPrefix(rest, "/") && r.Method == http.MethodPatch:
		f.patch(w, r, strings.TrimPrefix(rest, "/"))
	default:
		fakeError(w, http.StatusNotFound, "Not found")
	}
}

type fakeBody struct {
	Time    *int64   `json:"time"`
	TimeEnd *int64   `json:"timeEnd"`
	Tags    []string `json:"tags"`
	Text    *string  `json:"text"`
}

func decodeBody(w http.ResponseWriter, r *http.Request) (fakeBody, bool) {
	var b fakeBody
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || json.Unmarshal(data, &b) != nil {
		fakeError(w, http.StatusBadRequest, "bad request data")
		return b, false
	}
	return b, true
}

func (f *Fake) create(w http.ResponseWriter, r *http.Request) {
	b, ok := decodeBody(w, r)
	if !ok {
		return
	}
	a := FakeAnnotation{ID: int64(len(f.annotations) + 1), Tags: b.Tags}
	if a.Tags == nil {
		a.Tags = []string{}
	}
	// Grafana stamps the request time on an annotation sent without one.
	a.Time = time.Now().UnixMilli()
	if b.Time != nil && *b.Time != 0 {
		a.Time = *b.Time
	}
	a.TimeEnd = a.Time
	if b.TimeEnd != nil && *b.TimeEnd != 0 {
		a.TimeEnd = *b.TimeEnd
	}
	if b.Text != nil {
		a.Text = *b.Text
	}
	f.annotations = append(f.annotations, a)
	writeJSON(w, http.StatusOK, map[string]any{"message": "Annotation added", "id": a.ID})
}

func (f *Fake) patch(w http.ResponseWriter, r *http.Request, idText string) {
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil {
		fakeError(w, http.StatusBadRequest, "annotationId is invalid")
		return
	}
	b, ok := decodeBody(w, r)
	if !ok {
		return
	}
	i := slices.IndexFunc(f.annotations, func(a FakeAnnotation) bool { return a.ID == id })
	if i < 0 {
		fakeError(w, http.StatusNotFound, "Could not find annotation to update")
		return
	}
	a := &f.annotations[i]
	if b.Time != nil && *b.Time != 0 {
		a.Time = *b.Time
	}
	if b.TimeEnd != nil && *b.TimeEnd != 0 {
		a.TimeEnd = *b.TimeEnd
	}
	if b.Tags != nil {
		a.Tags = b.Tags
	}
	if b.Text != nil {
		a.Text = *b.Text
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": "Annotation patched"})
}

func (f *Fake) find(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, _ := strconv.ParseInt(q.Get("from"), 10, 64)
	to, _ := strconv.ParseInt(q.Get("to"), 10, 64)
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 {
		limit = 100
	}
	out := []FakeAnnotation{}
	for i := len(f.annotations) - 1; i >= 0 && len(out) < limit; i-- {
		a := f.annotations[i]
		if from != 0 && a.TimeEnd < from || to != 0 && a.Time > to {
			continue
		}
		if !containsAll(a.Tags, q["tags"]) {
			continue
		}
		out = append(out, a)
	}
	writeJSON(w, http.StatusOK, out)
}

func containsAll(have, want []string) bool {
	for _, t := range want {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

func fakeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
