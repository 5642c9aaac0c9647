package temporalconn_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"google.golang.org/grpc"

	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/internal/temporalconn"
	"github.com/trainyard/trainyard/workflows"
)

// fakeClient is a client.Client whose OperatorService is ops. Any other method panics on
// the nil embedded client, so a test sees at once if EnsureSearchAttributes calls more.
type fakeClient struct {
	client.Client
	ops operatorservice.OperatorServiceClient
}

func (f fakeClient) OperatorService() operatorservice.OperatorServiceClient { return f.ops }

// fakeOperator answers ListSearchAttributes and AddSearchAttributes with its func fields, or
// passes them to the embedded real client when a field is nil. It records every Add.
type fakeOperator struct {
	operatorservice.OperatorServiceClient
	ListFunc func(ctx context.Context, req *operatorservice.ListSearchAttributesRequest) (*operatorservice.ListSearchAttributesResponse, error)
	AddFunc  func(ctx context.Context, req *operatorservice.AddSearchAttributesRequest) (*operatorservice.AddSearchAttributesResponse, error)

	mu   sync.Mutex
	adds []*operatorservice.AddSearchAttributesRequest
}

func (f *fakeOperator) ListSearchAttributes(ctx context.Context, req *operatorservice.ListSearchAttributesRequest, opts ...grpc.CallOption) (*operatorservice.ListSearchAttributesResponse, error) {
	if f.ListFunc != nil {
		return f.ListFunc(ctx, req)
	}
	return f.OperatorServiceClient.ListSearchAttributes(ctx, req, opts...)
}

func (f *fakeOperator) AddSearchAttributes(ctx context.Context, req *operatorservice.AddSearchAttributesRequest, opts ...grpc.CallOption) (*operatorservice.AddSearchAttributesResponse, error) {
	f.mu.Lock()
	f.adds = append(f.adds, req)
	f.mu.Unlock()
	if f.AddFunc != nil {
		return f.AddFunc(ctx, req)
	}
	return f.OperatorServiceClient.AddSearchAttributes(ctx, req, opts...)
}

func (f *fakeOperator) Adds() []*operatorservice.AddSearchAttributesRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*operatorservice.AddSearchAttributesRequest(nil), f.adds...)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// allTrainyardAttributes is workflows.SearchAttributeTypes as Temporal types.
func allTrainyardAttributes() map[string]enumspb.IndexedValueType {
	m := map[string]enumspb.IndexedValueType{}
	for name, kind := range workflows.SearchAttributeTypes {
		m[name] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
		if kind == "Int" {
			m[name] = enumspb.INDEXED_VALUE_TYPE_INT
		}
	}
	return m
}

func listing(custom map[string]enumspb.IndexedValueType) func(context.Context, *operatorservice.ListSearchAttributesRequest) (*operatorservice.ListSearchAttributesResponse, error) {
	return func(context.Context, *operatorservice.ListSearchAttributesRequest) (*operatorservice.ListSearchAttributesResponse, error) {
		return &operatorservice.ListSearchAttributesResponse{CustomAttributes: custom}, nil
	}
}

func TestEnsureSearchAttributes_RegistersOnlyTheMissingOnesWithTheirTypes(t *testing.T) {
	t.Parallel()
	ops := &fakeOperator{
		ListFunc: listing(map[string]enumspb.IndexedValueType{
			workflows.AttrRunbook: enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			workflows.AttrVersion: enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			"SomeoneElses":        enumspb.INDEXED_VALUE_TYPE_BOOL,
		}),
		AddFunc: func(context.Context, *operatorservice.AddSearchAttributesRequest) (*operatorservice.AddSearchAttributesResponse, error) {
			return &operatorservice.AddSearchAttributesResponse{}, nil
		},
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))

	require.NoError(t, temporalconn.EnsureSearchAttributes(context.Background(), fakeClient{ops: ops}, "releases", logger))

	adds := ops.Adds()
	require.Len(t, adds, 1)
	require.Equal(t, "releases", adds[0].GetNamespace())
	require.Equal(t, map[string]enumspb.IndexedValueType{
		workflows.AttrPhase:       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		workflows.AttrEnvironment: enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		workflows.AttrRisk:        enumspb.INDEXED_VALUE_TYPE_INT,
	}, adds[0].GetSearchAttributes())
	require.Contains(t, logs.String(), "registered search attributes")
	require.Contains(t, logs.String(), "count=3")
}

func TestEnsureSearchAttributes_AllPresentAddsNothing(t *testing.T) {
	t.Parallel()
	ops := &fakeOperator{ListFunc: listing(allTrainyardAttributes())}
	require.NoError(t, temporalconn.EnsureSearchAttributes(context.Background(), fakeClient{ops: ops}, "default", discardLogger()))
	require.Empty(t, ops.Adds())
}

func TestEnsureSearchAttributes_Errors(t *testing.T) {
	t.Parallel()
	errDenied := errors.New("permission denied")
	tests := []struct {
		name string
		ops  *fakeOperator
		says string
	}{
		{
			name: "listing fails",
			ops: &fakeOperator{ListFunc: func(context.Context, *operatorservice.ListSearchAttributesRequest) (*operatorservice.ListSearchAttributesResponse, error) {
				return nil, errDenied
			}},
			says: "list search attributes of releases: permission denied",
		},
		{
			name: "registering fails, pointing Temporal Cloud users at tcld",
			ops: &fakeOperator{
				ListFunc: listing(nil),
				AddFunc: func(context.Context, *operatorservice.AddSearchAttributesRequest) (*operatorservice.AddSearchAttributesResponse, error) {
					return nil, errDenied
				},
			},
			says: "register search attributes on releases (on Temporal Cloud add them with tcld): permission denied",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := temporalconn.EnsureSearchAttributes(context.Background(), fakeClient{ops: tt.ops}, "releases", discardLogger())
			require.ErrorIs(t, err, errDenied)
			require.EqualError(t, err, tt.says)
		})
	}
}

func TestDial_MissingClientCertificateFailsAtOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := temporalconn.Dial(context.Background(), config.Temporal{
		Address: "127.0.0.1:7233", Namespace: "default",
		TLSCert: filepath.Join(dir, "client.pem"), TLSKey: filepath.Join(dir, "client.key"),
	}, discardLogger())
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, err, "load temporal client certificate")
}

func TestDial_NothingListeningFailsWhenContextEndsNamingAddress(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()

	start := time.Now()
	_, err = temporalconn.Dial(ctx, config.Temporal{Address: addr, Namespace: "releases"}, discardLogger())
	require.ErrorContains(t, err, "connect to Temporal at "+addr+" (namespace releases)")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 10*time.Second, "Dial stops when its context ends")
}

// TestEnsureSearchAttributes_RealServerRegistersOnceThenNoop starts the dev server that
// `make` builds into bin/ without the Trainyard attributes.
func TestEnsureSearchAttributes_RealServerRegistersOnceThenNoop(t *testing.T) {
	cli, err := filepath.Abs("../../bin/temporal")
	require.NoError(t, err)
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("the Temporal CLI is missing at %s: run `make test`, which builds it: %v", cli, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ts, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  cli,
		LogLevel:      "error",
		ClientOptions: &client.Options{Namespace: "default", Logger: tlog.NewStructuredLogger(discardLogger())},
	})
	require.NoError(t, err, "start the Temporal dev server")
	t.Cleanup(func() { _ = ts.Stop() })

	c, err := temporalconn.Dial(ctx, config.Temporal{Address: ts.FrontendHostPort(), Namespace: "default"}, discardLogger())
	require.NoError(t, err)
	defer c.Close()

	list := func() map[string]enumspb.IndexedValueType {
		resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
		require.NoError(t, err)
		return resp.GetCustomAttributes()
	}
	for name := range workflows.SearchAttributeTypes {
		require.NotContains(t, list(), name, "the server started without Trainyard attributes")
	}

	ops := &fakeOperator{OperatorServiceClient: c.OperatorService()}
	counting := fakeClient{Client: c, ops: ops}
	require.NoError(t, temporalconn.EnsureSearchAttributes(ctx, counting, "default", discardLogger()))
	require.Len(t, ops.Adds(), 1)
	have := list()
	for name, want := range allTrainyardAttributes() {
		require.Contains(t, have, name)
		require.Equal(t, want, have[name], name)
	}

	require.NoError(t, temporalconn.EnsureSearchAttributes(ctx, counting, "default", discardLogger()))
	require.Len(t, ops.Adds(), 1, "the second call registers nothing")
}
