package events

import (
	"context"
	"fmt"
	"time"

	"github.com/klaxonhq/klaxon/db"
)

// Numbering on PostgreSQL: any transaction writes its events straight
// into the events table, and each takes its number from one sequence as
// it is written (migration 0031). Numbers are drawn in one order and
// committed in another, so a reader that passed the highest number it can
// see might pass a lower one whose transaction has not committed yet, and
// a subscriber resuming after it would never get that event. Before,
// every transaction that wrote events held one lock until it committed,
// which made commit order and number order the same, and made every
// commit of every instance wait for the one before. Now nothing waits at
// commit; the reader waits instead, and only for the writers that were
// under way when it looked:
//
//  1. it reads the last number drawn, N;
//  2. it lists the transactions holding the schema's event-writers lock,
//     which every writer takes, in shared mode, before it draws a number,
//     and keeps until it ends;
//  3. it waits until none of those still holds it.
//
// A transaction that drew a number up to N drew it before step 1, so at
// step 2 it had either ended (its events are visible, or it rolled back
// and they never will be) or was listed, and step 3 waits for it. Then N
// is settled: every event up to it that will ever exist is visible.
// PostgreSQL makes a commit visible before it releases the committing
// transaction's locks, so a writer that no longer holds the lock is seen.
// Writers that start after step 2 draw numbers above N and are not waited
// for. SQLite has one writer, so the highest number visible is settled.

// writersLockClass is the first key of the event-writers lock (see
// klaxon_next_event_seq); the second is the hash of the schema's name.
const writersLockClass = 727_266_043

const (
	lastDrawnSQL = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_seq_seq"
	// writersSQL lists the transactions holding the event-writers lock;
	// with a list as its argument, only those of them still holding it.
	writersSQL = `SELECT coalesce(string_agg(virtualtransaction, ','), '') FROM pg_locks
	WHERE locktype = 'advisory' AND classid = %d AND objid = hashtext(current_schema())::oid AND objsubid = 2 AND granted`
)

// settleWait bounds one wait for the writers under way; a writer holds the
// lock for one transaction, an ingest batch at most.
const (
	settleFirstPause = 500 * time.Microsecond
	settleMaxPause   = 20 * time.Millisecond
)

// settled returns a sequence number at or below which every event that
// will ever be committed is committed and visible now (see above).
func (b *Bus) settled(ctx context.Context) (int64, error) {
	if b.db.Kind != db.Postgres {
		var last int64
		if err := b.db.NewSelect().Model((*Event)(nil)).ColumnExpr("coalesce(max(seq), 0)").Scan(ctx, &last); err != nil {
			return 0, fmt.Errorf("read last sequence: %w", err)
		}
		return last, nil
	}
	var drawn int64
	if err := b.db.QueryRowContext(ctx, lastDrawnSQL).Scan(&drawn); err != nil {
		return 0, fmt.Errorf("read last event number drawn: %w", err)
	}
	query := fmt.Sprintf(writersSQL, writersLockClass)
	var writers string
	if err := b.db.QueryRowContext(ctx, query).Scan(&writers); err != nil {
		return 0, fmt.Errorf("list event writers: %w", err)
	}
	pause := settleFirstPause
	for writers != "" {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, settleMaxPause)
		still := ""
		if err := b.db.QueryRowContext(ctx, query+" AND virtualtransaction = ANY(string_to_array(?, ','))", writers).Scan(&still); err != nil {
			return 0, fmt.Errorf("wait for event writers: %w", err)
		}
		writers = still
	}
	return drawn, nil
}
