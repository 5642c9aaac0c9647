package command

import (
	"context"
	"sync"
)

// Fake is a Runner for tests: RunFunc decides what each command does; Calls records them.
type Fake struct {
	RunFunc func(ctx context.Context, spec Spec) (Result, error)

	mu    sync.Mutex
	calls []Spec
}

// Run records the call and delegates to RunFunc (success with no output when nil).
func (f *Fake) Run(ctx context.Context, spec Spec, _ func(string)) (Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, spec)
	f.mu.Unlock()
	if f.RunFunc == nil {
		return Result{}, nil
	}
	return f.RunFunc(ctx, spec)
}

// Calls returns the commands run so far, in order.
func (f *Fake) Calls() []Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Spec(nil), f.calls...)
}
