package promserver

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trainyard/trainyard/internal/logtail"
)

// DefaultBinary is where Debian's prometheus package puts the server.
const DefaultBinary = "/usr/bin/prometheus"

const (
	defaultScrapeInterval = time.Second
	readyTimeout          = time.Minute
	stopTimeout           = 30 * time.Second
	// portAttempts bounds retries when a port we picked was taken before Prometheus bound it.
	portAttempts = 3
	jobName      = "test"
)

// Options says what Prometheus scrapes and where it keeps its files.
type Options struct {
	// Targets are host:port addresses whose /metrics are scraped, as job "test".
	Targets []string
	// ScrapeInterval is how often targets are scraped (and rules evaluated); default 1s.
	ScrapeInterval time.Duration
	// Dir holds the configuration, the TSDB and prometheus.log; a temporary folder, removed
	// by Stop, when empty.
	Dir string
	// Binary is the prometheus executable; default DefaultBinary, else prometheus on PATH.
	Binary string
}

// Server is a running Prometheus child process.
type Server struct {
	port     int
	dir      string
	ownDir   bool
	interval time.Duration
	binary   string

	cmd      *exec.Cmd
	logFile  *os.File
	tail     *logtail.Buffer
	exited   chan struct{}
	waitErr  error // set before exited is closed
	stopping atomic.Bool

	mu       sync.Mutex // serialises SetTargets
	stopOnce sync.Once
	stopErr  error
}

// Start runs Prometheus and returns once it answers /-/ready. Stop it with Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	interval := cmp.Or(opts.ScrapeInterval, defaultScrapeInterval)
	if interval < 0 {
		return nil, fmt.Errorf("start prometheus: scrape interval %s is negative", interval)
	}
	for _, t := range opts.Targets {
		if _, _, err := net.SplitHostPort(t); err != nil {
			return nil, fmt.Errorf("start prometheus: target %q is not host:port: %w", t, err)
		}
	}
	binary, err := findBinary(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	dir, ownDir := opts.Dir, false
	if dir == "" {
		if dir, err = os.MkdirTemp("", "trainyard-prometheus-"); err != nil {
			return nil, fmt.Errorf("start prometheus: create dir: %w", err)
		}
		ownDir = true
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("start prometheus: create dir: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("start prometheus: resolve dir: %w", err)
	}
	removeDir := func() {
		if ownDir {
			_ = os.RemoveAll(dir)
		}
	}

	s := &Server{dir: dir, ownDir: ownDir, interval: interval, binary: binary}
	if err := s.writeConfig(opts.Targets); err != nil {
		removeDir()
		return nil, fmt.Errorf("start prometheus: %w", err)
	}
	for attempt := 1; ; attempt++ {
		err := s.start(ctx)
		if err == nil {
			return s, nil
		}
		if attempt < portAttempts && errors.Is(err, errPortInUse) {
			continue
		}
		removeDir()
		return nil, err
	}
}

// start runs one Prometheus process on a fresh port and waits until it is ready.
func (s *Server) start(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("start prometheus: %w", err)
	}
	logFile, err := os.OpenFile(filepath.Join(s.dir, "prometheus.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start prometheus: open log: %w", err)
	}
	s.port, s.logFile = port, logFile
	s.stopping.Store(false)
	s.tail = logtail.New(64 << 10)
	s.exited = make(chan struct{})
	s.waitErr = nil
	s.cmd = exec.Command(s.binary,
		"--config.file="+s.configPath(),
		"--storage.tsdb.path="+filepath.Join(s.dir, "data"),
		"--web.listen-address="+net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		// SetTargets reloads the configuration through /-/reload.
		"--web.enable-lifecycle",
		"--storage.tsdb.retention.time=1d",
	)
	s.cmd.Dir = s.dir
	s.cmd.Stdout = io.MultiWriter(logFile, s.tail)
	s.cmd.Stderr = io.MultiWriter(logFile, s.tail)
	// Its own process group, so a Ctrl-C reaches only the test binary; the kernel sends
	// SIGTERM when the test binary dies (even by SIGKILL or a test timeout), so no orphaned
	// Prometheus outlives it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	s.cmd.WaitDelay = 5 * time.Second

	if err := s.launch(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("start prometheus: run %s: %w", s.binary, err)
	}
	if err := s.waitReady(ctx); err != nil {
		s.stopping.Store(true)
		_ = s.kill()
		_ = logFile.Close()
		return err
	}
	return nil
}

// URL is Prometheus' base URL, http://127.0.0.1:<port>.
func (s *Server) URL() string { return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Dir is the folder holding the configuration, the TSDB and prometheus.log.
func (s *Server) Dir() string { return s.dir }

// LogTail is the end of Prometheus' log, for test failure messages.
func (s *Server) LogTail(lines int) string { return s.tail.LastLines(lines) }

// SetTargets replaces the scraped targets and has Prometheus reload its configuration.
func (s *Server) SetTargets(ctx context.Context, targets ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range targets {
		if _, _, err := net.SplitHostPort(t); err != nil {
			return fmt.Errorf("set prometheus targets: %q is not host:port: %w", t, err)
		}
	}
	if err := s.writeConfig(targets); err != nil {
		return fmt.Errorf("set prometheus targets: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/-/reload", nil)
	if err != nil {
		return fmt.Errorf("set prometheus targets: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("set prometheus targets: reload: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("set prometheus targets: reload answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}

// Stop shuts Prometheus down (SIGTERM: it flushes and exits), killing it if it has not
// exited within 30s, and removes Dir when Start made it. It is safe to call more than once;
// later calls return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopErr = s.stop()
		if s.logFile != nil {
			_ = s.logFile.Close()
		}
		if s.ownDir {
			if err := os.RemoveAll(s.dir); err != nil {
				s.stopErr = errors.Join(s.stopErr, fmt.Errorf("remove prometheus dir: %w", err))
			}
		}
	})
	return s.stopErr
}

func (s *Server) stop() error {
	select {
	case <-s.exited:
		if s.stopping.Load() {
			return nil
		}
		return fmt.Errorf("stop prometheus: it had already exited: %v\nprometheus log, last lines:\n%s", s.waitErr, s.tail.LastLines(20))
	default:
	}
	s.stopping.Store(true)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return s.kill()
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	if err := s.kill(); err != nil {
		return err
	}
	return fmt.Errorf("stop prometheus: not stopped %s after SIGTERM, killed", stopTimeout)
}

// kill ends the whole process group and waits for the exit.
func (s *Server) kill() error {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.exited:
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("stop prometheus: pid %d did not exit after SIGKILL", s.cmd.Process.Pid)
	}
}

// launch starts the process and a watcher that records its exit.
func (s *Server) launch() error {
	started := make(chan error, 1)
	exited := s.exited
	go func() {
		// Pdeathsig fires when the thread that forked the child ends, not the process, and
		// Go may end idle threads; a thread locked to this goroutine lives until Prometheus
		// exits.
		runtime.LockOSThread()
		cmd := s.cmd
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		s.waitErr = err
		close(exited)
	}()
	return <-started
}

var errPortInUse = errors.New("port in use")

// waitReady polls /-/ready until it answers 200 from our Prometheus, the process exits, ctx
// ends or readyTimeout passes.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = s.ready(ctx, hc); last == nil {
			return nil
		}
		if errors.Is(last, errPortInUse) {
			return s.startupError("start prometheus", last)
		}
		select {
		case <-s.exited:
			err := s.waitErr
			if strings.Contains(s.tail.LastLines(20), "address already in use") {
				err = errors.Join(errPortInUse, err)
			}
			return s.startupError("start prometheus: exited during startup", err)
		case <-ctx.Done():
			return s.startupError("start prometheus: not ready", fmt.Errorf("%w (last: %v)", ctx.Err(), last))
		case <-tick.C:
		}
	}
}

// ready checks /-/ready, then that the server answering is ours (its TSDB is in our dir):
// another process may hold the port we picked.
func (s *Server) ready(ctx context.Context, hc *http.Client) error {
	status, _, err := get(ctx, hc, s.URL()+"/-/ready")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("/-/ready answered %d", status)
	}
	status, body, err := get(ctx, hc, s.URL()+"/api/v1/status/flags")
	if err != nil {
		return err
	}
	var flags struct {
		Data map[string]string `json:"data"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &flags) != nil {
		return fmt.Errorf("/api/v1/status/flags answered %d", status)
	}
	if got, want := flags.Data["storage.tsdb.path"], filepath.Join(s.dir, "data"); got != want {
		return fmt.Errorf("%w: a prometheus with TSDB %s answers on port %d", errPortInUse, got, s.port)
	}
	return nil
}

func get(ctx context.Context, hc *http.Client, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

func (s *Server) configPath() string { return filepath.Join(s.dir, "prometheus.yml") }

// writeConfig writes the scrape configuration. JSON is YAML, and quotes every target
// safely. scrape_timeout may not exceed the interval (its default, 10s, would).
func (s *Server) writeConfig(targets []string) error {
	iv := promDuration(s.interval)
	scrape := map[string]any{
		"job_name":        jobName,
		"scrape_interval": iv,
		"scrape_timeout":  iv,
		"static_configs":  []map[string]any{{"targets": append([]string{}, targets...)}},
	}
	cfg := map[string]any{
		"global":         map[string]any{"scrape_interval": iv, "scrape_timeout": iv, "evaluation_interval": iv},
		"scrape_configs": []any{scrape},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	tmp := s.configPath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(tmp, s.configPath()); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// promDuration writes d the way Prometheus' configuration reads durations.
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

func findBinary(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if _, err := os.Stat(DefaultBinary); err == nil {
		return DefaultBinary, nil
	}
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no prometheus binary: neither %s nor prometheus on PATH; install Debian's prometheus package (scripts/test-deps.sh does)", DefaultBinary)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startupError keeps the end of Prometheus' log, where the reason for a failed start is.
func (s *Server) startupError(msg string, err error) error {
	return &logtail.StartupError{
		Msg:  fmt.Sprintf("%s (%s, port %d, dir %s)", msg, s.binary, s.port, s.dir),
		Log:  "prometheus log",
		Tail: s.tail.LastLines(20),
		Err:  err,
	}
}

// ForTest starts a Prometheus scraping targets for this test alone and stops it when the
// test ends. When Prometheus cannot start, the test fails with the reason and the end of
// Prometheus' log: it never skips.
func ForTest(tb testing.TB, targets ...string) *Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*readyTimeout)
	defer cancel()
	s, err := Start(ctx, Options{Targets: targets, Dir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("promserver: no Prometheus for this test: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("promserver: %v", err)
		}
	})
	return s
}
