package testpg

import (
	"context"
	"database/sql"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

func TestURL_GivesAFreshDatabaseEachCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	first, second := URL(t), URL(t)
	require.NotEqual(t, first, second)

	db1 := open(t, first)
	_, err := db1.ExecContext(ctx, `CREATE TABLE only_in_first (id int)`)
	require.NoError(t, err)

	db2 := open(t, second)
	var n int
	require.NoError(t, db2.QueryRowContext(ctx,
		`SELECT count(*) FROM information_schema.tables WHERE table_name = 'only_in_first'`).Scan(&n))
	require.Zero(t, n, "the second database starts empty")
}

func TestNewCluster_ExternalServerGetsFreshDatabasesAndDropsThem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The server this binary started stands in for an external one.
	c, err := newCluster(URL(t))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.close()) })

	var name string
	t.Run("creates", func(t *testing.T) {
		u, err := c.createDatabase(ctx, t)
		require.NoError(t, err)
		parsed, err := url.Parse(u)
		require.NoError(t, err)
		name = parsed.Path[1:]
		var got string
		require.NoError(t, open(t, u).QueryRowContext(ctx, `SELECT current_database()`).Scan(&got))
		require.Equal(t, name, got)
	})
	var n int
	require.NoError(t, c.admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n))
	require.Zero(t, n, "the database is dropped when its test ends")
}

func TestNewCluster_BadExternalURLIsAnError(t *testing.T) {
	t.Parallel()
	_, err := newCluster("not a url")
	require.ErrorContains(t, err, EnvURL)
}

func open(t *testing.T, u string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", u)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	require.NoError(t, db.PingContext(context.Background()))
	return db
}
