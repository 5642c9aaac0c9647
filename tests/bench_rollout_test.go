package tests

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/trainyard/trainyard/workflows"
)

// benchTargets is how many do-nothing command targets the overhead benchmark releases.
const benchTargets = 50

// rolloutBenchRunbook is one stage of benchTargets command targets whose commands do
// nothing, one after another.
func rolloutBenchRunbook() string {
	var b strings.Builder
	b.WriteString("name: rollout-bench\nstages:\n  - name: all\n    targets:\n")
	for i := range benchTargets {
		fmt.Fprintf(&b, "      - {name: t%02d, kind: command, site: e2e, deploy: 'true', rollback: 'true'}\n", i)
	}
	return b.String()
}

// BenchmarkRolloutOverhead releases benchTargets command targets that run `true` and compares
// the stage's duration with running the same commands directly: the difference per target is
// what orchestration costs (activity scheduling, the site worker's poll, the progress
// signals). The target is under 50 ms per target on the dev server. It then holds 200
// releases at an approval and reports the main worker's resident memory (target: under
// 300 MB). Timings are reported, never asserted.
func BenchmarkRolloutOverhead(b *testing.B) {
	run := time.Now().UnixNano()
	direct := directCommands(b)
	var perTarget []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		version := fmt.Sprintf("o%d-%d", run, i)
		code, body, _ := call(b, http.MethodPost, "/api/v1/releases", ciToken, map[string]string{"runbook": "rollout-bench", "version": version})
		if code != http.StatusCreated {
			b.Fatalf("start: %d %s", code, body)
		}
		st := waitFor(b, workflows.ReleaseID("rollout-bench", version), 5*time.Minute, "success", phaseIs(workflows.PhaseSucceeded))
		started, done, ok := stageSpan(st, "all")
		if !ok {
			b.Fatalf("no start and end of stage all in the timeline: %+v", st.Timeline)
		}
		perTarget = append(perTarget, (done.Sub(started)-direct)/benchTargets)
	}
	b.StopTimer()
	overhead := latencies(perTarget).median()
	floor := sdkFloor(b)
	b.ReportMetric(ms(overhead), "overhead-ms/target")
	b.ReportMetric(ms(direct/benchTargets), "direct-ms/target")
	// What any workflow pays on this server for one activity after another: the part of the
	// overhead that is the server's, not Trainyard's.
	b.ReportMetric(ms(floor), "sdk-ms/activity")
	b.ReportMetric(ms(overhead-floor), "trainyard-ms/target")
	b.ReportMetric(waitingWorkerRSS(b), "worker-rss-MB@200-waiting")
}

// directCommands is how long running the benchmark's commands directly takes, one after
// another, as the site worker runs them (/bin/sh -c).
func directCommands(b *testing.B) time.Duration {
	start := time.Now()
	for range benchTargets {
		if err := exec.Command("/bin/sh", "-c", "true").Run(); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// stageSpan is when a stage started and when it was deployed, from the release timeline.
func stageSpan(st workflows.ReleaseStatus, stage string) (started, done time.Time, ok bool) {
	for _, ev := range st.Timeline {
		switch ev.Message {
		case "stage " + stage + " started":
			started = ev.At
		case "stage " + stage + " deployed":
			done = ev.At
		}
	}
	return started, done, !started.IsZero() && !done.IsZero()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

var (
	rssOnce sync.Once
	rssMB   float64
)

// waitingWorkerRSS holds 200 releases at the bench runbook's approval and reads the main
// worker's VmRSS. It runs once per process: the releases stay waiting afterwards.
func waitingWorkerRSS(b *testing.B) float64 {
	rssOnce.Do(func() {
		run := time.Now().UnixNano()
		ids := make([]string, 200)
		for i := range ids {
			version := fmt.Sprintf("w%d-%d", run, i)
			ids[i] = workflows.ReleaseID("bench", version)
			if err := rawStart(context.Background(), benchInput(b, ids[i], version)); err != nil {
				b.Fatal(err)
			}
		}
		for _, id := range ids {
			waitFor(b, id, 2*time.Minute, "waiting for approval", phaseIs(workflows.PhaseAwaitingApproval))
		}
		sys.mu.Lock()
		pid := sys.procs["worker"].cmd.Process.Pid
		sys.mu.Unlock()
		kb, err := vmRSS(pid)
		if err != nil {
			b.Fatal(err)
		}
		rssMB = float64(kb) / 1024
	})
	return rssMB
}

// vmRSS is a process's resident memory in KiB, from /proc/<pid>/status.
func vmRSS(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// sdkFloor is how long one no-op activity after another takes in a bare workflow on the same
// dev server, with a worker in this process.
func sdkFloor(b *testing.B) time.Duration {
	const queue = "bench-sdk-floor"
	w := worker.New(sys.temporal.Client(), queue, worker.Options{})
	w.RegisterWorkflowWithOptions(floorWorkflow, workflow.RegisterOptions{Name: "BenchFloor"})
	w.RegisterActivityWithOptions(floorActivity, activity.RegisterOptions{Name: "BenchNoop"})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	ctx := context.Background()
	start := time.Now()
	run, err := sys.temporal.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: queue}, "BenchFloor", benchTargets)
	if err == nil {
		err = run.Get(ctx, nil)
	}
	if err != nil {
		b.Fatal(err)
	}
	return time.Since(start) / benchTargets
}

func floorWorkflow(ctx workflow.Context, n int) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	for range n {
		if err := workflow.ExecuteActivity(ctx, "BenchNoop").Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

func floorActivity(context.Context) error { return nil }
