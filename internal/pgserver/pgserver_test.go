package pgserver

import (
	"bytes"
	"context"
	"database/sql"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func startForTest(t *testing.T, dataDir string, log *bytes.Buffer) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{DataDir: dataDir, NoFsync: true, DieWithParent: true, Stdout: log, Stderr: log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func TestStart_RestartOnSameDataDirKeepsRows(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(tempDirForPostgres(t), "pgdata")
	ctx := context.Background()

	s := startForTest(t, dataDir, &bytes.Buffer{})
	require.True(t, strings.HasPrefix(s.URL(), "postgres://trainyard@127.0.0.1:"), s.URL())
	require.True(t, strings.HasSuffix(s.URL(), "/trainyard?sslmode=disable"), s.URL())
	db, err := sql.Open("postgres", s.URL())
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives')`)
	require.NoError(t, err)
	// An open transaction does not hold up a fast shutdown.
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `INSERT INTO kept VALUES ('rolled back')`)
	require.NoError(t, err)
	require.NoError(t, s.Stop())
	_ = tx.Rollback()
	require.NoError(t, db.Close())
	require.NoError(t, s.Stop(), "a second Stop returns the first one's result")

	fi, err := os.Stat(dataDir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	s = startForTest(t, dataDir, &bytes.Buffer{})
	db, err = sql.Open("postgres", s.URL())
	require.NoError(t, err)
	defer db.Close()
	var v string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT string_agg(v, ',') FROM kept`).Scan(&v))
	require.Equal(t, "survives", v)
}

func TestStart_WritesPostgresLogBesideDataDirByDefault(t *testing.T) {
	t.Parallel()
	parent := tempDirForPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{DataDir: filepath.Join(parent, "pgdata"), NoFsync: true, DieWithParent: true})
	require.NoError(t, err)
	require.NoError(t, s.Stop())

	log, err := os.ReadFile(filepath.Join(parent, "postgres.log"))
	require.NoError(t, err)
	require.Contains(t, string(log), "database system is ready to accept connections")
	require.Contains(t, string(log), "database system is shut down")
}

func TestStart_TakenPortFailsWithReason(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var log bytes.Buffer
	s, err := Start(ctx, Options{
		DataDir: filepath.Join(tempDirForPostgres(t), "pgdata"), Port: l.Addr().(*net.TCPAddr).Port,
		NoFsync: true, DieWithParent: true, Stdout: &log, Stderr: &log,
	})
	if s != nil {
		_ = s.Stop()
	}
	require.ErrorIs(t, err, errPortInUse)
	require.ErrorContains(t, err, "Address already in use")
}

func TestStart_AfterCrashStartsOverStalePidFile(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(tempDirForPostgres(t), "pgdata")
	ctx := context.Background()

	s := startForTest(t, dataDir, &bytes.Buffer{})
	db, err := sql.Open("postgres", s.URL())
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `CREATE TABLE kept (v text); INSERT INTO kept VALUES ('committed')`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	require.NoError(t, syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL))
	<-s.exited
	require.FileExists(t, filepath.Join(dataDir, "postmaster.pid"), "a crash leaves the pid file behind")

	s = startForTest(t, dataDir, &bytes.Buffer{})
	db, err = sql.Open("postgres", s.URL())
	require.NoError(t, err)
	defer db.Close()
	var v string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT v FROM kept`).Scan(&v))
	require.Equal(t, "committed", v)
}

func TestStart_SecondServerOnSameDataDirFailsWithLogTail(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(tempDirForPostgres(t), "pgdata")
	startForTest(t, dataDir, &bytes.Buffer{})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var log bytes.Buffer
	s, err := Start(ctx, Options{DataDir: dataDir, NoFsync: true, DieWithParent: true, Stdout: &log, Stderr: &log})
	if s != nil {
		_ = s.Stop()
	}
	require.Error(t, err)
	require.Contains(t, err.Error(), `lock file "postmaster.pid" already exists`, "the log tail is in the error")
	require.Contains(t, err.Error(), "hint: another postgres is using this data dir")
}

func TestStart_NonEmptyDirWithoutClusterIsRefused(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(tempDirForPostgres(t), "pgdata")
	require.NoError(t, os.MkdirAll(dataDir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dataDir, "precious.txt"), []byte("x"), 0o600))

	_, err := Start(context.Background(), Options{DataDir: dataDir, NoFsync: true})
	require.ErrorIs(t, err, errDataDirNotEmpty)
	_, err = os.Stat(filepath.Join(dataDir, "precious.txt"))
	require.NoError(t, err, "the folder's files are left alone")
}

func TestStart_CreatesNamedDatabase(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(tempDirForPostgres(t), "pgdata")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{DataDir: dataDir, Database: "other-db", NoFsync: true, DieWithParent: true, Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}})
	require.NoError(t, err)
	defer s.Stop()

	db, err := sql.Open("postgres", s.URL())
	require.NoError(t, err)
	defer db.Close()
	var name string
	require.NoError(t, db.QueryRowContext(ctx, `SELECT current_database()`).Scan(&name))
	require.Equal(t, "other-db", name)
	require.NoError(t, CreateDatabase(ctx, db, "other-db"), "creating an existing database is a no-op")
}

func TestFindBinaries_PrefersClusterVersionThenHighest(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, v := range []string{"9.6", "13", "15", "16"} {
		makeFakeBinaries(t, filepath.Join(root, v, "bin"), "initdb", "postgres")
	}
	makeFakeBinaries(t, filepath.Join(root, "17", "bin"), "initdb") // incomplete: skipped
	require.NoError(t, os.MkdirAll(filepath.Join(root, "not-a-version", "bin"), 0o755))

	tests := []struct {
		name        string
		preferMajor string
		want        string
	}{
		{name: "no cluster yet picks the highest complete version", want: "16"},
		{name: "existing cluster picks its own version", preferMajor: "13", want: "13"},
		{name: "cluster version not installed falls back to highest", preferMajor: "12", want: "16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := findBinaries(root, tt.preferMajor)
			require.NoError(t, err)
			require.Equal(t, filepath.Join(root, tt.want, "bin", "postgres"), b.postgres)
			require.Equal(t, filepath.Join(root, tt.want, "bin", "initdb"), b.initdb)
		})
	}
}

func TestFindBinaries_NoneAnywhereNamesWhatIsMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := findBinaries(t.TempDir(), "")
	require.ErrorContains(t, err, "initdb and postgres not found")
	require.ErrorContains(t, err, "install Debian's postgresql package")
}

func TestInstalledVersions_SortsNumerically(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, v := range []string{"9.6", "10", "15", "9.5", "x"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, v), 0o755))
	}
	require.Equal(t, []string{"15", "10", "9.6", "9.5"}, installedVersions(root))
}

func makeFakeBinaries(t *testing.T, dir string, names ...string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for _, n := range names {
		require.NoError(t, os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755))
	}
}

// tempDirForPostgres is a temporary folder the postgres user can enter when the tests run
// as root: t.TempDir's parent is private to root.
func tempDirForPostgres(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgserver-test-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	as, err := currentRunAs()
	require.NoError(t, err)
	require.NoError(t, as.chown(dir))
	return dir
}
