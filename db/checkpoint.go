package db

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// On SQLite a commit appends pages to the write-ahead log, and a
// checkpoint copies them back into the database file. By default the
// writer checkpoints itself whenever the log passes 1,000 pages, inside
// the commit that crosses the line: under a stream of webhooks that is
// every dozen or so batches, each then waiting for the copy and its fsync.
// Instead a connection of its own checkpoints in the background, beside
// the writer (a passive checkpoint never blocks it).
//
// The writer's own checkpoint stays as a backstop, at
// writerCheckpointPages, and under a steady stream it is still needed: a
// passive checkpoint copies only what was in the log when it began, and
// by the time it ends the writer has added more, so the log is never
// wholly copied when a write begins and never starts over from its first
// page. Only the writer, which nothing writes beside, catches it up, and
// the commit that does so waits for that. At 10,000 pages that was about
// three times a second under 32 senders and put p99 at 15-18 ms; at 20,000
// it is 9-12 ms. The log file then grows to about 80 MB under such a
// load and keeps that size until Klaxon stops.
const (
	writerCheckpointPages = 20000
	checkpointEvery       = 100 * time.Millisecond
)

type checkpointer struct {
	conn *sql.DB
	stop context.CancelFunc
	done chan struct{}
}

// startCheckpointer checkpoints the database at dsn every interval until
// stopped.
func startCheckpointer(dsn string, every time.Duration) (*checkpointer, error) {
	conn, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint connection: %w", err)
	}
	conn.SetMaxOpenConns(1)
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{conn: conn, stop: cancel, done: make(chan struct{})}
	go c.run(ctx, every)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context, every time.Duration) {
	defer close(c.done)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			// A failed checkpoint leaves the pages in the log, where the
			// next one, or the writer's backstop, finds them.
			checkpoint(ctx, c.conn)
		}
	}
}

// checkpoint copies into the database file what the log holds that no
// reader still needs, and reports how many pages the log holds and how
// many of them are now in the file.
func checkpoint(ctx context.Context, conn *sql.DB) (logged, copied int, err error) {
	var busy int
	err = conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logged, &copied)
	if err != nil {
		return 0, 0, fmt.Errorf("checkpoint: %w", err)
	}
	return logged, copied, nil
}

func (c *checkpointer) close() {
	c.stop()
	<-c.done
	c.conn.Close()
}
