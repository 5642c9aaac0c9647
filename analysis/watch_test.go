package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/integrations/prometheus"
	"github.com/trainyard/trainyard/runbooks"
)

var testSLO = runbooks.SLO{Objective: 99, ErrorRatio: `sum(rate(e[$window])) / sum(rate(r[$window]))`,
	BurnRates: []runbooks.BurnRate{{Long: runbooks.Duration(time.Hour), Short: runbooks.Duration(5 * time.Minute), Factor: 10}}}

// answerBurn queues the error ratios of testSLO's long and short windows.
func answerBurn(q *prometheus.Fake, long, short []prometheus.FakeResult) {
	q.Answer(BurnQuery(testSLO, time.Hour), long...)
	q.Answer(BurnQuery(testSLO, 5*time.Minute), short...)
}

func vals(fs ...float64) []prometheus.FakeResult {
	var out []prometheus.FakeResult
	for _, f := range fs {
		out = append(out, prometheus.FakeResult{Value: f})
	}
	return out
}

func TestWatch_AnalysisBreachesWhenItsRunFails(t *testing.T) {
	t.Parallel()
	q := &prometheus.Fake{}
	q.Answer(errQuery, prometheus.FakeResult{Value: 0.001}, prometheus.FakeResult{Value: 0.2}, prometheus.FakeResult{Value: 0.3})
	w := &Watch{Querier: q, Analyses: []runbooks.Analysis{errorRate()}, Baselines: map[string]float64{"error-rate": 0.001}}
	ctx := context.Background()

	ev := w.Evaluate(ctx, t0)
	require.Nil(t, ev.Breach)
	require.Len(t, ev.Checks, 1)
	c := ev.Checks[0]
	require.Equal(t, CheckState{Name: "error-rate", Kind: KindAnalysis, Value: 0.001, OK: true,
		Limit:   "fails when result.value >= 0.05; passes when result.value < 0.01 && result.value <= result.baseline * 1.1; more than 1 failed measurements breach",
		Message: c.Message}, c)

	ev = w.Evaluate(ctx, t0.Add(time.Minute))
	require.Nil(t, ev.Breach, "one failure is within failureLimit 1")
	require.Equal(t, 0.2, ev.Checks[0].Value)

	ev = w.Evaluate(ctx, t0.Add(2*time.Minute))
	require.NotNil(t, ev.Breach)
	require.Equal(t, Breach{Check: "error-rate", Kind: KindAnalysis, At: t0.Add(2 * time.Minute), Message: ev.Breach.Message}, *ev.Breach)
	require.Contains(t, ev.Breach.Message, "2 failed (limit 1)")
	require.Contains(t, ev.Breach.Message, `failureCondition "result.value >= 0.05" holds for value 0.3`)
}

func TestWatch_MeasuresAnAnalysisEveryItsInterval(t *testing.T) {
	t.Parallel()
	q := &prometheus.Fake{}
	q.Answer("q", prometheus.FakeResult{Value: 1})
	a := runbooks.Analysis{Name: "a", Query: "q", FailureCondition: "result.value > 5", Interval: runbooks.Duration(time.Minute)}
	w := &Watch{Querier: q, Analyses: []runbooks.Analysis{a}}
	for _, s := range []int{0, 20, 40, 60, 80, 119, 120} {
		ev := w.Evaluate(context.Background(), t0.Add(time.Duration(s)*time.Second))
		require.Equal(t, 1.0, ev.Checks[0].Value, "the last value is reported between measurements")
	}
	require.Len(t, q.Queries(), 3, "measured at 0s, 60s and 120s")
}

func TestWatch_BurnRateBreachAndHeal(t *testing.T) {
	t.Parallel()
	q := &prometheus.Fake{}
	answerBurn(q, vals(0.2), vals(0.3, 0)) // the long window keeps burning
	w := &Watch{Querier: q, SLO: &testSLO}

	ev := w.Evaluate(context.Background(), t0)
	require.NotNil(t, ev.Breach)
	require.Equal(t, "slo burn 1h/5m", ev.Breach.Check)
	require.Equal(t, KindBurn, ev.Breach.Kind)
	c := ev.Checks[0]
	require.InDelta(t, 20, c.Value, 1e-9, "the lower of 20x and 30x")
	require.Equal(t, "10x over 1h and 5m", c.Limit)
	require.False(t, c.OK)

	ev = w.Evaluate(context.Background(), t0.Add(time.Minute))
	require.Nil(t, ev.Breach, "the short window has healed")
	require.True(t, ev.Checks[0].OK)
}

func TestWatch_BurnErrorsBreachAfterTheLimit(t *testing.T) {
	t.Parallel()
	q := &prometheus.Fake{}
	down := prometheus.FakeResult{Err: errors.New("dial tcp 127.0.0.1:9090: connection refused")}
	answerBurn(q, []prometheus.FakeResult{down}, []prometheus.FakeResult{down})
	w := &Watch{Querier: q, SLO: &testSLO}
	for i := range DefaultConsecutiveErrorLimit {
		ev := w.Evaluate(context.Background(), t0.Add(time.Duration(i)*time.Minute))
		require.Nil(t, ev.Breach, "error %d is tolerated", i+1)
		require.True(t, math.IsNaN(ev.Checks[0].Value))
	}
	ev := w.Evaluate(context.Background(), t0.Add(time.Hour))
	require.NotNil(t, ev.Breach)
	require.Contains(t, ev.Breach.Message, "Prometheus unreachable or the error ratio query failing: 5 checks in a row errored (limit 4); last: error ratio over 1h: dial tcp")
}

func TestWatch_HTTPCheckBreachesAfterFailuresInARow(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	results := []error{errors.New("503"), nil, errors.New("503"), errors.New("503"), errors.New("connection reset")}
	w := &Watch{
		Checks: []runbooks.HTTPCheck{{URL: "https://shop.example.com/healthz", ExpectStatus: 200}},
		Probe: func(_ context.Context, c runbooks.HTTPCheck) error {
			return results[calls.Add(1)-1]
		},
	}
	var breached []bool
	for i := range results {
		ev := w.Evaluate(context.Background(), t0.Add(time.Duration(i)*time.Second))
		breached = append(breached, ev.Breach != nil)
		if ev.Breach != nil {
			require.Equal(t, "https://shop.example.com/healthz", ev.Breach.Check)
			require.Equal(t, "3 failures in a row: connection reset", ev.Breach.Message)
			require.Equal(t, "GET https://shop.example.com/healthz expects 200; more than 2 failures in a row breach", ev.Checks[0].Limit)
		}
	}
	require.Equal(t, []bool{false, false, false, false, true}, breached)
}

func TestWatch_ReportsEveryCheckAndTheFirstBreach(t *testing.T) {
	t.Parallel()
	q := &prometheus.Fake{}
	q.Answer(errQuery, prometheus.FakeResult{Value: 0.001})
	answerBurn(q, vals(0.5), vals(0.5))
	w := &Watch{
		Querier: q, Analyses: []runbooks.Analysis{errorRate()}, SLO: &testSLO,
		Baselines:        map[string]float64{"error-rate": 0.001},
		Checks:           []runbooks.HTTPCheck{{Name: "healthz", URL: "http://x/healthz"}},
		Probe:            func(context.Context, runbooks.HTTPCheck) error { return errors.New("down") },
		HTTPFailureLimit: -1, // the default
	}
	ev := w.Evaluate(context.Background(), t0)
	var names []string
	for _, c := range ev.Checks {
		names = append(names, c.Kind+":"+c.Name)
	}
	require.Equal(t, []string{"analysis:error-rate", "burn:slo burn 1h/5m", "http:healthz"}, names)
	require.Equal(t, "slo burn 1h/5m", ev.Breach.Check)

	b, err := json.Marshal(ev)
	require.NoError(t, err)
	var back Evaluation
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, ev, back)
}

func TestWatch_Validate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		w       Watch
		message string
	}{
		{"analyses without a querier", Watch{Analyses: []runbooks.Analysis{errorRate()}}, "need a Prometheus querier"},
		{"checks without a probe", Watch{Checks: []runbooks.HTTPCheck{{URL: "http://x"}}}, "HTTP checks need a Probe"},
		{"objective out of range", Watch{Querier: &prometheus.Fake{}, SLO: &runbooks.SLO{Objective: 100}}, "objective 100% is not between 0 and 100"},
		{"analysis twice", Watch{Querier: &prometheus.Fake{}, Analyses: []runbooks.Analysis{errorRate(), errorRate()}}, `"error-rate" is watched twice`},
		{"negative interval", Watch{Interval: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.ErrorContains(t, tt.w.Validate(), tt.message)
			ev := tt.w.Evaluate(context.Background(), t0)
			require.Nil(t, ev.Breach, "a watch that cannot run cannot tell")
			require.Len(t, ev.Checks, 1)
			require.Equal(t, KindWatch, ev.Checks[0].Kind)
			require.False(t, ev.Checks[0].OK)
			_, err := tt.w.Run(context.Background(), t0, nil)
			require.ErrorContains(t, err, tt.message)
		})
	}
	require.NoError(t, (&Watch{}).Validate(), "watching nothing is fine")
}

func TestWatch_ResumesFromItsState(t *testing.T) {
	t.Parallel()
	q := &prometheus.Fake{}
	q.Answer(errQuery, prometheus.FakeResult{Value: 0.2})
	w := &Watch{Querier: q, Analyses: []runbooks.Analysis{errorRate()}, Baselines: map[string]float64{"error-rate": 0.001}}
	require.Nil(t, w.Evaluate(context.Background(), t0).Breach)
	b, err := json.Marshal(w.State)
	require.NoError(t, err)

	// A retried activity starts a new Watch from its heartbeat details.
	again := &Watch{Querier: q, Analyses: w.Analyses, Baselines: w.Baselines}
	require.NoError(t, json.Unmarshal(b, &again.State))
	require.NotNil(t, again.Evaluate(context.Background(), t0.Add(time.Minute)).Breach, "the failure before the retry counts")
}

// clock advances a minute each time it is read.
func clock() func() time.Time {
	var n atomic.Int64
	return func() time.Time { return t0.Add(time.Duration(n.Add(1)-1) * time.Minute) }
}

func TestWatch_RunEndsWhenTheWindowEndsHealthy(t *testing.T) {
	t.Parallel()
	q := &prometheus.Fake{}
	answerBurn(q, vals(0), vals(0))
	w := &Watch{Querier: q, SLO: &testSLO, Interval: time.Millisecond, Clock: clock()}
	var ticks []time.Time
	breach, err := w.Run(context.Background(), t0.Add(3*time.Minute), func(ev Evaluation) { ticks = append(ticks, ev.At) })
	require.NoError(t, err)
	require.Nil(t, breach)
	require.Equal(t, []time.Time{t0, t0.Add(time.Minute), t0.Add(2 * time.Minute), t0.Add(3 * time.Minute)}, ticks)
}

func TestWatch_RunStopsAtTheFirstBreach(t *testing.T) {
	t.Parallel()
	q := &prometheus.Fake{}
	answerBurn(q, vals(0.5), vals(0, 0, 0.5))
	w := &Watch{Querier: q, SLO: &testSLO, Interval: time.Millisecond, Clock: clock()}
	n := 0
	breach, err := w.Run(context.Background(), t0.Add(time.Hour), func(Evaluation) { n++ })
	require.NoError(t, err)
	require.NotNil(t, breach)
	require.Equal(t, t0.Add(2*time.Minute), breach.At)
	require.Equal(t, 3, n)
}

func TestWatch_RunReturnsWhenContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	q := &prometheus.Fake{QueryFunc: func(ctx context.Context, _ string, _ time.Time) (prometheus.Sample, error) {
		cancel()
		return prometheus.Sample{}, ctx.Err()
	}}
	w := &Watch{Querier: q, SLO: &testSLO, Interval: time.Hour}
	breach, err := w.Run(ctx, time.Now().Add(time.Hour), func(Evaluation) { t.Error("an evaluation cut short by the context is not reported") })
	require.ErrorIs(t, err, context.Canceled)
	require.Nil(t, breach)
}
