package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// MaxResponseBytes bounds how much of a response Client reads. A range query is capped by
// Prometheus at 11,000 points a series, far below this.
const MaxResponseBytes = 16 << 20

// DefaultTimeout is the HTTP timeout of a Client without its own http.Client.
const DefaultTimeout = 30 * time.Second

const (
	queryPath      = "/api/v1/query"
	queryRangePath = "/api/v1/query_range"
	// maxErrorText bounds the error text kept from a response.
	maxErrorText = 1000
	// maxQueryText bounds how much of a query an error message repeats.
	maxQueryText = 200
)

// Client is the real Querier: Prometheus' HTTP API (or anything serving it: Thanos, Mimir,
// VictoriaMetrics) over HTTP or HTTPS.
type Client struct {
	// BaseURL is where the API lives, without /api/v1: http://prometheus:9090, or
	// https://example.com/prometheus behind a proxy.
	BaseURL string
	// HTTP sends the requests; one with DefaultTimeout when nil.
	HTTP *http.Client
	// BearerToken is sent as "Authorization: Bearer <token>" when set.
	BearerToken string
}

var _ Querier = (*Client)(nil)

// Query evaluates query at at (the server's now when at is zero); see Querier.
func (c *Client) Query(ctx context.Context, query string, at time.Time) (Sample, error) {
	if strings.TrimSpace(query) == "" {
		return Sample{}, fmt.Errorf("%w: the query is empty", ErrInvalidInput)
	}
	form := url.Values{"query": {query}}
	if !at.IsZero() {
		form.Set("time", formatTime(at))
	}
	var data result
	if err := c.call(ctx, queryPath, form, &data); err != nil {
		return Sample{}, fmt.Errorf("query %s: %w", quote(query), err)
	}
	s, err := data.single()
	if err != nil {
		return Sample{}, fmt.Errorf("query %s: %w", quote(query), err)
	}
	return s, nil
}

// QueryRange evaluates query from start to end every step; see Querier.
func (c *Client) QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]Point, error) {
	switch {
	case strings.TrimSpace(query) == "":
		return nil, fmt.Errorf("%w: the query is empty", ErrInvalidInput)
	case step <= 0:
		return nil, fmt.Errorf("%w: step %s must be above 0", ErrInvalidInput, step)
	case end.Before(start):
		return nil, fmt.Errorf("%w: end %s is before start %s", ErrInvalidInput, end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	form := url.Values{
		"query": {query},
		"start": {formatTime(start)},
		"end":   {formatTime(end)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	var data result
	if err := c.call(ctx, queryRangePath, form, &data); err != nil {
		return nil, fmt.Errorf("range query %s: %w", quote(query), err)
	}
	pts, err := data.firstSeries()
	if err != nil {
		return nil, fmt.Errorf("range query %s: %w", quote(query), err)
	}
	return pts, nil
}

// call sends the form to path as a POST (queries can be longer than a URL may be), again as
// a GET when the server or a proxy in front refuses POST, and decodes the envelope's data
// into out.
func (c *Client) call(ctx context.Context, path string, form url.Values, out *result) error {
	base, err := url.Parse(c.BaseURL)
	switch {
	case err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http"):
		return fmt.Errorf("%w: the prometheus URL %q must be an absolute http(s) URL", ErrInvalidInput, redact(c.BaseURL))
	case base.User != nil:
		return fmt.Errorf("%w: put the prometheus credentials in the bearer token, not in the URL", ErrInvalidInput)
	}
	// Prometheus stops evaluating when our caller has stopped waiting, rather than at its own
	// --query.timeout.
	if deadline, ok := ctx.Deadline(); ok {
		if left := time.Until(deadline); left > 0 {
			form.Set("timeout", strconv.FormatFloat(left.Seconds(), 'f', 3, 64))
		}
	}
	u := base.JoinPath(path)
	status, data, ctype, err := c.send(ctx, http.MethodPost, u, form)
	if err == nil && (status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented) {
		status, data, ctype, err = c.send(ctx, http.MethodGet, u, form)
	}
	if err != nil {
		return fmt.Errorf("prometheus %s: %w", path, err)
	}
	if len(data) > MaxResponseBytes {
		return fmt.Errorf("%w: prometheus %s: response is larger than %d bytes", ErrUnexpectedResponse, path, MaxResponseBytes)
	}

	var env struct {
		Status    string          `json:"status"`
		Data      json.RawMessage `json:"data"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
	}
	jsonErr := json.Unmarshal(data, &env)
	if jsonErr != nil || (env.Status != "success" && env.Status != "error") {
		if status/100 != 2 {
			// A proxy or load balancer answered, not Prometheus.
			return &Error{Endpoint: path, StatusCode: status, Message: nonJSONText(ctype, data)}
		}
		return fmt.Errorf("%w: prometheus %s answered %d with %s, not the API's JSON envelope", ErrUnexpectedResponse, path, status, ctype)
	}
	if env.Status == "error" || status/100 != 2 {
		return &Error{Endpoint: path, StatusCode: status, Type: env.ErrorType, Message: truncate(clean(env.Error), maxErrorText)}
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("%w: prometheus %s: decode data: %v", ErrUnexpectedResponse, path, err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, method string, u *url.URL, form url.Values) (int, []byte, string, error) {
	var req *http.Request
	var err error
	if method == http.MethodPost {
		req, err = http.NewRequestWithContext(ctx, method, u.String(), strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		get := *u
		get.RawQuery = form.Encode()
		req, err = http.NewRequestWithContext(ctx, method, get.String(), nil)
	}
	if err != nil {
		return 0, nil, "", fmt.Errorf("%w: build request: %v", ErrInvalidInput, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+c.BearerToken)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return 0, nil, "", ctxErr
		}
		// url.Error repeats the URL, query included; keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return 0, nil, "", ctxErr
		}
		return 0, nil, "", fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, data, contentType(resp), nil
}

// result is the data of a query's envelope: {"resultType": ..., "result": ...}.
type result struct {
	ResultType string          `json:"resultType"`
	Result     json.RawMessage `json:"result"`
}

// series is one element of a vector ("value") or a matrix ("values"). Native histograms
// come as "histogram" or "histograms" instead, which no single number stands for.
type series struct {
	Metric     map[string]string `json:"metric"`
	Value      *pair             `json:"value"`
	Values     []pair            `json:"values"`
	Histogram  json.RawMessage   `json:"histogram"`
	Histograms json.RawMessage   `json:"histograms"`
}

// pair is a [<unix seconds>, "<value>"] pair; values are strings so NaN and ±Inf survive JSON.
type pair struct {
	At    time.Time
	Value float64
}

func (p *pair) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || len(raw) != 2 {
		return fmt.Errorf("want [time, \"value\"], got %s", truncate(string(b), 100))
	}
	var ts json.Number
	if err := json.Unmarshal(raw[0], &ts); err != nil {
		return fmt.Errorf("time %s is not a number", truncate(string(raw[0]), 50))
	}
	secs, err := ts.Float64()
	if err != nil {
		return fmt.Errorf("time %s is not a number", ts)
	}
	var v string
	if err := json.Unmarshal(raw[1], &v); err != nil {
		return fmt.Errorf("value %s is not a string", truncate(string(raw[1]), 50))
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return fmt.Errorf("value %q is not a number", truncate(v, 50))
	}
	// Prometheus keeps milliseconds; rounding removes the float's noise below them.
	p.At = time.UnixMilli(int64(math.Round(secs * 1000))).UTC()
	p.Value = f
	return nil
}

// single is the one number of an instant query's result.
func (r result) single() (Sample, error) {
	switch r.ResultType {
	case "scalar":
		var p pair
		if err := json.Unmarshal(r.Result, &p); err != nil {
			return Sample{}, fmt.Errorf("%w: decode scalar: %v", ErrUnexpectedResponse, err)
		}
		return Sample{Value: p.Value, At: p.At}, nil
	case "vector":
		var v []series
		if err := json.Unmarshal(r.Result, &v); err != nil {
			return Sample{}, fmt.Errorf("%w: decode vector: %v", ErrUnexpectedResponse, err)
		}
		switch len(v) {
		case 0:
			return Sample{}, ErrNoData
		case 1:
		default:
			return Sample{}, fmt.Errorf("%w: %d series (first %s); aggregate them into one, such as sum(...) or max(...)",
				ErrManySeries, len(v), labels(v[0].Metric))
		}
		if v[0].Value == nil {
			if len(v[0].Histogram) > 0 {
				return Sample{}, fmt.Errorf("%w: the result is a native histogram; take one number from it, such as histogram_quantile(0.99, ...)", ErrWrongResultType)
			}
			return Sample{}, fmt.Errorf("%w: vector element %s has no value", ErrUnexpectedResponse, labels(v[0].Metric))
		}
		return Sample{Value: v[0].Value.Value, At: v[0].Value.At}, nil
	case "matrix":
		return Sample{}, fmt.Errorf("%w: the result is a range vector; turn it into one number per series, such as rate(x[5m]) or avg_over_time(x[5m])", ErrWrongResultType)
	case "string":
		return Sample{}, fmt.Errorf("%w: the result is a string", ErrWrongResultType)
	}
	return Sample{}, fmt.Errorf("%w: unknown result type %q", ErrUnexpectedResponse, truncate(r.ResultType, 50))
}

// firstSeries is the first series of a range query's result.
func (r result) firstSeries() ([]Point, error) {
	if r.ResultType != "matrix" {
		return nil, fmt.Errorf("%w: a range query answered with result type %q, not matrix", ErrUnexpectedResponse, truncate(r.ResultType, 50))
	}
	var m []series
	if err := json.Unmarshal(r.Result, &m); err != nil {
		return nil, fmt.Errorf("%w: decode matrix: %v", ErrUnexpectedResponse, err)
	}
	if len(m) == 0 {
		return nil, ErrNoData
	}
	if len(m[0].Values) == 0 && len(m[0].Histograms) > 0 {
		return nil, fmt.Errorf("%w: the result is a native histogram; take one number from it, such as histogram_quantile(0.99, ...)", ErrWrongResultType)
	}
	pts := make([]Point, len(m[0].Values))
	for i, p := range m[0].Values {
		pts[i] = Point(p)
	}
	return pts, nil
}

// formatTime is a Unix timestamp in seconds with milliseconds, which the API accepts for
// time, start and end.
func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

func labels(m map[string]string) string {
	name := m["__name__"]
	var parts []string
	for k, v := range m {
		if k != "__name__" {
			parts = append(parts, fmt.Sprintf("%s=%q", k, v))
		}
	}
	slices.Sort(parts)
	return name + "{" + strings.Join(parts, ", ") + "}"
}

// quote is the query for an error message: on one line, cut to maxQueryText.
func quote(q string) string {
	return strconv.Quote(truncate(strings.Join(strings.Fields(q), " "), maxQueryText))
}

func contentType(resp *http.Response) string {
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		return "no content type"
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	return truncate(ct, 50)
}

// nonJSONText is what a person needs from a non-API answer: its type, and its text when it
// is plain text (a proxy's "upstream connect error"); HTML pages are not worth repeating.
func nonJSONText(ctype string, data []byte) string {
	if ctype == "text/plain" {
		if t := clean(string(data)); t != "" {
			return truncate(t, 200)
		}
	}
	return "answered with " + ctype + ", not the API's JSON"
}

// clean keeps printable characters on one line.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// redact hides a password in a URL that is about to be refused.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable)"
	}
	return u.Redacted()
}
