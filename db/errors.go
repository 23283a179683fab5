package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var (
	// ErrNotFound reports that the row asked for does not exist.
	ErrNotFound = errors.New("db: not found")
	// ErrConflict reports a unique or foreign-key constraint refusing a write.
	ErrConflict = errors.New("db: conflict")
	// ErrUnavailable reports that the database cannot be reached or
	// cannot take writes just now (PostgreSQL restarting or out of reach,
	// SQLite's file locked, read-only or on a full disk). Nothing was
	// written; the same request may succeed once it is back.
	ErrUnavailable = errors.New("db: database unavailable")
)

// UnavailableRetryAfter is what a caller refused with ErrUnavailable is
// told to wait: about as long as a PostgreSQL restart or failover takes.
const UnavailableRetryAfter = 5 * time.Second

// RateLimitError refuses a request repeated too soon; Wait says when it
// may be tried again.
type RateLimitError struct {
	Wait   time.Duration
	Reason string
}

// RetryAfterSeconds is Wait in whole seconds, rounded up: a client that
// waits what it is told must find the wait over.
func (e *RateLimitError) RetryAfterSeconds() int {
	return int((e.Wait + time.Second - 1) / time.Second)
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%s; try again in %s", e.Reason, e.Wait.Round(time.Second))
}

// Classify turns driver errors that callers must tell apart into the
// package's sentinels, keeping the original in the chain.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if IsConstraint(err) {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	if !errors.Is(err, ErrUnavailable) && isUnavailable(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// isUnavailable reports an error that says the database is away rather
// than that the request was wrong: the driver could not connect, lost its
// connection, or the server or file refused to work at all. A caller
// giving up (its context ending) is not an outage.
func isUnavailable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgUnavailable(pgErr.Code)
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		// The primary code is the low byte; extended codes (say
		// SQLITE_IOERR_FSYNC) refine it.
		switch liteErr.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_READONLY,
			sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN:
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	// pgx marks the errors of a connection that failed under a statement
	// (a read or write that broke off, a connection found closed) with
	// SafeToRetry; statement errors from the server are *PgError, above.
	var connFailed interface{ SafeToRetry() bool }
	return errors.As(err, &connectErr) ||
		errors.As(err, &connFailed) ||
		errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &netErr)
}

// pgUnavailable reports the SQLSTATEs of a server that is shutting
// down, starting, out of connections or disk, or a standby that cannot
// write: conditions of the server, not of the statement.
func pgUnavailable(code string) bool {
	switch code {
	case "57P01", "57P02", "57P03", // admin shutdown, crash shutdown, cannot connect now
		"53100", "53300", // disk full, too many connections
		"25006": // read-only transaction: a standby, say during a failover
		return true
	}
	// Class 08, connection exception; class 58, system error (I/O).
	return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "58")
}

// IsConstraint reports a unique or foreign-key violation on either engine.
func IsConstraint(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" || pgErr.Code == "23503"
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return true
		}
	}
	return false
}

// LoadByID reads the row of T with id, or fails with ErrNotFound; what
// names the row in errors ("load group 3: …").
func LoadByID[T any](ctx context.Context, idb bun.IDB, id int, what string) (*T, error) {
	row := new(T)
	if err := idb.NewSelect().Model(row).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load %s %d: %w", what, id, Classify(err))
	}
	return row, nil
}

// DeleteByID deletes the row of T with id, or fails with ErrNotFound;
// what names the row in errors ("delete group 3: …").
func DeleteByID[T any](ctx context.Context, idb bun.IDB, id int, what string) error {
	res, err := idb.NewDelete().Model((*T)(nil)).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete %s %d: %w", what, id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete %s %d: %w", what, id, ErrNotFound)
	}
	return nil
}
