package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// Stage states of the graph scheduler.
const (
	nodeWaiting = iota
	nodeRunning
	nodeDone
	nodeFailed
)

// runStageGraph runs the stages of a runbook that uses after: every stage whose stages before
// it have deployed starts at once (two regions in parallel), each on its own coroutine doing
// what enterStage does (approvals, freezes, lock) and running its child. Target progress is
// still applied only here, in the main loop. The first failure or an abort stops the stages
// still running and the release rolls back everything deployed, in reverse order.
func (r *release) runStageGraph(ctx workflow.Context, progress workflow.ReceiveChannel) (Phase, string) {
	stages := r.in.Runbook.Stages
	deps := r.in.Runbook.StageDeps()
	state := make([]int, len(stages))
	cancels := make([]workflow.CancelFunc, len(stages))
	var end Phase
	var why string
	running, changes, seen := 0, 0, 0
	stopping := false

	start := func(i int) {
		state[i] = nodeRunning
		running++
		sctx, cancel := workflow.WithCancel(ctx)
		cancels[i] = cancel
		workflow.Go(sctx, func(sctx workflow.Context) {
			defer func() { running--; changes++ }()
			e, w := r.enterStage(sctx, i)
			if e == "" {
				child := r.startStage(sctx, i)
				e, w = r.stageEnded(sctx, i, child.future.Get(sctx, nil))
			}
			if e == "" {
				state[i] = nodeDone
				return
			}
			state[i] = nodeFailed
			if end == "" {
				end, why = e, w
			}
		})
	}
	ready := func(i int) bool {
		for _, d := range deps[i] {
			if state[d] != nodeDone {
				return false
			}
		}
		return true
	}
	for {
		if end == "" && r.abort == nil {
			for i := range stages {
				if state[i] == nodeWaiting && ready(i) {
					start(i)
				}
			}
		}
		if running == 0 {
			break
		}
		_ = workflow.Await(ctx, func() bool {
			return progress.Len() > 0 || changes != seen || ((end != "" || r.abort != nil) && !stopping)
		})
		seen = changes
		r.drainProgress(ctx, progress)
		if (end != "" || r.abort != nil) && !stopping {
			// A failed or aborted release stops the stages still running; rollback waits
			// for them (children wait for their cancellation) to know what they deployed.
			stopping = true
			if r.abort != nil {
				r.event(ctx, "abort requested by %s: stopping the stages still running", r.abort.Actor.Name)
			}
			for i, c := range cancels {
				if state[i] == nodeRunning && c != nil {
					c()
				}
			}
		}
	}
	r.drainProgress(ctx, progress)
	switch {
	case r.abort != nil:
		return PhaseAborted, r.abortReason()
	case end != "":
		return end, why
	}
	return PhaseSucceeded, ""
}
