package db_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/klaxonhq/klaxon/db"
)

// TestClassifyUnavailable checks that the errors of a database that is
// away are told apart from those of a bad request, however deep they
// are wrapped: the API answers the first with 503 and a retry, the
// second as before.
func TestClassifyUnavailable(t *testing.T) {
	ctx := context.Background()
	// A PostgreSQL nobody listens on: the driver's own connect error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, refused := db.Open(ctx, "postgres://postgres@"+addr+"/test?sslmode=disable&connect_timeout=5")
	if refused == nil {
		t.Fatal("opened a database nobody listens on")
	}

	cases := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"connection refused", refused, true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"read-only standby", &pgconn.PgError{Code: "25006"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"bad connection", driver.ErrBadConn, true},
		{"connection done", sql.ErrConnDone, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"no rows", sql.ErrNoRows, false},
		{"caller gave up", context.Canceled, false},
		{"caller's deadline", context.DeadlineExceeded, false},
		{"other", errors.New("something else"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// As callers wrap it, twice, before it reaches a presenter.
			wrapped := fmt.Errorf("ingest message: %w", fmt.Errorf("store: %w", c.err))
			got := errors.Is(db.Classify(wrapped), db.ErrUnavailable)
			if got != c.unavailable {
				t.Fatalf("Classify(%v) unavailable = %v, want %v", wrapped, got, c.unavailable)
			}
			if c.unavailable {
				again := fmt.Errorf("outer: %w", db.Classify(wrapped))
				if !errors.Is(db.Classify(again), db.ErrUnavailable) || !errors.Is(again, c.err) {
					t.Fatalf("classifying twice lost the chain: %v", again)
				}
			}
		})
	}
}

// TestClassifySQLiteLocked holds SQLite's write lock from a second
// connection past the writer's busy timeout: the write fails with
// SQLITE_BUSY, which is the database being unavailable.
func TestClassifySQLiteLocked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "locked.db")
	open := func() *sql.DB {
		d, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(50)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		d.SetMaxOpenConns(1)
		t.Cleanup(func() { d.Close() })
		return d
	}
	writer, holder := open(), open()
	if _, err := writer.ExecContext(ctx, "CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	lock, err := holder.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = writer.ExecContext(ctx, "INSERT INTO t VALUES (2)")
	if err == nil {
		t.Fatalf("wrote beside a held write lock (after %s)", time.Since(start))
	}
	if !errors.Is(db.Classify(fmt.Errorf("insert: %w", err)), db.ErrUnavailable) {
		t.Fatalf("write refused by a held lock: %v, want ErrUnavailable", err)
	}
}
