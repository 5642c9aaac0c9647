package workflows

import (
	"fmt"
	"math"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/analysis"
	"github.com/trainyard/trainyard/runbooks"
)

// The stabilization watch runs in slices: one heartbeating activity watches every check for up
// to a slice, then returns the latest values, which the status shows, and the watch's state,
// which the next slice carries on from. A breach ends a slice at once, so slicing costs no
// reaction time; it bounds how stale the status can be (a slice) and how much a window writes
// to history (about six events per slice: some 1,700 for 24 hours).
const (
	maxWatchSlice = 5 * time.Minute
	minWatchSlice = 5 * time.Second
	// slicesPerWindow keeps short windows' status fresh: a one-minute window reports every 5s.
	slicesPerWindow = 12
	// maxWatchFailures is how many slices in a row may fail before the watch counts as
	// breached: a release nobody can see is not known to be healthy.
	maxWatchFailures = 3
	// The kept range results begin before the release started: as long before as the release
	// has run, within these bounds, so a short release's breach keeps a fine resolution.
	minEvidenceLead = 5 * time.Minute
	maxEvidenceLead = 30 * time.Minute
)

// stabVersion is the run's version of change "stabilization".
func (r *release) stabVersion(ctx workflow.Context) workflow.Version {
	s := r.stabState()
	if !s.known {
		s.version = workflow.GetVersion(ctx, changeStabilization, workflow.DefaultVersion, versionStabilization)
		s.known = true
	}
	return s.version
}

func (r *release) stabState() *stabilization {
	if r.stab == nil {
		r.stab = &stabilization{}
	}
	return r.stab
}

// stabilize watches production through the runbook's stabilization window. It returns
// PhaseSucceeded when the window passes healthy, or the phase the release ends in and why: a
// breach (rolled back at once, or after the rollback authority decided), an abort, or a
// rollback someone ordered.
func (r *release) stabilize(ctx workflow.Context) (Phase, string) {
	window := r.in.Runbook.Stabilization.Window.D()
	if window <= 0 {
		r.drainBackground(ctx)
		return PhaseSucceeded, ""
	}
	if r.stabVersion(ctx) < versionStabilization {
		return r.stabilizeTimer(ctx, window)
	}
	s := r.stabState()
	ends := workflow.Now(ctx).Add(window)
	r.status.StabilizationEndsAt = &ends
	r.status.CurrentStage = ""
	r.event(ctx, "stabilizing for %s", window)
	r.setPhase(ctx, PhaseStabilizing)

	st := r.in.Runbook.Stabilization
	watched := r.watchedAnalyses()
	if len(watched) == 0 && st.SLO == nil && len(st.Checks) == 0 {
		woke, err := workflow.AwaitWithTimeout(ctx, window, func() bool { return r.abort != nil })
		if err != nil {
			return PhaseFailed, fmt.Sprintf("stabilization: %v", err)
		}
		if woke {
			return r.interrupted()
		}
		r.event(ctx, "stabilization window passed")
		r.drainBackground(ctx)
		return PhaseSucceeded, ""
	}

	interval := watchInterval(watched)
	slice := watchSlice(window, interval)
	r.event(ctx, "watching %s every %s until %s", describeWatch(watched, st), interval, ends.Format(time.RFC3339))
	req := activities.WatchRequest{
		ReleaseID: r.in.ID, Analyses: watched, SLO: st.SLO, Checks: st.Checks, Baselines: r.baselineValues(),
		Release: r.releaseVar(), Stage: r.lastStageVar(), Interval: interval, Until: ends,
	}
	failures := 0
	for done, first := false, true; !done; first = false {
		now := workflow.Now(ctx)
		if now.After(ends.Add(slice)) {
			// The watch kept failing to finish: the window is long over.
			break
		}
		// The first slice is short, so the status shows every check soon after the start.
		length := slice
		if first {
			length = min(slice, max(minWatchSlice, interval))
		}
		req.SliceUntil = ends
		if next := now.Add(length); next.Before(ends) {
			req.SliceUntil = next
		}
		req.Next, req.State = s.watch.Next, s.watch.State
		actx, cancel := workflow.WithCancel(ctx)
		fut := workflow.ExecuteActivity(watchContext(actx, slice), acts.WatchStabilization, req)
		if err := workflow.Await(ctx, func() bool { return fut.IsReady() || r.abort != nil }); err != nil {
			cancel()
			return PhaseFailed, fmt.Sprintf("stabilization: %v", err)
		}
		if !fut.IsReady() {
			cancel()
			_ = fut.Get(ctx, nil)
			return r.interrupted()
		}
		var res activities.WatchResult
		err := fut.Get(ctx, &res)
		cancel()
		if err != nil {
			failures++
			r.event(ctx, "the stabilization watch failed (%d in a row): %s", failures, errorMessage(err))
			if failures >= maxWatchFailures {
				return r.breached(ctx, analysis.Breach{
					Check: "watch", Kind: analysis.KindWatch, At: workflow.Now(ctx),
					Message: fmt.Sprintf("the stabilization watch failed %d times in a row, last: %s", failures, errorMessage(err)),
				})
			}
			continue
		}
		failures = 0
		s.watch.Next, s.watch.State = res.Next, res.State
		if res.Last != nil {
			r.status.Checks = checkStatuses(*res.Last)
		}
		if res.Breach != nil {
			return r.breached(ctx, *res.Breach)
		}
		done = res.Done
	}
	r.event(ctx, "stabilization window passed: every check held")
	r.drainBackground(ctx)
	return PhaseSucceeded, ""
}

// stabilizeTimer is the window of releases started before versionStabilization: a timer an
// abort ends. Its commands must stay exactly as they were.
func (r *release) stabilizeTimer(ctx workflow.Context, window time.Duration) (Phase, string) {
	ends := workflow.Now(ctx).Add(window)
	r.status.StabilizationEndsAt = &ends
	r.status.CurrentStage = ""
	r.event(ctx, "stabilizing for %s", window)
	r.setPhase(ctx, PhaseStabilizing)
	aborted, err := workflow.AwaitWithTimeout(ctx, window, func() bool { return r.abort != nil })
	if err != nil {
		return PhaseFailed, fmt.Sprintf("stabilization: %v", err)
	}
	if aborted {
		return PhaseAborted, r.abortReason()
	}
	r.event(ctx, "stabilization window passed")
	return PhaseSucceeded, ""
}

// interrupted is how the window ends when someone stepped in: a rollback order or an abort.
func (r *release) interrupted() (Phase, string) {
	if d := r.stabState().rollbackOrder; d != nil {
		return PhaseRolledBack, fmt.Sprintf("rollback ordered by %s: %s", d.Actor, d.Comment)
	}
	return PhaseAborted, r.abortReason()
}

// breached acts on a breach as the runbook says: roll back at once, or page the rollback
// authority and wait for their decision. Evidence is kept either way, alongside.
func (r *release) breached(ctx workflow.Context, b analysis.Breach) (Phase, string) {
	s := r.stabState()
	action := r.in.Runbook.Stabilization.OnBreach
	if action == "" {
		action = OnBreachRollback
	}
	r.status.Breach = &BreachStatus{Check: b.Check, Kind: b.Kind, Message: b.Message, At: b.At, OnBreach: action}
	why := fmt.Sprintf("stabilization breached: %s: %s", b.Check, b.Message)
	r.event(ctx, "%s", why)
	r.keepEvidence(ctx, &b)
	authority := r.in.Runbook.RollbackAuthority

	if action != OnBreachPage {
		r.notify(ctx, activities.NotifyBreach, authority,
			fmt.Sprintf("Release %s (%s %s) breached its stabilization window: %s: %s. Rolling back now.",
				r.in.ID, r.in.Runbook.Name, r.in.Version, b.Check, b.Message))
		return PhaseRolledBack, why
	}

	now := workflow.Now(ctx)
	r.status.Breach.PagedAt = &now
	choices := "roll back (POST /api/v1/releases/" + r.in.ID + "/rollback)"
	if rb := r.in.Runbook.Rollback; rb != nil && rb.ForwardFix {
		choices += " or fix forward (POST /api/v1/releases/" + r.in.ID + "/fix-forward)"
	}
	r.notify(ctx, activities.NotifyBreach, authority,
		fmt.Sprintf("Release %s (%s %s) breached its stabilization window: %s: %s. Decide: %s.",
			r.in.ID, r.in.Runbook.Name, r.in.Version, b.Check, b.Message, choices))
	r.event(ctx, "paged %s to decide: %s", joinRoles(authority), choices)
	r.setPhase(ctx, PhaseBreached)
	if err := workflow.Await(ctx, func() bool { return s.rollbackOrder != nil || s.fixForward != nil || r.abort != nil }); err != nil {
		return PhaseFailed, fmt.Sprintf("waiting for a decision on the breach: %v", err)
	}
	switch {
	case s.fixForward != nil:
		d := s.fixForward
		r.recordOperatorDecision(ctx, breachGate, d)
		return PhaseFailed, fmt.Sprintf("%s; %s chose to fix forward: %s", why, d.Actor, d.Comment)
	case s.rollbackOrder != nil:
		d := s.rollbackOrder
		r.recordOperatorDecision(ctx, breachGate, d)
		return PhaseRolledBack, fmt.Sprintf("%s; %s ordered the rollback: %s", why, d.Actor, d.Comment)
	default:
		return PhaseAborted, r.abortReason()
	}
}

// keepEvidence stores the breach, the watched queries' range results from before the release
// to now, and the release's status, without holding up the rollback.
func (r *release) keepEvidence(ctx workflow.Context, b *analysis.Breach) {
	req := activities.EvidenceRequest{
		ReleaseID: r.in.ID, Runbook: r.in.Runbook.Name, Version: r.in.Version, Environment: r.status.Environment,
		Breach: b, Queries: r.evidenceQueries(), From: r.evidenceFrom(ctx), Status: r.status, StatusSeq: r.nextEvidence(),
	}
	r.background(ctx, workflow.ExecuteActivity(evidenceContext(ctx), acts.RecordEvidence, req))
}

// nextEvidence numbers the release's evidence writes, which run in the background and may
// land in any order: the store keeps the status of the highest.
func (r *release) nextEvidence() int64 {
	r.evidenceSeq++
	return r.evidenceSeq
}

// evidenceFrom is where kept range results begin.
func (r *release) evidenceFrom(ctx workflow.Context) time.Time {
	lead := min(max(workflow.Now(ctx).Sub(r.status.StartedAt), minEvidenceLead), maxEvidenceLead)
	return r.status.StartedAt.Add(-lead)
}

// evidenceQueries are the watched queries: the analyses', and the SLO's error ratio over each
// burn-rate window.
func (r *release) evidenceQueries() []activities.EvidenceQuery {
	var queries []activities.EvidenceQuery
	for _, a := range r.watchedAnalyses() {
		queries = append(queries, activities.EvidenceQuery{Name: a.Name, Query: a.Query})
	}
	if slo := r.in.Runbook.Stabilization.SLO; slo != nil {
		var windows []time.Duration
		for _, br := range analysis.BurnRates(*slo) {
			windows = appendNew(windows, br.Short.D())
			windows = appendNew(windows, br.Long.D())
		}
		for _, w := range windows {
			queries = append(queries, activities.EvidenceQuery{
				Name: "slo error ratio over " + analysis.PromDuration(w), Query: analysis.BurnQuery(*slo, w),
			})
		}
	}
	return queries
}

// recordIncident keeps the release's status, as it ends, with its incident; after a breach
// the watched queries again, so their range results run past the breach and the rollback.
func (r *release) recordIncident(ctx workflow.Context, end Phase) {
	snap := r.status
	now := workflow.Now(ctx)
	snap.Phase, snap.EndedAt = end, &now
	req := activities.EvidenceRequest{
		ReleaseID: r.in.ID, Runbook: r.in.Runbook.Name, Version: r.in.Version, Environment: r.status.Environment, Status: snap,
		StatusSeq: r.nextEvidence(),
	}
	if r.status.Breach != nil {
		req.Queries, req.From = r.evidenceQueries(), r.evidenceFrom(ctx)
	}
	r.background(ctx, workflow.ExecuteActivity(evidenceContext(ctx), acts.RecordEvidence, req))
}

// captureBaselines measures the analyses that compare with a baseline, just before the
// release touches production (the stage at index i, when it is the first production stage).
func (r *release) captureBaselines(ctx workflow.Context, i int) {
	if i != r.productionStage() || r.stabVersion(ctx) < versionStabilization {
		return
	}
	var as []runbooks.Analysis
	for _, a := range r.in.Runbook.Analyses {
		if a.Baseline {
			as = append(as, a)
		}
	}
	if len(as) == 0 {
		return
	}
	var res activities.BaselineResult
	err := workflow.ExecuteActivity(baselineContext(ctx), acts.CaptureBaselines,
		activities.BaselineRequest{ReleaseID: r.in.ID, Analyses: as}).Get(ctx, &res)
	if err != nil {
		r.event(ctx, "baselines not measured before stage %s: %s; analyses comparing with them will error", r.in.Runbook.Stages[i].Name, errorMessage(err))
		return
	}
	r.status.Baselines = r.status.Baselines[:0]
	var parts []string
	for _, b := range res.Baselines {
		bs := BaselineStatus{Analysis: b.Analysis, At: b.At, Error: b.Error}
		if b.Error == "" {
			v := b.Value
			bs.Value = &v
			parts = append(parts, fmt.Sprintf("%s %g", b.Analysis, b.Value))
		} else {
			r.event(ctx, "baseline of %s not measured: %s", b.Analysis, b.Error)
		}
		r.status.Baselines = append(r.status.Baselines, bs)
	}
	if len(parts) > 0 {
		r.event(ctx, "baselines before stage %s: %s", r.in.Runbook.Stages[i].Name, strings.Join(parts, ", "))
	}
}

// productionStage is the index of the first stage into production (environment production
// or prod), else the last stage: what "before the release touched production" means.
func (r *release) productionStage() int {
	for i, s := range r.in.Runbook.Stages {
		if s.Environment == "production" || s.Environment == "prod" {
			return i
		}
	}
	return len(r.in.Runbook.Stages) - 1
}

func (r *release) baselineValues() map[string]float64 {
	if len(r.status.Baselines) == 0 {
		return nil
	}
	out := make(map[string]float64, len(r.status.Baselines))
	for _, b := range r.status.Baselines {
		if b.Value != nil {
			out[b.Analysis] = *b.Value
		}
	}
	return out
}

// watchedAnalyses are the analyses the stabilization names, in its order.
func (r *release) watchedAnalyses() []runbooks.Analysis {
	var out []runbooks.Analysis
	for _, name := range r.in.Runbook.Stabilization.Analyses {
		for _, a := range r.in.Runbook.Analyses {
			if a.Name == name {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

func (r *release) releaseVar() activities.ReleaseVar {
	if r.assessment != nil {
		return r.assessment.Facts.Release
	}
	return newReleaseVar(r.in)
}

// lastStageVar is the stage analysis conditions see during stabilization: the last one.
func (r *release) lastStageVar() activities.StageVar {
	n := len(r.in.Runbook.Stages)
	if n == 0 {
		return activities.StageVar{}
	}
	s := r.in.Runbook.Stages[n-1]
	return activities.StageVar{Name: s.Name, Environment: s.Environment, Region: s.Region}
}

// watchInterval is the time between evaluations: the shortest interval of the watched
// analyses, else analysis.DefaultInterval.
func watchInterval(as []runbooks.Analysis) time.Duration {
	interval := time.Duration(0)
	for _, a := range as {
		if d := a.Interval.D(); d > 0 && (interval == 0 || d < interval) {
			interval = d
		}
	}
	if interval == 0 {
		return analysis.DefaultInterval
	}
	return interval
}

// watchSlice is how long one watch activity runs: a twelfth of the window, between
// max(interval, 5s) and 5 minutes.
func watchSlice(window, interval time.Duration) time.Duration {
	slice := min(window/slicesPerWindow, maxWatchSlice)
	return max(slice, minWatchSlice, interval)
}

func describeWatch(as []runbooks.Analysis, st runbooks.Stabilization) string {
	var parts []string
	for _, a := range as {
		parts = append(parts, "analysis "+a.Name)
	}
	if st.SLO != nil {
		for _, br := range analysis.BurnRates(*st.SLO) {
			parts = append(parts, fmt.Sprintf("the %g%% SLO's burn rate (%gx over %s and %s)", st.SLO.Objective, br.Factor,
				analysis.PromDuration(br.Long.D()), analysis.PromDuration(br.Short.D())))
		}
	}
	for _, c := range st.Checks {
		name := c.Name
		if name == "" {
			name = c.URL
		}
		parts = append(parts, "check "+name)
	}
	return strings.Join(parts, ", ")
}

// checkStatuses turns an evaluation into the status's checks; NaN becomes no value.
func checkStatuses(ev analysis.Evaluation) []CheckStatus {
	out := make([]CheckStatus, 0, len(ev.Checks))
	for _, c := range ev.Checks {
		cs := CheckStatus{Name: c.Name, Kind: c.Kind, Limit: c.Limit, OK: c.OK, Message: c.Message, At: ev.At}
		if !math.IsNaN(c.Value) && !math.IsInf(c.Value, 0) {
			v := c.Value
			cs.Value = &v
		}
		out = append(out, cs)
	}
	return out
}

func appendNew(ds []time.Duration, d time.Duration) []time.Duration {
	for _, x := range ds {
		if x == d {
			return ds
		}
	}
	return append(ds, d)
}

// background starts nothing itself: it keeps f, an activity already started, to be waited for
// before the release ends.
func (r *release) background(_ workflow.Context, f workflow.Future) {
	s := r.stabState()
	s.background = append(s.background, f)
}

// drainBackground waits for the activities started alongside the release; their failures are
// logged, never the release's.
func (r *release) drainBackground(ctx workflow.Context) {
	s := r.stabState()
	for _, f := range s.background {
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Warn("background activity failed", "error", err)
		}
	}
	s.background = nil
}

// notify tells people through Notify (audit, log, Slack) without waiting.
func (r *release) notify(ctx workflow.Context, kind string, roles []string, text string) {
	req := activities.NotifyRequest{ReleaseID: r.in.ID, Channel: r.in.Runbook.Channel, Roles: roles, Kind: kind, Text: text}
	r.background(ctx, workflow.ExecuteActivity(sideContext(ctx), acts.Notify, req))
}

// watchContext runs a slice of the watch: it heartbeats every second or so, so a lost worker
// is noticed within the heartbeat timeout and the slice resumes elsewhere from its heartbeat.
func watchContext(ctx workflow.Context, slice time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              TaskQueue,
		StartToCloseTimeout:    slice + 2*time.Minute,
		ScheduleToCloseTimeout: slice + 10*time.Minute,
		HeartbeatTimeout:       30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    10 * time.Second,
		},
	})
}

// baselineContext retries a Prometheus that does not answer for about two minutes: the
// release waits for its baseline rather than watch without one.
func baselineContext(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           TaskQueue,
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    2 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			MaximumAttempts:    6,
		},
	})
}

// evidenceContext keeps evidence even while the release is being cancelled.
func evidenceContext(ctx workflow.Context) workflow.Context {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	return workflow.WithActivityOptions(dctx, workflow.ActivityOptions{
		TaskQueue:           TaskQueue,
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			MaximumAttempts:    10,
		},
	})
}

// sideContext is for what runs alongside the release (markers, notifications): a few tries,
// then it is given up and logged, since none of it may hold a release or its rollback.
func sideContext(ctx workflow.Context) workflow.Context {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	return workflow.WithActivityOptions(dctx, workflow.ActivityOptions{
		TaskQueue:           TaskQueue,
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    10 * time.Second,
			MaximumAttempts:    5,
		},
	})
}
