package prometheus_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/integrations/prometheus"
	"github.com/trainyard/trainyard/internal/promserver"
)

// One real Prometheus for every case: starting one takes seconds.
func TestClient_AgainstRealPrometheus(t *testing.T) {
	t.Parallel()
	svc := promserver.NewTestService()
	t.Cleanup(svc.Close)
	srv := promserver.ForTest(t, svc.Addr())
	c := &prometheus.Client{BaseURL: srv.URL()}
	ctx := context.Background()

	// Wait until both series of the service are in.
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, err := c.Query(ctx, `count(testsvc_requests_total)`, time.Time{})
		if err == nil && s.Value == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the test service was not scraped within 60s: %v, %v\nprometheus log:\n%s", s, err, srv.LogTail(20))
		}
		time.Sleep(250 * time.Millisecond)
	}

	t.Run("scalar", func(t *testing.T) {
		s, err := c.Query(ctx, `scalar(vector(0.25))`, time.Time{})
		require.NoError(t, err)
		require.Equal(t, 0.25, s.Value)
		require.WithinDuration(t, time.Now(), s.At, time.Minute)
	})
	t.Run("one-element vector", func(t *testing.T) {
		s, err := c.Query(ctx, `sum(testsvc_requests_total)`, time.Time{})
		require.NoError(t, err)
		require.Greater(t, s.Value, 0.0)
	})
	t.Run("evaluated at the time given", func(t *testing.T) {
		at := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
		s, err := c.Query(ctx, `time()`, at)
		require.NoError(t, err)
		require.Equal(t, float64(at.UnixMilli())/1000, s.Value)
		require.True(t, at.Equal(s.At), "%s != %s", at, s.At)
	})
	t.Run("non-finite values", func(t *testing.T) {
		for q, check := range map[string]func(float64) bool{
			`vector(0) / 0`:  math.IsNaN,
			`vector(1) / 0`:  func(f float64) bool { return math.IsInf(f, 1) },
			`vector(-1) / 0`: func(f float64) bool { return math.IsInf(f, -1) },
		} {
			s, err := c.Query(ctx, q, time.Time{})
			require.NoError(t, err, q)
			require.True(t, check(s.Value), "%s gave %v", q, s.Value)
		}
	})
	t.Run("several series", func(t *testing.T) {
		_, err := c.Query(ctx, `testsvc_requests_total`, time.Time{})
		require.ErrorIs(t, err, prometheus.ErrManySeries)
		require.ErrorContains(t, err, "2 series")
		require.ErrorContains(t, err, "sum(...)")
	})
	t.Run("no data", func(t *testing.T) {
		_, err := c.Query(ctx, `testsvc_no_such_metric`, time.Time{})
		require.ErrorIs(t, err, prometheus.ErrNoData)
		require.False(t, prometheus.IsRetryable(err))
	})
	t.Run("range vector", func(t *testing.T) {
		_, err := c.Query(ctx, `testsvc_requests_total{code="200"}[10s]`, time.Time{})
		require.ErrorIs(t, err, prometheus.ErrWrongResultType)
	})
	t.Run("prometheus' own error text", func(t *testing.T) {
		_, err := c.Query(ctx, `sum(rate(testsvc_requests_total[5s])`, time.Time{})
		var pe *prometheus.Error
		require.True(t, errors.As(err, &pe), "%v", err)
		require.Equal(t, 400, pe.StatusCode)
		require.Equal(t, "bad_data", pe.Type)
		require.Contains(t, pe.Message, "parse error")
		require.False(t, prometheus.IsRetryable(err))
	})
	t.Run("range", func(t *testing.T) {
		end := time.Now().Truncate(time.Second)
		start := end.Add(-10 * time.Second)
		pts, err := c.QueryRange(ctx, `vector(7)`, start, end, time.Second)
		require.NoError(t, err)
		require.Len(t, pts, 11)
		for i, p := range pts {
			require.Equal(t, 7.0, p.Value)
			require.True(t, start.Add(time.Duration(i)*time.Second).Equal(p.At), "point %d at %s", i, p.At)
		}
	})
	t.Run("range of nothing", func(t *testing.T) {
		end := time.Now()
		_, err := c.QueryRange(ctx, `testsvc_no_such_metric`, end.Add(-time.Minute), end, time.Second)
		require.ErrorIs(t, err, prometheus.ErrNoData)
	})
}
