package db_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// TestIDsAreNeverReused holds, for every table whose integer primary key
// the database hands out, on both databases, that deleting the newest row
// and inserting another never gives the new row the old id: an id names a
// user in a session token, an alert in an action link, an entry in a
// cursor, and must never come to name something else. The tables are read
// from the schema, so a table added without AUTOINCREMENT fails here.
func TestIDsAreNeverReused(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := readSchema(t, d)
		ids := s.generatedIDTables()
		if !slices.Contains(ids, "users") || len(ids) < 15 {
			t.Fatalf("tables with generated ids: %v; the schema was not read", ids)
		}
		f := &filler{t: t, d: d, s: s}
		for _, name := range ids {
			idCol := s.tables[name].id
			newest := f.insert(ctx, name)
			if _, err := d.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s = ?", name, idCol), newest); err != nil {
				t.Fatalf("delete from %s: %v", name, err)
			}
			if next := f.insert(ctx, name); next <= newest {
				t.Errorf("%s: the row inserted after deleting id %d got id %d; ids must never be reused", name, newest, next)
			}
		}
	})
}

// TestUpgradeKeepsRowsAndStopsReusingIDs fills every table of a database
// as the version before lasting ids left it, upgrades it, and checks that
// every row is kept with its id, that (on SQLite) every column, default,
// index and foreign key is kept, and that no id in use at the upgrade is
// handed out again.
func TestUpgradeKeepsRowsAndStopsReusingIDs(t *testing.T) {
	dbtest.EachUnmigrated(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := d.MigrateUntil(ctx, "0010_audit"); err != nil {
			t.Fatalf("migrate to 0010: %v", err)
		}
		before := readSchema(t, d)
		f := &filler{t: t, d: d, s: before}
		for _, name := range before.names {
			for range 3 {
				f.insert(ctx, name)
			}
		}
		rows := map[string][]string{}
		maxIDs := map[string]int64{}
		for _, name := range before.names {
			rows[name] = tableRows(t, d, name, before.tables[name].columnNames())
			if id := before.tables[name].id; id != "" {
				maxIDs[name] = maxID(t, d, name, id)
			}
		}
		shape := schemaShape(t, d, before)

		// Only this upgrade: later migrations change the schema on purpose.
		applied, err := d.MigrateUntil(ctx, "0011_lasting_ids")
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		if len(applied) == 0 {
			t.Fatal("upgrade applied nothing")
		}
		if d.Kind == db.SQLite {
			var on int
			if err := d.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&on); err != nil || on != 1 {
				t.Errorf("foreign keys after the upgrade: %d (%v), want enforced again", on, err)
			}
		}
		after := readSchema(t, d)
		for _, name := range before.names {
			got := tableRows(t, d, name, before.tables[name].columnNames())
			if !slices.Equal(got, rows[name]) {
				t.Errorf("%s after the upgrade:\n got %v\nwant %v", name, got, rows[name])
			}
		}
		if got := schemaShape(t, d, before); !slices.Equal(got, shape) {
			t.Errorf("schema after the upgrade differs:\n%s", diffLines(shape, got))
		}
		nonces := tableRows(t, d, "users", []string{"session_nonce"})
		if users := len(rows["users"]); len(nonces) != users || slices.Contains(nonces, "[]") || len(slices.Compact(slices.Clone(nonces))) != users {
			t.Errorf("session nonces of the %d users kept: %v, want a different one each", users, nonces)
		}
		f = &filler{t: t, d: d, s: after, n: f.n}
		for _, name := range after.generatedIDTables() {
			next := f.insert(ctx, name)
			if next <= maxIDs[name] {
				t.Errorf("%s: first id after the upgrade is %d, but %d was in use", name, next, maxIDs[name])
			}
		}
	})
}

type column struct {
	name, typ           string
	notNull, hasDefault bool
}

type table struct {
	// id is the primary key the database hands out, if any: a single
	// integer column that does not refer to another table.
	id      string
	columns []column
	// parents maps a column to the table it refers to.
	parents map[string]string
}

func (tb *table) columnNames() []string {
	var names []string
	for _, c := range tb.columns {
		names = append(names, c.name)
	}
	return names
}

type schema struct {
	names  []string
	tables map[string]*table
}

func (s *schema) generatedIDTables() []string {
	var names []string
	for _, n := range s.names {
		if s.tables[n].id != "" {
			names = append(names, n)
		}
	}
	return names
}

func readSchema(t *testing.T, d *db.DB) *schema {
	t.Helper()
	ctx := context.Background()
	s := &schema{tables: map[string]*table{}}
	listTables := "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name"
	listColumns := `SELECT name, upper(type), "notnull" = 1, dflt_value IS NOT NULL, pk > 0 FROM pragma_table_info(?) ORDER BY cid`
	listParents := `SELECT "from", "table" FROM pragma_foreign_key_list(?)`
	if d.Kind == db.Postgres {
		listTables = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' ORDER BY table_name"
		listColumns = `SELECT c.column_name, upper(c.data_type), c.is_nullable = 'NO', c.column_default IS NOT NULL,
			EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
				WHERE i.indrelid = to_regclass(c.table_name) AND i.indisprimary AND a.attname = c.column_name)
			FROM information_schema.columns c WHERE c.table_schema = current_schema() AND c.table_name = ? ORDER BY c.ordinal_position`
		listParents = `SELECT a.attname, c.confrelid::regclass::text FROM pg_constraint c
			JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
			WHERE c.conrelid = to_regclass(?) AND c.contype = 'f'`
	}
	if err := d.NewRaw(listTables).Scan(ctx, &s.names); err != nil {
		t.Fatalf("list tables: %v", err)
	}
	for _, name := range s.names {
		tb := &table{parents: map[string]string{}}
		rows, err := d.QueryContext(ctx, listParents, name)
		if err != nil {
			t.Fatalf("foreign keys of %s: %v", name, err)
		}
		for rows.Next() {
			var col, parent string
			if err := rows.Scan(&col, &parent); err != nil {
				t.Fatalf("foreign keys of %s: %v", name, err)
			}
			tb.parents[col] = parent
		}
		rows.Close()
		rows, err = d.QueryContext(ctx, listColumns, name)
		if err != nil {
			t.Fatalf("columns of %s: %v", name, err)
		}
		var keys []column
		for rows.Next() {
			var c column
			var pk bool
			if err := rows.Scan(&c.name, &c.typ, &c.notNull, &c.hasDefault, &pk); err != nil {
				t.Fatalf("columns of %s: %v", name, err)
			}
			tb.columns = append(tb.columns, c)
			if pk {
				keys = append(keys, c)
			}
		}
		rows.Close()
		if len(keys) == 1 && strings.Contains(keys[0].typ, "INT") && tb.parents[keys[0].name] == "" {
			tb.id = keys[0].name
		}
		s.tables[name] = tb
	}
	return s
}

// filler inserts rows into any table, with a fresh parent row for every
// foreign key that must be set and distinct values in every other column
// that must be, so unique constraints hold.
type filler struct {
	t *testing.T
	d *db.DB
	s *schema
	n int
}

var fillTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// insert adds a row to name and returns its generated id (0 for a table
// without one).
func (f *filler) insert(ctx context.Context, name string) int64 {
	f.t.Helper()
	tb := f.s.tables[name]
	var cols []string
	var args []any
	for _, c := range tb.columns {
		if c.name == tb.id || !c.notNull || c.hasDefault {
			continue
		}
		f.n++
		cols = append(cols, c.name)
		switch {
		case tb.parents[c.name] != "":
			args = append(args, f.insert(ctx, tb.parents[c.name]))
		case strings.Contains(c.typ, "INT"):
			args = append(args, f.n)
		case strings.Contains(c.typ, "BOOL"):
			args = append(args, false)
		case strings.Contains(c.typ, "TIME"):
			args = append(args, fillTime.Add(time.Duration(f.n)*time.Second))
		case strings.Contains(c.typ, "BLOB"), strings.Contains(c.typ, "BYTEA"):
			args = append(args, []byte(fmt.Sprintf("b%d", f.n)))
		case strings.Contains(c.typ, "JSON"):
			args = append(args, "{}")
		default:
			args = append(args, fmt.Sprintf("v%d", f.n))
		}
	}
	query := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", name, strings.Join(cols, ", "), strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", "))
	if tb.id == "" {
		if _, err := f.d.ExecContext(ctx, query, args...); err != nil {
			f.t.Fatalf("insert into %s: %v", name, err)
		}
		return 0
	}
	var id int64
	if err := f.d.QueryRowContext(ctx, query+" RETURNING "+tb.id, args...).Scan(&id); err != nil {
		f.t.Fatalf("insert into %s: %v", name, err)
	}
	return id
}

// tableRows reads every row of name as text, sorted, so two reads compare
// whatever order the rows come in.
func tableRows(t *testing.T, d *db.DB, name string, cols []string) []string {
	t.Helper()
	rows, err := d.QueryContext(context.Background(), fmt.Sprintf("SELECT %s FROM %s", strings.Join(cols, ", "), name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
		for i, v := range vals {
			switch v := v.(type) {
			case []byte:
				vals[i] = string(v)
			case time.Time:
				vals[i] = v.UTC().Format(time.RFC3339Nano)
			}
		}
		out = append(out, fmt.Sprint(vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	slices.Sort(out)
	return out
}

func maxID(t *testing.T, d *db.DB, name, id string) int64 {
	t.Helper()
	var n int64
	if err := d.QueryRowContext(context.Background(), fmt.Sprintf("SELECT coalesce(max(%s), 0) FROM %s", id, name)).Scan(&n); err != nil {
		t.Fatalf("highest id of %s: %v", name, err)
	}
	return n
}

// schemaShape describes, on SQLite, each table of s as SQLite reports it:
// its columns with their types, nullability, defaults and keys, its
// indexes with their columns, uniqueness and conditions, its foreign keys
// with their actions, and its triggers and views. AUTOINCREMENT is the one difference lasting ids
// make, and shows in none of these. PostgreSQL's tables are not rebuilt.
func schemaShape(t *testing.T, d *db.DB, s *schema) []string {
	t.Helper()
	if d.Kind != db.SQLite {
		return nil
	}
	var out []string
	ctx := context.Background()
	for _, name := range s.names {
		queries := []string{
			`SELECT 'column', name, type, "notnull", coalesce(dflt_value, ''), pk FROM pragma_table_info(?1) WHERE name <> 'session_nonce' ORDER BY cid`,
			`SELECT 'index', il.name, il."unique", il.origin, il.partial, group_concat(ii.name, ','), coalesce(m.sql, '')
				FROM pragma_index_list(?1) il JOIN pragma_index_info(il.name) ii LEFT JOIN sqlite_master m ON m.name = il.name
				GROUP BY il.name ORDER BY il.name`,
			`SELECT 'foreign key', "from", "table", "to", on_update, on_delete FROM pragma_foreign_key_list(?1) ORDER BY "from"`,
			`SELECT type, name, sql FROM sqlite_master WHERE type IN ('trigger', 'view') AND tbl_name = ?1 ORDER BY name`,
		}
		for _, q := range queries {
			rows, err := d.DB.DB.QueryContext(ctx, q, name)
			if err != nil {
				t.Fatalf("shape of %s: %v", name, err)
			}
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatalf("shape of %s: %v", name, err)
				}
				out = append(out, name+" "+fmt.Sprint(vals))
			}
			rows.Close()
		}
	}
	return out
}

func diffLines(want, got []string) string {
	var b strings.Builder
	for _, w := range want {
		if !slices.Contains(got, w) {
			fmt.Fprintf(&b, "- %s\n", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			fmt.Fprintf(&b, "+ %s\n", g)
		}
	}
	return b.String()
}
