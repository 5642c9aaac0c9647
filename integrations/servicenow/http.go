package servicenow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/trainyard/trainyard/internal/jsonhttp"
)

// MaxResponseBytes bounds how much of a response HTTPClient reads.
const MaxResponseBytes = 1 << 20

const (
	changeTable = "/api/now/table/change_request"
	groupTable  = "/api/now/table/sys_user_group"
	// changeFields are the fields HTTPClient asks for (sysparm_fields).
	changeFields = "sys_id,number,state,type,correlation_id,close_code"
	// dateTimeLayout is how the Table API reads date-time values (UTC unless
	// sysparm_input_display_value is set, which HTTPClient never sets).
	dateTimeLayout = "2006-01-02 15:04:05"
	// maxErrorText bounds the message and detail kept from an error body.
	maxErrorText = 500
)

// HTTPClient is the real Client: ServiceNow's Table API over HTTPS, with basic
// authentication (User and Password) or an OAuth bearer Token.
type HTTPClient struct {
	// BaseURL is the instance, e.g. https://example.service-now.com.
	BaseURL  string
	User     string
	Password string
	Token    string
	// HTTP sends the requests; http.DefaultClient when nil. Give it a Timeout.
	HTTP *http.Client
}

var _ Client = (*HTTPClient)(nil)

// Open returns the active change request whose correlation_id is in.CorrelationID, or files a
// new one. A closed or canceled change for the same id is not reused: a release started again
// under the same id gets a fresh change request.
func (c *HTTPClient) Open(ctx context.Context, in ChangeInput) (Change, error) {
	if err := in.validate(); err != nil {
		return Change{}, err
	}
	if ch, ok, err := c.find(ctx, in.CorrelationID); err != nil {
		return Change{}, fmt.Errorf("look for the change request of %s: %w", in.CorrelationID, err)
	} else if ok {
		return ch, nil
	}

	typ := in.Type
	if typ == "" {
		typ = TypeNormal
		if in.Template != "" {
			typ = TypeStandard
		}
	}
	body := map[string]string{
		"short_description": jsonhttp.Truncate(in.ShortDescription, 160),
		"description":       in.Description,
		"type":              string(typ),
		"correlation_id":    in.CorrelationID,
	}
	if in.CorrelationDisplay != "" {
		body["correlation_display"] = jsonhttp.Truncate(in.CorrelationDisplay, 100)
	}
	if in.Template != "" {
		body["std_change_producer_version"] = in.Template
	}
	if !in.PlannedStart.IsZero() {
		body["start_date"] = in.PlannedStart.UTC().Format(dateTimeLayout)
	}
	if !in.PlannedEnd.IsZero() {
		body["end_date"] = in.PlannedEnd.UTC().Format(dateTimeLayout)
	}
	if in.AssignmentGroup != "" {
		group, err := c.group(ctx, in.AssignmentGroup)
		if err != nil {
			return Change{}, err
		}
		body["assignment_group"] = group
	}
	var rec record
	if err := c.do(ctx, http.MethodPost, changeTable, fieldsQuery(), body, http.StatusCreated, &rec); err != nil {
		return Change{}, fmt.Errorf("open change request for %s: %w", in.CorrelationID, err)
	}
	return rec.change()
}

// find returns the oldest active change request with correlation_id id.
func (c *HTTPClient) find(ctx context.Context, id string) (Change, bool, error) {
	q := fieldsQuery()
	q.Set("sysparm_query", "correlation_id="+id+"^active=true^ORDERBYsys_created_on")
	q.Set("sysparm_limit", "1")
	var recs []record
	if err := c.do(ctx, http.MethodGet, changeTable, q, nil, http.StatusOK, &recs); err != nil {
		return Change{}, false, err
	}
	if len(recs) == 0 {
		return Change{}, false, nil
	}
	ch, err := recs[0].change()
	return ch, err == nil, err
}

// group returns the sys_id of an assignment group given by sys_id or by name.
func (c *HTTPClient) group(ctx context.Context, group string) (string, error) {
	if isSysID(group) {
		return group, nil
	}
	q := url.Values{}
	q.Set("sysparm_query", "name="+group+"^active=true")
	q.Set("sysparm_fields", "sys_id,name")
	q.Set("sysparm_limit", "2")
	var recs []record
	if err := c.do(ctx, http.MethodGet, groupTable, q, nil, http.StatusOK, &recs); err != nil {
		return "", fmt.Errorf("look up assignment group %q: %w", group, err)
	}
	switch len(recs) {
	case 0:
		return "", fmt.Errorf("%w: assignment group %q is not an active group in servicenow", ErrInvalidInput, group)
	case 1:
		if id := string(recs[0]["sys_id"]); isSysID(id) {
			return id, nil
		}
		return "", fmt.Errorf("%w: assignment group %q has no sys_id", ErrUnexpectedResponse, group)
	default:
		return "", fmt.Errorf("%w: more than one active group is named %q; give its sys_id", ErrInvalidInput, group)
	}
}

// Get reads a change request.
func (c *HTTPClient) Get(ctx context.Context, sysID string) (Change, error) {
	if !isSysID(sysID) {
		return Change{}, fmt.Errorf("%w: %q is not a sys_id", ErrInvalidInput, sysID)
	}
	var rec record
	if err := c.do(ctx, http.MethodGet, changeTable+"/"+sysID, fieldsQuery(), nil, http.StatusOK, &rec); err != nil {
		return Change{}, fmt.Errorf("read change request %s: %w", sysID, err)
	}
	return rec.change()
}

// Note adds a work note. A retried Note may add it twice.
func (c *HTTPClient) Note(ctx context.Context, sysID, text string) error {
	if strings.TrimSpace(text) == "" {
		return fmt.Errorf("%w: the work note is empty", ErrInvalidInput)
	}
	_, err := c.patch(ctx, sysID, map[string]string{"work_notes": text})
	if err != nil {
		return fmt.Errorf("add work note: %w", err)
	}
	return nil
}

// Move brings the change to state to through its model's states.
func (c *HTTPClient) Move(ctx context.Context, sysID string, to State, note string) error {
	if to.Terminal() {
		return fmt.Errorf("%w: use Close to close or cancel a change", ErrInvalidInput)
	}
	ch, err := c.Get(ctx, sysID)
	if err != nil {
		return err
	}
	return c.moveFrom(ctx, ch, to, note)
}

func (c *HTTPClient) moveFrom(ctx context.Context, ch Change, to State, note string) error {
	if ch.State == to {
		return nil
	}
	if ch.State.Terminal() {
		return fmt.Errorf("%w: %s is %s", ErrClosed, ch.Number, ch.State)
	}
	steps, err := Steps(ch.Type, ch.State, to)
	if err != nil {
		return fmt.Errorf("move %s: %w", ch.Number, err)
	}
	for i, s := range steps {
		body := map[string]string{"state": strconv.Itoa(int(s))}
		if i == len(steps)-1 && note != "" {
			body["work_notes"] = note
		}
		if _, err := c.patch(ctx, ch.SysID, body); err != nil {
			return fmt.Errorf("move %s to %s: %w", ch.Number, s, err)
		}
	}
	return nil
}

// Close closes (through review) or cancels the change.
func (c *HTTPClient) Close(ctx context.Context, sysID string, outcome Outcome, notes string) error {
	if !outcome.valid() {
		return fmt.Errorf("%w: unknown outcome %q", ErrInvalidInput, outcome)
	}
	if strings.TrimSpace(notes) == "" {
		return fmt.Errorf("%w: close notes are empty", ErrInvalidInput)
	}
	ch, err := c.Get(ctx, sysID)
	if err != nil {
		return err
	}
	if ch.State.Terminal() {
		if outcome == OutcomeCanceled && ch.State == StateCanceled ||
			outcome != OutcomeCanceled && ch.State == StateClosed && ch.CloseCode == string(outcome) {
			return nil
		}
		return fmt.Errorf("%w: %s is %s (close code %q), not %s", ErrClosed, ch.Number, ch.State, ch.CloseCode, outcome)
	}
	if outcome == OutcomeCanceled {
		body := map[string]string{"state": strconv.Itoa(int(StateCanceled)), "close_notes": notes, "work_notes": notes}
		if _, err := c.patch(ctx, sysID, body); err != nil {
			return fmt.Errorf("cancel %s: %w", ch.Number, err)
		}
		return nil
	}
	if err := c.moveFrom(ctx, ch, StateReview, ""); err != nil {
		return err
	}
	body := map[string]string{"state": strconv.Itoa(int(StateClosed)), "close_code": string(outcome), "close_notes": notes}
	if _, err := c.patch(ctx, sysID, body); err != nil {
		return fmt.Errorf("close %s: %w", ch.Number, err)
	}
	return nil
}

func (c *HTTPClient) patch(ctx context.Context, sysID string, body map[string]string) (record, error) {
	if !isSysID(sysID) {
		return nil, fmt.Errorf("%w: %q is not a sys_id", ErrInvalidInput, sysID)
	}
	var rec record
	err := c.do(ctx, http.MethodPatch, changeTable+"/"+sysID, fieldsQuery(), body, http.StatusOK, &rec)
	return rec, err
}

// do sends one request and decodes the "result" of a want answer into out.
func (c *HTTPClient) do(ctx context.Context, method, path string, q url.Values, body any, want int, out any) error {
	base, err := url.Parse(c.BaseURL)
	switch {
	case err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http"):
		return fmt.Errorf("%w: the servicenow URL must be an absolute https URL", ErrInvalidInput)
	case base.User != nil:
		return fmt.Errorf("%w: put servicenow credentials in user and password, not in the URL", ErrInvalidInput)
	case c.Token != "" && (c.User != "" || c.Password != ""):
		return fmt.Errorf("%w: set servicenow user and password, or a token, not both", ErrInvalidInput)
	}
	u := base.JoinPath(path)
	u.RawQuery = q.Encode()

	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("%w: build request: %v", ErrInvalidInput, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.Token)
	case c.User != "" || c.Password != "":
		req.SetBasicAuth(c.User, c.Password)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("servicenow %s %s: %w", method, path, ctxErr)
		}
		// url.Error repeats the URL; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("servicenow %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("servicenow %s %s: %w", method, path, ctxErr)
		}
		return fmt.Errorf("servicenow %s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return responseError(method, path, resp, data)
	}
	if len(data) > MaxResponseBytes {
		return fmt.Errorf("%w: servicenow %s %s: response is larger than %d bytes", ErrUnexpectedResponse, method, path, MaxResponseBytes)
	}
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &env); err != nil || len(env.Result) == 0 {
		return fmt.Errorf("%w: servicenow %s %s answered %d with %s, not a Table API result", ErrUnexpectedResponse, method, path, resp.StatusCode, contentType(resp))
	}
	if err := json.Unmarshal(env.Result, out); err != nil {
		return fmt.Errorf("%w: servicenow %s %s: decode result: %v", ErrUnexpectedResponse, method, path, err)
	}
	return nil
}

// responseError is an *Error from a refused request, with ServiceNow's message and detail
// when the body is its error JSON.
func responseError(method, path string, resp *http.Response, data []byte) *Error {
	e := &Error{Method: method, Path: path, StatusCode: resp.StatusCode, RetryAfter: jsonhttp.RetryAfter(resp.Header.Get("Retry-After"))}
	var body struct {
		Error struct {
			Message json.RawMessage `json:"message"`
			Detail  json.RawMessage `json:"detail"`
		} `json:"error"`
	}
	if len(data) <= MaxResponseBytes && json.Unmarshal(data, &body) == nil {
		e.Message = jsonhttp.Truncate(text(body.Error.Message), maxErrorText)
		e.Detail = jsonhttp.Truncate(text(body.Error.Detail), maxErrorText)
	}
	return e
}

// text is a JSON string's value, or the JSON itself for anything else but null.
func text(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	return string(raw)
}

func contentType(resp *http.Response) string {
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		return ct
	}
	return "no content type"
}

func fieldsQuery() url.Values {
	q := url.Values{}
	q.Set("sysparm_fields", changeFields)
	q.Set("sysparm_exclude_reference_link", "true")
	q.Set("sysparm_display_value", "false")
	return q
}

// record is one Table API record: every value a string, except reference fields, which are
// {"link", "value"} objects unless sysparm_exclude_reference_link is set.
type record map[string]field

type field string

func (f *field) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = ""
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*f = field(s)
		return nil
	}
	var ref struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(b, &ref); err == nil {
		*f = field(ref.Value)
		return nil
	}
	*f = field(b) // a number or a boolean
	return nil
}

func (r record) change() (Change, error) {
	ch := Change{
		SysID:         string(r["sys_id"]),
		Number:        string(r["number"]),
		Type:          Type(r["type"]),
		CorrelationID: string(r["correlation_id"]),
		CloseCode:     string(r["close_code"]),
	}
	st, err := strconv.Atoi(strings.TrimSpace(string(r["state"])))
	if err != nil || !isSysID(ch.SysID) {
		return Change{}, fmt.Errorf("%w: a change request without a sys_id or a numeric state", ErrUnexpectedResponse)
	}
	ch.State = State(st)
	if ch.Type == "" {
		ch.Type = TypeNormal
	}
	return ch, nil
}

func (in ChangeInput) validate() error {
	var problems []string
	switch {
	case in.CorrelationID == "":
		problems = append(problems, "correlation id is empty")
	case len(in.CorrelationID) > 100:
		problems = append(problems, "correlation id is longer than 100 characters")
	case !queryValue(in.CorrelationID):
		problems = append(problems, "correlation id contains '^' or control characters")
	}
	if strings.TrimSpace(in.ShortDescription) == "" {
		problems = append(problems, "short description is empty")
	}
	switch in.Type {
	case "", TypeNormal, TypeEmergency:
		if in.Type != "" && in.Template != "" {
			problems = append(problems, "a template files a standard change, not "+string(in.Type))
		}
	case TypeStandard:
		if in.Template == "" {
			problems = append(problems, "a standard change needs a template")
		}
	default:
		problems = append(problems, fmt.Sprintf("type %q is not normal, standard or emergency", in.Type))
	}
	if in.AssignmentGroup != "" && !queryValue(in.AssignmentGroup) {
		problems = append(problems, "assignment group contains '^' or control characters")
	}
	if in.Template != "" && !isSysID(in.Template) {
		problems = append(problems, fmt.Sprintf("template %q is not a sys_id", in.Template))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidInput, strings.Join(problems, "; "))
	}
	return nil
}

// queryValue reports whether s can stand in an encoded query as a value.
func queryValue(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r == '^' || unicode.IsControl(r) })
}

// isSysID reports whether s looks like a sys_id: 32 lowercase hex digits.
func isSysID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}
