package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/trainyard/trainyard/integrations/servicenow"
)

// Error types of the change request activities.
const (
	// ErrTypeChangeRequestFailed: ServiceNow refused the request (credentials, permissions, a
	// rule, an unknown change or group), or the request itself was invalid. Not retried.
	ErrTypeChangeRequestFailed = "ChangeRequestFailed"
	// ErrTypeChangeRequestUnavailable: ServiceNow is rate limiting (429) or failing (5xx).
	// Retried, after ServiceNow's Retry-After when it sent one.
	ErrTypeChangeRequestUnavailable = "ChangeRequestUnavailable"
)

const errNoChanges = "this worker has no ServiceNow client: set servicenow.url (TRAINYARD_SERVICENOW_URL) " +
	"and servicenow.user and servicenow.password (TRAINYARD_SERVICENOW_USER, TRAINYARD_SERVICENOW_PASSWORD) " +
	"or servicenow.token (TRAINYARD_SERVICENOW_TOKEN)"

// Outcomes of a release, as CloseChange takes them.
const (
	ChangeSucceeded  = "successful"
	ChangeRolledBack = "rolled_back"
	ChangeFailed     = "failed"
	ChangeRejected   = "rejected"
	ChangeAborted    = "aborted"
)

// changeOutcomes maps a release's outcome to how its change request ends, and the sentence
// that opens the close notes.
var changeOutcomes = map[string]struct {
	outcome servicenow.Outcome
	says    string
}{
	ChangeSucceeded:  {servicenow.OutcomeSuccessful, "The release succeeded."},
	ChangeRolledBack: {servicenow.OutcomeUnsuccessful, "The release was rolled back."},
	ChangeFailed:     {servicenow.OutcomeUnsuccessful, "The release failed."},
	ChangeRejected:   {servicenow.OutcomeCanceled, "The release was rejected."},
	ChangeAborted:    {servicenow.OutcomeCanceled, "The release was aborted."},
}

// OpenChangeRequest asks for the change request of a release.
type OpenChangeRequest struct {
	// ReleaseID is the change's correlation_id: opening twice for one release opens one change.
	ReleaseID string `json:"releaseId"`
	Runbook   string `json:"runbook"`
	Version   string `json:"version"`
	Requester string `json:"requester"`
	// AssignmentGroup is the runbook's changeRequest.assignmentGroup: a group's name or sys_id.
	AssignmentGroup string `json:"assignmentGroup,omitempty"`
	// Template is the runbook's changeRequest.template: the sys_id of a standard change
	// template version; set, the change is a standard change.
	Template   string   `json:"template,omitempty"`
	Components []string `json:"components,omitempty"`
	// Summary is a few lines for the change's description (risk, approvals, stages).
	Summary string `json:"summary,omitempty"`
	// PlannedStart and PlannedEnd are the change's planned dates, when known.
	PlannedStart time.Time `json:"plannedStart,omitzero"`
	PlannedEnd   time.Time `json:"plannedEnd,omitzero"`
}

// ChangeRef names an open change request.
type ChangeRef struct {
	SysID  string `json:"sysId"`
	Number string `json:"number"`
}

// NoteChangeRequest adds a work note to a change request.
type NoteChangeRequest struct {
	SysID string `json:"sysId"`
	Text  string `json:"text"`
}

// MoveChangeRequest brings a change request to a state: assess, authorize, scheduled,
// implement or review.
type MoveChangeRequest struct {
	SysID string `json:"sysId"`
	State string `json:"state"`
	Note  string `json:"note,omitempty"`
}

// CloseChangeRequest ends a change request with the release's outcome: successful,
// rolled_back, failed, rejected or aborted.
type CloseChangeRequest struct {
	SysID   string `json:"sysId"`
	Outcome string `json:"outcome"`
	Notes   string `json:"notes,omitempty"`
}

// OpenChange opens the release's change request, or returns the one already open for it.
func (a *Activities) OpenChange(ctx context.Context, req OpenChangeRequest) (ChangeRef, error) {
	if a.Changes == nil {
		return ChangeRef{}, temporal.NewNonRetryableApplicationError(errNoChanges, "Misconfigured", nil)
	}
	ch, err := a.Changes.Open(ctx, servicenow.ChangeInput{
		CorrelationID:      req.ReleaseID,
		CorrelationDisplay: "Trainyard",
		ShortDescription:   fmt.Sprintf("Release %s %s", req.Runbook, req.Version),
		Description:        changeDescription(req),
		AssignmentGroup:    req.AssignmentGroup,
		Template:           req.Template,
		PlannedStart:       req.PlannedStart,
		PlannedEnd:         req.PlannedEnd,
	})
	if err != nil {
		return ChangeRef{}, changeError(ctx, "open change request for "+req.ReleaseID, err)
	}
	a.logger().Info("change request open", "release", req.ReleaseID, "change", ch.Number, "sysId", ch.SysID, "changeState", ch.State.String())
	return ChangeRef{SysID: ch.SysID, Number: ch.Number}, nil
}

// NoteChange adds a work note (a stage started, deployed, failed). A note retried after a
// lost answer may appear twice.
func (a *Activities) NoteChange(ctx context.Context, req NoteChangeRequest) error {
	if a.Changes == nil {
		return temporal.NewNonRetryableApplicationError(errNoChanges, "Misconfigured", nil)
	}
	if err := a.Changes.Note(ctx, req.SysID, req.Text); err != nil {
		return changeError(ctx, "note on change request "+req.SysID, err)
	}
	return nil
}

// MoveChange brings the change request to req.State through the states its model passes
// (for a normal change, implement from new goes through assess, authorize and scheduled).
// A change already there is left alone.
func (a *Activities) MoveChange(ctx context.Context, req MoveChangeRequest) error {
	if a.Changes == nil {
		return temporal.NewNonRetryableApplicationError(errNoChanges, "Misconfigured", nil)
	}
	state, err := servicenow.ParseState(req.State)
	if err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeChangeRequestFailed, nil)
	}
	if err := a.Changes.Move(ctx, req.SysID, state, req.Note); err != nil {
		return changeError(ctx, fmt.Sprintf("move change request %s to %s", req.SysID, state), err)
	}
	return nil
}

// CloseChange ends the change request: successful closes it successful; rolled_back and
// failed close it unsuccessful; rejected and aborted cancel it. Closing again with the same
// outcome succeeds.
func (a *Activities) CloseChange(ctx context.Context, req CloseChangeRequest) error {
	if a.Changes == nil {
		return temporal.NewNonRetryableApplicationError(errNoChanges, "Misconfigured", nil)
	}
	o, ok := changeOutcomes[req.Outcome]
	if !ok {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("unknown release outcome %q: use %s, %s, %s, %s or %s",
			req.Outcome, ChangeSucceeded, ChangeRolledBack, ChangeFailed, ChangeRejected, ChangeAborted), ErrTypeChangeRequestFailed, nil)
	}
	notes := o.says
	if n := strings.TrimSpace(req.Notes); n != "" {
		notes += "\n\n" + n
	}
	if err := a.Changes.Close(ctx, req.SysID, o.outcome, notes); err != nil {
		return changeError(ctx, fmt.Sprintf("close change request %s as %s", req.SysID, req.Outcome), err)
	}
	a.logger().Info("change request closed", "sysId", req.SysID, "outcome", req.Outcome, "closeCode", string(o.outcome))
	return nil
}

func changeDescription(req OpenChangeRequest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Trainyard release %s: runbook %s, version %s", req.ReleaseID, req.Runbook, req.Version)
	if req.Requester != "" {
		fmt.Fprintf(&b, ", requested by %s", req.Requester)
	}
	b.WriteString(".\n")
	if len(req.Components) > 0 {
		b.WriteString("\nComponents:\n")
		for _, c := range req.Components {
			fmt.Fprintf(&b, "- %s\n", c)
		}
	}
	if s := strings.TrimSpace(req.Summary); s != "" {
		b.WriteString("\n" + s + "\n")
	}
	return b.String()
}

// changeError turns a client error into what Temporal should do with it: stop (refused or
// invalid), retry after ServiceNow's delay (rate limited, failing), or retry (unreachable).
func changeError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	msg := op + ": " + err.Error()
	if !servicenow.IsRetryable(err) {
		return temporal.NewNonRetryableApplicationError(msg, ErrTypeChangeRequestFailed, err)
	}
	var se *servicenow.Error
	if errors.As(err, &se) {
		return temporal.NewApplicationErrorWithOptions(msg, ErrTypeChangeRequestUnavailable,
			temporal.ApplicationErrorOptions{Cause: err, NextRetryDelay: se.RetryAfter})
	}
	return fmt.Errorf("%s: %w", op, err)
}
