package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/trainyard/trainyard/integrations/prometheus"
	"github.com/trainyard/trainyard/runbooks"
)

// Kinds of CheckState.
const (
	KindAnalysis = "analysis"
	KindBurn     = "burn"
	KindHTTP     = "http"
	// KindWatch reports a Watch that cannot run (see Watch.Validate).
	KindWatch = "watch"
)

// DefaultInterval is a Watch's evaluation interval when it sets none.
const DefaultInterval = 30 * time.Second

// DefaultHTTPFailureLimit is how many probes of an HTTP check in a row may fail before it
// breaches: one dropped connection is not an outage.
const DefaultHTTPFailureLimit = 2

// CheckState is one watched check's latest state against its limit.
type CheckState struct {
	Name string `json:"name"`
	// Kind is analysis, burn or http (watch for a Watch that cannot run).
	Kind string `json:"kind"`
	// Value is the analysis's last value, the lower of a burn-rate limit's two burn rates
	// (the one that must exceed the factor), or an HTTP check's failures in a row.
	Value float64 `json:"value"`
	// Limit says what breaches, for a person: "14.4x over 1h and 5m".
	Limit   string `json:"limit"`
	OK      bool   `json:"ok"`
	Message string `json:"message"`
}

// Breach is the check that broke the watch.
type Breach struct {
	Check   string    `json:"check"`
	Kind    string    `json:"kind"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// Evaluation is every check at one moment.
type Evaluation struct {
	At     time.Time    `json:"at"`
	Checks []CheckState `json:"checks"`
	// Breach is the first breached check (analyses, then burn rates, then HTTP checks); nil
	// when all hold.
	Breach *Breach `json:"breach,omitempty"`
}

// Watch evaluates what a stabilization window (or a canary step) watches: analyses, the
// SLO's burn rates and HTTP checks.
//
// The caller, a heartbeating activity, either calls Evaluate every Interval itself, or calls
// Run, which does exactly that with a real ticker until the window ends or a check breaches.
// Neither belongs in workflow code. A Watch is not safe for concurrent use.
//
// Analyses keep their run's tally across evaluations in State: an analysis breaches when its
// run fails (more failed measurements than its failureLimit, or more than
// DefaultConsecutiveErrorLimit errors in a row); its count is ignored, since the window, not
// the count, ends the watch. A burn-rate limit breaches as soon as both its windows burn too
// fast, or after more than DefaultConsecutiveErrorLimit errors in a row (the watch cannot
// vouch for a release it cannot see). An HTTP check breaches after more than HTTPFailureLimit
// failed probes in a row. State encodes to JSON, so an activity can keep it in its heartbeat
// details and resume after a retry.
type Watch struct {
	prometheus.Querier
	// Analyses are measured every analysis's own Interval, or every evaluation without one.
	Analyses []runbooks.Analysis
	// SLO, when set, has each of its BurnRates (DefaultBurnRates when none) checked every
	// evaluation.
	SLO    *runbooks.SLO
	Checks []runbooks.HTTPCheck
	// Probe runs one HTTP check (GET the URL within its timeout, expect its status, any 2xx
	// without one) and returns nil when it passes; required with Checks.
	Probe func(ctx context.Context, check runbooks.HTTPCheck) error
	// HTTPFailureLimit is how many failed probes in a row a check tolerates;
	// DefaultHTTPFailureLimit when 0.
	HTTPFailureLimit int
	// Interval is the time between evaluations in Run; DefaultInterval when 0.
	Interval time.Duration
	// Baselines are the analyses' values measured before the release, by analysis name.
	Baselines map[string]float64
	// Vars are the release and stage variables analysis conditions may use (see
	// MeasureWith).
	Vars map[string]any
	// Clock is the time evaluations are made at in Run; time.Now when nil.
	Clock func() time.Time
	// State is what the watch remembers between evaluations.
	State WatchState
}

// WatchState is what a Watch carries from one evaluation to the next.
type WatchState struct {
	// Runs are the analyses' runs, by analysis name.
	Runs map[string]RunState `json:"runs,omitempty"`
	// Measured is when each analysis was last measured.
	Measured map[string]time.Time `json:"measured,omitempty"`
	// BurnErrors are each burn-rate limit's errors in a row, by check name.
	BurnErrors map[string]int `json:"burnErrors,omitempty"`
	// ProbeFailures are each HTTP check's failures in a row, by check name.
	ProbeFailures map[string]int `json:"probeFailures,omitempty"`
}

// Validate reports what keeps the watch from running: a missing Querier or Probe, an SLO
// objective out of range, analyses sharing a name.
func (w *Watch) Validate() error {
	var errs []error
	if w.Querier == nil && (len(w.Analyses) > 0 || w.SLO != nil) {
		errs = append(errs, errors.New("analyses and an SLO need a Prometheus querier"))
	}
	if w.Probe == nil && len(w.Checks) > 0 {
		errs = append(errs, errors.New("HTTP checks need a Probe"))
	}
	if w.Interval < 0 {
		errs = append(errs, fmt.Errorf("interval %s is negative", w.Interval))
	}
	if w.SLO != nil && !(w.SLO.Objective > 0 && w.SLO.Objective < 100) {
		errs = append(errs, fmt.Errorf("SLO objective %v%% is not between 0 and 100", w.SLO.Objective))
	}
	seen := map[string]bool{}
	for _, a := range w.Analyses {
		if seen[a.Name] {
			errs = append(errs, fmt.Errorf("analysis %q is watched twice", a.Name))
		}
		seen[a.Name] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	return nil
}

// Evaluate measures every check due at at and returns them all with the first breach. A
// Watch that does not Validate returns a single KindWatch check that is not OK, and no
// breach: it cannot tell.
func (w *Watch) Evaluate(ctx context.Context, at time.Time) Evaluation {
	ev := Evaluation{At: at}
	if err := w.Validate(); err != nil {
		ev.Checks = []CheckState{{Name: "watch", Kind: KindWatch, Message: err.Error()}}
		return ev
	}
	w.initState()
	breach := func(c CheckState) {
		ev.Checks = append(ev.Checks, c)
		if !c.OK && ev.Breach == nil {
			ev.Breach = &Breach{Check: c.Name, Kind: c.Kind, Message: c.Message, At: at}
		}
	}
	for _, a := range w.Analyses {
		breach(w.analysis(ctx, a, at))
	}
	if w.SLO != nil {
		for _, br := range BurnRates(*w.SLO) {
			breach(w.burn(ctx, br, at))
		}
	}
	for _, c := range w.Checks {
		breach(w.http(ctx, c))
	}
	return ev
}

func (w *Watch) initState() {
	if w.State.Runs == nil {
		w.State.Runs = map[string]RunState{}
	}
	if w.State.Measured == nil {
		w.State.Measured = map[string]time.Time{}
	}
	if w.State.BurnErrors == nil {
		w.State.BurnErrors = map[string]int{}
	}
	if w.State.ProbeFailures == nil {
		w.State.ProbeFailures = map[string]int{}
	}
}

func (w *Watch) analysis(ctx context.Context, a runbooks.Analysis, at time.Time) CheckState {
	run, ok := w.State.Runs[a.Name]
	if !ok {
		run = NewRunState(a)
		// The window ends the watch, not the count.
		run.Count = 0
	}
	last, measured := w.State.Measured[a.Name]
	if !measured || a.Interval <= 0 || !at.Before(last.Add(a.Interval.D())) {
		var baseline *float64
		if b, ok := w.Baselines[a.Name]; ok {
			baseline = &b
		}
		run.Add(MeasureWith(ctx, w.Querier, a, w.Vars, baseline, at))
		w.State.Runs[a.Name] = run
		w.State.Measured[a.Name] = at
	}
	c := CheckState{Name: a.Name, Kind: KindAnalysis, Value: math.NaN(), Limit: analysisLimit(a), OK: !run.Failed(), Message: run.Summary()}
	if run.Last != nil {
		c.Value = run.Last.Value
	}
	return c
}

func analysisLimit(a runbooks.Analysis) string {
	var s string
	switch {
	case a.FailureCondition != "" && a.SuccessCondition != "":
		s = fmt.Sprintf("fails when %s; passes when %s", a.FailureCondition, a.SuccessCondition)
	case a.FailureCondition != "":
		s = "fails when " + a.FailureCondition
	default:
		s = "fails unless " + a.SuccessCondition
	}
	return fmt.Sprintf("%s; more than %d failed measurements breach", s, a.FailureLimit)
}

func (w *Watch) burn(ctx context.Context, br runbooks.BurnRate, at time.Time) CheckState {
	name := fmt.Sprintf("slo burn %s/%s", PromDuration(br.Long.D()), PromDuration(br.Short.D()))
	r := CheckBurn(ctx, w.Querier, *w.SLO, br, at)
	c := CheckState{
		Name: name, Kind: KindBurn, Value: math.Min(r.Long, r.Short),
		Limit: fmt.Sprintf("%gx over %s and %s", br.Factor, PromDuration(br.Long.D()), PromDuration(br.Short.D())),
		OK:    !r.Breached, Message: r.Message,
	}
	if r.Outcome != OutcomeError {
		w.State.BurnErrors[name] = 0
		return c
	}
	w.State.BurnErrors[name]++
	if n := w.State.BurnErrors[name]; n > DefaultConsecutiveErrorLimit {
		c.OK = false
		c.Message = fmt.Sprintf("Prometheus unreachable or the error ratio query failing: %d checks in a row errored (limit %d); last: %s",
			n, DefaultConsecutiveErrorLimit, r.Message)
	}
	return c
}

func (w *Watch) http(ctx context.Context, check runbooks.HTTPCheck) CheckState {
	name := check.Name
	if name == "" {
		name = check.URL
	}
	limit := w.HTTPFailureLimit
	if limit <= 0 {
		limit = DefaultHTTPFailureLimit
	}
	expect := "any 2xx"
	if check.ExpectStatus != 0 {
		expect = fmt.Sprint(check.ExpectStatus)
	}
	c := CheckState{Name: name, Kind: KindHTTP, Limit: fmt.Sprintf("GET %s expects %s; more than %d failures in a row breach", check.URL, expect, limit), OK: true}
	err := w.Probe(ctx, check)
	if err == nil {
		w.State.ProbeFailures[name] = 0
		c.Message = "passed"
		return c
	}
	w.State.ProbeFailures[name]++
	n := w.State.ProbeFailures[name]
	c.Value = float64(n)
	c.OK = n <= limit
	c.Message = fmt.Sprintf("%d failures in a row: %v", n, err)
	return c
}

// Run evaluates at once and then every Interval until until has passed (by Clock) or a check
// breaches, calling tick (when not nil) with each evaluation, so the caller can heartbeat.
// It returns the breach, nil when the window ended healthy, or ctx's error when ctx ends
// first. It waits on a real ticker: it belongs in an activity, never in workflow code.
func (w *Watch) Run(ctx context.Context, until time.Time, tick func(Evaluation)) (*Breach, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	clock := w.Clock
	if clock == nil {
		clock = time.Now
	}
	interval := w.Interval
	if interval == 0 {
		interval = DefaultInterval
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		now := clock()
		ev := w.Evaluate(ctx, now)
		if err := ctx.Err(); err != nil {
			// Queries cut short by the end of ctx say nothing about the release.
			return nil, err
		}
		if tick != nil {
			tick(ev)
		}
		if ev.Breach != nil {
			return ev.Breach, nil
		}
		if !now.Before(until) {
			return nil, nil
		}
		timer.Reset(min(interval, until.Sub(now)))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
		}
	}
}
