package runbooks

import (
	"fmt"
	"sync"
	"time"
)

// Registry is the set of runbooks a server offers releases of. It is loaded at start and
// again on Reload (the server calls it on SIGHUP), so a release is never started from a
// folder that is half edited, and a release keeps the runbook it started with.
type Registry struct {
	catalog Catalog

	mu       sync.RWMutex
	byName   map[string]Runbook
	all      []Runbook
	problems error
	loadedAt time.Time
}

// NewRegistry loads dir. Invalid files are reported by All and Problems, and the valid
// runbooks are served: one broken file must not keep the server from starting. It fails only
// when the folder cannot be read.
func NewRegistry(dir string) (*Registry, error) {
	r := &Registry{catalog: Catalog{Dir: dir}}
	rbs, problems := r.catalog.All()
	if rbs == nil && problems != nil {
		if _, err := r.catalog.files(); err != nil {
			return nil, err
		}
	}
	r.swap(rbs, problems)
	return r, nil
}

// Reload reads the folder again. If any file is invalid, or the folder cannot be read, the
// runbooks in use stay as they were and the error says why: a reload applies all or nothing.
func (r *Registry) Reload() error {
	rbs, problems := r.catalog.All()
	if problems != nil {
		return fmt.Errorf("runbooks in %s not reloaded, the ones loaded at %s stay in use: %w",
			r.catalog.Dir, r.LoadedAt().Format(time.RFC3339), problems)
	}
	r.swap(rbs, nil)
	return nil
}

func (r *Registry) swap(rbs []Runbook, problems error) {
	byName := make(map[string]Runbook, len(rbs))
	for _, rb := range rbs {
		byName[rb.Name] = rb
	}
	r.mu.Lock()
	r.byName, r.all, r.problems, r.loadedAt = byName, rbs, problems, time.Now()
	r.mu.Unlock()
}

// Get returns the loaded runbook with the given name.
func (r *Registry) Get(name string) (Runbook, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if rb, ok := r.byName[name]; ok {
		return rb, nil
	}
	if r.problems != nil {
		return Runbook{}, fmt.Errorf("%w: %q (and some runbook files are invalid: %v)", ErrNotFound, name, r.problems)
	}
	return Runbook{}, fmt.Errorf("%w: %q", ErrNotFound, name)
}

// All returns the loaded runbooks, by name, and the problems of the files that were not
// loaded.
func (r *Registry) All() ([]Runbook, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return append([]Runbook(nil), r.all...), r.problems
}

// Dir is the folder the runbooks come from.
func (r *Registry) Dir() string { return r.catalog.Dir }

// LoadedAt is when the runbooks in use were read.
func (r *Registry) LoadedAt() time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.loadedAt
}
