package pgserver

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lib/pq"

	"github.com/trainyard/trainyard/internal/logtail"
)

// Role is the superuser initdb creates; it is the user name in every URL this package gives.
const Role = "trainyard"

const (
	defaultDatabase = "trainyard"
	readyTimeout    = 30 * time.Second
	stopTimeout     = 30 * time.Second
	// maxSocketPath keeps below the kernel's 108-byte limit on a Unix socket's path,
	// counting the ".s.PGSQL.NNNNN.lock" name postgres puts in the directory.
	maxSocketPath = 100
	// portAttempts bounds retries when a port we picked was taken before postgres bound it.
	portAttempts = 3
)

// Options says where and how to run the server.
type Options struct {
	// DataDir holds the cluster; it is created and initialised when it has no PG_VERSION,
	// and reused otherwise.
	DataDir string
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// Database is created when missing; default "trainyard".
	Database string
	// Logger gets our own messages; default slog.Default().
	Logger *slog.Logger
	// Stdout and Stderr get postgres's log; a nil one writes to DataDir/../postgres.log
	// (or nowhere if that file cannot be opened).
	Stdout, Stderr io.Writer
	// NoFsync turns fsync off: for tests, whose data is thrown away.
	NoFsync bool
	// DieWithParent has the kernel send postgres SIGINT (its fast, clean shutdown) when this
	// process dies, even by SIGKILL or a test timeout, so no orphaned server holds the data
	// directory and blocks the next start.
	DieWithParent bool
}

// Server is a running postgres child process.
type Server struct {
	port     int
	database string
	dataDir  string
	logger   *slog.Logger

	cmd      *exec.Cmd
	tail     *logtail.Buffer
	exited   chan struct{}
	waitErr  error // set before exited is closed
	ready    atomic.Bool
	stopping atomic.Bool
	cleanup  []func()

	stopOnce sync.Once
	stopErr  error
}

// Start runs postgres on opts.DataDir, initialising the directory on first use, and returns
// once it accepts connections and opts.Database exists. Stop it with Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("start postgres: no data dir given")
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("start postgres: resolve data dir %q: %w", opts.DataDir, err)
	}
	logger := cmp.Or(opts.Logger, slog.Default()).With("component", "postgres", "data_dir", dataDir)
	database := cmp.Or(opts.Database, defaultDatabase)

	as, err := currentRunAs()
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	parent := filepath.Dir(dataDir)
	if err := prepareParent(parent, as); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := as.checkReachable(dataDir); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}

	major, err := clusterVersion(dataDir)
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	bins, err := findBinaries(debianRoot, major)
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if major == "" {
		if err := initCluster(ctx, logger, bins, as, dataDir); err != nil {
			return nil, fmt.Errorf("start postgres: %w", err)
		}
	} else if err := as.chownAll(dataDir); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	// postgres refuses a data dir that others can read.
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}

	var cleanup []func()
	runCleanup := func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	sockDir, removeSockDir, err := socketDir(parent, as)
	if err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	cleanup = append(cleanup, removeSockDir)

	stdout, stderr := opts.Stdout, opts.Stderr
	if stdout == nil || stderr == nil {
		logPath := filepath.Join(parent, "postgres.log")
		var w io.Writer = io.Discard
		if f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640); err != nil {
			logger.Warn("cannot open postgres log file; discarding postgres's log", "path", logPath, "error", err)
		} else {
			w = f
			cleanup = append(cleanup, func() { _ = f.Close() })
		}
		if stdout == nil {
			stdout = w
		}
		if stderr == nil {
			stderr = w
		}
	}

	for attempt := 1; ; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				runCleanup()
				return nil, fmt.Errorf("start postgres: %w", err)
			}
		}
		s := &Server{
			port:     port,
			database: database,
			dataDir:  dataDir,
			logger:   logger.With("port", port),
			tail:     logtail.New(64 << 10),
			exited:   make(chan struct{}),
		}
		args := []string{
			"-D", dataDir,
			"-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories=" + sockDir,
			"-c", "fsync=" + onOff(!opts.NoFsync),
		}
		s.cmd = exec.Command(bins.postgres, args...)
		s.cmd.Dir = dataDir
		s.cmd.Env = as.env()
		s.cmd.Stdout = io.MultiWriter(stdout, s.tail)
		s.cmd.Stderr = io.MultiWriter(stderr, s.tail)
		s.cmd.SysProcAttr = as.sysProcAttr()
		// Its own process group: a Ctrl-C in the terminal reaches only us, and we shut
		// postgres down in order through Stop.
		s.cmd.SysProcAttr.Setpgid = true
		if opts.DieWithParent {
			s.cmd.SysProcAttr.Pdeathsig = syscall.SIGINT
		}
		// Backends that outlive a killed postmaster keep the log pipes open; don't wait on them.
		s.cmd.WaitDelay = 5 * time.Second

		s.logger.Info("starting postgres", "binary", bins.postgres)
		if err := s.launch(opts.DieWithParent); err != nil {
			runCleanup()
			return nil, fmt.Errorf("start postgres: run %s: %w", bins.postgres, err)
		}
		err := s.waitReady(ctx)
		if err == nil {
			err = s.ensureDatabase(ctx)
		}
		if err == nil {
			s.cleanup = cleanup
			s.ready.Store(true)
			s.logger.Info("postgres ready", "url", s.URL())
			return s, nil
		}
		_ = s.Stop()
		if opts.Port == 0 && attempt < portAttempts && errors.Is(err, errPortInUse) {
			s.logger.Info("port was taken before postgres bound it; trying another")
			continue
		}
		runCleanup()
		return nil, err
	}
}

// URL is a lib/pq URL for the server's database.
func (s *Server) URL() string { return s.URLFor(s.database) }

// URLFor is a lib/pq URL for another database on the same server.
func (s *Server) URLFor(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(Role),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port is the TCP port postgres listens on, on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// DataDir is the absolute path of the cluster.
func (s *Server) DataDir() string { return s.dataDir }

// Stop shuts postgres down fast (open transactions roll back, clients are disconnected,
// data is checkpointed), killing it if it has not exited within 30 s. It is safe to call
// more than once; later calls return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopErr = s.stop()
		for i := len(s.cleanup) - 1; i >= 0; i-- {
			s.cleanup[i]()
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
		return fmt.Errorf("stop postgres: it had already exited: %w", s.waitErr)
	default:
	}
	s.stopping.Store(true)
	s.logger.Info("stopping postgres")
	// SIGINT is postgres's fast shutdown; SIGTERM would wait for every client to leave.
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil && !errors.Is(err, os.ErrProcessDone) {
		s.logger.Warn("signal postgres", "error", err)
	}
	select {
	case <-s.exited:
		if s.waitErr != nil {
			return fmt.Errorf("stop postgres: %w", s.waitErr)
		}
		return nil
	case <-time.After(stopTimeout):
	}
	s.logger.Warn("postgres did not stop in time; killing it", "timeout", stopTimeout)
	// The whole group, so no backend outlives the postmaster.
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
	return fmt.Errorf("stop postgres: not stopped after %s, killed", stopTimeout)
}

// launch starts the process and a watcher that records its exit.
func (s *Server) launch(dieWithParent bool) error {
	started := make(chan error, 1)
	start := func() {
		err := s.cmd.Start()
		started <- err
		if err != nil {
			return
		}
		go s.watch()
	}
	if !dieWithParent {
		start()
		return <-started
	}
	go func() {
		// Pdeathsig fires when the thread that forked the child ends, not the process, and
		// Go may end idle threads; a thread locked to this goroutine lives until postgres
		// exits. Returning while locked then ends the thread, which no longer matters.
		runtime.LockOSThread()
		start()
		<-s.exited
	}()
	return <-started
}

func (s *Server) watch() {
	err := s.cmd.Wait()
	s.waitErr = err
	close(s.exited)
	// A failed start is reported by Start itself.
	if s.ready.Load() && !s.stopping.Load() {
		s.logger.Error("postgres exited unexpectedly", "error", err, "log_tail", s.tail.LastLines(20))
	}
}

var (
	errPortInUse       = errors.New("port in use")
	errDataDirNotEmpty = errors.New("data dir exists, is not empty, and holds no PG_VERSION")
)

// waitReady polls until postgres accepts connections, fails, or readyTimeout passes.
func (s *Server) waitReady(ctx context.Context) error {
	db, err := sql.Open("postgres", s.URLFor("postgres")+"&connect_timeout=2")
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	defer db.Close()

	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		dir, err := s.servedDataDir(ctx, db)
		if err == nil {
			if dir != s.dataDir {
				// Ours failed to bind and someone else's server answered.
				return s.startupError("start postgres", fmt.Errorf("%w: a server for data dir %s answers there", errPortInUse, dir))
			}
			return nil
		}
		select {
		case <-s.exited:
			return s.startupError("start postgres: exited during startup", s.waitErr)
		case <-ctx.Done():
			return s.startupError("start postgres", ctx.Err())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return s.startupError(fmt.Sprintf("start postgres: not ready after %s", readyTimeout), err)
		}
	}
}

// servedDataDir asks the server on our port which data dir it serves, giving up as soon as
// our postgres exits: then whatever holds the port may never answer.
func (s *Server) servedDataDir(ctx context.Context, db *sql.DB) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	go func() {
		select {
		case <-s.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	var dir string
	err := db.QueryRowContext(ctx, `SELECT current_setting('data_directory')`).Scan(&dir)
	return dir, err
}

func (s *Server) ensureDatabase(ctx context.Context) error {
	db, err := sql.Open("postgres", s.URLFor("postgres"))
	if err != nil {
		return fmt.Errorf("create database %q: %w", s.database, err)
	}
	defer db.Close()
	if err := CreateDatabase(ctx, db, s.database); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	return nil
}

// CreateDatabase creates name through db unless it exists; creating it concurrently from
// two places is fine.
func CreateDatabase(ctx context.Context, db *sql.DB, name string) error {
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err := db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name))
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "42P04" { // duplicate_database: someone else won
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %q: %w", name, err)
	}
	return nil
}

// startupError keeps the end of postgres's log, where the reason for a failed start is.
func (s *Server) startupError(msg string, err error) error {
	tail := s.tail.LastLines(20)
	e := &logtail.StartupError{Msg: fmt.Sprintf("%s (data dir %s, port %d)", msg, s.dataDir, s.port), Log: "postgres log", Tail: tail, Err: err}
	switch {
	case strings.Contains(tail, `lock file "postmaster.pid" already exists`):
		e.Hint = fmt.Sprintf("another postgres is using this data dir; stop it, or if none is running remove %s",
			filepath.Join(s.dataDir, "postmaster.pid"))
	case strings.Contains(tail, "could not bind") || strings.Contains(tail, "Address already in use"):
		e.Err = errors.Join(errPortInUse, err)
	}
	return e
}

// prepareParent makes the data dir's parent, giving it to the run account when we made it.
func prepareParent(parent string, as *runAs) error {
	if _, err := os.Stat(parent); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("check %s: %w", parent, err)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	return as.chown(parent)
}

// clusterVersion is the major version in dataDir/PG_VERSION, or "" when there is no cluster.
func clusterVersion(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read cluster version: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// initCluster runs initdb into a sibling folder and renames it into place, so an
// interrupted initdb never leaves a data dir that has a PG_VERSION but is incomplete.
func initCluster(ctx context.Context, logger *slog.Logger, bins binaries, as *runAs, dataDir string) error {
	if entries, err := os.ReadDir(dataDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("initialise %s: %w", dataDir, errDataDirNotEmpty)
	}
	tmp := dataDir + ".initdb"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("remove leftover %s: %w", tmp, err)
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return fmt.Errorf("initialise %s: %w", dataDir, err)
	}
	if err := as.chown(tmp); err != nil {
		return fmt.Errorf("initialise %s: %w", dataDir, err)
	}

	logger.Info("initialising postgres data dir", "binary", bins.initdb)
	cmd := exec.CommandContext(ctx, bins.initdb,
		"-D", tmp,
		"-U", Role,
		"--auth=trust", // safe: the server listens on 127.0.0.1 only
		"--encoding=UTF8",
		// A fixed locale: the machine's may not be installed, and English log messages
		// are what startup errors are matched against.
		"--locale=C",
		"--no-sync",
	)
	cmd.Dir = tmp
	cmd.Env = as.env()
	cmd.SysProcAttr = as.sysProcAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(tmp)
		return fmt.Errorf("initdb (output:\n%s\n): %w", logtail.LastLines(string(out), 20), err)
	}
	logger.Debug("initdb done", "output", string(out))

	// An empty data dir may already exist (made by the caller); rename needs it gone.
	if err := os.Remove(dataDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("initialise %s: %w", dataDir, err)
	}
	if err := os.Rename(tmp, dataDir); err != nil {
		return fmt.Errorf("initialise %s: %w", dataDir, err)
	}
	return nil
}

// socketDir is where postgres puts its Unix socket and that socket's lock file: beside the
// data dir when the path is short enough, else a fresh temporary folder removed on Stop.
// It must belong to the run account; the default, /var/run/postgresql, may not exist or
// may belong to the machine's own postgres.
func socketDir(parent string, as *runAs) (string, func(), error) {
	dir := filepath.Join(parent, "pgsock")
	if len(dir)+len("/.s.PGSQL.65535.lock") <= maxSocketPath {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", nil, fmt.Errorf("create socket dir: %w", err)
		}
		if err := as.chown(dir); err != nil {
			return "", nil, fmt.Errorf("create socket dir: %w", err)
		}
		return dir, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "typg")
	if err != nil {
		return "", nil, fmt.Errorf("create socket dir: %w", err)
	}
	if err := as.chown(dir); err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, fmt.Errorf("create socket dir: %w", err)
	}
	return dir, func() { _ = os.RemoveAll(dir) }, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
