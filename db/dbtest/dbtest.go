// Package dbtest runs a test against every database Klaxon supports: a
// fresh SQLite file, and a fresh schema in PostgreSQL.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/klaxonhq/klaxon/db"
)

// DefaultPostgresURL is the database the tests use when
// KLAXON_TEST_POSTGRES_URL is unset.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Each runs fn as a subtest once per database, each with an empty, migrated
// database of its own. PostgreSQL is skipped when unreachable, except under
// CI=true, where an unreachable database fails the test.
func Each(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// EachUnmigrated is Each with databases that have no tables yet, for tests
// of the migrations themselves.
func EachUnmigrated(t *testing.T, fn func(t *testing.T, d *db.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, openEmpty(t, db.DefaultURL(t.TempDir()))) })
	t.Run("postgres", func(t *testing.T) { fn(t, openEmpty(t, postgresURL(t))) })
}

// SQLite opens a migrated database in a new temporary file: a copy of
// one migrated once per test process, since running every migration for
// each test cost more than most tests themselves, above all under the
// race detector, which instruments the SQLite engine too.
func SQLite(t testing.TB) *db.DB {
	t.Helper()
	image, err := migratedSQLite()
	if err != nil {
		t.Fatalf("migrate the SQLite template: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "klaxon.db"), image, 0o600); err != nil {
		t.Fatalf("copy the SQLite template: %v", err)
	}
	return openEmpty(t, db.DefaultURL(dir))
}

var migratedSQLite = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "klaxon-dbtest-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	d, err := db.Open(ctx, db.DefaultURL(dir))
	if err != nil {
		return nil, err
	}
	if _, err := d.Migrate(ctx); err != nil {
		d.Close()
		return nil, err
	}
	// Everything into the main file, so that the file alone is the
	// database.
	if _, err := d.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		d.Close()
		return nil, err
	}
	if err := d.Close(); err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(dir, "klaxon.db"))
})

// Postgres opens a migrated, empty schema of its own in the test database
// and drops it when the test ends.
func Postgres(t testing.TB) *db.DB {
	t.Helper()
	return open(t, postgresURL(t))
}

// postgresURL makes an empty schema of its own in the test database, drops
// it when the test ends, and returns a URL whose connections use it.
func postgresURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("KLAXON_TEST_POSTGRES_URL")
	if base == "" {
		base = DefaultPostgresURL
	}
	ctx := context.Background()
	admin, err := db.Open(ctx, base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required under CI: %v", err)
		}
		t.Skipf("PostgreSQL unreachable (set KLAXON_TEST_POSTGRES_URL): %v", err)
	}
	schema := "t_" + randomHex(8)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", base, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// URL returns a database URL for a new, empty database of the given kind,
// for tests that start the server binary themselves.
func URL(t testing.TB, kind db.Kind) string {
	t.Helper()
	if kind == db.SQLite {
		return db.DefaultURL(filepath.Join(t.TempDir(), "data"))
	}
	d := Postgres(t)
	return d.URL
}

func open(t testing.TB, rawURL string) *db.DB {
	t.Helper()
	d := openEmpty(t, rawURL)
	if _, err := d.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return d
}

func openEmpty(t testing.TB, rawURL string) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatalf("open %s: %v", rawURL, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
