package workflows

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/integrations/command"
	"github.com/trainyard/trainyard/runbooks"
)

const graphRunbook = `
name: regions
stabilization: 10m
stages:
  - name: staging
    environment: staging
    targets:
      - {name: stg, kind: command, site: dc1, deploy: deploy, rollback: rollback}
  - name: eu
    environment: production-eu
    after: [staging]
    targets:
      - {name: eu, kind: command, site: dc1, deploy: deploy, rollback: rollback}
  - name: us
    environment: production-us
    after: [staging]
    targets:
      - {name: us, kind: command, site: dc2, deploy: deploy, rollback: rollback}
  - name: flag
    environment: production-us
    after: [eu, us]
    targets:
      - {name: flag, kind: command, site: dc1, deploy: deploy, rollback: rollback}
`

// barrier lets each of n callers through only once all n have arrived, or fails them after
// a while: a deploy waiting at it proves another deploy ran at the same time.
func barrier(n int) func() error {
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	return func() error {
		mu.Lock()
		arrived++
		if arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("the other region never started: stages ran one after another")
		}
	}
}

func (s *ReleaseSuite) graphInput() {
	rb, err := runbooks.Parse("regions.yaml", []byte(graphRunbook))
	s.Require().NoError(err)
	s.input.Runbook = rb
	s.input.ID = ReleaseID("regions", "2.0.0")
}

func (s *ReleaseSuite) TestGraph_ParallelRegionsDeployAtOnceThenTheStageAfterBoth() {
	s.graphInput()
	both := barrier(2)
	s.runner.RunFunc = func(_ context.Context, spec command.Spec) (command.Result, error) {
		if t := env(spec, "TRAINYARD_TARGET"); t == "eu" || t == "us" {
			return command.Result{}, both()
		}
		return command.Result{}, nil
	}

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	ops := s.ops()
	s.Equal("deploy:stg", ops[0])
	s.ElementsMatch([]string{"deploy:eu", "deploy:us"}, ops[1:3])
	s.Equal("deploy:flag", ops[3], "flag waits for both regions")
}

func (s *ReleaseSuite) TestGraph_AFailedRegionStopsTheOtherAndRollsBackAll() {
	s.graphInput()
	s.runner.RunFunc = func(ctx context.Context, spec command.Spec) (command.Result, error) {
		op, t := env(spec, "TRAINYARD_OPERATION"), env(spec, "TRAINYARD_TARGET")
		switch {
		case op == "deploy" && t == "eu":
			return command.Result{Output: "eu: health check failed"}, &command.ExitError{ExitCode: 1, Output: "eu: health check failed"}
		case op == "deploy" && t == "us":
			// us runs until the release stops it.
			<-ctx.Done()
			return command.Result{}, ctx.Err()
		}
		return command.Result{}, nil
	}

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	st := s.result()
	s.Equal(PhaseRolledBack, st.Phase)
	s.Contains(st.Failure, "eu")
	s.Contains(s.ops(), "rollback:stg")
	s.NotContains(s.ops(), "deploy:flag")
}

// Two regions of one environment wait for its lock together: one request, one grant, and
// both deploy.
func (s *ReleaseSuite) TestGraph_ParallelStagesInOneEnvironmentShareTheLock() {
	s.graphInput()
	for i := range s.input.Runbook.Stages[1:3] {
		s.input.Runbook.Stages[1+i].Environment = "production"
	}
	var requests int
	s.lockGrant = func(req activities.LockRequest) activities.LockGrant {
		if req.Environment != "production" {
			return activities.LockGrant{Granted: true}
		}
		requests++
		return activities.LockGrant{Holder: "release-other-1.0.0", Position: 1}
	}
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(SignalLockUpdate, LockUpdate{Environment: "production", State: LockGranted})
	}, time.Hour)

	s.env.ExecuteWorkflow(ReleaseWorkflow, s.input)

	s.Require().NoError(s.env.GetWorkflowError())
	st := s.result()
	s.Equal(PhaseSucceeded, st.Phase)
	s.Equal(1, requests, "the two stages asked once")
	s.Contains(s.ops(), "deploy:eu")
	s.Contains(s.ops(), "deploy:us")
}
