package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/trainyard/trainyard/activities"
)

// Names of the environment lock: one EnvironmentLockWorkflow per environment grants it to one
// release at a time, first come first served. They are wire contract: never rename them.
const (
	LockWorkflowName = "EnvironmentLockWorkflow"
	// UpdateLockAcquire asks for the lock (sent with update-with-start by an activity).
	UpdateLockAcquire = "acquire"
	// SignalLockRelease gives the lock back, or leaves the queue.
	SignalLockRelease = "release"
	// QueryLockState answers who holds the lock and who waits.
	QueryLockState = "state"
	// SignalLockUpdate tells a waiting release that it holds the lock, moved in the queue,
	// or was superseded.
	SignalLockUpdate = "lock-update"
)

// LockWorkflowID is the id of an environment's lock workflow.
func LockWorkflowID(env string) string { return "lock-" + env }

// Lock update states.
const (
	LockGranted    = "granted"
	LockQueued     = "queued"
	LockSuperseded = "superseded"
)

// LockUpdate is what the lock tells a release about its place.
type LockUpdate struct {
	Environment string `json:"environment"`
	State       string `json:"state"`
	Holder      string `json:"holder,omitempty"`
	// Position is 1 for the first release waiting behind the holder.
	Position int `json:"position,omitempty"`
	// By names the newer release that superseded this one.
	By string `json:"by,omitempty"`
}

// LockState is the lock's state, carried across continue-as-new.
type LockState struct {
	Environment string                   `json:"environment"`
	Holder      *activities.LockRequest  `json:"holder,omitempty"`
	Queue       []activities.LockRequest `json:"queue,omitempty"`
}

// lockLivenessCheck is how often the lock asks whether its holder still runs: a release that
// was terminated by hand never gives its lock back.
const lockLivenessCheck = 10 * time.Minute

// lockHistoryLimit bounds the lock's history: past it the lock continues as new.
const lockHistoryLimit = 2000

// EnvironmentLockWorkflow grants one environment to one release at a time, in the order they
// asked. A newer release of a runbook supersedes an older one of the same runbook that is
// still waiting: shipping the old version after the new one would be a rollback.
func EnvironmentLockWorkflow(ctx workflow.Context, st LockState) error {
	log := workflow.GetLogger(ctx)
	tell := func(id string, u LockUpdate) {
		u.Environment = st.Environment
		if err := workflow.SignalExternalWorkflow(ctx, id, "", SignalLockUpdate, u).Get(ctx, nil); err != nil {
			log.Warn("tell release about the lock", "release", id, "error", err)
		}
	}
	holder := func() string {
		if st.Holder == nil {
			return ""
		}
		return st.Holder.ReleaseID
	}
	// announce tells every waiting release its position.
	announce := func() {
		for i, q := range st.Queue {
			tell(q.ReleaseID, LockUpdate{State: LockQueued, Holder: holder(), Position: i + 1})
		}
	}
	// grantNext hands a free lock to the first in line.
	grantNext := func() bool {
		if st.Holder != nil || len(st.Queue) == 0 {
			return false
		}
		next := st.Queue[0]
		st.Queue = st.Queue[1:]
		st.Holder = &next
		return true
	}
	position := func(id string) int {
		for i, q := range st.Queue {
			if q.ReleaseID == id {
				return i + 1
			}
		}
		return 0
	}

	if err := workflow.SetQueryHandler(ctx, QueryLockState, func() (LockState, error) { return st, nil }); err != nil {
		return fmt.Errorf("register lock state query: %w", err)
	}
	var pendingTells []func()
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateLockAcquire,
		func(ctx workflow.Context, req activities.LockRequest) (activities.LockGrant, error) {
			if holder() == req.ReleaseID {
				return activities.LockGrant{Granted: true}, nil
			}
			if p := position(req.ReleaseID); p > 0 {
				return activities.LockGrant{Holder: holder(), Position: p}, nil
			}
			// A newer release of the same runbook replaces older ones still waiting.
			var superseded []string
			st.Queue = slices.DeleteFunc(st.Queue, func(q activities.LockRequest) bool {
				if q.Runbook == req.Runbook && q.RequestedAt.Before(req.RequestedAt) {
					superseded = append(superseded, q.ReleaseID)
					return true
				}
				return false
			})
			st.Queue = append(st.Queue, req)
			granted := grantNext()
			pendingTells = append(pendingTells, func() {
				for _, id := range superseded {
					tell(id, LockUpdate{State: LockSuperseded, By: req.ReleaseID})
				}
				if len(superseded) > 0 {
					announce()
				}
			})
			if granted {
				return activities.LockGrant{Granted: true}, nil
			}
			return activities.LockGrant{Holder: holder(), Position: position(req.ReleaseID)}, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, req activities.LockRequest) error {
			if req.ReleaseID == "" {
				return temporal.NewApplicationError("a lock request names no release", ErrTypeInvalid)
			}
			return nil
		}}); err != nil {
		return fmt.Errorf("register acquire update: %w", err)
	}

	releases := workflow.GetSignalChannel(ctx, SignalLockRelease)
	var liveness workflow.Future
	for {
		if liveness == nil {
			liveness = workflow.NewTimer(ctx, lockLivenessCheck)
		}
		if err := workflow.Await(ctx, func() bool {
			return releases.Len() > 0 || liveness.IsReady() || len(pendingTells) > 0
		}); err != nil {
			return err
		}
		for len(pendingTells) > 0 {
			f := pendingTells[0]
			pendingTells = pendingTells[1:]
			f()
		}
		var rel activities.LockRelease
		releases.ReceiveAsync(&rel)
		checkHolder := liveness.IsReady()
		if checkHolder {
			liveness = nil
		}
		changed := false
		switch {
		case rel.ReleaseID != "" && rel.ReleaseID == holder():
			st.Holder = nil
			changed = true
		case rel.ReleaseID != "":
			before := len(st.Queue)
			st.Queue = slices.DeleteFunc(st.Queue, func(q activities.LockRequest) bool { return q.ReleaseID == rel.ReleaseID })
			changed = len(st.Queue) != before
		case checkHolder && st.Holder != nil:
			var open bool
			actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				TaskQueue: TaskQueue, StartToCloseTimeout: 30 * time.Second,
				RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 3},
			})
			if err := workflow.ExecuteActivity(actx, acts.ReleaseOpen, st.Holder.ReleaseID).Get(ctx, &open); err == nil && !open {
				log.Warn("lock holder has ended without giving the lock back; releasing it", "release", st.Holder.ReleaseID)
				st.Holder = nil
				changed = true
			}
		}
		if changed {
			if grantNext() {
				tell(st.Holder.ReleaseID, LockUpdate{State: LockGranted})
			}
			announce()
		}
		if st.Holder == nil && len(st.Queue) == 0 && len(pendingTells) == 0 && workflow.AllHandlersFinished(ctx) {
			// Nobody holds or waits: end, so idle environments keep no open workflow. The
			// next request starts the lock again.
			return nil
		}
		if workflow.GetInfo(ctx).GetCurrentHistoryLength() > lockHistoryLimit && len(pendingTells) == 0 && workflow.AllHandlersFinished(ctx) {
			return workflow.NewContinueAsNewError(ctx, EnvironmentLockWorkflow, st)
		}
	}
}
