package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

//go:embed migrations
var migrationFiles embed.FS

// migrationLockID is an arbitrary constant shared by every Klaxon instance,
// so that instances starting together against one PostgreSQL database take
// turns migrating.
const migrationLockID = 727_266_041

// Migrate applies every embedded migration that the database has not seen,
// each in its own transaction. It is safe to run from several instances at
// once.
func (d *DB) Migrate(ctx context.Context) (applied []string, err error) {
	return d.migrate(ctx, "")
}

// migrate applies the migrations up to and including last, or all of them
// when last is empty.
func (d *DB) migrate(ctx context.Context, last string) (applied []string, err error) {
	dir := path.Join("migrations", string(d.Kind))
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("migrate: read embedded migrations: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if last != "" {
		for i, name := range names {
			if strings.TrimSuffix(name, ".sql") > last {
				names = names[:i]
				break
			}
		}
	}

	conn, err := d.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if d.Kind == Postgres {
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", migrationLockID); err != nil {
			return nil, fmt.Errorf("migrate: take lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", migrationLockID)
	}
	if d.Kind == SQLite {
		restore, err := foreignKeysOff(ctx, conn)
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		defer restore()
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version TEXT PRIMARY KEY,
		applied_at TIMESTAMP NOT NULL
	)`); err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	for _, name := range names {
		version := strings.TrimSuffix(name, ".sql")
		var seen int
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", version).Scan(&seen); err != nil {
			return applied, fmt.Errorf("migrate: check %s: %w", version, err)
		}
		if seen > 0 {
			continue
		}
		body, err := migrationFiles.ReadFile(path.Join(dir, name))
		if err != nil {
			return applied, fmt.Errorf("migrate: read %s: %w", name, err)
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return applied, fmt.Errorf("migrate %s: %w", version, err)
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return applied, fmt.Errorf("migrate %s: %w", version, err)
		}
		if d.Kind == SQLite {
			if err := checkForeignKeys(ctx, tx); err != nil {
				tx.Rollback()
				return applied, fmt.Errorf("migrate %s: %w", version, err)
			}
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", version, time.Now().UTC()); err != nil {
			tx.Rollback()
			return applied, fmt.Errorf("migrate %s: record: %w", version, err)
		}
		if err := tx.Commit(); err != nil {
			return applied, fmt.Errorf("migrate %s: commit: %w", version, err)
		}
		applied = append(applied, version)
	}
	return applied, nil
}

// foreignKeysOff turns foreign key enforcement off on conn for the
// migrations, as SQLite's procedure for rebuilding a table asks: with it
// on, dropping the old table would run its ON DELETE actions and empty or
// orphan every table referring to it. The setting cannot change inside a
// transaction, so it is set around them. restore turns it back on; a
// connection that cannot be restored is discarded rather than returned to
// the pool without its checks.
//
// With enforcement off, no ON DELETE action runs during a migration
// either: one that deletes rows deletes their dependents itself, or
// checkForeignKeys fails it.
func foreignKeysOff(ctx context.Context, conn bun.Conn) (restore func(), err error) {
	if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
		return nil, fmt.Errorf("turn foreign keys off: %w", err)
	}
	return func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = ON"); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}, nil
}

// checkForeignKeys fails a migration that left a row referring to one
// that does not exist, before it commits.
func checkForeignKeys(ctx context.Context, tx bun.Tx) error {
	rows, err := tx.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return fmt.Errorf("check foreign keys: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fk int
		if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
			return fmt.Errorf("check foreign keys: %w", err)
		}
		return fmt.Errorf("row %d of %s refers to a missing row of %s", rowid.Int64, table, parent)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check foreign keys: %w", err)
	}
	return nil
}
