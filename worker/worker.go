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

// NewMain builds the worker for the main task queue. It needs acts.Store.
func NewMain(c client.Client, acts *activities.Activities) sdkworker.Worker {
	w := sdkworker.New(c, workflows.TaskQueue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(workflows.ReleaseWorkflow, workflow.RegisterOptions{Name: "ReleaseWorkflow"})
	w.RegisterWorkflowWithOptions(workflows.StageWorkflow, workflow.RegisterOptions{Name: "StageWorkflow"})
	w.RegisterActivityWithOptions(acts.RecordRelease, activity.RegisterOptions{Name: "RecordRelease"})
	w.RegisterActivityWithOptions(acts.RecordDecision, activity.RegisterOptions{Name: "RecordDecision"})
	w.RegisterActivityWithOptions(acts.PreviousVersion, activity.RegisterOptions{Name: "PreviousVersion"})
	w.RegisterActivityWithOptions(acts.FreezeStatus, activity.RegisterOptions{Name: "FreezeStatus"})
	w.RegisterActivityWithOptions(acts.OpenChange, activity.RegisterOptions{Name: "OpenChange"})
	w.RegisterActivityWithOptions(acts.NoteChange, activity.RegisterOptions{Name: "NoteChange"})
	w.RegisterActivityWithOptions(acts.MoveChange, activity.RegisterOptions{Name: "MoveChange"})
	w.RegisterActivityWithOptions(acts.CloseChange, activity.RegisterOptions{Name: "CloseChange"})
	return w
}

// NewSite builds the worker for one site's task queue. It needs acts.Runner and no store, so
// it can run inside a network that cannot reach the database.
func NewSite(c client.Client, site string, acts *activities.Activities) sdkworker.Worker {
	w := sdkworker.New(c, workflows.SiteTaskQueue(site), sdkworker.Options{
		// Deploys are heavy and site machines small: a few at a time.
		MaxConcurrentActivityExecutionSize: 4,
	})
	w.RegisterActivityWithOptions(acts.DeployTarget, activity.RegisterOptions{Name: "DeployTarget"})
	w.RegisterActivityWithOptions(acts.RollbackTarget, activity.RegisterOptions{Name: "RollbackTarget"})
	return w
}
