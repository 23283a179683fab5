package db

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// The writer leaves checkpoints to the background connection, which
// copies the whole log back into the database file while nobody reads.
func TestCheckpointsRunBesideTheWriter(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "klaxon.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	var pages int
	if err := d.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if pages != writerCheckpointPages {
		t.Fatalf("the writer checkpoints every %d pages, want %d", pages, writerCheckpointPages)
	}

	if _, err := d.ExecContext(ctx, "CREATE TABLE filler (body TEXT)"); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if _, err := d.ExecContext(ctx, "INSERT INTO filler (body) VALUES (randomblob(8000))"); err != nil {
			t.Fatal(err)
		}
	}
	logged, copied, err := checkpoint(ctx, d.checkpoints.conn)
	if err != nil {
		t.Fatal(err)
	}
	if logged < 50 || copied != logged {
		t.Fatalf("checkpoint copied %d of %d logged pages, want all of at least 50", copied, logged)
	}
}

// Close ends the background checkpoints.
func TestCloseStopsCheckpoints(t *testing.T) {
	d, err := Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "klaxon.db"))
	if err != nil {
		t.Fatal(err)
	}
	c := d.checkpoints
	d.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the checkpoint goroutine outlived Close")
	}
}
