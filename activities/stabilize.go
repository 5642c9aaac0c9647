package activities

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/trainyard/trainyard/analysis"
	"github.com/trainyard/trainyard/integrations/probe"
	"github.com/trainyard/trainyard/integrations/prometheus"
	"github.com/trainyard/trainyard/runbooks"
)

// BaselineRequest asks for the values of analyses before the release touches production.
type BaselineRequest struct {
	ReleaseID string              `json:"releaseId"`
	Analyses  []runbooks.Analysis `json:"analyses"`
}

// Baseline is one analysis's value before the release, or why it could not be measured.
type Baseline struct {
	Analysis string    `json:"analysis"`
	Value    float64   `json:"value"`
	At       time.Time `json:"at"`
	Error    string    `json:"error,omitempty"`
}

// BaselineResult holds one Baseline per analysis asked about, in the order asked.
type BaselineResult struct {
	Baselines []Baseline `json:"baselines"`
}

// CaptureBaselines measures the analyses (those with baseline: true) at one moment, before the
// release touches production. An analysis whose query answers no number (no data, NaN) gets
// an Error and the others their values; a Prometheus that cannot be reached fails the activity
// so it is retried.
func (a *Activities) CaptureBaselines(ctx context.Context, req BaselineRequest) (BaselineResult, error) {
	at := time.Now()
	res := BaselineResult{Baselines: make([]Baseline, 0, len(req.Analyses))}
	for _, an := range req.Analyses {
		b := Baseline{Analysis: an.Name, At: at}
		if a.Metrics == nil {
			b.Error = "no Prometheus is configured (prometheus.url): the baseline cannot be measured"
			res.Baselines = append(res.Baselines, b)
			continue
		}
		v, err := analysis.MeasureBaseline(ctx, a.Metrics, an, at)
		switch {
		case err != nil && prometheus.IsRetryable(err):
			return BaselineResult{}, fmt.Errorf("capture baselines of release %s: %w", req.ReleaseID, err)
		case err != nil:
			b.Error = err.Error()
		default:
			b.Value = v
		}
		res.Baselines = append(res.Baselines, b)
	}
	return res, nil
}

// WatchRequest is one slice of a stabilization window to watch. The workflow calls
// WatchStabilization again and again, each time with the State and Next of the slice before,
// until the window ends or a check breaches.
type WatchRequest struct {
	ReleaseID string               `json:"releaseId"`
	Analyses  []runbooks.Analysis  `json:"analyses,omitempty"`
	SLO       *runbooks.SLO        `json:"slo,omitempty"`
	Checks    []runbooks.HTTPCheck `json:"checks,omitempty"`
	// Baselines are the analyses' values before the release, by analysis name.
	Baselines map[string]float64 `json:"baselines,omitempty"`
	// Release and Stage are what analysis conditions see as release and stage.
	Release ReleaseVar `json:"release"`
	Stage   StageVar   `json:"stage"`
	// Interval is the time between evaluations (analysis.DefaultInterval when 0).
	Interval time.Duration `json:"interval,omitempty"`
	// Until is when the window ends (the last evaluation is made then); SliceUntil when this
	// slice returns at the latest.
	Until      time.Time `json:"until"`
	SliceUntil time.Time `json:"sliceUntil"`
	// Next is when the next evaluation is due: zero at the start of the window.
	Next  time.Time           `json:"next,omitempty"`
	State analysis.WatchState `json:"state"`
}

// WatchResult is where the watch stands at the end of a slice; it is also the heartbeat
// detail, so a slice retried after a worker restart resumes from it.
type WatchResult struct {
	// Last is the latest evaluation: every check's value against its limit.
	Last  *analysis.Evaluation `json:"last,omitempty"`
	State analysis.WatchState  `json:"state"`
	// Next is when the next evaluation is due.
	Next time.Time `json:"next,omitempty"`
	// Evaluations counts this slice's evaluations.
	Evaluations int `json:"evaluations"`
	// Breach is set when a check breached; the watch stops at the first.
	Breach *analysis.Breach `json:"breach,omitempty"`
	// Done is set when the evaluation at the end of the window was made.
	Done bool `json:"done,omitempty"`
}

// WatchStabilization watches the release's analyses, SLO burn rates and HTTP checks every
// Interval until SliceUntil, the end of the window, or a breach, whichever comes first. It
// heartbeats its progress; a retry resumes from the last heartbeat.
//
// A watch that cannot run (analyses without a Prometheus, HTTP checks without a prober) is a
// breach: a release nobody can see is not known to be healthy.
func (a *Activities) WatchStabilization(ctx context.Context, req WatchRequest) (WatchResult, error) {
	log := a.logger().With("release", req.ReleaseID, "activity", "WatchStabilization")
	res := WatchResult{State: req.State, Next: req.Next}
	if activity.HasHeartbeatDetails(ctx) {
		var prev WatchResult
		if err := activity.GetHeartbeatDetails(ctx, &prev); err == nil {
			res = prev
			log.Info("resuming the stabilization watch", "next", prev.Next)
			if prev.Breach != nil || prev.Done {
				// The attempt before found the answer and was lost before returning it.
				return prev, nil
			}
			res.Evaluations = 0
		}
	}
	interval := req.Interval
	if interval <= 0 {
		interval = analysis.DefaultInterval
	}
	w := &analysis.Watch{
		Analyses: req.Analyses, SLO: req.SLO, Checks: req.Checks, Probe: a.probeCheck,
		Interval: interval, Baselines: req.Baselines, State: res.State,
		Vars: map[string]any{"release": req.Release, "stage": req.Stage},
	}
	if a.Metrics != nil {
		w.Querier = a.Metrics
	}
	if err := w.Validate(); err != nil {
		now := time.Now()
		msg := fmt.Sprintf("the stabilization watch cannot run on this worker: %v (set prometheus.url on the main worker)", err)
		res.Breach = &analysis.Breach{Check: "watch", Kind: analysis.KindWatch, Message: msg, At: now}
		res.Last = &analysis.Evaluation{At: now, Checks: []analysis.CheckState{{Name: "watch", Kind: analysis.KindWatch, Message: msg}}, Breach: res.Breach}
		return res, nil
	}

	var mu sync.Mutex
	progress := res
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(a.heartbeatEvery())
		defer t.Stop()
		for {
			mu.Lock()
			p := progress
			mu.Unlock()
			activity.RecordHeartbeat(ctx, p)
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	for {
		if wait := time.Until(res.Next); wait > 0 {
			if untilSlice := time.Until(req.SliceUntil); untilSlice < wait {
				// The next evaluation belongs to the next slice.
				return res, nil
			}
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return res, ctx.Err()
			case <-timer.C:
			}
		}
		at := time.Now()
		ev := w.Evaluate(ctx, at)
		if err := ctx.Err(); err != nil {
			// Queries cut short by cancellation say nothing about the release.
			return res, err
		}
		res.State, res.Last = w.State, &ev
		res.Evaluations++
		switch {
		case ev.Breach != nil:
			res.Breach = ev.Breach
			log.Warn("stabilization breached", "check", ev.Breach.Check, "message", ev.Breach.Message)
		case !at.Before(req.Until):
			res.Done = true
		default:
			res.Next = at.Add(interval)
			if res.Next.After(req.Until) {
				res.Next = req.Until
			}
		}
		mu.Lock()
		progress = res
		mu.Unlock()
		if res.Breach != nil || res.Done {
			return res, nil
		}
	}
}

// probeCheck runs one HTTP check of the stabilization window once.
func (a *Activities) probeCheck(ctx context.Context, c runbooks.HTTPCheck) error {
	res, err := (&probe.Prober{Client: a.HTTP}).Run(ctx, probe.Check{URL: c.URL, ExpectStatus: c.ExpectStatus, Timeout: c.Timeout.D()})
	if err != nil {
		return err
	}
	if !res.Passed {
		return errors.New(res.Reason)
	}
	return nil
}
