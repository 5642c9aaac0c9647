package promserver

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/integrations/prometheus"
)

func TestTestService_AccountsTheErrorRatioExactly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ratio  float64
		n      int64
		errors float64
	}{
		{"no errors", 0, 1000, 0},
		{"a fifth", 0.2, 1000, 200},
		{"a third rounds down per request", 1.0 / 3, 10, 3},
		{"all", 1, 50, 50},
		{"above one is all", 7, 50, 50},
		{"below zero is none", -1, 50, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc := NewTestService()
			t.Cleanup(svc.Close)
			svc.SetErrorRatio(tt.ratio)

			// Hold the lock so the service's own traffic does not interleave.
			svc.mu.Lock()
			defer svc.mu.Unlock()
			ok0, err0 := count(t, svc, "200"), count(t, svc, "500")
			hist0 := observations(t, svc)
			svc.account(tt.n)
			require.Equal(t, tt.errors, count(t, svc, "500")-err0)
			require.Equal(t, float64(tt.n)-tt.errors, count(t, svc, "200")-ok0)
			require.Equal(t, hist0+uint64(tt.n), observations(t, svc))
		})
	}
}

// count is the service's request counter for code.
func count(t *testing.T, svc *TestService, code string) float64 {
	t.Helper()
	mfs, err := svc.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "testsvc_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no testsvc_requests_total{code=%q}", code)
	return 0
}

// observations is how many latencies the histogram holds.
func observations(t *testing.T, svc *TestService) uint64 {
	t.Helper()
	mfs, err := svc.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "testsvc_request_duration_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("no testsvc_request_duration_seconds")
	return 0
}

func TestTestService_ServesMetricsInTextFormat(t *testing.T) {
	t.Parallel()
	svc := NewTestService()
	t.Cleanup(svc.Close)
	svc.SetLatency(300 * time.Millisecond)

	resp, err := http.Get("http://" + svc.Addr() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Content-Type"), "text/plain")
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, want := range []string{
		"# TYPE testsvc_requests_total counter",
		`testsvc_requests_total{code="200"}`,
		`testsvc_requests_total{code="500"} 0`,
		"# TYPE testsvc_request_duration_seconds histogram",
		`testsvc_request_duration_seconds_bucket{le="0.25"}`,
	} {
		require.Contains(t, string(body), want)
	}
}

func TestTestService_CloseTwiceIsFine(t *testing.T) {
	t.Parallel()
	svc := NewTestService()
	svc.Close()
	svc.Close()
	_, err := http.Get("http://" + svc.Addr() + "/metrics")
	require.Error(t, err, "the server is closed")
}

// One Prometheus for the whole flow: starting one takes seconds.
func TestForTest_ScrapesTargetsSetAfterStartAndFollowsTheErrorRatio(t *testing.T) {
	t.Parallel()
	svc := NewTestService()
	t.Cleanup(svc.Close)
	srv := ForTest(t)
	ctx := context.Background()
	q := &prometheus.Client{BaseURL: srv.URL()}

	require.NoError(t, srv.SetTargets(ctx, svc.Addr()))
	eventually(t, "the service is scraped", func() (bool, string) {
		s, err := q.Query(ctx, `up{job="test"}`, time.Time{})
		return err == nil && s.Value == 1, describe(s, err)
	})

	svc.SetErrorRatio(0.5)
	const ratio = `sum(rate(testsvc_requests_total{code="500"}[5s])) / sum(rate(testsvc_requests_total[5s]))`
	eventually(t, "the error ratio reaches a half", func() (bool, string) {
		s, err := q.Query(ctx, ratio, time.Time{})
		return err == nil && math.Abs(s.Value-0.5) < 0.05, describe(s, err)
	})
}

func TestStart_FailureCarriesPrometheusLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "prometheus")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\necho 'level=error msg=\"opening storage failed\" err=\"lock DB directory: resource temporarily unavailable\"' >&2\nexit 1\n"), 0o755))

	_, err := Start(context.Background(), Options{Binary: bin, Dir: filepath.Join(dir, "prom")})
	require.ErrorContains(t, err, "exited during startup")
	require.ErrorContains(t, err, "lock DB directory")
}

func TestStart_RefusesTargetsThatAreNotHostPort(t *testing.T) {
	t.Parallel()
	_, err := Start(context.Background(), Options{Targets: []string{"http://127.0.0.1:8080/metrics"}, Dir: t.TempDir()})
	require.ErrorContains(t, err, "not host:port")
}

func TestStart_MissingBinaryNamesTheFix(t *testing.T) {
	t.Parallel()
	_, err := findBinary("")
	if err == nil {
		// The machine has prometheus: an explicit path that does not exist fails at exec.
		_, err = Start(context.Background(), Options{Binary: filepath.Join(t.TempDir(), "nope"), Dir: t.TempDir()})
		require.ErrorContains(t, err, "nope")
		return
	}
	require.ErrorContains(t, err, "scripts/test-deps.sh")
}

func TestStop_RemovesTheFolderStartMade(t *testing.T) {
	t.Parallel()
	srv, err := Start(context.Background(), Options{})
	require.NoError(t, err)
	require.DirExists(t, srv.Dir())
	require.NoError(t, srv.Stop())
	require.NoError(t, srv.Stop(), "a second Stop returns the first's result")
	require.NoDirExists(t, srv.Dir())
}

// eventually polls cond until it holds, failing with its last description after a generous
// deadline (Prometheus needs a few scrapes; the machine may be busy).
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: not within 60s; last: %s", what, last)
}

func describe(s prometheus.Sample, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%s %g", s.At.Format(time.RFC3339), s.Value)
}

func TestStart_RealFailureCarriesPrometheusReason(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The TSDB folder is a file: Prometheus cannot open its storage.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data"), []byte("not a folder"), 0o644))

	_, err := Start(context.Background(), Options{Dir: dir})
	require.ErrorContains(t, err, "exited during startup")
	require.ErrorContains(t, err, "prometheus log, last lines:")
	require.ErrorContains(t, err, "not a directory")
}
