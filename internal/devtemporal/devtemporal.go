// Package devtemporal runs the official Temporal dev server (`temporal server start-dev`,
// built from the Temporal CLI's Go module into ./bin) as a child process for `trainyard dev`.
// Tests use the SDK's testsuite.StartDevServer with the same binary instead.
package devtemporal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/trainyard/trainyard/workflows"
)

// Options say where the dev server keeps its data and listens.
type Options struct {
	// CLI is the temporal binary.
	CLI string
	// DBFile keeps workflows across restarts.
	DBFile    string
	LogFile   string
	IP        string
	Port      int
	UIPort    int
	Namespace string
	Logger    *slog.Logger
}

// Server is a running dev server.
type Server struct {
	cmd    *exec.Cmd
	done   chan error
	logger *slog.Logger
	opts   Options
}

// Address is the frontend's host:port.
func (s *Server) Address() string { return net.JoinHostPort(s.opts.IP, strconv.Itoa(s.opts.Port)) }

// UIURL is the Web UI's address.
func (s *Server) UIURL() string {
	return "http://" + net.JoinHostPort(s.opts.IP, strconv.Itoa(s.opts.UIPort))
}

// Args is the command line, with the Trainyard search attributes registered up front.
func Args(o Options) []string {
	args := []string{
		"server", "start-dev",
		"--ip", o.IP,
		"--port", strconv.Itoa(o.Port),
		"--ui-port", strconv.Itoa(o.UIPort),
		"--db-filename", o.DBFile,
		"--namespace", o.Namespace,
		"--log-level", "warn",
	}
	names := make([]string, 0, len(workflows.SearchAttributeTypes))
	for name := range workflows.SearchAttributeTypes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		args = append(args, "--search-attribute", name+"="+workflows.SearchAttributeTypes[name])
	}
	return args
}

// Start launches the dev server and returns once its frontend port accepts connections.
func Start(ctx context.Context, o Options) (*Server, error) {
	if _, err := os.Stat(o.CLI); err != nil {
		return nil, fmt.Errorf("temporal CLI not found at %s: `make dev` builds it (or set TEMPORAL_ADDRESS to use a running server): %w", o.CLI, err)
	}
	for _, port := range []int{o.Port, o.UIPort} {
		if err := portFree(o.IP, port); err != nil {
			return nil, fmt.Errorf("port %d is taken (is another `trainyard dev` or Temporal running? stop it, or set TEMPORAL_ADDRESS to use it): %w", port, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(o.DBFile), 0o755); err != nil {
		return nil, fmt.Errorf("create temporal data folder: %w", err)
	}
	logf, err := os.OpenFile(o.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open temporal log: %w", err)
	}
	cmd := exec.Command(o.CLI, Args(o)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: Ctrl-C reaches trainyard dev, which stops the server after the
	// workers, so nothing in flight is cut off mid-task. Pdeathsig covers a killed parent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start temporal dev server: %w", err)
	}
	s := &Server{cmd: cmd, done: make(chan error, 1), logger: o.Logger, opts: o}
	go func() { s.done <- cmd.Wait(); logf.Close() }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", s.Address(), time.Second)
		if err == nil {
			conn.Close()
			return s, nil
		}
		select {
		case werr := <-s.done:
			return nil, fmt.Errorf("temporal dev server exited during start-up (see %s): %v", o.LogFile, werr)
		case <-ctx.Done():
			_ = s.Stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = s.Stop()
			return nil, fmt.Errorf("temporal dev server did not listen on %s within 60s (see %s)", s.Address(), o.LogFile)
		}
	}
}

// Stop asks the server to shut down and waits for it, killing it after 15 seconds.
func (s *Server) Stop() error {
	if s == nil || s.cmd.Process == nil {
		return nil
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-s.done:
		return nil
	case <-time.After(15 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
		return errors.New("temporal dev server did not stop within 15s and was killed")
	}
}

func portFree(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}
