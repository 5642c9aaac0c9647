package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/trainyard/trainyard/integrations/probe"
	"github.com/trainyard/trainyard/runbooks"
)

// ChecksRequest asks for HTTP checks to be run: a target's smoke tests, or a stage's exit
// criteria.
type ChecksRequest struct {
	ReleaseID string               `json:"releaseId"`
	Stage     string               `json:"stage"`
	Target    string               `json:"target,omitempty"`
	Checks    []runbooks.HTTPCheck `json:"checks"`
	// Vars are expanded in the URLs as $NAME or ${NAME}: TRAINYARD_TARGET, TRAINYARD_SIDE
	// (the blue-green side just deployed, so a smoke test reaches it before the switch),
	// TRAINYARD_VERSION and the like.
	Vars map[string]string `json:"vars,omitempty"`
}

// ChecksResult is every check's verdict, in order.
type ChecksResult struct {
	Passed  bool          `json:"passed"`
	Results []CheckResult `json:"results"`
}

// CheckResult is one check's verdict.
type CheckResult struct {
	Name string `json:"name"`
	// URL is the URL probed, without user info or query (which may hold credentials).
	URL    string `json:"url"`
	Passed bool   `json:"passed"`
	Reason string `json:"reason"`
}

// Failure names the first check that failed and why; "" when all passed.
func (r ChecksResult) Failure() string {
	for _, c := range r.Results {
		if !c.Passed {
			return fmt.Sprintf("check %s (%s) failed: %s", c.Name, c.URL, c.Reason)
		}
	}
	return ""
}

// RunChecks probes each check once, one after another, and says which passed. A service
// that fails or does not answer is a failed check, not an error; an error is a check that
// cannot run.
func (a *Activities) RunChecks(ctx context.Context, req ChecksRequest) (ChecksResult, error) {
	p := &probe.Prober{Client: a.HTTP}
	out := ChecksResult{Passed: true}
	for i, c := range req.Checks {
		u := expand(c.URL, req.Vars)
		name := c.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		activity.RecordHeartbeat(ctx, name)
		res, err := p.Run(ctx, probe.Check{URL: u, ExpectStatus: c.ExpectStatus, Timeout: c.Timeout.D()})
		switch {
		case errors.Is(err, probe.ErrInvalidCheck):
			return out, temporal.NewNonRetryableApplicationError(fmt.Sprintf("check %s: %v", name, err), ErrTypeTargetFailed, err)
		case err != nil:
			return out, fmt.Errorf("check %s: %w", name, err)
		}
		out.Results = append(out.Results, CheckResult{Name: name, URL: displayURL(u), Passed: res.Passed, Reason: res.Reason})
		out.Passed = out.Passed && res.Passed
		a.logger().Info("check", "release", req.ReleaseID, "stage", req.Stage, "target", req.Target, "check", name, "passed", res.Passed, "reason", res.Reason)
	}
	return out, nil
}
