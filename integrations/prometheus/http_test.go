package prometheus

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testToken = "pr0m-b3arer-t0ken"

// envelope serves a fixed answer the way Prometheus writes it, and records what it was asked.
type envelope struct {
	status int
	ctype  string
	body   string
	// onlyGET answers 405 to anything but GET, like a read-only proxy.
	onlyGET bool

	requests []*http.Request
	forms    []url.Values
}

func (e *envelope) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	e.requests = append(e.requests, r)
	e.forms = append(e.forms, r.Form)
	if e.onlyGET && r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ct := e.ctype
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(e.status)
	_, _ = io.WriteString(w, e.body)
}

func serve(t *testing.T, e *envelope) *Client {
	t.Helper()
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &Client{BaseURL: srv.URL, HTTP: srv.Client(), BearerToken: testToken}
}

func success(data string) string { return `{"status":"success","data":` + data + `}` }

func TestQuery_DecodesResults(t *testing.T) {
	t.Parallel()
	at := time.UnixMilli(1_700_000_000_123).UTC()
	tests := []struct {
		name string
		data string
		want float64
	}{
		{"scalar", `{"resultType":"scalar","result":[1700000000.123,"0.25"]}`, 0.25},
		{"one-element vector", `{"resultType":"vector","result":[{"metric":{"job":"web"},"value":[1700000000.123,"12"]}]}`, 12},
		{"NaN", `{"resultType":"vector","result":[{"metric":{},"value":[1700000000.123,"NaN"]}]}`, math.NaN()},
		{"+Inf", `{"resultType":"scalar","result":[1700000000.123,"+Inf"]}`, math.Inf(1)},
		{"-Inf", `{"resultType":"scalar","result":[1700000000.123,"-Inf"]}`, math.Inf(-1)},
		{"exponent", `{"resultType":"scalar","result":[1700000000.123,"1.5e-05"]}`, 1.5e-05},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := serve(t, &envelope{status: 200, body: success(tt.data)})
			s, err := c.Query(context.Background(), "up", at)
			require.NoError(t, err)
			require.Equal(t, at, s.At)
			if math.IsNaN(tt.want) {
				require.True(t, math.IsNaN(s.Value), "got %v", s.Value)
				return
			}
			require.Equal(t, tt.want, s.Value)
		})
	}
}

func TestQuery_RefusesResultsThatAreNotOneNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		data    string
		is      error
		message string
	}{
		{"empty vector", `{"resultType":"vector","result":[]}`, ErrNoData, "no data"},
		{"several series", `{"resultType":"vector","result":[
			{"metric":{"__name__":"x","code":"500"},"value":[1,"1"]},
			{"metric":{"__name__":"x","code":"200"},"value":[1,"2"]},
			{"metric":{"__name__":"x","code":"404"},"value":[1,"3"]}]}`, ErrManySeries, `3 series (first x{code="500"}); aggregate them into one, such as sum(...) or max(...)`},
		{"matrix", `{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}`, ErrWrongResultType, "range vector"},
		{"string", `{"resultType":"string","result":[1,"hello"]}`, ErrWrongResultType, "string"},
		{"native histogram", `{"resultType":"vector","result":[{"metric":{},"histogram":[1,{"count":"2"}]}]}`, ErrWrongResultType, "histogram_quantile"},
		{"value not a number", `{"resultType":"scalar","result":[1,"abc"]}`, ErrUnexpectedResponse, `"abc" is not a number`},
		{"unknown type", `{"resultType":"table","result":[]}`, ErrUnexpectedResponse, `"table"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := serve(t, &envelope{status: 200, body: success(tt.data)})
			_, err := c.Query(context.Background(), "x", time.Time{})
			require.ErrorIs(t, err, tt.is)
			require.ErrorContains(t, err, tt.message)
			require.ErrorContains(t, err, `query "x"`)
			require.Equal(t, errors.Is(err, ErrUnexpectedResponse), IsRetryable(err), "only a garbled answer is worth retrying")
		})
	}
}

func TestQuery_SurfacesPrometheusErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    int
		ctype     string
		body      string
		errorType string
		message   string
		retryable bool
	}{
		{"bad query", 400, "", `{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis"}`,
			"bad_data", "parse error: unclosed left parenthesis", false},
		{"execution", 422, "", `{"status":"error","errorType":"execution","error":"found duplicate series for the match group"}`,
			"execution", "found duplicate series", false},
		{"timeout", 503, "", `{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}`,
			"timeout", "query timed out", true},
		{"proxy error page", 502, "text/html; charset=utf-8", `<html><body>Bad Gateway</body></html>`,
			"", "answered with text/html, not the API's JSON", true},
		{"proxy plain text", 503, "text/plain", "upstream connect error\nor disconnect",
			"", "upstream connect error or disconnect", true},
		{"unauthorized", 401, "text/plain", "Unauthorized", "", "Unauthorized", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := serve(t, &envelope{status: tt.status, ctype: tt.ctype, body: tt.body})
			_, err := c.Query(context.Background(), "sum(", time.Time{})
			var pe *Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tt.status, pe.StatusCode)
			require.Equal(t, tt.errorType, pe.Type)
			require.Equal(t, queryPath, pe.Endpoint)
			require.ErrorContains(t, err, tt.message)
			require.Equal(t, tt.retryable, IsRetryable(err))
			require.NotContains(t, err.Error(), testToken)
		})
	}
}

func TestQuery_SuccessThatIsNotTheEnvelopeIsUnexpected(t *testing.T) {
	t.Parallel()
	c := serve(t, &envelope{status: 200, ctype: "text/html", body: "<html>login</html>"})
	_, err := c.Query(context.Background(), "up", time.Time{})
	require.ErrorIs(t, err, ErrUnexpectedResponse)
	require.ErrorContains(t, err, "answered 200 with text/html")
}

func TestQuery_RefusesAResponseOverTheLimit(t *testing.T) {
	t.Parallel()
	big := success(`{"resultType":"scalar","result":[1,"1"],"pad":"` + strings.Repeat("x", MaxResponseBytes) + `"}`)
	c := serve(t, &envelope{status: 200, body: big})
	_, err := c.Query(context.Background(), "up", time.Time{})
	require.ErrorIs(t, err, ErrUnexpectedResponse)
	require.ErrorContains(t, err, "larger than")
}

func TestQuery_SendsAFormWithTimeTimeoutAndToken(t *testing.T) {
	t.Parallel()
	e := &envelope{status: 200, body: success(`{"resultType":"scalar","result":[1,"1"]}`)}
	c := serve(t, e)
	c.BaseURL += "/prometheus/"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	_, err := c.Query(ctx, `sum(rate(x{code=~"5.."}[5m]))`, time.UnixMilli(1_700_000_000_500))
	require.NoError(t, err)
	require.Len(t, e.requests, 1)
	r, f := e.requests[0], e.forms[0]
	require.Equal(t, http.MethodPost, r.Method)
	require.Equal(t, "/prometheus/api/v1/query", r.URL.Path)
	require.Equal(t, "Bearer "+testToken, r.Header.Get("Authorization"))
	require.Equal(t, `sum(rate(x{code=~"5.."}[5m]))`, f.Get("query"))
	require.Equal(t, "1700000000.500", f.Get("time"))
	require.NotEmpty(t, f.Get("timeout"), "the caller's deadline bounds the evaluation")
}

func TestQuery_OmitsTimeWhenZero(t *testing.T) {
	t.Parallel()
	e := &envelope{status: 200, body: success(`{"resultType":"scalar","result":[1,"1"]}`)}
	c := serve(t, e)
	c.BearerToken = ""
	_, err := c.Query(context.Background(), "up", time.Time{})
	require.NoError(t, err)
	require.False(t, e.forms[0].Has("time"))
	require.False(t, e.forms[0].Has("timeout"))
	require.Empty(t, e.requests[0].Header.Get("Authorization"))
}

func TestQuery_FallsBackToGETWhenPOSTIsRefused(t *testing.T) {
	t.Parallel()
	e := &envelope{status: 200, onlyGET: true, body: success(`{"resultType":"scalar","result":[1,"3"]}`)}
	c := serve(t, e)
	s, err := c.Query(context.Background(), "up == 1", time.Time{})
	require.NoError(t, err)
	require.Equal(t, 3.0, s.Value)
	require.Len(t, e.requests, 2)
	require.Equal(t, http.MethodPost, e.requests[0].Method)
	require.Equal(t, http.MethodGet, e.requests[1].Method)
	require.Equal(t, "up == 1", e.requests[1].URL.Query().Get("query"))
}

func TestQuery_RefusesBadInputBeforeSending(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		base    string
		query   string
		message string
	}{
		{"empty query", "http://127.0.0.1:9", "  ", "the query is empty"},
		{"relative URL", "prometheus:9090", "up", "absolute http(s) URL"},
		{"other scheme", "ftp://prometheus", "up", "absolute http(s) URL"},
		{"credentials in URL", "https://admin:hunter2@prometheus", "up", "bearer token, not in the URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Client{BaseURL: tt.base}
			_, err := c.Query(context.Background(), tt.query, time.Time{})
			require.ErrorIs(t, err, ErrInvalidInput)
			require.ErrorContains(t, err, tt.message)
			require.NotContains(t, err.Error(), "hunter2")
			require.False(t, IsRetryable(err))
		})
	}
}

func TestQuery_TransportErrorIsRetryableAndHidesTheURL(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c := &Client{BaseURL: base, BearerToken: testToken}
	_, err := c.Query(context.Background(), "secret_metric", time.Time{})
	require.Error(t, err)
	require.True(t, IsRetryable(err))
	require.ErrorContains(t, err, "prometheus /api/v1/query")
	require.NotContains(t, err.Error(), "query=secret_metric")
	require.NotContains(t, err.Error(), testToken)
}

func TestQuery_CanceledContextIsNotRetryable(t *testing.T) {
	t.Parallel()
	c := serve(t, &envelope{status: 200, body: success(`{"resultType":"scalar","result":[1,"1"]}`)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Query(ctx, "up", time.Time{})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, IsRetryable(err))
}

func TestQueryRange_ReturnsTheFirstSeries(t *testing.T) {
	t.Parallel()
	e := &envelope{status: 200, body: success(`{"resultType":"matrix","result":[
		{"metric":{"code":"200"},"values":[[1700000000,"1"],[1700000015,"NaN"],[1700000030,"+Inf"]]},
		{"metric":{"code":"500"},"values":[[1700000000,"9"]]}]}`)}
	c := serve(t, e)
	start := time.Unix(1_700_000_000, 0)
	pts, err := c.QueryRange(context.Background(), "x", start, start.Add(30*time.Second), 15*time.Second)
	require.NoError(t, err)
	require.Len(t, pts, 3)
	require.Equal(t, Point{At: start.UTC(), Value: 1}, pts[0])
	require.True(t, math.IsNaN(pts[1].Value))
	require.Equal(t, start.Add(15*time.Second).UTC(), pts[1].At)
	require.True(t, math.IsInf(pts[2].Value, 1))

	f := e.forms[0]
	require.Equal(t, queryRangePath, e.requests[0].URL.Path)
	require.Equal(t, "1700000000.000", f.Get("start"))
	require.Equal(t, "1700000030.000", f.Get("end"))
	require.Equal(t, "15", f.Get("step"))
}

func TestQueryRange_Refusals(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name       string
		data       string
		start, end time.Time
		step       time.Duration
		is         error
	}{
		{"no series", `{"resultType":"matrix","result":[]}`, now, now.Add(time.Minute), time.Second, ErrNoData},
		{"not a matrix", `{"resultType":"vector","result":[]}`, now, now.Add(time.Minute), time.Second, ErrUnexpectedResponse},
		{"zero step", `{}`, now, now.Add(time.Minute), 0, ErrInvalidInput},
		{"end before start", `{}`, now, now.Add(-time.Minute), time.Second, ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := serve(t, &envelope{status: 200, body: success(tt.data)})
			_, err := c.QueryRange(context.Background(), "x", tt.start, tt.end, tt.step)
			require.ErrorIs(t, err, tt.is)
		})
	}
}

func TestFake_AnswersInOrderAndRepeatsTheLast(t *testing.T) {
	t.Parallel()
	f := &Fake{}
	f.Answer("q", FakeResult{Value: 1}, FakeResult{Err: ErrNoData}, FakeResult{Value: 3})
	ctx := context.Background()
	var got []string
	for range 4 {
		s, err := f.Query(ctx, "q", time.Time{})
		if err != nil {
			got = append(got, err.Error())
		} else {
			got = append(got, strings.TrimSpace(strings.Repeat("x", int(s.Value))))
		}
	}
	require.Equal(t, []string{"x", ErrNoData.Error(), "xxx", "xxx"}, got)
	_, err := f.Query(ctx, "other", time.Time{})
	require.ErrorContains(t, err, `no answer for query "other"`)
	require.Equal(t, []string{"q", "q", "q", "q", "other"}, f.Queries())
}
