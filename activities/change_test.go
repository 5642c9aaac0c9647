package activities

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/trainyard/trainyard/integrations/servicenow"
)

const (
	snUser     = "trainyard"
	snPassword = "change-Pa55word"
)

// newChangeActivities serves a ServiceNow fake and returns it with Activities whose Changes
// is the real HTTP client pointed at it.
func newChangeActivities(t *testing.T) (*servicenow.Fake, *Activities, *servicenow.HTTPClient) {
	t.Helper()
	fake := servicenow.NewFake(snUser, snPassword)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	client := &servicenow.HTTPClient{BaseURL: srv.URL, User: snUser, Password: snPassword, HTTP: srv.Client()}
	return fake, &Activities{Changes: client}, client
}

func openChangeRequest() OpenChangeRequest {
	return OpenChangeRequest{
		ReleaseID:       "release-shop-1.2.3",
		Runbook:         "shop",
		Version:         "1.2.3",
		Requester:       "ci",
		AssignmentGroup: "Orders Platform",
		Components:      []string{"web", "api"},
		Summary:         "Risk 72 (high). CAB approved by carol.",
	}
}

// openChange runs OpenChange and returns its result.
func openChange(t *testing.T, acts *Activities, req OpenChangeRequest) ChangeRef {
	t.Helper()
	val, err := newActivityEnv(t, acts).ExecuteActivity(acts.OpenChange, req)
	require.NoError(t, err)
	var ref ChangeRef
	require.NoError(t, val.Get(&ref))
	return ref
}

func TestOpenChange_OpensOneChangeRequestPerRelease(t *testing.T) {
	t.Parallel()
	fake, acts, _ := newChangeActivities(t)

	first := openChange(t, acts, openChangeRequest())
	require.Equal(t, "CHG0030001", first.Number)
	require.Len(t, first.SysID, 32)
	// A retry after a lost answer (or a replayed step) finds the change by correlation_id.
	again := openChange(t, acts, openChangeRequest())
	require.Equal(t, first, again)

	recs := fake.Records()
	require.Len(t, recs, 1)
	f := recs[0].Fields
	require.Equal(t, "Release shop 1.2.3", f["short_description"])
	require.Equal(t, "normal", f["type"])
	require.Equal(t, "release-shop-1.2.3", f["correlation_id"])
	require.Equal(t, "Trainyard", f["correlation_display"])
	require.Equal(t, servicenow.FakeSysID("group:Orders Platform"), f["assignment_group"])
	require.Equal(t, "Trainyard release release-shop-1.2.3: runbook shop, version 1.2.3, requested by ci.\n\n"+
		"Components:\n- web\n- api\n\nRisk 72 (high). CAB approved by carol.\n", f["description"])
}

func TestOpenChange_WithTemplateFilesStandardChange(t *testing.T) {
	t.Parallel()
	fake, acts, _ := newChangeActivities(t)
	req := openChangeRequest()
	req.Template = servicenow.FakeSysID("template:shop deploy")
	req.PlannedStart = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

	openChange(t, acts, req)
	f := fake.Records()[0].Fields
	require.Equal(t, "standard", f["type"])
	require.Equal(t, req.Template, f["std_change_producer_version"])
	require.Equal(t, "2026-03-01 09:00:00", f["start_date"])
}

func TestNoteChange_AddsWorkNote(t *testing.T) {
	t.Parallel()
	fake, acts, _ := newChangeActivities(t)
	ref := openChange(t, acts, openChangeRequest())

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.NoteChange, NoteChangeRequest{SysID: ref.SysID, Text: "Stage production-eu deployed (3 targets)"})
	require.NoError(t, err)
	require.Equal(t, []string{"Stage production-eu deployed (3 targets)"}, fake.Records()[0].WorkNotes)
}

func TestMoveChange_BringsTheChangeToTheNamedState(t *testing.T) {
	t.Parallel()
	_, acts, client := newChangeActivities(t)
	ref := openChange(t, acts, openChangeRequest())

	for range 2 { // the second time is a retry: nothing changes
		_, err := newActivityEnv(t, acts).ExecuteActivity(acts.MoveChange, MoveChangeRequest{SysID: ref.SysID, State: "implement", Note: "Deploying"})
		require.NoError(t, err)
	}
	ch, err := client.Get(t.Context(), ref.SysID)
	require.NoError(t, err)
	require.Equal(t, servicenow.StateImplement, ch.State)

	_, err = newActivityEnv(t, acts).ExecuteActivity(acts.MoveChange, MoveChangeRequest{SysID: ref.SysID, State: "deployed"})
	appErr := requireApplicationError(t, err)
	require.Equal(t, ErrTypeChangeRequestFailed, appErr.Type())
	require.True(t, appErr.NonRetryable())

	_, err = newActivityEnv(t, acts).ExecuteActivity(acts.MoveChange, MoveChangeRequest{SysID: ref.SysID, State: "new"})
	appErr = requireApplicationError(t, err)
	require.Equal(t, ErrTypeChangeRequestFailed, appErr.Type(), "moving backwards is refused")
	require.True(t, appErr.NonRetryable())
}

func TestCloseChange_MapsReleaseOutcomesToCloseCodesAndStates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		outcome   string
		state     string
		closeCode string
		notes     string
	}{
		{outcome: ChangeSucceeded, state: "3", closeCode: "successful", notes: "The release succeeded.\n\nAll stages healthy for 30m."},
		{outcome: ChangeRolledBack, state: "3", closeCode: "unsuccessful", notes: "The release was rolled back.\n\nAll stages healthy for 30m."},
		{outcome: ChangeFailed, state: "3", closeCode: "unsuccessful", notes: "The release failed.\n\nAll stages healthy for 30m."},
		{outcome: ChangeRejected, state: "4", closeCode: "", notes: "The release was rejected.\n\nAll stages healthy for 30m."},
		{outcome: ChangeAborted, state: "4", closeCode: "", notes: "The release was aborted.\n\nAll stages healthy for 30m."},
	}
	for _, tt := range tests {
		t.Run(tt.outcome, func(t *testing.T) {
			t.Parallel()
			fake, acts, _ := newChangeActivities(t)
			ref := openChange(t, acts, openChangeRequest())
			req := CloseChangeRequest{SysID: ref.SysID, Outcome: tt.outcome, Notes: "All stages healthy for 30m."}

			for range 2 { // the second time is a retry: it succeeds and changes nothing
				_, err := newActivityEnv(t, acts).ExecuteActivity(acts.CloseChange, req)
				require.NoError(t, err)
			}
			f := fake.Records()[0].Fields
			require.Equal(t, tt.state, f["state"])
			require.Equal(t, tt.closeCode, f["close_code"])
			require.Equal(t, tt.notes, f["close_notes"])
			require.Equal(t, "false", f["active"])
		})
	}
}

func TestCloseChange_WithoutNotesSaysTheOutcome(t *testing.T) {
	t.Parallel()
	fake, acts, _ := newChangeActivities(t)
	ref := openChange(t, acts, openChangeRequest())

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.CloseChange, CloseChangeRequest{SysID: ref.SysID, Outcome: ChangeRolledBack})
	require.NoError(t, err)
	require.Equal(t, "The release was rolled back.", fake.Records()[0].Fields["close_notes"])
}

func TestCloseChange_UnknownOutcomeOrOtherwiseClosedIsNonRetryable(t *testing.T) {
	t.Parallel()
	_, acts, _ := newChangeActivities(t)
	ref := openChange(t, acts, openChangeRequest())

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.CloseChange, CloseChangeRequest{SysID: ref.SysID, Outcome: "done"})
	appErr := requireApplicationError(t, err)
	require.Equal(t, ErrTypeChangeRequestFailed, appErr.Type())
	require.True(t, appErr.NonRetryable())
	require.Contains(t, appErr.Error(), `unknown release outcome "done"`)

	_, err = newActivityEnv(t, acts).ExecuteActivity(acts.CloseChange, CloseChangeRequest{SysID: ref.SysID, Outcome: ChangeSucceeded})
	require.NoError(t, err)
	_, err = newActivityEnv(t, acts).ExecuteActivity(acts.CloseChange, CloseChangeRequest{SysID: ref.SysID, Outcome: ChangeAborted})
	appErr = requireApplicationError(t, err)
	require.Equal(t, ErrTypeChangeRequestFailed, appErr.Type())
	require.True(t, appErr.NonRetryable())
	require.Contains(t, appErr.Error(), "already closed")
}

func TestChangeActivities_WithoutClientAreMisconfigured(t *testing.T) {
	t.Parallel()
	acts := &Activities{}
	tests := []struct {
		name string
		fn   any
		req  any
	}{
		{name: "open", fn: acts.OpenChange, req: openChangeRequest()},
		{name: "note", fn: acts.NoteChange, req: NoteChangeRequest{SysID: "x", Text: "y"}},
		{name: "move", fn: acts.MoveChange, req: MoveChangeRequest{SysID: "x", State: "implement"}},
		{name: "close", fn: acts.CloseChange, req: CloseChangeRequest{SysID: "x", Outcome: ChangeSucceeded}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := newActivityEnv(t, acts).ExecuteActivity(tt.fn, tt.req)
			appErr := requireApplicationError(t, err)
			require.Equal(t, "Misconfigured", appErr.Type())
			require.True(t, appErr.NonRetryable())
			for _, key := range []string{"servicenow.url", "TRAINYARD_SERVICENOW_URL", "servicenow.token", "TRAINYARD_SERVICENOW_PASSWORD"} {
				require.Contains(t, appErr.Error(), key)
			}
		})
	}
}

func TestChangeActivities_RefusedRequestsAreNonRetryableChangeRequestFailed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(c *servicenow.HTTPClient)
		run     func(a *Activities) (any, any)
		message string
	}{
		{
			name:    "no credentials",
			setup:   func(c *servicenow.HTTPClient) { c.User, c.Password = "", "" },
			run:     func(a *Activities) (any, any) { return a.OpenChange, openChangeRequest() },
			message: "401 Unauthorized: User Not Authenticated",
		},
		{
			name: "unknown change",
			run: func(a *Activities) (any, any) {
				return a.NoteChange, NoteChangeRequest{SysID: servicenow.FakeSysID("gone"), Text: "x"}
			},
			message: "404 Not Found: No Record found",
		},
		{
			name: "unknown assignment group",
			run: func(a *Activities) (any, any) {
				req := openChangeRequest()
				req.AssignmentGroup = "Nobody"
				return a.OpenChange, req
			},
			message: `assignment group "Nobody"`,
		},
		{
			name: "no release id",
			run: func(a *Activities) (any, any) {
				req := openChangeRequest()
				req.ReleaseID = ""
				return a.OpenChange, req
			},
			message: "correlation id is empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, acts, client := newChangeActivities(t)
			if tt.setup != nil {
				tt.setup(client)
			}
			fn, req := tt.run(acts)
			_, err := newActivityEnv(t, acts).ExecuteActivity(fn, req)
			appErr := requireApplicationError(t, err)
			require.Equal(t, ErrTypeChangeRequestFailed, appErr.Type())
			require.True(t, appErr.NonRetryable())
			require.Contains(t, appErr.Error(), tt.message)
			require.NotContains(t, appErr.Error(), snPassword)
		})
	}
}

func TestChangeActivities_RateLimitIsRetriedAfterServiceNowsDelay(t *testing.T) {
	t.Parallel()
	fake, acts, _ := newChangeActivities(t)
	fake.RateLimitOnce(20 * time.Second)

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.OpenChange, openChangeRequest())
	appErr := requireApplicationError(t, err)
	require.Equal(t, ErrTypeChangeRequestUnavailable, appErr.Type())
	require.False(t, appErr.NonRetryable())
	require.Equal(t, 20*time.Second, appErr.NextRetryDelay())
	require.Contains(t, appErr.Error(), "429 Too Many Requests")
	require.Empty(t, fake.Records())

	openChange(t, acts, openChangeRequest()) // the retry
	require.Len(t, fake.Records(), 1)
}

func TestChangeActivities_ServerErrorIsRetryableWithServiceNowsMessage(t *testing.T) {
	t.Parallel()
	fake, acts, _ := newChangeActivities(t)
	ref := openChange(t, acts, openChangeRequest())
	fake.FailOnce(http.StatusServiceUnavailable, "Instance is unavailable", "Try again later")

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.CloseChange, CloseChangeRequest{SysID: ref.SysID, Outcome: ChangeSucceeded})
	appErr := requireApplicationError(t, err)
	require.Equal(t, ErrTypeChangeRequestUnavailable, appErr.Type())
	require.False(t, appErr.NonRetryable())
	require.Contains(t, appErr.Error(), "503 Service Unavailable: Instance is unavailable (Try again later)")
	require.False(t, strings.Contains(appErr.Error(), snPassword))
}

func TestChangeActivities_UnreachableServiceNowIsRetryable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	acts := &Activities{Changes: &servicenow.HTTPClient{BaseURL: url, User: snUser, Password: snPassword}}

	_, err := newActivityEnv(t, acts).ExecuteActivity(acts.NoteChange, NoteChangeRequest{SysID: servicenow.FakeSysID("x"), Text: "y"})
	appErr := requireApplicationError(t, err)
	require.False(t, appErr.NonRetryable())
	require.NotContains(t, appErr.Error(), snPassword)
}
