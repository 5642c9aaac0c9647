package tests

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRunbooks_NewFileIsOfferedAfterSIGHUPOnly(t *testing.T) {
	body := strings.Replace(testRunbooks["auto"], "name: auto", "name: hup", 1)
	path := filepath.Join(sys.dir, "runbooks", "hup.yaml")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
	t.Cleanup(func() { _ = os.Remove(path) })

	start := func() (int, string) {
		code, b, _ := call(t, http.MethodPost, "/api/v1/releases", ciToken, map[string]string{"runbook": "hup", "version": "1.0.0"})
		return code, string(b)
	}
	code, b := start()
	require.Equal(t, http.StatusBadRequest, code, "a file dropped in the folder is not live before a reload: %s", b)

	sys.mu.Lock()
	server := sys.procs["server"]
	sys.mu.Unlock()
	require.NoError(t, server.cmd.Process.Signal(syscall.SIGHUP))

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if code, b = start(); code == http.StatusCreated {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, http.StatusCreated, code, "after SIGHUP the runbook is offered: %s\n%s", b, sys.logTail("server"))
	require.Contains(t, sys.logTail("server"), "runbooks reloaded")
}
