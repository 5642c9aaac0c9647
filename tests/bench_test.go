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

// latencies collects per-operation durations.
type latencies []time.Duration

func (l latencies) median() time.Duration {
	s := append(latencies(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// report gives both medians and their ratio: the two paths run interleaved, one call each per
// iteration, so background work (workers running the releases just started) weighs on both
// alike.
func report(b *testing.B, trainyard, raw latencies) {
	if len(trainyard) == 0 || len(raw) == 0 {
		return
	}
	t, r := trainyard.median(), raw.median()
	b.ReportMetric(float64(t.Microseconds())/1000, "trainyard-p50-ms")
	b.ReportMetric(float64(r.Microseconds())/1000, "sdk-p50-ms")
	b.ReportMetric(float64(t)/float64(r), "overhead-x")
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
	ctx := context.Background()
	var viaAPI, viaSDK latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		code, body, _ := call(b, http.MethodPost, "/api/v1/releases", ciToken, map[string]string{
			"runbook": "bench", "version": fmt.Sprintf("s%d-h%d", run, i),
		})
		viaAPI = append(viaAPI, time.Since(start))
		if code != http.StatusCreated {
			b.Fatalf("start: %d %s", code, body)
		}

		version := fmt.Sprintf("s%d-r%d", run, i)
		in := benchInput(b, workflows.ReleaseID("bench", version), version)
		start = time.Now()
		err := rawStart(ctx, in)
		viaSDK = append(viaSDK, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
	}
	report(b, viaAPI, viaSDK)
}

// BenchmarkApprove times one approval of a two-person gate, so the release stays put.
func BenchmarkApprove(b *testing.B) {
	run := time.Now().UnixNano()
	ids := make([]string, 2*b.N)
	for i := range ids {
		version := fmt.Sprintf("a%d-%d", run, i)
		ids[i] = workflows.ReleaseID("bench", version)
		if err := rawStart(context.Background(), benchInput(b, ids[i], version)); err != nil {
			b.Fatal(err)
		}
	}
	for _, id := range ids {
		waitFor(b, id, 5*time.Minute, "waiting for approval", phaseIs(workflows.PhaseAwaitingApproval))
	}
	ctx := context.Background()
	var viaAPI, viaSDK latencies
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		code, body, _ := call(b, http.MethodPost, "/api/v1/releases/"+ids[2*i]+"/approvals", aliceToken,
			map[string]string{"gate": "go", "decision": "approve"})
		viaAPI = append(viaAPI, time.Since(start))
		if code != http.StatusOK {
			b.Fatalf("approve: %d %s", code, body)
		}

		start = time.Now()
		h, err := sys.temporal.Client().UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: ids[2*i+1], UpdateID: "approve/go/alice", UpdateName: workflows.UpdateApprove,
			Args:         []any{workflows.ApprovalRequest{Gate: "go", Actor: workflows.Principal{Name: "alice", Roles: []string{"release-manager"}}}},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err == nil {
			var res workflows.ApprovalResult
			err = h.Get(ctx, &res)
		}
		viaSDK = append(viaSDK, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
	}
	report(b, viaAPI, viaSDK)
}
