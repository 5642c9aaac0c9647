// Package worker builds Trainyard's Temporal workers: the main one (release and stage
// workflows, store activities) and site workers that run target commands inside a site's
// network. It starts nothing by itself.
package worker

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/workflows"
)

// MainActivities are the activities of the main task queue, by the name histories record
// them under: never rename one that has shipped.
func MainActivities(acts *activities.Activities) map[string]any {
	return map[string]any{
		"RecordRelease":    acts.RecordRelease,
		"RecordDecision":   acts.RecordDecision,
		"PreviousVersion":  acts.PreviousVersion,
		"FreezeStatus":     acts.FreezeStatus,
		"OpenChange":       acts.OpenChange,
		"NoteChange":       acts.NoteChange,
		"MoveChange":       acts.MoveChange,
		"CloseChange":      acts.CloseChange,
		"Assess":           acts.Assess,
		"RunGate":          acts.RunGate,
		"FindWaiver":       acts.FindWaiver,
		"RecordGateResult": acts.RecordGateResult,
		"CheckPolicies":    acts.CheckPolicies,
		"Notify":           acts.Notify,
		"PublishRelease":   acts.PublishRelease,

		// Environments: locks, reservations and promotions.
		"RequestLock":       acts.RequestLock,
		"ReleaseOpen":       acts.ReleaseOpen,
		"ReservationStatus": acts.ReservationStatus,
		"RecordPromotions":  acts.RecordPromotions,

		// Smoke tests, exit criteria and canary analyses probe and query from here.
		"RunChecks":   acts.RunChecks,
		"RunAnalysis": acts.RunAnalysis,

		// Stabilization, incidents, release markers and circuit breakers.
		"CaptureBaselines":    acts.CaptureBaselines,
		"WatchStabilization":  acts.WatchStabilization,
		"RecordEvidence":      acts.RecordEvidence,
		"RecordMarker":        acts.RecordMarker,
		"OpenCircuitBreakers": acts.OpenCircuitBreakers,
		"TripCircuitBreakers": acts.TripCircuitBreakers,
	}
}

// CloudActivities are the target activities of cloud targets (argocd, spinnaker, flag), which
// need no site: the main worker process serves them on workflows.CloudTaskQueue, under the
// same names as on a site's queue.
func CloudActivities(acts *activities.Activities) map[string]any {
	return map[string]any{
		"DeployTarget":   acts.DeployTarget,
		"RollbackTarget": acts.RollbackTarget,
		"ShiftTraffic":   acts.ShiftTraffic,
		"ResyncTarget":   acts.ResyncTarget,
		"CheckDrift":     acts.CheckDrift,
	}
}

// SiteActivities are the activities a site worker runs inside its network.
func SiteActivities(acts *activities.Activities) map[string]any {
	return map[string]any{
		"DeployTarget":   acts.DeployTarget,
		"RollbackTarget": acts.RollbackTarget,
		"RunGateCommand": acts.RunGateCommand,
		"ShiftTraffic":   acts.ShiftTraffic,
		"ResyncTarget":   acts.ResyncTarget,
		"CheckDrift":     acts.CheckDrift,
	}
}

// NewMain builds the worker for the main task queue. It needs acts.Store.
func NewMain(c client.Client, acts *activities.Activities) sdkworker.Worker {
	w := sdkworker.New(c, workflows.TaskQueue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(workflows.ReleaseWorkflow, workflow.RegisterOptions{Name: "ReleaseWorkflow"})
	w.RegisterWorkflowWithOptions(workflows.StageWorkflow, workflow.RegisterOptions{Name: "StageWorkflow"})
	w.RegisterWorkflowWithOptions(workflows.EnvironmentLockWorkflow, workflow.RegisterOptions{Name: workflows.LockWorkflowName})
	for name, fn := range MainActivities(acts) {
		w.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	return w
}

// NewCloud builds the worker for cloud targets (workflows.CloudTaskQueue); run it next to
// NewMain, with acts.Deploy holding the deploy systems' clients.
func NewCloud(c client.Client, acts *activities.Activities) sdkworker.Worker {
	w := sdkworker.New(c, workflows.CloudTaskQueue, sdkworker.Options{})
	for name, fn := range CloudActivities(acts) {
		w.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	return w
}

// NewSite builds the worker for one site's task queue. It needs acts.Runner and no store, so
// it can run inside a network that cannot reach the database.
func NewSite(c client.Client, site string, acts *activities.Activities) sdkworker.Worker {
	w := sdkworker.New(c, workflows.SiteTaskQueue(site), sdkworker.Options{
		// Deploys are heavy and site machines small: a few at a time.
		MaxConcurrentActivityExecutionSize: 4,
	})
	for name, fn := range SiteActivities(acts) {
		w.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
	return w
}
