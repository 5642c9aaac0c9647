package prometheus

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Fake is a Querier for callers' tests: it answers each query from Results, in order, the
// last one repeating; a query it has no answer for is an error. QueryFunc and RangeFunc, when
// set, answer instead. Client itself is tested against a real Prometheus.
type Fake struct {
	// QueryFunc answers Query when set.
	QueryFunc func(ctx context.Context, query string, at time.Time) (Sample, error)
	// RangeFunc answers QueryRange when set.
	RangeFunc func(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]Point, error)

	mu      sync.Mutex
	results map[string][]FakeResult
	queries []string
}

// FakeResult is one answer of Fake: a value, or an error (ErrNoData, an *Error, ...).
type FakeResult struct {
	Value float64
	Err   error
}

var _ Querier = (*Fake)(nil)

// Answer queues answers to query: the first call gets the first, and the last repeats.
func (f *Fake) Answer(query string, results ...FakeResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.results == nil {
		f.results = map[string][]FakeResult{}
	}
	f.results[query] = append(f.results[query], results...)
}

// Queries returns every query asked, oldest first.
func (f *Fake) Queries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.queries...)
}

// Query answers from QueryFunc or the queued answers.
func (f *Fake) Query(ctx context.Context, query string, at time.Time) (Sample, error) {
	f.record(query)
	if f.QueryFunc != nil {
		return f.QueryFunc(ctx, query, at)
	}
	r, err := f.next(query)
	if err != nil {
		return Sample{}, err
	}
	return Sample{Value: r.Value, At: at}, r.Err
}

// QueryRange answers from RangeFunc or, without it, repeats the next queued answer at every
// step.
func (f *Fake) QueryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]Point, error) {
	f.record(query)
	if f.RangeFunc != nil {
		return f.RangeFunc(ctx, query, start, end, step)
	}
	if step <= 0 {
		return nil, fmt.Errorf("%w: step %s must be above 0", ErrInvalidInput, step)
	}
	r, err := f.next(query)
	if err != nil {
		return nil, err
	}
	if r.Err != nil {
		return nil, r.Err
	}
	var pts []Point
	for t := start; !t.After(end); t = t.Add(step) {
		pts = append(pts, Point{At: t, Value: r.Value})
	}
	return pts, nil
}

func (f *Fake) record(query string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, query)
}

func (f *Fake) next(query string) (FakeResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs := f.results[query]
	if len(rs) == 0 {
		return FakeResult{}, fmt.Errorf("fake prometheus: no answer for query %s", quote(query))
	}
	r := rs[0]
	if len(rs) > 1 {
		f.results[query] = rs[1:]
	}
	return r, nil
}
