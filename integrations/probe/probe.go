package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults and bounds of a Check.
const (
	DefaultPercentile = 0.95
	DefaultTimeout    = 10 * time.Second
	// MaxRequests bounds one Check, so a typo in a runbook cannot turn a smoke test into a
	// load test against production.
	MaxRequests = 1000
	// maxBody is how much of each response is read; the rest is dropped.
	maxBody = 1 << 20
	// maxErrors bounds the distinct transport errors a Reason quotes.
	maxErrors = 3
)

// ErrInvalidCheck: the check or URL cannot be probed as given; retrying will not help.
var ErrInvalidCheck = errors.New("invalid probe")

// Check is one HTTP probe.
type Check struct {
	// URL is an absolute http or https URL, requested with GET.
	URL string `json:"url"`
	// ExpectStatus is the one status that passes; 0 passes any of 200-399.
	ExpectStatus int `json:"expectStatus,omitempty"`
	// Requests is how many requests to send, one after another; 0 means 1.
	Requests int `json:"requests,omitempty"`
	// Percentile is the latency percentile judged against MaxLatency, in (0, 1]; 0 means
	// DefaultPercentile.
	Percentile float64 `json:"percentile,omitempty"`
	// MaxLatency bounds the percentile's latency; 0 means no bound.
	MaxLatency time.Duration `json:"maxLatency,omitempty"`
	// Timeout bounds each request; 0 means DefaultTimeout.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// Result is what a Check found.
type Result struct {
	// Requests is how many requests were sent.
	Requests int `json:"requests"`
	// Failures counts requests with an unexpected status or no response at all.
	Failures int `json:"failures"`
	// Statuses counts the responses by status code.
	Statuses map[int]int `json:"statuses"`
	// Latency is the Check's percentile of the latency (to the end of the body, up to 1 MiB)
	// of the requests that got a response; 0 when none did.
	Latency time.Duration `json:"latency"`
	Passed  bool          `json:"passed"`
	// Reason says what failed, or sums up what passed, in words for a person.
	Reason string `json:"reason"`
}

// Runner runs checks; Prober is the real one.
type Runner interface {
	Run(ctx context.Context, c Check) (Result, error)
}

// Prober sends checks' requests.
type Prober struct {
	// Client sends the requests. When nil, Run uses a client with dial and TLS handshake
	// timeouts that does not follow redirects, so a 3xx is judged as the URL's answer.
	Client *http.Client
}

var _ Runner = (*Prober)(nil)

// Run sends c's requests and judges them. The error is ErrInvalidCheck for a check that
// cannot run, or the context's error when ctx ends first (with what was found so far); a
// service that fails or does not answer is a Result that did not pass, not an error.
func (p *Prober) Run(ctx context.Context, c Check) (Result, error) {
	u, err := c.validate()
	if err != nil {
		return Result{}, err
	}
	n := orDefault(c.Requests, 1)
	pct := c.Percentile
	if pct == 0 {
		pct = DefaultPercentile
	}
	timeout := orDefault(c.Timeout, DefaultTimeout)
	client := p.Client
	if client == nil {
		client = newClient(0)
		defer client.CloseIdleConnections()
	}

	res := Result{Statuses: map[int]int{}}
	var latencies []time.Duration
	var errs []string
	noResponse := 0
	for range n {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("probe %s: %w", display(u), err)
		}
		status, took, err := get(ctx, client, u, timeout)
		if err != nil && ctx.Err() != nil {
			return res, fmt.Errorf("probe %s: %w", display(u), ctx.Err())
		}
		res.Requests++
		if err != nil {
			noResponse++
			if msg := describe(err, timeout); !slices.Contains(errs, msg) {
				errs = append(errs, msg)
			}
			continue
		}
		res.Statuses[status]++
		latencies = append(latencies, took)
	}
	res.Latency = percentile(latencies, pct)

	var failed []string
	if bad := c.unexpected(res.Statuses); len(bad) > 0 {
		count := 0
		parts := make([]string, len(bad))
		for i, b := range bad {
			count += b.n
			if i == 0 {
				parts[i] = fmt.Sprintf("%d of %d requests returned %d", b.n, res.Requests, b.status)
			} else {
				parts[i] = fmt.Sprintf("%d returned %d", b.n, b.status)
			}
		}
		res.Failures += count
		failed = append(failed, strings.Join(parts, ", ")+", want "+c.want())
	}
	if noResponse > 0 {
		res.Failures += noResponse
		quoted := errs
		if len(quoted) > maxErrors {
			quoted = append(quoted[:maxErrors:maxErrors], fmt.Sprintf("and %d other errors", len(errs)-maxErrors))
		}
		failed = append(failed, fmt.Sprintf("%d of %d requests got no response: %s", noResponse, res.Requests, strings.Join(quoted, "; ")))
	}
	label := percentileLabel(pct)
	if c.MaxLatency > 0 && len(latencies) > 0 && res.Latency > c.MaxLatency {
		failed = append(failed, fmt.Sprintf("%s latency %s over the %s limit", label, round(res.Latency), round(c.MaxLatency)))
	}

	res.Passed = len(failed) == 0
	if !res.Passed {
		res.Reason = strings.Join(failed, "; ")
		return res, nil
	}
	codes := make([]string, 0, len(res.Statuses))
	for _, code := range sortedKeys(res.Statuses) {
		codes = append(codes, strconv.Itoa(code))
	}
	res.Reason = fmt.Sprintf("all %d requests returned %s; %s latency %s", res.Requests, strings.Join(codes, " or "), label, round(res.Latency))
	if c.MaxLatency > 0 {
		res.Reason += fmt.Sprintf(" within the %s limit", round(c.MaxLatency))
	}
	return res, nil
}

func (c Check) validate() (*url.URL, error) {
	var problems []string
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		problems = append(problems, "the URL is empty")
	case err != nil:
		// url.Error quotes the URL, which may hold a token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		problems = append(problems, fmt.Sprintf("the URL does not parse: %v", err))
	case u.Scheme != "http" && u.Scheme != "https":
		problems = append(problems, fmt.Sprintf("the URL's scheme is %q, want http or https", u.Scheme))
	case u.Host == "":
		problems = append(problems, "the URL has no host")
	}
	if c.ExpectStatus != 0 && (c.ExpectStatus < 100 || c.ExpectStatus > 599) {
		problems = append(problems, fmt.Sprintf("expected status %d is not an HTTP status (100-599)", c.ExpectStatus))
	}
	if c.Requests < 0 || c.Requests > MaxRequests {
		problems = append(problems, fmt.Sprintf("requests %d is not between 1 and %d", c.Requests, MaxRequests))
	}
	if math.IsNaN(c.Percentile) || c.Percentile < 0 || c.Percentile > 1 {
		problems = append(problems, fmt.Sprintf("percentile %v is not between 0 and 1 (write 0.95 for p95)", c.Percentile))
	}
	if c.MaxLatency < 0 {
		problems = append(problems, fmt.Sprintf("max latency %s is negative", c.MaxLatency))
	}
	if c.Timeout < 0 {
		problems = append(problems, fmt.Sprintf("timeout %s is negative", c.Timeout))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalidCheck, strings.Join(problems, "; "))
	}
	return u, nil
}

func (c Check) ok(status int) bool {
	if c.ExpectStatus != 0 {
		return status == c.ExpectStatus
	}
	return status >= 200 && status <= 399
}

func (c Check) want() string {
	if c.ExpectStatus != 0 {
		return strconv.Itoa(c.ExpectStatus)
	}
	return "200-399"
}

type statusCount struct{ status, n int }

// unexpected are the statuses c does not accept, the most frequent first.
func (c Check) unexpected(statuses map[int]int) []statusCount {
	var bad []statusCount
	for _, code := range sortedKeys(statuses) {
		if !c.ok(code) {
			bad = append(bad, statusCount{code, statuses[code]})
		}
	}
	slices.SortStableFunc(bad, func(a, b statusCount) int { return b.n - a.n })
	return bad
}

// get sends one GET and reads the body, returning the status and the time to the body's end.
func get(ctx context.Context, client *http.Client, u *url.URL, timeout time.Duration) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("User-Agent", "trainyard-probe")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody)); err != nil {
		return 0, 0, fmt.Errorf("read the %d response: %w", resp.StatusCode, err)
	}
	return resp.StatusCode, time.Since(start), nil
}

// describe is a transport error in words, without the URL that url.Error repeats.
func describe(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no response within %s", round(timeout))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// percentile is the nearest-rank percentile p of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sorted := slices.Clone(ds)
	slices.Sort(sorted)
	// The epsilon keeps 0.95*20, which floating point makes a hair over 19, at rank 19.
	rank := int(math.Ceil(p*float64(len(sorted)) - 1e-9))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// percentileLabel writes 0.95 as p95 and 0.999 as p99.9.
func percentileLabel(p float64) string {
	return "p" + strconv.FormatFloat(math.Round(p*1000)/10, 'f', -1, 64)
}

// round keeps a duration readable: whole milliseconds from 10ms, three digits below.
func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// display is u without user info or query, which may hold credentials.
func display(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

func sortedKeys(m map[int]int) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// newClient is the client used when the caller gives none: bounded dialing and handshakes
// (each request's own deadline bounds the rest), no redirects followed, and an overall
// timeout when total is set.
func newClient(total time.Duration) *http.Client {
	return &http.Client{
		Timeout: total,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: 5 * time.Second,
			IdleConnTimeout:     30 * time.Second,
			MaxIdleConnsPerHost: 2,
			ForceAttemptHTTP2:   true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
