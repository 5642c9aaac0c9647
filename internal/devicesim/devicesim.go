package devicesim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DefaultVersion is the firmware a simulated device starts with.
const DefaultVersion = "1.0.0"

// maxVersionBytes bounds a PUT /firmware body: a version, not an image.
const maxVersionBytes = 256

// Options configure StartWith.
type Options struct {
	// Count is how many devices to start when Addrs is empty.
	Count int
	// Addrs are the addresses to listen on, one device each; 127.0.0.1:0 (a free loopback
	// port) for each of Count devices when empty.
	Addrs []string
	// Version is the firmware every device starts with; DefaultVersion when empty.
	Version string
	// IDPrefix names the devices: "<prefix>-01", "<prefix>-02", …; "device" when empty.
	IDPrefix string
}

// Fleet is a set of running simulated devices.
type Fleet struct {
	devices []*Device
	servers []*http.Server
	wg      sync.WaitGroup
}

// Info is where a device is: the fields of a hardware inventory entry.
type Info struct {
	ID      string            `json:"id"`
	Address string            `json:"address"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Start starts n devices on free loopback ports, with DefaultVersion.
func Start(n int) (*Fleet, error) {
	return StartWith(Options{Count: n})
}

// StartWith starts the devices opts describe. On error nothing is left running.
func StartWith(opts Options) (*Fleet, error) {
	addrs := opts.Addrs
	if len(addrs) == 0 {
		if opts.Count < 1 {
			return nil, fmt.Errorf("start simulated devices: the count must be at least 1, not %d", opts.Count)
		}
		for range opts.Count {
			addrs = append(addrs, "127.0.0.1:0")
		}
	}
	version := opts.Version
	if version == "" {
		version = DefaultVersion
	}
	prefix := opts.IDPrefix
	if prefix == "" {
		prefix = "device"
	}
	width := max(2, len(fmt.Sprint(len(addrs))))

	f := &Fleet{}
	for i, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("start simulated device %d: %w", i+1, err)
		}
		d := NewDevice(fmt.Sprintf("%s-%0*d", prefix, width, i+1), version)
		d.addr = ln.Addr().String()
		srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
		f.devices = append(f.devices, d)
		f.servers = append(f.servers, srv)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			_ = srv.Serve(ln)
		}()
	}
	return f, nil
}

// Devices lists the devices in id order, with a "simulated" label.
func (f *Fleet) Devices() []Info {
	out := make([]Info, 0, len(f.devices))
	for _, d := range f.devices {
		out = append(out, Info{ID: d.id, Address: d.addr, Labels: map[string]string{"simulated": "true"}})
	}
	return out
}

// Inventory is the fleet as a hardware inventory: a JSON list of {id, address, labels}.
func (f *Fleet) Inventory() []byte {
	b, _ := json.MarshalIndent(f.Devices(), "", "  ")
	return append(b, '\n')
}

// WriteInventory writes Inventory to path, creating its directory.
func (f *Fleet) WriteInventory(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write device inventory: %w", err)
	}
	if err := os.WriteFile(path, f.Inventory(), 0o644); err != nil {
		return fmt.Errorf("write device inventory: %w", err)
	}
	return nil
}

// Device returns the device with id, nil when there is none.
func (f *Fleet) Device(id string) *Device {
	for _, d := range f.devices {
		if d.id == id {
			return d
		}
	}
	return nil
}

// Version is the firmware device id runs; empty for an unknown device.
func (f *Fleet) Version(id string) string {
	if d := f.Device(id); d != nil {
		return d.Version()
	}
	return ""
}

// BreakOnFlash makes device id's next successful flash leave it unhealthy. It panics for an
// unknown id: a test naming a device that does not exist is wrong.
func (f *Fleet) BreakOnFlash(id string) { f.must(id).BreakOnFlash() }

// RefuseFlash makes device id refuse every flash with 503 until Repair.
func (f *Fleet) RefuseFlash(id string) { f.must(id).RefuseFlash() }

func (f *Fleet) must(id string) *Device {
	d := f.Device(id)
	if d == nil {
		panic("devicesim: no device " + id)
	}
	return d
}

// Close stops every device and waits for their servers to end.
func (f *Fleet) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range f.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			_ = srv.Close()
		}
	}
	f.wg.Wait()
	return errors.Join(errs...)
}

// Device is one simulated device's state.
type Device struct {
	id, addr string

	mu        sync.Mutex
	version   string
	healthy   bool
	breakNext bool
	refuse    bool
	flashes   int
}

// NewDevice is a healthy device running version; serve it with Handler.
func NewDevice(id, version string) *Device {
	return &Device{id: id, version: version, healthy: true}
}

// ID is the device's id.
func (d *Device) ID() string { return d.id }

// Address is where the device listens (host:port); empty for one made with NewDevice.
func (d *Device) Address() string { return d.addr }

// Version is the firmware the device runs.
func (d *Device) Version() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.version
}

// Healthy reports what GET /health answers.
func (d *Device) Healthy() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.healthy
}

// Flashes is how many flashes the device accepted.
func (d *Device) Flashes() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flashes
}

// BreakOnFlash makes the next accepted flash leave the device unhealthy; the flash after
// it (a rollback) makes it healthy again.
func (d *Device) BreakOnFlash() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.breakNext = true
}

// RefuseFlash makes the device refuse flashes until Repair.
func (d *Device) RefuseFlash() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refuse = true
}

// Repair clears every fault: the device is healthy and accepts flashes.
func (d *Device) Repair() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.refuse, d.breakNext, d.healthy = false, false, true
}

// Handler serves the device's HTTP API.
func (d *Device) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, d.Version())
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		if d.Healthy() {
			text(w, http.StatusOK, "ok")
			return
		}
		text(w, http.StatusServiceUnavailable, "unhealthy")
	})
	mux.HandleFunc("PUT /firmware", d.flash)
	return mux
}

func (d *Device) flash(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxVersionBytes+1))
	switch {
	case err != nil:
		text(w, http.StatusBadRequest, "read firmware version: "+err.Error())
		return
	case len(body) > maxVersionBytes:
		text(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is a version of at most %d bytes", maxVersionBytes))
		return
	}
	version := strings.TrimSpace(string(body))
	if version == "" {
		text(w, http.StatusBadRequest, "the body must be the firmware version to install")
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refuse {
		text(w, http.StatusServiceUnavailable, d.id+" refused the flash")
		return
	}
	d.version = version
	d.flashes++
	d.healthy = !d.breakNext
	d.breakNext = false
	text(w, http.StatusOK, version)
}

func text(w http.ResponseWriter, status int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, s+"\n")
}
