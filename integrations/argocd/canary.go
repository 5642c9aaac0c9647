package argocd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The Argo Rollouts resource a canary weight is set on.
const (
	rolloutGroup   = "argoproj.io"
	rolloutVersion = "v1alpha1"
	rolloutKind    = "Rollout"
)

// Built-in Argo CD resource actions for Rollouts (resource_customizations/argoproj.io/Rollout).
const (
	actionResume      = "resume"
	actionPromoteFull = "promote-full"
)

// SetCanaryWeight moves the canary of an Argo Rollouts Rollout managed by app until it has
// passed its `setWeight: weight` step, by running Argo CD's built-in `resume` action each
// time the Rollout is paused before that step. The Rollout's steps stay as git has them
// (no drift): they must pause without a duration after each weight the runbook uses, e.g.
// setWeight 5, pause {}, setWeight 25, pause {}. Weight 100 runs `promote-full` and returns
// at once; wait for the app to be Healthy afterwards.
//
// It returns when the weight is reached (at once when the Rollout is already past it, so
// a retried call does nothing), or with ErrNoCanaryStep, ErrNoCanary, ErrRolloutAborted or
// ctx's error. It reads the Rollout every CanaryPoll meanwhile.
func (c *Client) SetCanaryWeight(ctx context.Context, app, rollout, namespace string, weight int) error {
	if err := c.setCanaryWeight(ctx, app, rollout, namespace, weight); err != nil {
		return fmt.Errorf("set canary weight of rollout %s/%s (argocd app %q) to %d%%: %w", namespace, rollout, app, weight, err)
	}
	return nil
}

func (c *Client) setCanaryWeight(ctx context.Context, app, rollout, namespace string, weight int) error {
	if weight < 1 || weight > 100 {
		return fmt.Errorf("%w: the weight must be 1 to 100", ErrInvalidInput)
	}
	ref, err := parseRef(app)
	if err != nil {
		return err
	}
	if !k8sName.MatchString(rollout) || (namespace != "" && !k8sName.MatchString(namespace)) {
		return fmt.Errorf("%w: rollout %q in namespace %q is not a Kubernetes name", ErrInvalidInput, rollout, namespace)
	}
	res := resourceRef{app: ref, namespace: namespace, name: rollout, group: rolloutGroup, version: rolloutVersion, kind: rolloutKind}
	poll := c.CanaryPoll
	if poll <= 0 {
		poll = DefaultCanaryPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		ro, err := c.rollout(ctx, res)
		if err != nil {
			return err
		}
		if ro.Status.Abort {
			return fmt.Errorf("%w: %s", ErrRolloutAborted, orNone(ro.Status.Message))
		}
		if weight == 100 {
			if ro.fullyPromoted() {
				return nil
			}
			return c.runAction(ctx, res, actionPromoteFull)
		}
		if ro.Spec.Strategy.Canary == nil {
			return fmt.Errorf("%w: the rollout has no canary strategy", ErrNoCanaryStep)
		}
		target := ro.stepOf(weight)
		if target < 0 {
			return fmt.Errorf("%w: the rollout's canary steps set weights %s, not %d; make the runbook's weights match them", ErrNoCanaryStep, ro.weights(), weight)
		}
		if ro.fullyPromoted() {
			return ErrNoCanary
		}
		if ro.currentStep() > target {
			return nil
		}
		if ro.paused() {
			if err := c.runAction(ctx, res, actionResume); err != nil {
				return err
			}
		}
		if err := sleep(ctx, t); err != nil {
			return fmt.Errorf("waiting at canary step %d of %d: %w", ro.currentStep(), len(ro.Spec.Strategy.Canary.Steps), err)
		}
	}
}

// resourceRef names one resource of an app, as Argo CD's resource endpoints take it.
type resourceRef struct {
	app                                   appRef
	namespace, name, group, version, kind string
}

func (r resourceRef) query() url.Values {
	q := r.app.query()
	q.Set("namespace", r.namespace)
	q.Set("resourceName", r.name)
	q.Set("version", r.version)
	// Argo CD wants group present even when empty (the core group).
	q.Set("group", r.group)
	q.Set("kind", r.kind)
	return q
}

// rollout reads the Rollout's live manifest: GET /api/v1/applications/{name}/resource.
func (c *Client) rollout(ctx context.Context, res resourceRef) (wireRollout, error) {
	var out struct {
		Manifest string `json:"manifest"`
	}
	if err := c.do(ctx, http.MethodGet, res.app.path("/resource"), res.query(), nil, &out); err != nil {
		return wireRollout{}, err
	}
	var ro wireRollout
	if err := json.Unmarshal([]byte(out.Manifest), &ro); err != nil {
		return wireRollout{}, fmt.Errorf("%w: the rollout manifest is not JSON: %v", ErrUnexpectedResponse, err)
	}
	if ro.Kind != rolloutKind {
		return wireRollout{}, fmt.Errorf("%w: asked for a Rollout, got kind %q", ErrUnexpectedResponse, ro.Kind)
	}
	return ro, nil
}

// runAction runs a resource action through POST .../resource/actions/v2 (Argo CD 3.2 and
// later), falling back to the older POST .../resource/actions when the server does not know
// the v2 path.
func (c *Client) runAction(ctx context.Context, res resourceRef, action string) error {
	body := map[string]any{
		"name": res.app.name, "namespace": res.namespace, "resourceName": res.name,
		"version": res.version, "group": res.group, "kind": res.kind, "action": action,
		"resourceActionParameters": []any{},
	}
	if res.app.namespace != "" {
		body["appNamespace"] = res.app.namespace
	}
	err := c.do(ctx, http.MethodPost, res.app.path("/resource/actions/v2"), nil, body, nil)
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == 0 &&
		(ae.StatusCode == http.StatusNotFound || ae.StatusCode == http.StatusMethodNotAllowed || ae.StatusCode == http.StatusNotImplemented) {
		// The v1 endpoint takes the action's name as the JSON body (a string).
		err = c.do(ctx, http.MethodPost, res.app.path("/resource/actions"), res.query(), action, nil)
	}
	if err != nil {
		return fmt.Errorf("run action %q: %w", action, err)
	}
	return nil
}

// wireRollout is the part of an Argo Rollouts Rollout this package reads.
type wireRollout struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Paused   bool `json:"paused"`
		Strategy struct {
			Canary *struct {
				Steps []struct {
					SetWeight *int            `json:"setWeight"`
					Pause     json.RawMessage `json:"pause"`
				} `json:"steps"`
			} `json:"canary"`
		} `json:"strategy"`
	} `json:"spec"`
	Status struct {
		Abort            bool   `json:"abort"`
		Message          string `json:"message"`
		CurrentStepIndex *int   `json:"currentStepIndex"`
		PauseConditions  []struct {
			Reason string `json:"reason"`
		} `json:"pauseConditions"`
		StableRS       string `json:"stableRS"`
		CurrentPodHash string `json:"currentPodHash"`
	} `json:"status"`
}

// fullyPromoted: the stable ReplicaSet runs the current pod template, so no canary is on.
func (r wireRollout) fullyPromoted() bool {
	return r.Status.CurrentPodHash != "" && r.Status.CurrentPodHash == r.Status.StableRS
}

func (r wireRollout) paused() bool { return r.Spec.Paused || len(r.Status.PauseConditions) > 0 }

func (r wireRollout) currentStep() int {
	if r.Status.CurrentStepIndex == nil {
		return 0
	}
	return *r.Status.CurrentStepIndex
}

// stepOf is the index of the first step setting weight, or -1.
func (r wireRollout) stepOf(weight int) int {
	for i, s := range r.Spec.Strategy.Canary.Steps {
		if s.SetWeight != nil && *s.SetWeight == weight {
			return i
		}
	}
	return -1
}

func (r wireRollout) weights() string {
	var ws []string
	if r.Spec.Strategy.Canary != nil {
		for _, s := range r.Spec.Strategy.Canary.Steps {
			if s.SetWeight != nil {
				ws = append(ws, strconv.Itoa(*s.SetWeight))
			}
		}
	}
	if len(ws) == 0 {
		return "none"
	}
	return strings.Join(ws, ", ")
}
