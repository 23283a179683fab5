package mailin_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
)

// TestMailWhileSQLiteIsLocked is TestMailWhileTheDatabaseIsAway on
// SQLite: another process holds the write lock, so the store waits out
// its busy timeout (10 s) and fails. The mail is answered 451, nothing is
// stored, and once the lock is gone the retry is stored once.
func TestMailWhileSQLiteIsLocked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	d, err := db.Open(ctx, db.DefaultURL(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, d, 0)
	integ := f.createIntegration()
	mail := strings.Replace(plainMail, "%s", address(integ), 1)

	// The lock is taken as another process would, from a connection of
	// its own; reads go on beside it (WAL), so the recipient is checked.
	holder, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "klaxon.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	conn, err := holder.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatalf("take the write lock: %v", err)
	}
	wantCode(t, "mail while locked", f.send(address(integ), mail), "451")
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatalf("release the write lock: %v", err)
	}

	if err := f.send(address(integ), mail); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if ms, as := f.inbound(integ), f.alerts(integ); len(ms) != 1 || len(as) != 1 {
		t.Fatalf("%d messages and %d alerts after the retry; want 1 and 1", len(ms), len(as))
	}
}
