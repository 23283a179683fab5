package db_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// The planned pool reaches the same database and schema as the main one,
// prepares its statements, and keeps a mode the URL sets. SQLite has none.
func TestPlannedPool(t *testing.T) {
	if dbtest.SQLite(t).Planned != nil {
		t.Fatal("SQLite has a planned pool")
	}
	d := dbtest.Postgres(t)
	ctx := context.Background()
	if mode := plannedMode(t, d); mode != pgx.QueryExecModeCacheStatement {
		t.Fatalf("planned pool mode %v, want cache_statement", mode)
	}
	var alerts int
	if err := d.Planned.QueryRowContext(ctx, "SELECT count(*) FROM alerts").Scan(&alerts); err != nil {
		t.Fatalf("planned pool does not see the schema: %v", err)
	}

	sep := "?"
	if strings.Contains(d.URL, "?") {
		sep = "&"
	}
	explicit, err := db.Open(ctx, d.URL+sep+"default_query_exec_mode=exec")
	if err != nil {
		t.Fatal(err)
	}
	defer explicit.Close()
	if mode := plannedMode(t, explicit); mode != pgx.QueryExecModeExec {
		t.Fatalf("planned pool mode %v, want the URL's exec", mode)
	}
}

func plannedMode(t *testing.T, d *db.DB) pgx.QueryExecMode {
	t.Helper()
	conn, err := d.Planned.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mode pgx.QueryExecMode
	if err := conn.Raw(func(dc any) error {
		mode = dc.(*stdlib.Conn).Conn().Config().DefaultQueryExecMode
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return mode
}
