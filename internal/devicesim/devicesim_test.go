package devicesim

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func startFleet(t *testing.T, n int) *Fleet {
	t.Helper()
	f, err := Start(n)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.Close()) })
	return f
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func TestStart_DevicesListenOnLoopbackWithOrderedIDs(t *testing.T) {
	t.Parallel()
	f := startFleet(t, 3)

	devs := f.Devices()
	require.Len(t, devs, 3)
	for i, d := range devs {
		require.Equal(t, []string{"device-01", "device-02", "device-03"}[i], d.ID)
		host, _, err := net.SplitHostPort(d.Address)
		require.NoError(t, err)
		require.Equal(t, "127.0.0.1", host)
		status, v := do(t, "GET", "http://"+d.Address+"/version", "")
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, DefaultVersion, v)
	}
}

func TestFlash_ChangesTheVersionOfThatDeviceOnly(t *testing.T) {
	t.Parallel()
	f := startFleet(t, 2)
	d := f.Devices()[0]

	status, body := do(t, "PUT", "http://"+d.Address+"/firmware", "2.0.0\n")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "2.0.0", body)
	require.Equal(t, "2.0.0", f.Version("device-01"))
	require.Equal(t, DefaultVersion, f.Version("device-02"))
	require.Equal(t, 1, f.Device("device-01").Flashes())
	status, _ = do(t, "GET", "http://"+d.Address+"/health", "")
	require.Equal(t, http.StatusOK, status)
}

func TestFlash_RefusedDeviceKeepsItsVersion(t *testing.T) {
	t.Parallel()
	f := startFleet(t, 1)
	f.RefuseFlash("device-01")
	addr := f.Devices()[0].Address

	status, _ := do(t, "PUT", "http://"+addr+"/firmware", "2.0.0")
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, DefaultVersion, f.Version("device-01"))
	require.Zero(t, f.Device("device-01").Flashes())

	f.Device("device-01").Repair()
	status, _ = do(t, "PUT", "http://"+addr+"/firmware", "2.0.0")
	require.Equal(t, http.StatusOK, status)
}

func TestFlash_BreakOnFlashMakesTheDeviceUnhealthyUntilFlashedAgain(t *testing.T) {
	t.Parallel()
	f := startFleet(t, 1)
	f.BreakOnFlash("device-01")
	addr := f.Devices()[0].Address

	status, _ := do(t, "GET", "http://"+addr+"/health", "")
	require.Equal(t, http.StatusOK, status, "healthy until flashed")
	status, _ = do(t, "PUT", "http://"+addr+"/firmware", "2.0.0")
	require.Equal(t, http.StatusOK, status)
	status, body := do(t, "GET", "http://"+addr+"/health", "")
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "unhealthy", body)

	status, _ = do(t, "PUT", "http://"+addr+"/firmware", DefaultVersion)
	require.Equal(t, http.StatusOK, status)
	status, _ = do(t, "GET", "http://"+addr+"/health", "")
	require.Equal(t, http.StatusOK, status, "rolling back heals it")
}

func TestFlash_RefusesEmptyAndOversizedBodies(t *testing.T) {
	t.Parallel()
	f := startFleet(t, 1)
	addr := f.Devices()[0].Address
	for body, want := range map[string]int{"": 400, " \n": 400, strings.Repeat("9", maxVersionBytes+1): 413} {
		status, _ := do(t, "PUT", "http://"+addr+"/firmware", body)
		require.Equal(t, want, status)
	}
	require.Equal(t, DefaultVersion, f.Version("device-01"))
	status, _ := do(t, "POST", "http://"+addr+"/firmware", "2.0.0")
	require.Equal(t, http.StatusMethodNotAllowed, status)
}

func TestWriteInventory_WritesTheInventoryFormat(t *testing.T) {
	t.Parallel()
	f := startFleet(t, 3)
	path := filepath.Join(t.TempDir(), "lab", "inventory.json")

	require.NoError(t, f.WriteInventory(path))

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var got []map[string]any
	require.NoError(t, json.Unmarshal(data, &got))
	require.Len(t, got, 3)
	require.Equal(t, "device-02", got[1]["id"])
	require.Equal(t, f.Devices()[1].Address, got[1]["address"])
	require.Equal(t, map[string]any{"simulated": "true"}, got[1]["labels"])
}

func TestStartWith_FixedAddressesVersionAndPrefix(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	f, err := StartWith(Options{Addrs: []string{addr}, Version: "3.1.0", IDPrefix: "lab"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	require.Equal(t, []Info{{ID: "lab-01", Address: addr, Labels: map[string]string{"simulated": "true"}}}, f.Devices())
	require.Equal(t, "3.1.0", f.Version("lab-01"))

	_, err = StartWith(Options{Addrs: []string{addr}})
	require.Error(t, err, "the address is taken")
}

func TestStart_RefusesAnEmptyFleet(t *testing.T) {
	t.Parallel()
	_, err := Start(0)
	require.ErrorContains(t, err, "at least 1")
}

func TestClose_StopsTheDevices(t *testing.T) {
	t.Parallel()
	f, err := Start(2)
	require.NoError(t, err)
	addr := f.Devices()[0].Address

	require.NoError(t, f.Close())

	_, err = http.Get("http://" + addr + "/version")
	require.Error(t, err)
}
