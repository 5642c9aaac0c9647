package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/trainyard/trainyard/internal/pgserver"
	"github.com/trainyard/trainyard/workflows"
)

// Tokens of the principals the system under test knows. Not the dev tokens: the processes
// run as in production, where those are refused.
const (
	ciToken       = "e2e-ci-token-0001"
	aliceToken    = "e2e-alice-token-0001"
	managerToken  = "e2e-manager-token-0001"
	outsiderToken = "e2e-outsider-token-0001"
)

// sys is the system under test, shared by every test in the package: one PostgreSQL, one
// Temporal dev server, and trainyard's server, main worker and site worker as processes.
var sys *system

type system struct {
	dir      string
	bin      string
	cfgPath  string
	siteDir  string
	apiURL   string
	temporal *testsuite.DevServer
	pg       *pgserver.Server
	env      []string
	// slack is the Slack Web API the processes post to (slack_test.go).
	slack *slackAPI
	// obs is Prometheus, the services it scrapes and Grafana (stabilization_test.go).
	obs *observability

	mu     sync.Mutex
	procs  map[string]*proc
	logDir string
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "end-to-end setup failed:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "trainyard-e2e-")
	if err != nil {
		return 0, err
	}
	// PostgreSQL runs as the postgres user when we are root: it must reach its data dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		return 0, err
	}
	s := &system{dir: dir, procs: map[string]*proc{}, logDir: filepath.Join(dir, "logs")}
	defer func() {
		s.stopAll()
		if s.temporal != nil {
			_ = s.temporal.Stop()
		}
		if s.pg != nil {
			_ = s.pg.Stop()
		}
		s.obs.stop()
		if os.Getenv("TRAINYARD_E2E_KEEP") == "" {
			_ = os.RemoveAll(dir)
		} else {
			fmt.Fprintln(os.Stderr, "kept end-to-end files in", dir)
		}
	}()
	if err := s.setUp(); err != nil {
		return 0, err
	}
	sys = s
	return m.Run(), nil
}

func (s *system) setUp() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		return err
	}

	s.bin = filepath.Join(s.dir, "trainyard")
	build := exec.CommandContext(ctx, "go", "build", "-o", s.bin, "../cmd/trainyard")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build trainyard: %w", err)
	}

	pg, err := pgserver.Start(ctx, pgserver.Options{DataDir: filepath.Join(s.dir, "pg"), NoFsync: true})
	if err != nil {
		return fmt.Errorf("start PostgreSQL: %w", err)
	}
	s.pg = pg

	cli, err := filepath.Abs("../bin/temporal")
	if err != nil {
		return err
	}
	if _, err := os.Stat(cli); err != nil {
		return fmt.Errorf("the Temporal CLI is missing at %s: run `make test`, which builds it: %w", cli, err)
	}
	var extra []string
	for name, kind := range workflows.SearchAttributeTypes {
		extra = append(extra, "--search-attribute", name+"="+kind)
	}
	tlog, err := os.Create(filepath.Join(s.logDir, "temporal.log"))
	if err != nil {
		return err
	}
	ts, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  cli,
		ClientOptions: &client.Options{Namespace: "default"},
		LogLevel:      "warn",
		ExtraArgs:     extra,
		Stdout:        tlog,
		Stderr:        tlog,
	})
	if err != nil {
		return fmt.Errorf("start the Temporal dev server: %w", err)
	}
	s.temporal = ts
	// Prometheus starts before the processes: the worker watches releases through it.
	if s.obs, err = startObservability(ctx); err != nil {
		return err
	}

	s.siteDir = filepath.Join(s.dir, "sites")
	runbookDir := filepath.Join(s.dir, "runbooks")
	if err := os.MkdirAll(runbookDir, 0o755); err != nil {
		return err
	}
	for name, body := range testRunbooks {
		if err := os.WriteFile(filepath.Join(runbookDir, name+".yaml"), []byte(body), 0o644); err != nil {
			return err
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	s.apiURL = "http://" + addr
	policyFile := filepath.Join(s.dir, "policies.yaml")
	if err := os.WriteFile(policyFile, []byte(testPolicies), 0o644); err != nil {
		return err
	}
	s.slack = startSlackAPI()
	s.cfgPath = filepath.Join(s.dir, "config.yaml")
	cfg := fmt.Sprintf(`httpAddr: %s
databaseURL: %s
runbooksDir: %s
logFormat: json
temporal:
  address: %s
  namespace: default
  uiURL: http://temporal-ui.example
site:
  workDir: %s
governance:
  policyFile: %s
principals:
  - {name: ci, roles: [deployer], token: %s}
  - {name: alice, roles: [release-manager], token: %s}
  - {name: manager, roles: [deployer, release-manager], token: %s}
  - {name: mallory, roles: [developer], token: %s}
`, addr, pg.URL(), runbookDir, ts.FrontendHostPort(), s.siteDir, policyFile, ciToken, aliceToken, managerToken, outsiderToken)
	cfg += slackConfig(s.slack)
	cfg += s.obs.config()
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	s.env = append(os.Environ(), "TRAINYARD_CONFIG="+s.cfgPath)

	migrate := exec.CommandContext(ctx, s.bin, "migrate")
	migrate.Env = s.env
	if out, err := migrate.CombinedOutput(); err != nil {
		return fmt.Errorf("trainyard migrate: %w\n%s", err, out)
	}
	for _, name := range []string{"server", "worker", "site", "lab"} {
		if err := s.start(name); err != nil {
			return err
		}
	}
	return s.waitReady(ctx)
}

// proc is one trainyard process of the system under test.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

var procArgs = map[string][]string{
	"server": {"server"},
	"worker": {"worker"},
	"site":   {"worker", "--site", "e2e"},
	// lab is a second site worker, a hardware lab (tests/rollout_test.go).
	"lab": {"worker", "--site", "lab"},
}

// start launches the named process (server, worker or site) with its log appended to a file.
func (s *system) start(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	logf, err := os.OpenFile(filepath.Join(s.logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, procArgs[name]...)
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start trainyard %s: %w", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	s.procs[name] = p
	return nil
}

// kill sends SIGKILL to the named process only (not its children: a site worker's commands
// die through their parent-death signal, which is what a real crash does).
func (s *system) kill(t *testing.T, name string) {
	t.Helper()
	s.mu.Lock()
	p := s.procs[name]
	s.mu.Unlock()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", name, err)
	}
	<-p.done
}

func (s *system) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range s.procs {
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
		}
	}
}

func (s *system) waitReady(ctx context.Context) error {
	var last string
	for ctx.Err() == nil {
		resp, err := http.Get(s.apiURL + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("trainyard server not ready at %s: %s\n%s", s.apiURL, last, s.logTail("server"))
}

func (s *system) logTail(name string) string {
	b, _ := os.ReadFile(filepath.Join(s.logDir, name+".log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// call makes an API request and returns the status and body.
func call(t testing.TB, method, path, token string, body any) (int, []byte, http.Header) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode body: %v", err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, sys.apiURL+path, r)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, data, resp.Header
}

func status(t testing.TB, id string) workflows.ReleaseStatus {
	t.Helper()
	code, body, _ := call(t, http.MethodGet, "/api/v1/releases/"+id, ciToken, nil)
	if code != http.StatusOK {
		t.Fatalf("status of %s: %d %s", id, code, body)
	}
	var st workflows.ReleaseStatus
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatalf("decode status: %v\n%s", err, body)
	}
	return st
}

// waitFor polls the release until cond holds, failing with the last status after limit.
func waitFor(t testing.TB, id string, limit time.Duration, what string, cond func(workflows.ReleaseStatus) bool) workflows.ReleaseStatus {
	t.Helper()
	deadline := time.Now().Add(limit)
	var st workflows.ReleaseStatus
	for time.Now().Before(deadline) {
		code, body, _ := call(t, http.MethodGet, "/api/v1/releases/"+id, ciToken, nil)
		switch code {
		case http.StatusOK:
			st = workflows.ReleaseStatus{}
			if err := json.Unmarshal(body, &st); err != nil {
				t.Fatalf("decode status: %v\n%s", err, body)
			}
			if cond(st) {
				return st
			}
		case http.StatusGatewayTimeout:
			// The workers are busy (a benchmark's hundreds of releases): not an answer yet.
		default:
			t.Fatalf("status of %s: %d %s", id, code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	dump, _ := json.MarshalIndent(st, "", "  ")
	t.Fatalf("release %s: %s did not happen within %s; last status:\n%s\nworker log:\n%s\nsite log:\n%s",
		id, what, limit, dump, sys.logTail("worker"), sys.logTail("site"))
	return st
}

func phaseIs(p workflows.Phase) func(workflows.ReleaseStatus) bool {
	return func(st workflows.ReleaseStatus) bool { return st.Phase == p }
}

// waitForFile waits until path exists (a command's marker that it is running).
func waitForFile(t testing.TB, path string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not appear within %s\nsite log:\n%s", path, limit, sys.logTail("site"))
}

func readLines(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return strings.Fields(strings.TrimSpace(string(b)))
}
