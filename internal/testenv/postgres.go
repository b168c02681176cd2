package testenv

import (
	dbsql "database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to make a schema
)

// PostgresSchema makes an empty schema (named prefix_TIME_RANDOM) in the
// test PostgreSQL and returns a DSN that uses it (search_path). The schema
// is dropped when t ends, after the cleanups registered later (servers
// using it) have run. Without a test PostgreSQL the test is skipped
// (failed under CI), as Postgres says.
func PostgresSchema(t testing.TB, prefix string) string {
	t.Helper()
	dsn := Postgres(t)
	admin, err := dbsql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := fmt.Sprintf("%s_%d_%08x", prefix, time.Now().UnixNano(), rand.Uint32())
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
		admin.Close()
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
