package testpg

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/trainyard/trainyard/internal/pgserver"
)

// EnvURL names an existing server to use instead of starting one; tests create their
// databases on it (so its role needs CREATEDB) and drop them when done.
const EnvURL = "TRAINYARD_TEST_DATABASE_URL"

const startTimeout = 2 * time.Minute

var (
	mainCalled atomic.Bool
	once       sync.Once
	shared     *cluster
	startErr   error
)

// URL returns the URL of a new, empty database for this test alone.
func URL(tb testing.TB) string {
	tb.Helper()
	if !mainCalled.Load() {
		tb.Fatalf("testpg: call testpg.Main(m) from TestMain in this package, so the server it starts is stopped after the tests")
	}
	once.Do(func() { shared, startErr = newCluster(os.Getenv(EnvURL)) })
	if startErr != nil {
		tb.Fatalf("testpg: no PostgreSQL for tests: %v", startErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u, err := shared.createDatabase(ctx, tb)
	if err != nil {
		tb.Fatalf("testpg: %v", err)
	}
	return u
}

// Main runs the tests, stops the server URL started (if any) and removes its files, and
// exits with the tests' code.
func Main(m *testing.M) {
	mainCalled.Store(true)
	code := m.Run()
	if shared != nil {
		if err := shared.close(); err != nil {
			fmt.Fprintf(os.Stderr, "testpg: %v\n", err)
		}
	}
	os.Exit(code)
}

// cluster is the server the test binary's databases live on.
type cluster struct {
	admin *sql.DB
	base  url.URL
	// srv and dir are set when we started the server ourselves.
	srv *pgserver.Server
	dir string
}

func newCluster(externalURL string) (*cluster, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c := &cluster{}
	if externalURL != "" {
		u, err := url.Parse(externalURL)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("%s must be a postgres:// URL", EnvURL)
		}
		c.base = *u
	} else {
		dir, err := os.MkdirTemp("", "trainyard-testpg-")
		if err != nil {
			return nil, fmt.Errorf("create server dir: %w", err)
		}
		// When the tests run as root, postgres runs as the postgres user, which must be able
		// to enter this folder; the data dir inside it stays private.
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, errors.Join(fmt.Errorf("create server dir: %w", err), os.RemoveAll(dir))
		}
		srv, err := pgserver.Start(ctx, pgserver.Options{
			DataDir:       filepath.Join(dir, "data"),
			Database:      "postgres",
			Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			NoFsync:       true,
			DieWithParent: true,
		})
		if err != nil {
			return nil, errors.Join(err, os.RemoveAll(dir))
		}
		c.srv, c.dir = srv, dir
		u, err := url.Parse(srv.URL())
		if err != nil {
			return nil, errors.Join(fmt.Errorf("parse server url: %w", err), c.close())
		}
		c.base = *u
	}

	admin, err := sql.Open("postgres", c.base.String())
	if err == nil {
		err = admin.PingContext(ctx)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("connect to %s: %w", redacted(c.base), err), c.close())
	}
	c.admin = admin
	return c, nil
}

func (c *cluster) createDatabase(ctx context.Context, tb testing.TB) (string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "test_" + hex.EncodeToString(b[:])
	if _, err := c.admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		return "", fmt.Errorf("create database %s on %s: %w", name, redacted(c.base), err)
	}
	// Our own server is thrown away whole after the tests; on a shared one, clean up.
	if c.srv == nil {
		tb.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := c.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
				tb.Logf("testpg: drop database %s: %v", name, err)
			}
		})
	}
	u := c.base
	u.Path = "/" + name
	return u.String(), nil
}

func (c *cluster) close() error {
	var errs []error
	if c.admin != nil {
		errs = append(errs, c.admin.Close())
	}
	if c.srv != nil {
		errs = append(errs, c.srv.Stop())
	}
	if c.dir != "" {
		errs = append(errs, os.RemoveAll(c.dir))
	}
	return errors.Join(errs...)
}

// redacted keeps passwords out of test logs.
func redacted(u url.URL) string { return u.Redacted() }
