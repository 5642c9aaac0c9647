package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/integrations/prometheus"
	"github.com/trainyard/trainyard/runbooks"
)

func TestBurnRate_Math(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ratio, objective, want float64
	}{
		{0.0144, 99.9, 14.4}, // the workbook's fast burn: 2% of a 30-day budget in an hour
		{0.006, 99.9, 6},
		{0.001, 99.9, 1}, // exactly the budget
		{0, 99.9, 0},
		{0.2, 99, 20},
		{0.5, 50, 1},
	}
	for _, tt := range tests {
		require.InDelta(t, tt.want, BurnRate(tt.ratio, tt.objective), 1e-9, "%v at %v%%", tt.ratio, tt.objective)
	}
	require.True(t, math.IsInf(BurnRate(0.1, 100), 1), "an objective of 100% has no budget")
	require.True(t, math.IsNaN(BurnRate(math.NaN(), 99.9)))
}

func TestBurnRates_DefaultsToTheWorkbook(t *testing.T) {
	t.Parallel()
	require.Equal(t, []runbooks.BurnRate{
		{Long: runbooks.Duration(time.Hour), Short: runbooks.Duration(5 * time.Minute), Factor: 14.4},
		{Long: runbooks.Duration(6 * time.Hour), Short: runbooks.Duration(30 * time.Minute), Factor: 6},
	}, BurnRates(runbooks.SLO{Objective: 99.9}))
	own := []runbooks.BurnRate{{Long: runbooks.Duration(time.Hour), Short: runbooks.Duration(time.Minute), Factor: 2}}
	require.Equal(t, own, BurnRates(runbooks.SLO{BurnRates: own}))
}

func TestBurnQuery_PutsTheWindowIn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		query  string
		window time.Duration
		want   string
	}{
		{"placeholder", `sum(rate(x{code="500"}[$window])) / sum(rate(x[$window]))`, time.Hour,
			`sum(rate(x{code="500"}[1h])) / sum(rate(x[1h]))`},
		{"braced placeholder", `rate(x[${window}])`, 30 * time.Minute, `rate(x[30m])`},
		{"placeholder wins over written ranges", `rate(x[$window]) / rate(y[5m])`, time.Hour, `rate(x[1h]) / rate(y[5m])`},
		{"written ranges are replaced", `sum(rate(http_requests_total{code=~"5.."}[5m]))
  / sum(rate(http_requests_total[5m]))`, 6 * time.Hour, `sum(rate(http_requests_total{code=~"5.."}[6h]))
  / sum(rate(http_requests_total[6h]))`},
		{"brackets in strings are left alone", `sum(rate(x{code=~"[45].."}[2m])) / sum(rate(x{path='/a[0]'}[2m]))`, 5 * time.Minute,
			`sum(rate(x{code=~"[45].."}[5m])) / sum(rate(x{path='/a[0]'}[5m]))`},
		{"escaped quotes", `rate(x{p="a\"[1m]"}[1m])`, time.Hour, `rate(x{p="a\"[1m]"}[1h])`},
		{"subquery keeps its resolution", `max_over_time(rate(x[1m])[30m:1m])`, time.Hour, `max_over_time(rate(x[1h])[1h:1m])`},
		{"comments are left alone", "rate(x[5m]) # was [1m]\n", time.Hour, "rate(x[1h]) # was [1m]\n"},
		{"compound durations", `rate(x[1h30m])`, 90 * time.Minute, `rate(x[90m])`},
		{"seconds and milliseconds", `rate(x[5m])`, 1500 * time.Millisecond, `rate(x[1500ms])`},
		{"offset stays", `rate(x[5m] offset 1d)`, 10 * time.Second, `rate(x[10s] offset 1d)`},
		{"no ranges", `1 - avg(up)`, time.Hour, `1 - avg(up)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, BurnQuery(runbooks.SLO{ErrorRatio: tt.query}, tt.window))
		})
	}
}

func TestCheckBurn_BreachesOnlyWhenBothWindowsBurn(t *testing.T) {
	t.Parallel()
	slo := runbooks.SLO{Objective: 99.9, ErrorRatio: `sum(rate(e[$window])) / sum(rate(r[$window]))`}
	br := DefaultBurnRates[0]
	long, short := BurnQuery(slo, time.Hour), BurnQuery(slo, 5*time.Minute)
	tests := []struct {
		name        string
		long, short prometheus.FakeResult
		breached    bool
		outcome     Outcome
		message     string
	}{
		{"both burn", prometheus.FakeResult{Value: 0.02}, prometheus.FakeResult{Value: 0.05}, true, OutcomeFailed,
			"error budget of the 99.9% objective burning 20x over 1h and 50x over 5m, above 14.4x over 1h and 5m"},
		{"only the long window: the errors stopped", prometheus.FakeResult{Value: 0.02}, prometheus.FakeResult{Value: 0}, false, OutcomeSuccessful, "within 14.4x"},
		{"only the short window: a blip", prometheus.FakeResult{Value: 0.001}, prometheus.FakeResult{Value: 0.5}, false, OutcomeSuccessful, "within"},
		{"exactly the factor is not faster", prometheus.FakeResult{Value: 0.0144}, prometheus.FakeResult{Value: 0.0144}, false, OutcomeSuccessful, "14.4x over 1h"},
		{"no traffic", prometheus.FakeResult{Value: math.NaN()}, prometheus.FakeResult{Value: math.NaN()}, false, OutcomeInconclusive, "no data or no traffic"},
		{"no data", prometheus.FakeResult{Value: 0.1}, prometheus.FakeResult{Err: prometheus.ErrNoData}, false, OutcomeInconclusive, "no error ratio over 1h or 5m"},
		{"query error", prometheus.FakeResult{Err: errors.New("connection refused")}, prometheus.FakeResult{Value: 0.1}, false, OutcomeError,
			"error ratio over 1h: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := &prometheus.Fake{}
			q.Answer(long, tt.long)
			q.Answer(short, tt.short)
			r := CheckBurn(context.Background(), q, slo, br, t0)
			require.Equal(t, tt.breached, r.Breached)
			require.Equal(t, tt.outcome, r.Outcome, r.Message)
			require.Contains(t, r.Message, tt.message)
			require.Equal(t, br, r.Rule)
			require.Equal(t, t0, r.At)
			require.ElementsMatch(t, []string{long, short}, q.Queries())

			b, err := json.Marshal(r)
			require.NoError(t, err, "NaN burn rates encode")
			var back BurnResult
			require.NoError(t, json.Unmarshal(b, &back))
			require.Equal(t, r.Breached, back.Breached)
		})
	}
}

func TestPromDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 6 * time.Hour: "6h", 90 * time.Minute: "90m", 5 * time.Minute: "5m",
		10 * time.Second: "10s", 1500 * time.Millisecond: "1500ms", 0: "0s", time.Microsecond: "1ms",
	} {
		require.Equal(t, want, PromDuration(d), d.String())
	}
}
