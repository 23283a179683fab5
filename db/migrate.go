package db

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"
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
