package servicenow

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// call sends one raw request to a Fake, as any Table API client would.
func call(t *testing.T, srv *httptest.Server, method, path, body string, auth bool) (int, http.Header, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.SetBasicAuth(testUser, testPassword)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, resp.Header, out
}

func newFakeServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewFake(testUser, testPassword))
	t.Cleanup(srv.Close)
	return srv
}

func TestFake_CreateAnswers201WithResultAndLocation(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t)

	status, h, body := call(t, srv, http.MethodPost, "/api/now/table/change_request",
		`{"short_description":"Release shop 1.2.3","assignment_group":"`+FakeSysID("group:Orders Platform")+`"}`, true)
	require.Equal(t, http.StatusCreated, status)
	res := body["result"].(map[string]any)
	require.Equal(t, "CHG0030001", res["number"])
	require.Equal(t, "-5", res["state"], "values are strings, as ServiceNow sends them")
	require.Equal(t, "normal", res["type"])
	require.Equal(t, "/api/now/table/change_request/"+res["sys_id"].(string), h.Get("Location"))
	ref := res["assignment_group"].(map[string]any)
	require.Equal(t, FakeSysID("group:Orders Platform"), ref["value"], "reference fields carry a link unless excluded")
	require.Contains(t, ref["link"], "/api/now/table/sys_user_group/")
}

func TestFake_ErrorsHaveServiceNowShape(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t)
	tests := []struct {
		name    string
		method  string
		path    string
		body    string
		auth    bool
		status  int
		message string
	}{
		{name: "no credentials", method: http.MethodGet, path: "/api/now/table/change_request", status: 401, message: "User Not Authenticated"},
		{name: "unknown sys_id", method: http.MethodGet, path: "/api/now/table/change_request/" + FakeSysID("nope"), auth: true, status: 404, message: "No Record found"},
		{name: "patch unknown sys_id", method: http.MethodPatch, path: "/api/now/table/change_request/" + FakeSysID("nope"), body: `{"work_notes":"x"}`, auth: true, status: 404, message: "No Record found"},
		{name: "missing short description", method: http.MethodPost, path: "/api/now/table/change_request", body: `{"type":"normal"}`, auth: true, status: 403, message: "Operation Failed"},
		{name: "unknown type", method: http.MethodPost, path: "/api/now/table/change_request", body: `{"short_description":"x","type":"urgent"}`, auth: true, status: 403, message: "Operation Failed"},
		{name: "standard without template", method: http.MethodPost, path: "/api/now/table/change_request", body: `{"short_description":"x","type":"standard"}`, auth: true, status: 403, message: "Operation Failed"},
		{name: "bad json", method: http.MethodPost, path: "/api/now/table/change_request", body: `{"short_description":`, auth: true, status: 400, message: "Exception while reading request"},
		{name: "unknown table", method: http.MethodGet, path: "/api/now/table/nope", auth: true, status: 400, message: "Invalid table nope"},
		{name: "unsupported query", method: http.MethodGet, path: "/api/now/table/change_request?sysparm_query=stateIN3,4", auth: true, status: 400, message: "Invalid query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, _, body := call(t, srv, tt.method, tt.path, tt.body, tt.auth)
			require.Equal(t, tt.status, status)
			require.Equal(t, "failure", body["status"])
			require.Equal(t, tt.message, body["error"].(map[string]any)["message"])
		})
	}
}

func TestFake_RefusesStateJumpsAndClosingWithoutCodeAndNotes(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t)
	_, _, body := call(t, srv, http.MethodPost, "/api/now/table/change_request", `{"short_description":"x"}`, true)
	path := "/api/now/table/change_request/" + body["result"].(map[string]any)["sys_id"].(string)

	status, _, body := call(t, srv, http.MethodPatch, path, `{"state":"-1"}`, true)
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, body["error"].(map[string]any)["detail"], "from new to implement")

	for _, st := range []string{"-4", "-3", "-2", "-1", "0"} {
		status, _, _ = call(t, srv, http.MethodPatch, path, `{"state":"`+st+`"}`, true)
		require.Equal(t, http.StatusOK, status, st)
	}
	status, _, body = call(t, srv, http.MethodPatch, path, `{"state":"3"}`, true)
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, body["error"].(map[string]any)["detail"], "Close code, Close notes")

	status, _, body = call(t, srv, http.MethodPatch, path, `{"state":3,"close_code":"successful","close_notes":"ok"}`, true)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "3", body["result"].(map[string]any)["state"])
	require.Equal(t, "false", body["result"].(map[string]any)["active"])

	status, _, _ = call(t, srv, http.MethodPatch, path, `{"state":"4"}`, true)
	require.Equal(t, http.StatusForbidden, status, "a closed change stays closed")
}

func TestFake_QueryFiltersOrdersAndLimits(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t)
	for _, id := range []string{"a", "b", "a"} {
		status, _, _ := call(t, srv, http.MethodPost, "/api/now/table/change_request", `{"short_description":"x","correlation_id":"`+id+`"}`, true)
		require.Equal(t, http.StatusCreated, status)
	}

	_, _, body := call(t, srv, http.MethodGet, "/api/now/table/change_request?sysparm_query=correlation_id%3Da%5Eactive%3Dtrue%5EORDERBYDESCnumber&sysparm_fields=number", "", true)
	require.Equal(t, []any{map[string]any{"number": "CHG0030003"}, map[string]any{"number": "CHG0030001"}}, body["result"])

	_, _, body = call(t, srv, http.MethodGet, "/api/now/table/change_request?sysparm_query=correlation_id%3Da&sysparm_limit=1&sysparm_fields=number", "", true)
	require.Equal(t, []any{map[string]any{"number": "CHG0030001"}}, body["result"])

	_, _, body = call(t, srv, http.MethodGet, "/api/now/table/sys_user_group?sysparm_query=name%3DOrders%20Platform&sysparm_fields=sys_id", "", true)
	require.Equal(t, []any{map[string]any{"sys_id": FakeSysID("group:Orders Platform")}}, body["result"])
}
