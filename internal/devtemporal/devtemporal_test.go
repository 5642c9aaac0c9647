package devtemporal_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"

	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/internal/devtemporal"
	"github.com/trainyard/trainyard/internal/temporalconn"
	"github.com/trainyard/trainyard/workflows"
)

// flagValues returns every value given to flag in args, in order.
func flagValues(args []string, flag string) []string {
	var vals []string
	for i := 0; i < len(args)-1; i++ {
		if args[i] == flag {
			vals = append(vals, args[i+1])
		}
	}
	return vals
}

// freePort is a loopback port nothing listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

func requirePortFree(t *testing.T, port int) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.NoError(t, err, "port %d is still in use", port)
	require.NoError(t, l.Close())
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestArgs_StartDevWithPortsDBFileNamespaceAndTrainyardSearchAttributes(t *testing.T) {
	t.Parallel()
	o := devtemporal.Options{
		CLI: "bin/temporal", DBFile: "/var/lib/trainyard/temporal.db", IP: "127.0.0.1",
		Port: 17233, UIPort: 18233, Namespace: "releases",
	}
	args := devtemporal.Args(o)

	require.Equal(t, []string{"server", "start-dev"}, args[:2])
	require.Equal(t, []string{"127.0.0.1"}, flagValues(args, "--ip"))
	require.Equal(t, []string{"17233"}, flagValues(args, "--port"))
	require.Equal(t, []string{"18233"}, flagValues(args, "--ui-port"))
	require.Equal(t, []string{"/var/lib/trainyard/temporal.db"}, flagValues(args, "--db-filename"))
	require.Equal(t, []string{"releases"}, flagValues(args, "--namespace"))

	// The five Trainyard attributes, each with its type, sorted by name.
	require.Len(t, workflows.SearchAttributeTypes, 5)
	var want []string
	for _, name := range []string{workflows.AttrEnvironment, workflows.AttrPhase, workflows.AttrRisk, workflows.AttrRunbook, workflows.AttrVersion} {
		kind, ok := workflows.SearchAttributeTypes[name]
		require.True(t, ok, name)
		want = append(want, name+"="+kind)
	}
	got := flagValues(args, "--search-attribute")
	require.Equal(t, want, got)
	require.True(t, slices.IsSorted(got))
	require.Contains(t, got, "TrainyardRisk=Int")
	require.Contains(t, got, "TrainyardRunbook=Keyword")
}

func TestArgs_AreTheSameEveryTime(t *testing.T) {
	t.Parallel()
	o := devtemporal.Options{IP: "127.0.0.1", Port: 7233, UIPort: 8233, DBFile: "t.db", Namespace: "default"}
	first := devtemporal.Args(o)
	// Map iteration order changes from run to run; the command line must not.
	for range 50 {
		require.Equal(t, first, devtemporal.Args(o))
	}
}

func TestStart_MissingCLISaysMakeDevBuildsIt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cli := filepath.Join(dir, "bin", "temporal")
	_, err := devtemporal.Start(context.Background(), devtemporal.Options{
		CLI: cli, DBFile: filepath.Join(dir, "t.db"), LogFile: filepath.Join(dir, "t.log"),
		IP: "127.0.0.1", Port: freePort(t), UIPort: freePort(t), Namespace: "default",
	})
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, err, "temporal CLI not found at "+cli)
	require.ErrorContains(t, err, "`make dev` builds it")
}

func TestStart_TakenPortFailsNamingThePort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ui   bool
	}{
		{name: "frontend port"},
		{name: "UI port", ui: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer l.Close()
			taken := l.Addr().(*net.TCPAddr).Port

			dir := t.TempDir()
			// An empty file passes the CLI check; it must never be run.
			cli := filepath.Join(dir, "temporal")
			require.NoError(t, os.WriteFile(cli, nil, 0o600))
			o := devtemporal.Options{
				CLI: cli, DBFile: filepath.Join(dir, "data", "t.db"), LogFile: filepath.Join(dir, "t.log"),
				IP: "127.0.0.1", Port: taken, UIPort: freePort(t), Namespace: "default",
			}
			if tt.ui {
				o.Port, o.UIPort = freePort(t), taken
			}
			_, err = devtemporal.Start(context.Background(), o)
			require.ErrorContains(t, err, fmt.Sprintf("port %d is taken", taken))
			require.NoFileExists(t, o.LogFile, "nothing was started")
		})
	}
}

func TestStop_NilServerIsNoop(t *testing.T) {
	t.Parallel()
	var s *devtemporal.Server
	require.NoError(t, s.Stop())
}

// TestStart_RealDevServerServesTrainyardSearchAttributesAndStops runs the CLI that `make`
// builds into bin/.
func TestStart_RealDevServerServesTrainyardSearchAttributesAndStops(t *testing.T) {
	cli, err := filepath.Abs("../../bin/temporal")
	require.NoError(t, err)
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("the Temporal CLI is missing at %s: run `make test`, which builds it: %v", cli, err)
	}
	dir := t.TempDir()
	o := devtemporal.Options{
		CLI: cli, DBFile: filepath.Join(dir, "data", "temporal.db"), LogFile: filepath.Join(dir, "temporal.log"),
		IP: "127.0.0.1", Port: freePort(t), UIPort: freePort(t), Namespace: "trainyard-test", Logger: discardLogger(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	srv, err := devtemporal.Start(ctx, o)
	if err != nil {
		log, _ := os.ReadFile(o.LogFile)
		t.Fatalf("start the dev server: %v\n%s", err, log)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = srv.Stop()
		}
	})
	require.Equal(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(o.Port)), srv.Address())
	require.Equal(t, "http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(o.UIPort)), srv.UIURL())
	require.FileExists(t, o.DBFile, "the dev server keeps its data in DBFile")

	c, err := temporalconn.Dial(ctx, config.Temporal{Address: srv.Address(), Namespace: o.Namespace}, discardLogger())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, temporalconn.EnsureSearchAttributes(ctx, c, o.Namespace, discardLogger()))

	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: o.Namespace})
	require.NoError(t, err)
	for name, kind := range workflows.SearchAttributeTypes {
		want := enumspb.INDEXED_VALUE_TYPE_KEYWORD
		if kind == "Int" {
			want = enumspb.INDEXED_VALUE_TYPE_INT
		}
		got, ok := resp.GetCustomAttributes()[name]
		require.True(t, ok, "namespace %s lacks search attribute %s", o.Namespace, name)
		require.Equal(t, want, got, name)
	}
	c.Close()

	require.NoError(t, srv.Stop())
	stopped = true
	requirePortFree(t, o.Port)
	requirePortFree(t, o.UIPort)
}
