package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/trainyard/trainyard/workflows"
)

// saveHistory replays a finished release's real history (and its stages') against the code
// under test, so a non-deterministic change fails here first. With
// TRAINYARD_RECORD_HISTORIES=<prefix> it also writes them to testdata/histories, named
// <prefix><id>.json (a prefix per workflow version keeps older histories beside newer ones),
// where the workflows package replays them on every run to keep in-flight releases safe from
// later changes. "1" records without a prefix, as the first histories were.
func saveHistory(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	ids := []string{id}
	st := status(t, id)
	for _, s := range st.Stages {
		if s.State != workflows.StatePending {
			ids = append(ids, id+"-"+s.Name)
		}
	}
	for _, wid := range ids {
		var events []*historypb.HistoryEvent
		it := sys.temporal.Client().GetWorkflowHistory(ctx, wid, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			require.NoError(t, err)
			events = append(events, e)
		}
		hist := &historypb.History{Events: events}

		replayer := worker.NewWorkflowReplayer()
		replayer.RegisterWorkflowWithOptions(workflows.ReleaseWorkflow, workflow.RegisterOptions{Name: "ReleaseWorkflow"})
		replayer.RegisterWorkflowWithOptions(workflows.StageWorkflow, workflow.RegisterOptions{Name: "StageWorkflow"})
		require.NoError(t, replayer.ReplayWorkflowHistory(nil, hist), "replay %s", wid)

		if prefix := os.Getenv("TRAINYARD_RECORD_HISTORIES"); prefix != "" {
			if prefix == "1" {
				prefix = ""
			}
			data, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(hist)
			require.NoError(t, err)
			name := prefix + strings.TrimPrefix(wid, "release-") + ".json"
			require.NoError(t, os.WriteFile(filepath.Join("testdata", "histories", name), data, 0o644))
		}
	}
}
