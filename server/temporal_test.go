package server

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/trainyard/trainyard/runbooks"
	"github.com/trainyard/trainyard/workflows"
)

// fakeTemporal implements the few client.Client methods TemporalEngine calls; the embedded
// nil interface makes any other call panic, which flags a new dependency.
type fakeTemporal struct {
	client.Client
	execute  func(opts client.StartWorkflowOptions, name any, args ...any) error
	query    func(id string) error
	update   func(opts client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error)
	describe func(id string) (*client.WorkflowExecutionDescription, error)
}

func (f fakeTemporal) ExecuteWorkflow(_ context.Context, opts client.StartWorkflowOptions, name any, args ...any) (client.WorkflowRun, error) {
	return nil, f.execute(opts, name, args...)
}

func (f fakeTemporal) QueryWorkflow(_ context.Context, id, _, _ string, _ ...any) (converter.EncodedValue, error) {
	return nil, f.query(id)
}

func (f fakeTemporal) UpdateWorkflow(_ context.Context, opts client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	return f.update(opts)
}

func (f fakeTemporal) DescribeWorkflow(_ context.Context, id, _ string) (*client.WorkflowExecutionDescription, error) {
	return f.describe(id)
}

type fakeHandle struct {
	client.WorkflowUpdateHandle
	get func(valuePtr any) error
}

func (h fakeHandle) Get(_ context.Context, valuePtr any) error { return h.get(valuePtr) }

func TestTemporalEngineStart_StartsByNameAndFindsExisting(t *testing.T) {
	t.Parallel()
	var got client.StartWorkflowOptions
	var gotName any
	already := false
	eng := TemporalEngine{Client: fakeTemporal{execute: func(opts client.StartWorkflowOptions, name any, _ ...any) error {
		got, gotName = opts, name
		if already {
			return serviceerror.NewWorkflowExecutionAlreadyStarted("already started", "", "run-1")
		}
		return nil
	}}}
	in := workflows.ReleaseInput{ID: "release-hello-1.2.3", Runbook: runbooks.Runbook{Name: "hello"}, Version: "1.2.3"}

	created, err := eng.Start(context.Background(), in)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, "ReleaseWorkflow", gotName)
	require.Equal(t, "release-hello-1.2.3", got.ID)
	require.Equal(t, workflows.TaskQueue, got.TaskQueue)
	require.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, got.WorkflowIDReusePolicy)
	require.True(t, got.WorkflowExecutionErrorWhenAlreadyStarted)
	phase, ok := got.TypedSearchAttributes.GetKeyword(temporal.NewSearchAttributeKeyKeyword(workflows.AttrPhase))
	require.True(t, ok)
	require.Equal(t, "pending", phase)
	rb, _ := got.TypedSearchAttributes.GetKeyword(temporal.NewSearchAttributeKeyKeyword(workflows.AttrRunbook))
	require.Equal(t, "hello", rb)

	already = true
	created, err = eng.Start(context.Background(), in)
	require.NoError(t, err)
	require.False(t, created)
}

func TestTemporalEngineStatus_UnknownReleaseIsErrReleaseNotFound(t *testing.T) {
	t.Parallel()
	eng := TemporalEngine{Client: fakeTemporal{query: func(string) error { return serviceerror.NewNotFound("workflow not found") }}}
	_, err := eng.Status(context.Background(), "nope")
	require.ErrorIs(t, err, ErrReleaseNotFound)
}

func TestTemporalEngineUpdate_MapsOutcomes(t *testing.T) {
	t.Parallel()
	completed := &client.WorkflowExecutionDescription{WorkflowExecutionMetadata: client.WorkflowExecutionMetadata{
		Status: enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED,
	}}
	tests := []struct {
		name     string
		update   error
		get      error
		describe func(string) (*client.WorkflowExecutionDescription, error)
		want     func(t *testing.T, res workflows.ApprovalResult, err error)
	}{
		{
			name: "applied",
			want: func(t *testing.T, res workflows.ApprovalResult, err error) {
				require.NoError(t, err)
				require.Equal(t, workflows.GateApproved, res.State)
			},
		},
		{
			name: "validator refused",
			get:  temporal.NewApplicationError("alice requested this release", workflows.ErrTypeForbidden),
			want: func(t *testing.T, _ workflows.ApprovalResult, err error) {
				var refused *RefusedError
				require.ErrorAs(t, err, &refused)
				require.Equal(t, &RefusedError{Type: workflows.ErrTypeForbidden, Message: "alice requested this release"}, refused)
			},
		},
		{
			name:     "release ended",
			update:   serviceerror.NewNotFound("workflow execution already completed"),
			describe: func(string) (*client.WorkflowExecutionDescription, error) { return completed, nil },
			want: func(t *testing.T, _ workflows.ApprovalResult, err error) {
				require.Equal(t, &RefusedError{Type: workflows.ErrTypeConflict, Message: "release has ended"}, err)
			},
		},
		{
			name:   "unknown release",
			update: serviceerror.NewNotFound("workflow not found"),
			describe: func(string) (*client.WorkflowExecutionDescription, error) {
				return nil, serviceerror.NewNotFound("workflow not found")
			},
			want: func(t *testing.T, _ workflows.ApprovalResult, err error) {
				require.ErrorIs(t, err, ErrReleaseNotFound)
			},
		},
		{
			name:   "unavailable",
			update: serviceerror.NewUnavailable("frontend down"),
			want: func(t *testing.T, _ workflows.ApprovalResult, err error) {
				require.ErrorContains(t, err, "frontend down")
				var refused *RefusedError
				require.False(t, errors.As(err, &refused))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts client.UpdateWorkflowOptions
			eng := TemporalEngine{Client: fakeTemporal{
				update: func(o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
					opts = o
					if tt.update != nil {
						return nil, tt.update
					}
					return fakeHandle{get: func(v any) error {
						if tt.get != nil {
							return tt.get
						}
						*v.(*workflows.ApprovalResult) = workflows.ApprovalResult{Gate: "production", State: workflows.GateApproved}
						return nil
					}}, nil
				},
				describe: tt.describe,
			}}
			res, err := eng.Approve(context.Background(), "r1", "approve/production/alice", workflows.ApprovalRequest{Gate: "production"})
			tt.want(t, res, err)
			require.Equal(t, "r1", opts.WorkflowID)
			require.Equal(t, "approve/production/alice", opts.UpdateID)
			require.Equal(t, workflows.UpdateApprove, opts.UpdateName)
			require.Equal(t, client.WorkflowUpdateStageCompleted, opts.WaitForStage)
			require.Equal(t, []any{workflows.ApprovalRequest{Gate: "production"}}, opts.Args)
		})
	}
}
