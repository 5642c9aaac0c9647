package tests

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/workflows"
)

// Benchmarks compare trainyard's HTTP path with the bare SDK call it wraps, on the same dev
// server. The target (README) is a median overhead of at most 1.25x; it is reported as
// p50-ms, never asserted, since timings depend on the machine.

// latencies collects per-operation durations and reports their median and 95th percentile.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
	b.ReportMetric(float64(l[len(l)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(l[len(l)*95/100].Microseconds())/1000, "p95-ms")
}

func benchInput(b *testing.B, id, version string) workflows.ReleaseInput {
	rb, err := runbooks.Catalog{Dir: filepath.Join(sys.dir, "runbooks")}.Get("bench")
	if err != nil {
		b.Fatal(err)
	}
	return workflows.ReleaseInput{ID: id, Runbook: rb, Version: version, Requester: workflows.Principal{Name: "ci", Roles: []string{"deployer"}}, RequestedAt: time.Now().UTC()}
}

func rawStart(ctx context.Context, in workflows.ReleaseInput) error {
	_, err := sys.temporal.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       in.ID,
		TaskQueue:                                workflows.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword(workflows.AttrRunbook).ValueSet(in.Runbook.Name),
			temporal.NewSearchAttributeKeyKeyword(workflows.AttrVersion).ValueSet(in.Version),
			temporal.NewSearchAttributeKeyKeyword(workflows.AttrPhase).ValueSet(string(workflows.PhasePending)),
		),
	}, "ReleaseWorkflow", in)
	return err
}

func BenchmarkStartRelease(b *testing.B) {
	run := time.Now().UnixNano()
	b.Run("trainyard-http", func(b *testing.B) {
		var l latencies
		for i := 0; i < b.N; i++ {
			start := time.Now()
			code, body, _ := call(b, http.MethodPost, "/api/v1/releases", ciToken, map[string]string{
				"runbook": "bench", "version": fmt.Sprintf("s%d-h%d", run, i),
			})
			l = append(l, time.Since(start))
			if code != http.StatusCreated {
				b.Fatalf("start: %d %s", code, body)
			}
		}
		l.report(b)
	})
	b.Run("raw-sdk", func(b *testing.B) {
		var l latencies
		ctx := context.Background()
		for i := 0; i < b.N; i++ {
			version := fmt.Sprintf("s%d-r%d", run, i)
			in := benchInput(b, workflows.ReleaseID("bench", version), version)
			start := time.Now()
			err := rawStart(ctx, in)
			l = append(l, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
		}
		l.report(b)
	})
}

// BenchmarkApprove times one approval of a two-person gate, so the release stays put.
func BenchmarkApprove(b *testing.B) {
	run := time.Now().UnixNano()
	prepare := func(b *testing.B, prefix string, n int) []string {
		ids := make([]string, n)
		for i := range ids {
			version := fmt.Sprintf("a%d-%s%d", run, prefix, i)
			ids[i] = workflows.ReleaseID("bench", version)
			if err := rawStart(context.Background(), benchInput(b, ids[i], version)); err != nil {
				b.Fatal(err)
			}
		}
		for _, id := range ids {
			waitFor(b, id, time.Minute, "waiting for approval", phaseIs(workflows.PhaseAwaitingApproval))
		}
		return ids
	}
	b.Run("trainyard-http", func(b *testing.B) {
		ids := prepare(b, "h", b.N)
		var l latencies
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			code, body, _ := call(b, http.MethodPost, "/api/v1/releases/"+ids[i]+"/approvals", aliceToken,
				map[string]string{"gate": "go", "decision": "approve"})
			l = append(l, time.Since(start))
			if code != http.StatusOK {
				b.Fatalf("approve: %d %s", code, body)
			}
		}
		l.report(b)
	})
	b.Run("raw-sdk", func(b *testing.B) {
		ids := prepare(b, "r", b.N)
		var l latencies
		ctx := context.Background()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			h, err := sys.temporal.Client().UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
				WorkflowID: ids[i], UpdateID: "approve/go/alice", UpdateName: workflows.UpdateApprove,
				Args:         []any{workflows.ApprovalRequest{Gate: "go", Actor: workflows.Principal{Name: "alice", Roles: []string{"release-manager"}}}},
				WaitForStage: client.WorkflowUpdateStageCompleted,
			})
			if err == nil {
				var res workflows.ApprovalResult
				err = h.Get(ctx, &res)
			}
			l = append(l, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
		}
		l.report(b)
	})
}
