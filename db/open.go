package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// Kind names the database engine behind a DB.
type Kind string

const (
	SQLite   Kind = "sqlite"
	Postgres Kind = "postgres"
)

// DB is an open database with its engine kind.
type DB struct {
	*bun.DB
	Kind Kind
	// URL is the URL the database was opened with.
	URL string
	// Planned, on PostgreSQL only, is a small pool whose connections
	// prepare each statement once and reuse it, for fixed statements sent
	// many at a time (pgx batches), which the main pool's simple protocol
	// would have the server plan anew every time.
	Planned *sql.DB
	// checkpoints, on SQLite only, copies the write-ahead log back into
	// the database file in the background (checkpoint.go).
	checkpoints *checkpointer
}

// Close closes both pools.
func (d *DB) Close() error {
	if d.checkpoints != nil {
		d.checkpoints.close()
	}
	if d.Planned != nil {
		d.Planned.Close()
	}
	return d.DB.Close()
}

// DefaultURL is the embedded database inside a data directory.
func DefaultURL(dataDir string) string {
	return "sqlite://" + filepath.Join(dataDir, "klaxon.db")
}

// Open connects to the database named by rawURL: "sqlite:///path/file.db"
// (or "sqlite://relative/file.db") or "postgres://…". It does not migrate.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	switch {
	case strings.HasPrefix(rawURL, "sqlite:"):
		d, err := openSQLite(ctx, strings.TrimPrefix(strings.TrimPrefix(rawURL, "sqlite:"), "//"))
		if err == nil {
			d.URL = rawURL
		}
		return d, err
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		d, err := openPostgres(ctx, rawURL)
		if err == nil {
			d.URL = rawURL
		}
		return d, err
	default:
		return nil, errors.New("open database: the URL must start with sqlite:// or postgres://")
	}
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("open database: sqlite URL has no file path")
	}
	if strings.Contains(path, "?") {
		return nil, errors.New("open database: sqlite URL takes no query parameters")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open database: create directory: %w", err)
	}
	// WAL lets readers run beside the writer; synchronous=FULL makes every
	// commit reach the disk before it returns, so a webhook's 2xx survives a
	// power loss. Immediate transactions take the write lock up front, which
	// avoids the deadlock-prone upgrade from a read to a write lock.
	// The page cache is kept small (8 MB) because every commit scans all
	// of it for pages past the end of the database, which at 32 MB took
	// several percent of the writer's time; pages that fall out of it are
	// still in the operating system's cache.
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "cache_size(-8000)")
	q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", writerCheckpointPages))
	q.Set("_txlock", "immediate")
	q.Set("_time_format", "sqlite")
	dsn := "file:" + path + "?" + q.Encode()
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// SQLite has one writer; a single connection queues writers in Go
	// instead of spinning on SQLITE_BUSY.
	sqldb.SetMaxOpenConns(1)
	sqldb.SetConnMaxIdleTime(0)
	d := &DB{DB: bun.NewDB(sqldb, sqlitedialect.New()), Kind: SQLite}
	if err := d.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if d.checkpoints, err = startCheckpointer(dsn, checkpointEvery); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return d, nil
}

// PlanOnce, passed before the arguments of a raw PostgreSQL query made
// through the database/sql API (tx.Tx.QueryRowContext), has the server
// parse and plan that query once per connection and reuse the plan: for a
// fixed statement run on every webhook, planning costs more than running.
var PlanOnce any = pgx.QueryExecModeCacheStatement

func openPostgres(ctx context.Context, rawURL string) (*DB, error) {
	// bun writes every argument into the SQL text, so each statement is
	// new to the server. pgx would prepare and cache each one (an extra
	// round trip, and a cache churning through one-off statements); the
	// simple protocol sends it once.
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.New("open database: the PostgreSQL URL does not parse")
	}
	q := u.Query()
	// A mode set in the URL is kept for both pools: behind a pooler that
	// cannot hold prepared statements (PgBouncer in transaction mode)
	// the operator sets simple_protocol or exec.
	planned := *u
	if q.Get("default_query_exec_mode") == "" {
		q.Set("default_query_exec_mode", "cache_statement")
		planned.RawQuery = q.Encode()
		q.Set("default_query_exec_mode", "simple_protocol")
		u.RawQuery = q.Encode()
	}
	sqldb, err := sql.Open("pgx", u.String())
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// It connects when first used: only an instance taking webhooks does.
	plannedDB, err := sql.Open("pgx", planned.String())
	if err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	// Ingest sizes it to its lanes (alerting.Options.IngestLanes).
	plannedDB.SetMaxOpenConns(2)
	plannedDB.SetMaxIdleConns(2)
	plannedDB.SetConnMaxIdleTime(5 * time.Minute)
	sqldb.SetMaxOpenConns(20)
	sqldb.SetMaxIdleConns(20)
	sqldb.SetConnMaxIdleTime(5 * time.Minute)
	d := &DB{DB: bun.NewDB(sqldb, pgdialect.New()), Kind: Postgres, Planned: plannedDB}
	if err := d.PingContext(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	return d, nil
}

// SQLiteTime is t the way bun writes it into SQLite, for statements that
// bind their arguments themselves: SQLite compares times as text, so every
// writer must use one format.
func SQLiteTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.999999-07:00")
}
