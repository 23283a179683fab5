package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
)

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
	return err
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
