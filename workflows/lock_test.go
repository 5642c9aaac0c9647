package workflows

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/store"
)

func (s *ReleaseSuite) TestLock_AQueuedReleaseWaitsItsTurnThenDeploys() {
	s.input.Runbook.Approvals = nil
	s.lockGrant = queuedIn("production", "release-shop-1.0.9")
	var queued ReleaseStatus
	s.env.RegisterDelayedCallback(func() {
		queued = s.status()
		s.env.SignalWorkflow(SignalLockUpdate, LockUpdate{Environment: "production", State: LockGranted})
	}, time.Hour)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal(PhaseQueued, queued.Phase)
	s.Equal(&LockStatus{Environment: "production", Holder: "release-shop-1.0.9", Position: 1}, queued.Lock)
	s.Equal([]string{"deploy:stg-a", "deploy:stg-b"}, deploysOf(queued), "production waited for the lock")
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	s.Nil(st.Lock)
	s.Len(s.deploys(), 4)
}

// queuedIn answers lock requests for env with a place behind holder, and grants the others.
func queuedIn(env, holder string) func(activities.LockRequest) activities.LockGrant {
	return func(req activities.LockRequest) activities.LockGrant {
		if req.Environment == env {
			return activities.LockGrant{Holder: holder, Position: 1}
		}
		return activities.LockGrant{Granted: true}
	}
}

// deploysOf lists the targets a status shows deployed.
func deploysOf(st ReleaseStatus) []string {
	var out []string
	for _, stage := range st.Stages {
		for _, t := range stage.Targets {
			if t.State == StateDeployed {
				out = append(out, "deploy:"+t.Name)
			}
		}
	}
	return out
}

func (s *ReleaseSuite) TestLock_ASupersededReleaseEndsWithoutRollingBack() {
	s.input.Runbook.Approvals = nil
	s.lockGrant = queuedIn("production", "release-other-2.0.0")
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(SignalLockUpdate, LockUpdate{Environment: "production", State: LockSuperseded, By: "release-shop-1.2.0"})
	}, time.Hour)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSuperseded, st.Phase)
	s.Contains(st.Failure, "superseded by release-shop-1.2.0")
	s.Equal([]string{"deploy:stg-a", "deploy:stg-b"}, s.ops(), "the newer release owns staging now: nothing is rolled back")
}

// lockEnv runs the lock workflow alone, recording what it tells releases.
type lockEnv struct {
	env  *testsuite.TestWorkflowEnvironment
	mu   sync.Mutex
	told []string // "release state position"
}

func newLockEnv(t *testing.T) *lockEnv {
	var ts testsuite.WorkflowTestSuite
	ts.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	l := &lockEnv{env: ts.NewTestWorkflowEnvironment()}
	l.env.RegisterWorkflow(EnvironmentLockWorkflow)
	l.env.RegisterActivity(&activities.Activities{})
	l.env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, "", SignalLockUpdate, mock.Anything).Return(
		func(_, id, _, _ string, arg any) error {
			u := arg.(LockUpdate)
			l.mu.Lock()
			l.told = append(l.told, id+" "+u.State+" "+u.By)
			l.mu.Unlock()
			return nil
		})
	return l
}

func (l *lockEnv) acquire(t *testing.T, at time.Duration, id, runbook string, want activities.LockGrant) {
	l.env.RegisterDelayedCallback(func() {
		l.env.UpdateWorkflow(UpdateLockAcquire, "acquire/"+id, &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { t.Errorf("acquire %s refused: %v", id, err) },
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				require.Equal(t, want, v, "answer to %s", id)
			},
		}, activities.LockRequest{Environment: "production", ReleaseID: id, Runbook: runbook, RequestedAt: time.Unix(int64(at/time.Second), 0)})
	}, at)
}

func (l *lockEnv) release(at time.Duration, id string) {
	l.env.RegisterDelayedCallback(func() {
		l.env.SignalWorkflow(SignalLockRelease, activities.LockRelease{ReleaseID: id})
	}, at)
}

func TestLockWorkflow_GrantsInOrderAndSupersedesOlderWaitersOfTheSameRunbook(t *testing.T) {
	l := newLockEnv(t)
	l.acquire(t, time.Second, "a-1", "a", activities.LockGrant{Granted: true})
	l.acquire(t, 2*time.Second, "b-1", "b", activities.LockGrant{Holder: "a-1", Position: 1})
	l.acquire(t, 3*time.Second, "c-1", "c", activities.LockGrant{Holder: "a-1", Position: 2})
	// A newer release of b takes b-1's place at the end of the line.
	l.acquire(t, 4*time.Second, "b-2", "b", activities.LockGrant{Holder: "a-1", Position: 2})
	l.release(5*time.Second, "a-1")
	l.release(6*time.Second, "c-1")
	l.release(7*time.Second, "b-2")

	l.env.ExecuteWorkflow(EnvironmentLockWorkflow, LockState{Environment: "production"})

	require.NoError(t, l.env.GetWorkflowError(), "the lock ends once nobody holds or waits for it")
	require.Contains(t, l.told, "b-1 superseded b-2")
	require.Contains(t, l.told, "c-1 granted ")
	require.Contains(t, l.told, "b-2 granted ")
	var grants []string
	for _, m := range l.told {
		if len(m) > 8 && m[len(m)-8:] == "granted " {
			grants = append(grants, m[:len(m)-9])
		}
	}
	require.Equal(t, []string{"c-1", "b-2"}, grants, "first come, first served")
}

func TestLockWorkflow_FreesTheLockOfAHolderThatEnded(t *testing.T) {
	l := newLockEnv(t)
	l.env.OnActivity("ReleaseOpen", mock.Anything, "a-1").Return(false, nil)
	l.acquire(t, time.Second, "a-1", "a", activities.LockGrant{Granted: true})
	l.acquire(t, 2*time.Second, "b-1", "b", activities.LockGrant{Holder: "a-1", Position: 1})
	l.release(2*lockLivenessCheck, "b-1")

	l.env.ExecuteWorkflow(EnvironmentLockWorkflow, LockState{Environment: "production"})

	require.NoError(t, l.env.GetWorkflowError())
	require.Contains(t, l.told, "b-1 granted ", "a-1 ended without giving the lock back; b-1 got it at the liveness check")
}

func (s *ReleaseSuite) TestReservation_AnotherHoldersSlotIsWaitedOut() {
	s.input.Runbook.Approvals = nil
	s.input.Components = []Component{{Name: "web", Version: "1.1.0", Artifact: "reg/web@sha256:ab"}}
	var until time.Time
	s.store.reservation = func(env string) store.ReservationWait {
		if env != "production" {
			return store.ReservationWait{}
		}
		if until.IsZero() {
			until = s.env.Now().Add(3 * time.Hour)
		}
		if s.env.Now().Before(until) {
			return store.ReservationWait{Blocked: true, Holder: "runbook perf-tests", Until: until, Reason: "load test"}
		}
		return store.ReservationWait{}
	}
	var waiting ReleaseStatus
	s.env.RegisterDelayedCallback(func() { waiting = s.status() }, time.Hour)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal(PhaseQueued, waiting.Phase)
	s.Require().NotNil(waiting.Reservation)
	s.Equal("runbook perf-tests", waiting.Reservation.Holder)
	s.Equal([]string{"deploy:stg-a", "deploy:stg-b"}, deploysOf(waiting))
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	s.Nil(st.Reservation)
	s.Len(s.store.promotions, 2, "one promotion per stage and component")
	s.Equal("reg/web@sha256:ab", s.store.promotions[1].Artifact)
	s.Equal("production", s.store.promotions[1].Stage)
}
