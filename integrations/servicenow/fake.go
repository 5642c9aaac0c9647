package servicenow

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fake is an in-memory ServiceNow instance for tests: an http.Handler answering the part of
// the Table API HTTPClient uses, the way ServiceNow documents it.
//
//   - GET /api/now/table/change_request?sysparm_query=...&sysparm_limit=&sysparm_fields=
//   - GET, PATCH and PUT /api/now/table/change_request/{sys_id}; POST /api/now/table/change_request
//   - GET /api/now/table/sys_user_group?sysparm_query=name=...
//
// Answers are {"result": ...} with every value a string (reference fields as {"link","value"}
// unless sysparm_exclude_reference_link=true), 201 for a created record, and errors as
// {"error": {"message", "detail"}, "status": "failure"}: 401 without valid credentials, 404
// for an unknown sys_id, 403 "Operation Failed" when a rule refuses a write (a missing short
// description or close code, a state the change's model does not allow next), 400 for bad
// JSON or a query the fake does not understand. Queries support field=value clauses joined
// by ^ and ORDERBY/ORDERBYDESC.
//
// Fake is stricter than a real instance in one way: it refuses state moves the default
// change models do not allow, where a real instance's rules depend on its configuration.
type Fake struct {
	// User and Password are the basic-auth credentials accepted; Token a bearer token
	// accepted (none when empty).
	User, Password string
	Token          string
	// Groups are the sys_user_group records, name to sys_id.
	Groups map[string]string

	mu       sync.Mutex
	records  []*fakeRecord
	seq      int
	inject   []fakeAnswer
	requests []string
}

// FakeRecord is a change request as Fake holds it.
type FakeRecord struct {
	// Fields are the record's stored values (work_notes is a journal: see WorkNotes).
	Fields map[string]string
	// WorkNotes are the work notes added, oldest first.
	WorkNotes []string
}

type fakeRecord struct {
	fields    map[string]string
	workNotes []string
}

type fakeAnswer struct {
	status     int
	retryAfter time.Duration
	message    string
	detail     string
}

// NewFake is a Fake accepting user and password, with one assignment group.
func NewFake(user, password string) *Fake {
	return &Fake{User: user, Password: password, Groups: map[string]string{"Orders Platform": FakeSysID("group:Orders Platform")}}
}

// FakeSysID is the sys_id Fake gives a record named name: 32 hex digits, like ServiceNow's.
func FakeSysID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:16])
}

// RateLimitOnce makes the next authenticated request answer 429 with Retry-After.
func (f *Fake) RateLimitOnce(retryAfter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject = append(f.inject, fakeAnswer{status: http.StatusTooManyRequests, retryAfter: retryAfter,
		message: "Too Many Requests", detail: "Rate limit exceeded for the user"})
}

// FailOnce makes the next authenticated request answer status with ServiceNow's error body.
func (f *Fake) FailOnce(status int, message, detail string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inject = append(f.inject, fakeAnswer{status: status, message: message, detail: detail})
}

// Records returns copies of the change requests, oldest first.
func (f *Fake) Records() []FakeRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FakeRecord, 0, len(f.records))
	for _, r := range f.records {
		fields := make(map[string]string, len(r.fields))
		for k, v := range r.fields {
			fields[k] = v
		}
		out = append(out, FakeRecord{Fields: fields, WorkNotes: append([]string(nil), r.workNotes...)})
	}
	return out
}

// Requests returns "METHOD path" of every request received, oldest first.
func (f *Fake) Requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// ServeHTTP answers one Table API request.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)

	if !f.authenticated(r) {
		msg := "User Not Authenticated"
		if r.Header.Get("Authorization") != "" {
			msg = "User is not authenticated"
		}
		fakeError(w, http.StatusUnauthorized, msg, "Required to provide Auth information")
		return
	}
	if len(f.inject) > 0 {
		a := f.inject[0]
		f.inject = f.inject[1:]
		if a.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(a.retryAfter/time.Second)))
		}
		fakeError(w, a.status, a.message, a.detail)
		return
	}

	rest, ok := strings.CutPrefix(r.URL.Path, "/api/now/table/")
	if !ok {
		fakeError(w, http.StatusBadRequest, "Requested URI does not represent any resource", r.URL.Path)
		return
	}
	table, id, _ := strings.Cut(rest, "/")
	switch {
	case table == "change_request" && id == "" && r.Method == http.MethodGet:
		f.list(w, r, f.changeRows())
	case table == "change_request" && id == "" && r.Method == http.MethodPost:
		f.insert(w, r)
	case table == "change_request" && id != "" && r.Method == http.MethodGet:
		if rec := f.find(id); rec != nil {
			writeResult(w, http.StatusOK, render(rec.fields, r))
		} else {
			fakeNotFound(w)
		}
	case table == "change_request" && id != "" && (r.Method == http.MethodPatch || r.Method == http.MethodPut):
		f.update(w, r, id)
	case table == "sys_user_group" && id == "" && r.Method == http.MethodGet:
		var rows []map[string]string
		for name, sysID := range f.Groups {
			rows = append(rows, map[string]string{"sys_id": sysID, "name": name, "active": "true"})
		}
		slices.SortFunc(rows, func(a, b map[string]string) int { return strings.Compare(a["name"], b["name"]) })
		f.list(w, r, rows)
	case table == "change_request" || table == "sys_user_group":
		fakeError(w, http.StatusMethodNotAllowed, "Method not Supported", "the fake does not support "+r.Method+" here")
	default:
		fakeError(w, http.StatusBadRequest, "Invalid table "+table, "")
	}
}

func (f *Fake) authenticated(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	if token, ok := strings.CutPrefix(auth, "Bearer "); ok {
		return f.Token != "" && equal(token, f.Token)
	}
	user, pass, ok := r.BasicAuth()
	return ok && f.User != "" && equal(user, f.User) && equal(pass, f.Password)
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func (f *Fake) changeRows() []map[string]string {
	rows := make([]map[string]string, 0, len(f.records))
	for _, rec := range f.records {
		rows = append(rows, rec.fields)
	}
	return rows
}

func (f *Fake) find(sysID string) *fakeRecord {
	for _, rec := range f.records {
		if rec.fields["sys_id"] == sysID {
			return rec
		}
	}
	return nil
}

// list answers a query: sysparm_query's field=value clauses (all must hold), its ORDERBY,
// then sysparm_limit.
func (f *Fake) list(w http.ResponseWriter, r *http.Request, rows []map[string]string) {
	q := r.URL.Query()
	var conds [][2]string
	var order string
	desc := false
	if query := q.Get("sysparm_query"); query != "" {
		for _, clause := range strings.Split(query, "^") {
			switch {
			case strings.HasPrefix(clause, "ORDERBYDESC"):
				order, desc = strings.TrimPrefix(clause, "ORDERBYDESC"), true
			case strings.HasPrefix(clause, "ORDERBY"):
				order = strings.TrimPrefix(clause, "ORDERBY")
			default:
				k, v, ok := strings.Cut(clause, "=")
				if !ok || k == "" || strings.ContainsAny(k, "!<>") {
					fakeError(w, http.StatusBadRequest, "Invalid query", "the fake understands field=value clauses only: "+clause)
					return
				}
				conds = append(conds, [2]string{k, v})
			}
		}
	}
	var out []map[string]string
	for _, row := range rows {
		match := true
		for _, c := range conds {
			if row[c[0]] != c[1] {
				match = false
				break
			}
		}
		if match {
			out = append(out, row)
		}
	}
	if order != "" {
		slices.SortStableFunc(out, func(a, b map[string]string) int {
			if desc {
				return strings.Compare(b[order], a[order])
			}
			return strings.Compare(a[order], b[order])
		})
	}
	if limit, err := strconv.Atoi(q.Get("sysparm_limit")); err == nil && limit >= 0 && limit < len(out) {
		out = out[:limit]
	}
	results := make([]map[string]any, 0, len(out))
	for _, row := range out {
		results = append(results, render(row, r))
	}
	writeResult(w, http.StatusOK, results)
}

func (f *Fake) insert(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	if body["short_description"] == "" {
		fakeError(w, http.StatusForbidden, "Operation Failed", "Data Policy Exception: Short description is mandatory")
		return
	}
	typ := body["type"]
	if typ == "" {
		typ = string(TypeNormal)
	}
	if _, ok := fakeModels[Type(typ)]; !ok {
		fakeError(w, http.StatusForbidden, "Operation Failed", fmt.Sprintf("Invalid type %q", typ))
		return
	}
	if typ == string(TypeStandard) && body["std_change_producer_version"] == "" {
		fakeError(w, http.StatusForbidden, "Operation Failed", "Data Policy Exception: Template is mandatory for a standard change")
		return
	}
	if st := body["state"]; st != "" && st != strconv.Itoa(int(StateNew)) {
		fakeError(w, http.StatusForbidden, "Operation Failed", "A change request is created in state New")
		return
	}
	if len(body["correlation_id"]) > 100 {
		fakeError(w, http.StatusForbidden, "Operation Failed", "Correlation ID is longer than 100 characters")
		return
	}
	for _, k := range []string{"start_date", "end_date"} {
		if v := body[k]; v != "" {
			if _, err := time.Parse(dateTimeLayout, v); err != nil {
				fakeError(w, http.StatusForbidden, "Operation Failed", fmt.Sprintf("Invalid date-time %q for %s", v, k))
				return
			}
		}
	}
	f.seq++
	now := time.Now().UTC().Format(dateTimeLayout)
	rec := &fakeRecord{fields: map[string]string{}}
	for k, v := range body {
		if k != "work_notes" {
			rec.fields[k] = v
		}
	}
	if n := body["work_notes"]; n != "" {
		rec.workNotes = append(rec.workNotes, n)
	}
	sysID := FakeSysID(fmt.Sprintf("change_request:%d", f.seq))
	for k, v := range map[string]string{
		"sys_id": sysID, "number": fmt.Sprintf("CHG%07d", 30000+f.seq), "type": typ,
		"state": strconv.Itoa(int(StateNew)), "active": "true", "close_code": rec.fields["close_code"],
		"sys_created_on": now, "sys_updated_on": now, "opened_at": now,
	} {
		rec.fields[k] = v
	}
	f.records = append(f.records, rec)
	w.Header().Set("Location", "/api/now/table/change_request/"+sysID)
	writeResult(w, http.StatusCreated, render(rec.fields, r))
}

// fakeModels are the default change models: which states may follow each state.
var fakeModels = map[Type]map[State]State{
	TypeNormal: {StateNew: StateAssess, StateAssess: StateAuthorize, StateAuthorize: StateScheduled,
		StateScheduled: StateImplement, StateImplement: StateReview, StateReview: StateClosed},
	TypeStandard: {StateNew: StateScheduled, StateScheduled: StateImplement, StateImplement: StateReview,
		StateReview: StateClosed},
	TypeEmergency: {StateNew: StateAuthorize, StateAuthorize: StateScheduled, StateScheduled: StateImplement,
		StateImplement: StateReview, StateReview: StateClosed},
}

var fakeCloseCodes = []string{"successful", "successful_issues", "unsuccessful"}

func (f *Fake) update(w http.ResponseWriter, r *http.Request, sysID string) {
	rec := f.find(sysID)
	if rec == nil {
		fakeNotFound(w)
		return
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	from, _ := strconv.Atoi(rec.fields["state"])
	to := from
	if s, ok := body["state"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil {
			fakeError(w, http.StatusForbidden, "Operation Failed", fmt.Sprintf("Invalid state %q", s))
			return
		}
		to = n
	}
	if to != from {
		cur, next := State(from), State(to)
		switch {
		case cur.Terminal():
			fakeError(w, http.StatusForbidden, "Operation Failed", fmt.Sprintf("The change request is %s and cannot change state", cur))
			return
		case next == StateCanceled:
		case fakeModels[Type(rec.fields["type"])][cur] != next:
			fakeError(w, http.StatusForbidden, "Operation Failed",
				fmt.Sprintf("Invalid state transition for a %s change from %s to %s", rec.fields["type"], cur, next))
			return
		}
		if next == StateClosed {
			code, notes := pick(body, rec.fields, "close_code"), pick(body, rec.fields, "close_notes")
			var missing []string
			if !slices.Contains(fakeCloseCodes, code) {
				missing = append(missing, "Close code")
			}
			if strings.TrimSpace(notes) == "" {
				missing = append(missing, "Close notes")
			}
			if len(missing) > 0 {
				fakeError(w, http.StatusForbidden, "Operation Failed", "Data Policy Exception: "+strings.Join(missing, ", ")+" are mandatory when closing")
				return
			}
		}
	}
	for k, v := range body {
		switch k {
		case "sys_id", "number", "sys_created_on", "active", "type":
		case "work_notes":
			if v != "" {
				rec.workNotes = append(rec.workNotes, v)
			}
		default:
			rec.fields[k] = v
		}
	}
	now := time.Now().UTC().Format(dateTimeLayout)
	rec.fields["state"] = strconv.Itoa(to)
	rec.fields["sys_updated_on"] = now
	if State(to).Terminal() && rec.fields["active"] == "true" {
		rec.fields["active"] = "false"
		rec.fields["closed_at"] = now
	}
	writeResult(w, http.StatusOK, render(rec.fields, r))
}

func pick(body, fields map[string]string, k string) string {
	if v, ok := body[k]; ok {
		return v
	}
	return fields[k]
}

// readBody reads a JSON object whose values are strings, numbers or booleans.
func readBody(w http.ResponseWriter, r *http.Request) (map[string]string, bool) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		fakeError(w, http.StatusUnsupportedMediaType, "Unsupported Media Type", "Content-Type must be application/json, not "+ct)
		return nil, false
	}
	var raw map[string]any
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&raw); err != nil || raw == nil {
		fakeError(w, http.StatusBadRequest, "Exception while reading request", "The payload is not valid JSON.")
		return nil, false
	}
	body := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			body[k] = v
		case float64, bool:
			body[k] = fmt.Sprint(v)
		case nil:
			body[k] = ""
		default:
			fakeError(w, http.StatusBadRequest, "Exception while reading request", fmt.Sprintf("Field %s is not a string", k))
			return nil, false
		}
	}
	return body, true
}

var fakeReferenceFields = map[string]string{"assignment_group": "sys_user_group", "std_change_producer_version": "std_change_producer_version"}

// render is a record as the Table API shows it: the sysparm_fields asked for (all when
// none), journal fields empty, reference fields as {"link","value"} unless excluded.
func render(fields map[string]string, r *http.Request) map[string]any {
	q := r.URL.Query()
	names := []string{}
	if s := q.Get("sysparm_fields"); s != "" {
		names = strings.Split(s, ",")
	} else {
		for k := range fields {
			names = append(names, k)
		}
		names = append(names, "work_notes")
	}
	exclude := q.Get("sysparm_exclude_reference_link") == "true"
	out := make(map[string]any, len(names))
	for _, k := range names {
		v := fields[k]
		if table, ok := fakeReferenceFields[k]; ok && v != "" && !exclude {
			out[k] = map[string]string{"link": "https://" + r.Host + "/api/now/table/" + table + "/" + v, "value": v}
			continue
		}
		out[k] = v
	}
	return out
}

func writeResult(w http.ResponseWriter, status int, result any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"result": result})
}

func fakeNotFound(w http.ResponseWriter) {
	fakeError(w, http.StatusNotFound, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
}

func fakeError(w http.ResponseWriter, status int, message, detail string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	var d any
	if detail != "" {
		d = detail
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error":  map[string]any{"message": message, "detail": d},
		"status": "failure",
	})
}
