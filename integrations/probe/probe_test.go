package probe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// serve starts a server whose handler gets the 1-based number of each request.
func serve(t *testing.T, h func(n int64, w http.ResponseWriter, r *http.Request)) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var count atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(count.Add(1), w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &count
}

// status answers code to the requests whose numbers are in codes, 200 to the rest.
func status(codes map[int64]int) func(int64, http.ResponseWriter, *http.Request) {
	return func(n int64, w http.ResponseWriter, _ *http.Request) {
		if code, ok := codes[n]; ok {
			w.WriteHeader(code)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}
}

// closedURL is the URL of a server that is no longer listening.
func closedURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	return srv.URL
}

func TestRun_PassesWhenEveryRequestAnswersAsExpected(t *testing.T) {
	t.Parallel()
	var method, agent atomic.Value
	srv, count := serve(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		method.Store(r.Method)
		agent.Store(r.UserAgent())
		_, _ = w.Write([]byte(`{"status": "ok"}`))
	})

	res, err := (&Prober{}).Run(context.Background(), Check{URL: srv.URL + "/healthz", Requests: 5})
	require.NoError(t, err)
	require.True(t, res.Passed, res.Reason)
	require.Equal(t, 5, res.Requests)
	require.Equal(t, int64(5), count.Load())
	require.Zero(t, res.Failures)
	require.Equal(t, map[int]int{200: 5}, res.Statuses)
	require.Regexp(t, `^all 5 requests returned 200; p95 latency \S+$`, res.Reason)
	require.Equal(t, http.MethodGet, method.Load())
	require.Equal(t, "trainyard-probe", agent.Load())
}

func TestRun_SendsOneRequestByDefault(t *testing.T) {
	t.Parallel()
	srv, count := serve(t, status(nil))
	res, err := (&Prober{}).Run(context.Background(), Check{URL: srv.URL})
	require.NoError(t, err)
	require.True(t, res.Passed, res.Reason)
	require.Equal(t, 1, res.Requests)
	require.Equal(t, int64(1), count.Load())
}

func TestRun_FailsOnUnexpectedStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		codes    map[int64]int
		check    Check
		passed   bool
		failures int
		statuses map[int]int
		reason   string
	}{
		{
			name:     "three 503s of twenty",
			codes:    map[int64]int{4: 503, 9: 503, 17: 503},
			check:    Check{ExpectStatus: 200, Requests: 20},
			failures: 3, statuses: map[int]int{200: 17, 503: 3},
			reason: "3 of 20 requests returned 503, want 200",
		},
		{
			name:     "every request 404 against the default range",
			codes:    map[int64]int{1: 404, 2: 404, 3: 404, 4: 404},
			check:    Check{Requests: 4},
			failures: 4, statuses: map[int]int{404: 4},
			reason: "4 of 4 requests returned 404, want 200-399",
		},
		{
			name:     "several bad statuses, the most frequent first",
			codes:    map[int64]int{1: 404, 5: 503, 6: 503},
			check:    Check{Requests: 10},
			failures: 3, statuses: map[int]int{200: 7, 404: 1, 503: 2},
			reason: "2 of 10 requests returned 503, 1 returned 404, want 200-399",
		},
		{
			name:   "a redirect is the URL's answer and passes the default range",
			codes:  map[int64]int{1: 301, 2: 302},
			check:  Check{Requests: 3},
			passed: true, statuses: map[int]int{200: 1, 301: 1, 302: 1},
			reason: "all 3 requests returned 200 or 301 or 302",
		},
		{
			name:     "a redirect fails an exact 200",
			codes:    map[int64]int{1: 301},
			check:    Check{ExpectStatus: 200},
			failures: 1, statuses: map[int]int{301: 1},
			reason: "1 of 1 requests returned 301, want 200",
		},
		{
			name:   "an exact 204 passes",
			codes:  map[int64]int{1: 204, 2: 204},
			check:  Check{ExpectStatus: 204, Requests: 2},
			passed: true, statuses: map[int]int{204: 2},
			reason: "all 2 requests returned 204",
		},
		{
			name:     "a 200 fails an exact 204",
			codes:    map[int64]int{1: 204},
			check:    Check{ExpectStatus: 204, Requests: 2},
			failures: 1, statuses: map[int]int{200: 1, 204: 1},
			reason: "1 of 2 requests returned 200, want 204",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, status(tt.codes))
			c := tt.check
			c.URL = srv.URL + "/ready"
			res, err := (&Prober{}).Run(context.Background(), c)
			require.NoError(t, err)
			require.Equal(t, tt.passed, res.Passed, res.Reason)
			require.Equal(t, tt.failures, res.Failures)
			require.Equal(t, tt.statuses, res.Statuses)
			if tt.passed {
				require.Regexp(t, "^"+regexp.QuoteMeta(tt.reason)+`; p95 latency \S+$`, res.Reason)
			} else {
				require.Equal(t, tt.reason, res.Reason)
			}
		})
	}
}

func TestRun_UsesTheCallersClient(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusMovedPermanently)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	// srv.Client follows redirects, as http.Client does unless told otherwise.
	res, err := (&Prober{Client: srv.Client()}).Run(context.Background(), Check{URL: srv.URL + "/old", ExpectStatus: 204})
	require.NoError(t, err)
	require.True(t, res.Passed, res.Reason)
	require.Equal(t, map[int]int{204: 1}, res.Statuses)
}

func TestRun_JudgesTheLatencyPercentile(t *testing.T) {
	t.Parallel()
	const slow = 600 * time.Millisecond
	tests := []struct {
		name       string
		slowOnes   map[int64]bool
		requests   int
		percentile float64
		maxLatency time.Duration
		passed     bool
		reason     string
	}{
		{
			name:     "every request slower than a 1ms limit",
			slowOnes: map[int64]bool{1: true}, requests: 1, maxLatency: time.Millisecond,
			reason: `^p95 latency \S+ over the 1ms limit$`,
		},
		{
			name:     "fast requests well within a 10s limit",
			requests: 3, maxLatency: 10 * time.Second, passed: true,
			reason: `^all 3 requests returned 200; p95 latency \S+ within the 10s limit$`,
		},
		{
			name:     "one slow request of ten fails p95",
			slowOnes: map[int64]bool{4: true}, requests: 10, maxLatency: 500 * time.Millisecond,
			reason: `^p95 latency \S+ over the 500ms limit$`,
		},
		{
			name:     "one slow request of ten passes p50",
			slowOnes: map[int64]bool{4: true}, requests: 10, percentile: 0.5, maxLatency: 500 * time.Millisecond, passed: true,
			reason: `^all 10 requests returned 200; p50 latency \S+ within the 500ms limit$`,
		},
		{
			name:     "p99.9 is named as such",
			slowOnes: map[int64]bool{2: true}, requests: 2, percentile: 0.999, maxLatency: 500 * time.Millisecond,
			reason: `^p99\.9 latency \S+ over the 500ms limit$`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
				if tt.slowOnes[n] {
					time.Sleep(slow)
				}
				_, _ = w.Write([]byte("ok"))
			})
			res, err := (&Prober{}).Run(context.Background(), Check{
				URL: srv.URL, Requests: tt.requests, Percentile: tt.percentile, MaxLatency: tt.maxLatency,
			})
			require.NoError(t, err)
			require.Equal(t, tt.passed, res.Passed, res.Reason)
			require.Regexp(t, tt.reason, res.Reason)
			require.Zero(t, res.Failures, "slowness is not a failed request")
			if !tt.passed {
				// The handler slept that long, so the percentile cannot be shorter.
				require.GreaterOrEqual(t, res.Latency, slow)
			}
		})
	}
}

func TestRun_CountsTransportErrorsAsFailures(t *testing.T) {
	t.Parallel()
	res, err := (&Prober{}).Run(context.Background(), Check{URL: closedURL(t) + "/healthz", Requests: 3})
	require.NoError(t, err)
	require.False(t, res.Passed)
	require.Equal(t, 3, res.Requests)
	require.Equal(t, 3, res.Failures)
	require.Empty(t, res.Statuses)
	require.Zero(t, res.Latency)
	require.Regexp(t, `^3 of 3 requests got no response: dial tcp 127\.0\.0\.1:\d+: connect: connection refused$`, res.Reason)
}

func TestRun_ARequestPastItsTimeoutIsAFailure(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if n == 2 {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	res, err := (&Prober{}).Run(context.Background(), Check{URL: srv.URL, Requests: 3, Timeout: 50 * time.Millisecond})
	require.NoError(t, err)
	require.False(t, res.Passed)
	require.Equal(t, 1, res.Failures)
	require.Equal(t, map[int]int{200: 2}, res.Statuses)
	require.Equal(t, "1 of 3 requests got no response: no response within 50ms", res.Reason)
}

func TestRun_ReportsStatusAndTransportFailuresTogether(t *testing.T) {
	t.Parallel()
	srv, _ := serve(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			// Drop the connection without an answer.
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	})
	res, err := (&Prober{}).Run(context.Background(), Check{URL: srv.URL, Requests: 2})
	require.NoError(t, err)
	require.False(t, res.Passed)
	require.Equal(t, 2, res.Failures)
	require.Regexp(t, `^1 of 2 requests returned 502, want 200-399; 1 of 2 requests got no response: .*EOF$`, res.Reason)
}

func TestRun_KeepsURLCredentialsOutOfReasonsAndErrors(t *testing.T) {
	t.Parallel()
	u := closedURL(t)
	withSecrets := "http://probe:hunter2@" + u[len("http://"):] + "/healthz?token=s3cr3t"
	res, err := (&Prober{}).Run(context.Background(), Check{URL: withSecrets})
	require.NoError(t, err)
	require.False(t, res.Passed)
	require.NotContains(t, res.Reason, "hunter2")
	require.NotContains(t, res.Reason, "s3cr3t")

	_, err = (&Prober{}).Run(context.Background(), Check{URL: "http://probe:hunter2@[::1/healthz?token=s3cr3t"})
	require.ErrorIs(t, err, ErrInvalidCheck)
	require.NotContains(t, err.Error(), "hunter2")
	require.NotContains(t, err.Error(), "s3cr3t")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = (&Prober{}).Run(ctx, Check{URL: withSecrets})
	require.ErrorIs(t, err, context.Canceled)
	require.NotContains(t, err.Error(), "hunter2")
	require.NotContains(t, err.Error(), "s3cr3t")
}

func TestRun_RefusesInvalidChecksWithoutSendingAnything(t *testing.T) {
	t.Parallel()
	srv, count := serve(t, status(nil))
	tests := []struct {
		name  string
		check Check
		says  string
	}{
		{name: "empty URL", check: Check{}, says: "the URL is empty"},
		{name: "relative URL", check: Check{URL: "/healthz"}, says: `scheme is ""`},
		{name: "ftp", check: Check{URL: "ftp://example.com/x"}, says: `scheme is "ftp"`},
		{name: "no host", check: Check{URL: "http:///healthz"}, says: "no host"},
		{name: "unparsable", check: Check{URL: "http://[::1"}, says: "does not parse"},
		{name: "status 42", check: Check{URL: srv.URL, ExpectStatus: 42}, says: "expected status 42"},
		{name: "negative requests", check: Check{URL: srv.URL, Requests: -1}, says: "requests -1"},
		{name: "too many requests", check: Check{URL: srv.URL, Requests: MaxRequests + 1}, says: "requests 1001 is not between 1 and 1000"},
		{name: "percentile as a percentage", check: Check{URL: srv.URL, Percentile: 95}, says: "write 0.95 for p95"},
		{name: "negative percentile", check: Check{URL: srv.URL, Percentile: -0.5}, says: "percentile -0.5"},
		{name: "negative latency", check: Check{URL: srv.URL, MaxLatency: -time.Second}, says: "max latency -1s"},
		{name: "negative timeout", check: Check{URL: srv.URL, Timeout: -time.Second}, says: "timeout -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&Prober{}).Run(context.Background(), tt.check)
			require.ErrorIs(t, err, ErrInvalidCheck)
			require.ErrorContains(t, err, tt.says)
		})
	}
	require.Zero(t, count.Load())
}

func TestRun_StopsWhenTheContextIsCancelled(t *testing.T) {
	t.Parallel()
	t.Run("before the first request", func(t *testing.T) {
		t.Parallel()
		srv, count := serve(t, status(nil))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res, err := (&Prober{}).Run(ctx, Check{URL: srv.URL, Requests: 3})
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, res.Passed)
		require.Zero(t, count.Load())
	})
	t.Run("during a request", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		srv, count := serve(t, func(n int64, w http.ResponseWriter, r *http.Request) {
			if n == 2 {
				cancel()
				<-r.Context().Done()
				return
			}
			_, _ = w.Write([]byte("ok"))
		})
		res, err := (&Prober{}).Run(ctx, Check{URL: srv.URL, Requests: 5})
		require.ErrorIs(t, err, context.Canceled)
		require.False(t, res.Passed)
		require.Equal(t, 1, res.Requests, "the cancelled request is not counted")
		require.Equal(t, map[int]int{200: 1}, res.Statuses)
		require.Equal(t, int64(2), count.Load())
	})
}

func TestPercentile_IsTheNearestRank(t *testing.T) {
	t.Parallel()
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	twenty := ms(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
	tests := []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{name: "none", ds: nil, p: 0.95, want: 0},
		{name: "one", ds: ms(7), p: 0.95, want: 7 * time.Millisecond},
		{name: "p95 of twenty is the 19th", ds: twenty, p: 0.95, want: 19 * time.Millisecond},
		{name: "p50 of twenty is the 10th", ds: twenty, p: 0.5, want: 10 * time.Millisecond},
		{name: "p100 is the slowest", ds: twenty, p: 1, want: 20 * time.Millisecond},
		{name: "a tiny percentile is the fastest", ds: twenty, p: 0.001, want: time.Millisecond},
		{name: "p90 of ten is the 9th", ds: ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), p: 0.9, want: 9 * time.Millisecond},
		{name: "p95 of ten is the slowest", ds: ms(10, 2, 3, 4, 5, 6, 7, 8, 9, 1), p: 0.95, want: 10 * time.Millisecond},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, percentile(tt.ds, tt.p), tt.name)
	}
	require.Equal(t, ms(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1), twenty, "the input is left unsorted")
}

func TestPercentileLabel_WritesPercentiles(t *testing.T) {
	t.Parallel()
	for p, want := range map[float64]string{0.95: "p95", 0.5: "p50", 0.99: "p99", 0.999: "p99.9", 1: "p100", 0.29: "p29"} {
		require.Equal(t, want, percentileLabel(p))
	}
}
