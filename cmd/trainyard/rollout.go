package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trainyard/trainyard/activities"
	"github.com/trainyard/trainyard/config"
	"github.com/trainyard/trainyard/integrations/argocd"
	"github.com/trainyard/trainyard/integrations/flags"
	"github.com/trainyard/trainyard/integrations/spinnaker"
	"github.com/trainyard/trainyard/internal/devicesim"
	"github.com/trainyard/trainyard/workflows"
)

// deployTimeout bounds each request to a deploy system; waits are polls of such requests.
const deployTimeout = 30 * time.Second

// deployClients builds the clients cloud targets deploy through from the rollout section of
// the config; a system without a url stays nil, and its targets fail naming the keys to set.
// An Argo CD server is found by the name a target's argocd.server gives, or by its host (so
// server: argocd.example.com finds rollout.argocd.url https://argocd.example.com).
func deployClients(cfg config.Rollout) activities.DeployClients {
	d := activities.DeployClients{Poll: cfg.Poll, HardwareParallel: cfg.Hardware.Parallel}
	argo := func(s config.ArgoCDServer) *argocd.Client {
		hc := &http.Client{Timeout: deployTimeout}
		if s.InsecureSkipVerify {
			// The operator's choice, for an Argo CD with a self-signed certificate.
			hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		}
		return &argocd.Client{BaseURL: s.URL, Token: s.Token, HTTP: hc}
	}
	add := func(name string, s config.ArgoCDServer) {
		if s.URL == "" {
			return
		}
		if d.ArgoCD == nil {
			d.ArgoCD = map[string]argocd.Apps{}
		}
		c := argo(s)
		d.ArgoCD[name] = c
		if u, err := url.Parse(s.URL); err == nil && u.Hostname() != "" {
			if _, taken := d.ArgoCD[u.Hostname()]; !taken {
				d.ArgoCD[u.Hostname()] = c
			}
		}
	}
	// Named servers first: a name wins over another server's host.
	for _, name := range slices.Sorted(maps.Keys(cfg.ArgoCD.Servers)) {
		add(name, cfg.ArgoCD.Servers[name])
	}
	add("", cfg.ArgoCD.ArgoCDServer)
	if s := cfg.Spinnaker; s.URL != "" {
		d.Spinnaker = &spinnaker.Client{BaseURL: s.URL, Token: s.Token, Headers: maps.Clone(s.Headers), HTTP: &http.Client{Timeout: deployTimeout}}
	}
	if u := cfg.Unleash; u.URL != "" {
		d.Flags = &flags.Client{BaseURL: u.URL, Token: u.Token, HTTP: &http.Client{Timeout: deployTimeout}}
	}
	return d
}

func newDevicesimCmd() *cobra.Command {
	var (
		count                  int
		inventory, version, id string
		listen                 []string
		refuse, breakOnFlash   []string
	)
	cmd := &cobra.Command{
		Use:   "devicesim",
		Short: "Run simulated hardware devices on loopback, for a lab on a laptop",
		Long: `Starts simulated devices, each a small HTTP server holding a firmware version that a flash
really changes (GET /version, PUT /firmware with the version as body, GET /health), and
writes their inventory (a JSON list of id, address, labels) for a hardware target to read.
Point a hardware target's inventory at the file and flash with, for example:

  flash: curl -fsS -X PUT --data "$TRAINYARD_VERSION" "http://$DEVICE_ADDRESS/firmware"
  probe: curl -fsS "http://$DEVICE_ADDRESS/health"

Give --listen to pin the ports, so the inventory stays valid across restarts. The devices
keep their state in memory only; Ctrl-C stops them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			fleet, err := startDevices(cmd.OutOrStdout(), devicesim.Options{Count: count, Addrs: listen, Version: version, IDPrefix: id}, inventory, refuse, breakOnFlash)
			if err != nil {
				return err
			}
			<-ctx.Done()
			fmt.Fprintln(cmd.OutOrStdout(), "stopping the simulated devices")
			return fleet.Close()
		},
	}
	cmd.Flags().IntVarP(&count, "count", "n", 3, "how many devices to simulate (when --listen is not given)")
	cmd.Flags().StringVar(&inventory, "inventory", ".trainyard/devices.json", "where to write the devices' inventory")
	cmd.Flags().StringVar(&version, "version", devicesim.DefaultVersion, "the firmware the devices start with")
	cmd.Flags().StringVar(&id, "id-prefix", "device", "device ids are <prefix>-01, <prefix>-02, ...")
	cmd.Flags().StringSliceVar(&listen, "listen", nil, "addresses to listen on, one device each (default: free loopback ports)")
	cmd.Flags().StringSliceVar(&refuse, "refuse", nil, "device ids that refuse every flash (503)")
	cmd.Flags().StringSliceVar(&breakOnFlash, "break", nil, "device ids whose next flash leaves them unhealthy")
	return cmd
}

// startDevices starts the fleet, applies the faults asked for, writes the inventory and says
// where everything is.
func startDevices(out io.Writer, opts devicesim.Options, inventory string, refuse, breakOnFlash []string) (*devicesim.Fleet, error) {
	if len(opts.Addrs) == 0 && opts.Count < 1 {
		return nil, fmt.Errorf("--count must be at least 1, not %d", opts.Count)
	}
	fleet, err := devicesim.StartWith(opts)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, ids := range []struct {
		flag  string
		ids   []string
		apply func(*devicesim.Device)
	}{{"--refuse", refuse, (*devicesim.Device).RefuseFlash}, {"--break", breakOnFlash, (*devicesim.Device).BreakOnFlash}} {
		for _, id := range ids.ids {
			d := fleet.Device(id)
			if d == nil {
				errs = append(errs, fmt.Errorf("%s %s: no such device (the devices are %s)", ids.flag, id, deviceIDs(fleet)))
				continue
			}
			ids.apply(d)
		}
	}
	if err := errors.Join(errs...); err != nil {
		_ = fleet.Close()
		return nil, err
	}
	if err := fleet.WriteInventory(inventory); err != nil {
		_ = fleet.Close()
		return nil, err
	}
	fmt.Fprintf(out, "%d simulated devices, inventory in %s:\n", len(fleet.Devices()), inventory)
	for _, d := range fleet.Devices() {
		fmt.Fprintf(out, "  %s  http://%s  firmware %s\n", d.ID, d.Address, fleet.Version(d.ID))
	}
	return fleet, nil
}

func deviceIDs(f *devicesim.Fleet) string {
	var ids []string
	for _, d := range f.Devices() {
		ids = append(ids, d.ID)
	}
	return strings.Join(ids, ", ")
}

// barWidth is how many characters a progress bar has.
const barWidth = 20

// targetProgress is a target's progress bar line, without the time: the bar, its percent,
// the target and what it is doing. ok is false for a target that has not started.
func targetProgress(stage string, t workflows.TargetStatus) (line string, ok bool) {
	if t.State == "" || t.State == workflows.StatePending {
		return "", false
	}
	pct := 0
	var what []string
	switch {
	case t.DevicesTotal > 0:
		pct = t.DevicesDone * 100 / t.DevicesTotal
		d := fmt.Sprintf("%d/%d devices", t.DevicesDone, t.DevicesTotal)
		if t.DevicesFailed > 0 {
			d += fmt.Sprintf(" (%d failed)", t.DevicesFailed)
		}
		what = append(what, d)
	case t.Steps > 0:
		pct = t.Weight
		what = append(what, fmt.Sprintf("canary step %d of %d, weight %d%%", t.Step, t.Steps, t.Weight))
	case t.State == workflows.StateDeployed:
		pct = 100
	}
	if t.Side != "" {
		what = append(what, t.Side+" side")
	}
	if t.Warning != "" {
		what = append(what, "warning: "+t.Warning)
	}
	pct = min(max(pct, 0), 100)
	if t.State == workflows.StateDeployed && t.DevicesTotal == 0 {
		pct = 100
	}
	filled := pct * barWidth / 100
	bar := "[" + strings.Repeat("#", filled) + strings.Repeat("-", barWidth-filled) + "]"
	line = fmt.Sprintf("%s %3d%%  %s/%s  %s", bar, pct, stage, t.Name, t.State)
	if len(what) > 0 {
		line += ", " + strings.Join(what, ", ")
	}
	return line, true
}

// printProgress writes a progress bar for each target whose progress changed since the last
// poll; shown holds the last line printed per target.
func printProgress(out io.Writer, st workflows.ReleaseStatus, shown map[string]string, now time.Time) {
	for _, s := range st.Stages {
		for _, t := range s.Targets {
			line, ok := targetProgress(s.Name, t)
			key := s.Name + "/" + t.Name
			if !ok || shown[key] == line {
				continue
			}
			shown[key] = line
			fmt.Fprintf(out, "%s  %s\n", formatClock(now), line)
		}
	}
}
