package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/klaxonhq/klaxon/db"
)

// bulkWriter writes many rows to one table at a time, as fast as the
// database takes them.
type bulkWriter interface {
	// write calls rows, which calls emit once per row with the values of
	// cols, and returns how many rows were written.
	write(ctx context.Context, table string, cols []string, rows func(emit func(...any) error) error) (int, error)
	// finish moves the id sequences past the ids written.
	finish(ctx context.Context) error
}

func newBulkWriter(ctx context.Context, d *db.DB) (bulkWriter, error) {
	if d.Kind == db.Postgres {
		return &copyWriter{d: d}, nil
	}
	return &batchWriter{d: d}, nil
}

// copyWriter sends each table in one COPY FROM STDIN, binary format.
type copyWriter struct{ d *db.DB }

func (w *copyWriter) write(ctx context.Context, table string, cols []string, rows func(emit func(...any) error) error) (int, error) {
	conn, err := w.d.DB.DB.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	var n int64
	err = conn.Raw(func(driverConn any) error {
		pg := driverConn.(*stdlib.Conn).Conn()
		// The rows are produced on their own goroutine and handed over
		// one at a time, so a table of a million rows is never in memory.
		next := make(chan []any, 1024)
		produced := make(chan error, 1)
		stop := make(chan struct{})
		go func() {
			defer close(next)
			produced <- rows(func(v ...any) error {
				select {
				case next <- v:
					return nil
				case <-stop:
					return context.Canceled
				}
			})
		}()
		var copyErr error
		n, copyErr = pg.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() ([]any, error) {
			v, ok := <-next
			if !ok {
				return nil, nil
			}
			return v, nil
		}))
		close(stop)
		for range next {
		}
		if err := <-produced; err != nil && copyErr == nil {
			return err
		}
		return copyErr
	})
	return int(n), err
}

func (w *copyWriter) finish(ctx context.Context) error {
	for _, t := range []struct{ table, col string }{{"alerts", "id"}, {"inbound_messages", "id"}, {"alert_log", "id"}, {"notifications", "id"}, {"events", "seq"}, {"audit_log", "id"}} {
		q := fmt.Sprintf("SELECT setval(pg_get_serial_sequence('%s', '%s'), (SELECT COALESCE(max(%s), 0) + 1 FROM %s), false)", t.table, t.col, t.col, t.table)
		if _, err := w.d.DB.DB.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("fill: move the %s sequence: %w", t.table, err)
		}
	}
	return nil
}

// batchWriter inserts through one prepared statement, committing every
// batchRows rows: SQLite writes fastest in large transactions, and a
// commit now and then keeps the write-ahead log from growing without end.
type batchWriter struct{ d *db.DB }

const batchRows = 20_000

func (w *batchWriter) write(ctx context.Context, table string, cols []string, rows func(emit func(...any) error) error) (int, error) {
	insert := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	var tx *sql.Tx
	var stmt *sql.Stmt
	n, inTx := 0, 0
	commit := func() error {
		if tx == nil {
			return nil
		}
		stmt.Close()
		err := tx.Commit()
		tx, stmt, inTx = nil, nil, 0
		return err
	}
	defer func() {
		if tx != nil {
			stmt.Close()
			tx.Rollback()
		}
	}()
	err := rows(func(v ...any) error {
		if tx == nil {
			var err error
			if tx, err = w.d.DB.DB.BeginTx(ctx, nil); err != nil {
				return err
			}
			if stmt, err = tx.PrepareContext(ctx, insert); err != nil {
				return err
			}
		}
		for i, x := range v {
			if t, ok := x.(time.Time); ok {
				v[i] = db.SQLiteTime(t)
			}
		}
		if _, err := stmt.ExecContext(ctx, v...); err != nil {
			return err
		}
		n++
		inTx++
		if inTx == batchRows {
			return commit()
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	return n, commit()
}

// finish has nothing to do: AUTOINCREMENT follows the largest id written.
func (w *batchWriter) finish(context.Context) error { return nil }
