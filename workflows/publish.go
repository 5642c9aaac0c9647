package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/trainyard/trainyard/activities"
)

// slackRefs is what the release remembers of its Slack messages. The refs come back from each
// PublishRelease, so a re-render edits the same messages, and they live in the workflow's
// state, so a worker restart loses nothing.
type slackRefs struct {
	refs activities.SlackRefs
	// busy is set while a publish runs; again asks it to publish once more when it ends, so
	// two callers never post the same message twice.
	busy, again bool
}

// maxPublishedEvents bounds the timeline events one publish sends: a long-silent thread gets
// the latest, and a note on how many were left out.
const maxPublishedEvents = 50

// publishRounds bounds how often one publish goes back to Slack for what an attempt could
// not send.
const publishRounds = 3

// publish renders the release where people follow it (Slack). Called after every phase
// change and at every decision on a waiting gate; it must do nothing for r.version below
// versionPublish, so recorded histories replay. A release whose runbook names no channel
// issues no command at all. Publishing never fails the release: a failure is logged and the
// next publish sends what this one could not.
func (r *release) publish(ctx workflow.Context) {
	if r.version < versionPublish {
		return
	}
	if r.in.Runbook.Channel == "" {
		return
	}
	if r.slack == nil {
		r.slack = &slackRefs{}
	}
	if r.slack.busy {
		r.slack.again = true
		return
	}
	r.slack.busy = true
	defer func() { r.slack.busy = false }()
	// Rendering must go on while the release is being cancelled: the message shows the end.
	pctx, _ := workflow.NewDisconnectedContext(ctx)
	pctx = publishContext(pctx)
	for round := 0; round < publishRounds; round++ {
		r.slack.again = false
		var out activities.PublishResult
		if err := workflow.ExecuteActivity(pctx, acts.PublishRelease, r.publishRequest()).Get(pctx, &out); err != nil {
			workflow.GetLogger(ctx).Warn("publish release to slack", "error", err)
			return
		}
		r.slack.refs = out.Refs
		if !out.Incomplete && !r.slack.again {
			return
		}
	}
}

// publishContext bounds a publish: a few tries over about a minute, then the release goes on.
func publishContext(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           TaskQueue,
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        15 * time.Second,
			MaximumAttempts:        5,
			NonRetryableErrorTypes: []string{activities.ErrTypeSlackRefused},
		},
	})
}

// publishRequest is the release's state as Slack shows it, with the timeline events not yet
// in its thread.
func (r *release) publishRequest() activities.PublishRequest {
	st := &r.status
	snap := activities.ReleaseSnapshot{
		ID: st.ID, Runbook: st.Runbook, Version: st.Version, Requester: st.Requester.Name, Phase: string(st.Phase),
		Stage: st.CurrentStage, Environment: st.Environment, Failure: st.Failure,
		PausedBy: st.PausedBy, PauseReason: st.PauseReason, Risk: st.Risk,
	}
	for _, c := range st.Components {
		snap.Components = append(snap.Components, activities.ComponentFact{Name: c.Name, Version: c.Version, Artifact: c.Artifact})
	}
	for _, s := range st.Stages {
		for _, t := range s.Targets {
			snap.Targets = append(snap.Targets, activities.TargetSnapshot{Stage: s.Name, Name: t.Name, State: t.State})
		}
	}
	for _, g := range st.Gates {
		snap.Gates = append(snap.Gates, activities.GateSnapshot{Name: g.Name, State: g.State, Summary: g.Summary})
	}
	for _, fm := range st.PreMortem {
		snap.PreMortem = append(snap.PreMortem, fm.Failure+" (ready: "+fm.Mitigation+")")
	}
	for _, a := range st.Approvals {
		if a.State == GateSkipped {
			continue
		}
		as := activities.ApprovalSnapshot{
			Gate: a.Gate, Before: a.Before, Roles: a.Roles, Required: a.Required, DistinctRoles: a.DistinctRoles,
			State: a.State, Why: a.Why,
		}
		for _, d := range a.Decisions {
			as.Decisions = append(as.Decisions, activities.DecisionSnapshot{Actor: d.Actor, Decision: d.Decision, Comment: d.Comment, At: d.At})
		}
		snap.Approvals = append(snap.Approvals, as)
	}

	refs := r.slack.refs
	from := min(max(refs.Events, len(st.Timeline)-maxPublishedEvents), len(st.Timeline))
	events := make([]activities.TimelineEvent, 0, len(st.Timeline)-from)
	for _, e := range st.Timeline[from:] {
		events = append(events, activities.TimelineEvent{At: e.At, Message: e.Message})
	}
	return activities.PublishRequest{
		Channel: r.in.Runbook.Channel, Release: snap, Events: events, EventsFrom: from, Refs: refs,
	}
}
