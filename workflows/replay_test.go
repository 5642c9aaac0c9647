package workflows

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// TestReplay_RecordedHistories replays real histories recorded from the end-to-end tests
// (`make record-histories`) against the current workflow code. A change that would break
// releases in flight fails here: guard it with workflow.GetVersion, then record again.
func TestReplay_RecordedHistories(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../tests/testdata/histories/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories in tests/testdata/histories: run `make record-histories`")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			replayer := worker.NewWorkflowReplayer()
			replayer.RegisterWorkflowWithOptions(ReleaseWorkflow, workflow.RegisterOptions{Name: "ReleaseWorkflow"})
			replayer.RegisterWorkflowWithOptions(StageWorkflow, workflow.RegisterOptions{Name: "StageWorkflow"})
			require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}
