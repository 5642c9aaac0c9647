package tests

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trainyard/trainyard/workflows"
)

// readinessGates is how many gates the readiness benchmark runs; gate i takes i × gateStep,
// so the slowest takes readinessGates × gateStep.
const (
	readinessGates = 10
	gateStep       = 100 * time.Millisecond
)

// BenchmarkReadinessPhase measures the readiness phase of a release with ten synthetic gates
// of different lengths against the slowest gate's own time. Gates run at once, so the ratio
// is the orchestration's cost; target: at most 1.1.
func BenchmarkReadinessPhase(b *testing.B) {
	var mu sync.Mutex
	slowest := map[string]time.Duration{} // by release, the slowest probe as the target saw it
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		if rel := r.URL.Query().Get("release"); rel != "" {
			mu.Lock()
			slowest[rel] = max(slowest[rel], time.Since(start))
			mu.Unlock()
		}
	}))
	b.Cleanup(srv.Close)

	// The gates' URLs name the release, through $TRAINYARD_RELEASE-free means: one runbook per
	// run, its gates pointing at this server.
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	name := "bench-ready-" + run
	var gates strings.Builder
	for i := 1; i <= readinessGates; i++ {
		fmt.Fprintf(&gates, "    - {name: g%02d, type: synthetic, url: \"%s/?ms=%d&release=%s\", timeout: 1m}\n",
			i, srv.URL, i*int(gateStep/time.Millisecond), name)
	}
	body := scripts() + "name: " + name + "\nreadiness:\n  gates:\n" + gates.String() + stages()
	path := filepath.Join(sys.dir, "runbooks", name+".yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = os.Remove(path) })
	sys.mu.Lock()
	server := sys.procs["server"]
	sys.mu.Unlock()
	if err := server.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, list, _ := call(b, http.MethodGet, "/api/v1/runbooks", ciToken, nil)
		if strings.Contains(string(list), name) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the server did not offer %s after SIGHUP:\n%s", name, sys.logTail("server"))
		}
		time.Sleep(50 * time.Millisecond)
	}

	var ratios []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		code, out, _ := call(b, http.MethodPost, "/api/v1/releases", ciToken, map[string]string{"runbook": name, "version": fmt.Sprintf("%d.0.0", i)})
		if code != http.StatusCreated {
			b.Fatalf("start: %d %s", code, out)
		}
		id := workflows.ReleaseID(name, fmt.Sprintf("%d.0.0", i))
		st := waitFor(b, id, time.Minute, "all gates decided", func(s workflows.ReleaseStatus) bool {
			if len(s.Gates) != readinessGates {
				return false
			}
			for _, g := range s.Gates {
				if g.FinishedAt == nil {
					return false
				}
			}
			return true
		})
		var first, last time.Time
		for _, g := range st.Gates {
			if g.State != "passed" {
				b.Fatalf("gate %s %s: %s", g.Name, g.State, g.Summary)
			}
			if first.IsZero() || g.StartedAt.Before(first) {
				first = *g.StartedAt
			}
			if g.FinishedAt.After(last) {
				last = *g.FinishedAt
			}
		}
		mu.Lock()
		own := slowest[name]
		delete(slowest, name)
		mu.Unlock()
		ratios = append(ratios, float64(last.Sub(first))/float64(own))
	}
	b.StopTimer()
	var sum float64
	for _, r := range ratios {
		sum += r
	}
	b.ReportMetric(sum/float64(len(ratios)), "phase/slowest")
}
