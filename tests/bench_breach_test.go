package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trainyard/trainyard/workflows"
)

// BenchmarkBreachToRollback measures how long a breach takes to turn into a rollback: from
// the moment the breach is visible in Prometheus (this benchmark polls the analysis's query
// every 50 ms) to the moment the first rollback command starts (it writes the time it
// started). The runbook evaluates every second; the target (README) is at most one
// evaluation interval plus 2 seconds. Reported, never asserted: timings depend on the machine.
//
//	go test -run '^$' -bench BenchmarkBreachToRollback -benchtime 5x ./tests/
func BenchmarkBreachToRollback(b *testing.B) {
	svc := sys.obs.services["benchbreach"]
	run := time.Now().UnixNano()
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		svc.SetErrorRatio(0)
		waitErrorRate(b, "benchbreach", "healthy", healthy)
		id := startBench(b, fmt.Sprintf("b%d-%d", run, i))
		waitFor(b, id, time.Minute, "the watch showing every check", checksKnown)

		svc.SetErrorRatio(0.5)
		visible := waitErrorRate(b, "benchbreach", "above the failure condition", breached)
		started := rollbackStarted(b, id)
		lat = append(lat, started.Sub(visible))
		waitFor(b, id, time.Minute, "rolled back", phaseIs(workflows.PhaseRolledBack))
	}
	svc.SetErrorRatio(0)
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "breach-to-rollback-p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "breach-to-rollback-max-ms")
	b.ReportMetric(1000, "eval-interval-ms")
}

func startBench(b *testing.B, version string) string {
	b.Helper()
	code, body, _ := call(b, "POST", "/api/v1/releases", ciToken, map[string]string{"runbook": "benchbreach", "version": version})
	if code != 201 {
		b.Fatalf("start: %d %s", code, body)
	}
	return workflows.ReleaseID("benchbreach", version)
}

// rollbackStarted waits for the rollback command's timestamp file and reads it.
func rollbackStarted(b *testing.B, id string) time.Time {
	b.Helper()
	path := filepath.Join(sys.siteDir, "e2e", id+".rollback")
	waitForFile(b, path, time.Minute)
	var data []byte
	for range 50 {
		// The file exists before date has written to it.
		if d, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(d))) > 0 {
			data = d
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
	if err != nil {
		b.Fatalf("rollback timestamp %q: %v", data, err)
	}
	return time.Unix(0, int64(secs*1e9))
}
