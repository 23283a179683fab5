package events

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// A PostgreSQL transaction that records many events at once (an ingest
// batch) numbers them itself instead of going through the outbox.
// Sequence numbers must follow commit order, or a reader could pass a
// number whose transaction commits later; the relay gets that by taking
// one lock. Such a transaction takes the same lock first and holds it
// until it commits (BeginNumbering), moves the outbox rows already
// committed so an alert's earlier changes keep their place, writes its
// events straight into the events table, and signals the other instances
// (SignalSQL). Each event is then written once, not written to the
// outbox, deleted and written again, and there is no relay transaction,
// with its own disk flush, per batch.
//
// The SQL is exported for pipelines that send it with their statements.
var (
	NumberingLockSQL = fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", relayLockID)
	// RelayOutboxSQL moves the oldest outbox rows, at most relayBatch,
	// into the events table, numbering them in the order they were
	// recorded.
	RelayOutboxSQL = fmt.Sprintf(`WITH moved AS (
	DELETE FROM event_outbox WHERE id IN (SELECT id FROM event_outbox ORDER BY id LIMIT %d)
	RETURNING id, kind, type, alert_id, integration_id, inbound_message_id, at)
INSERT INTO events (kind, type, alert_id, integration_id, inbound_message_id, at)
SELECT kind, type, alert_id, integration_id, inbound_message_id, at FROM moved ORDER BY id`, relayBatch)
	SignalSQL = fmt.Sprintf("SELECT pg_notify('%s', '')", notifyChannel)
)

// BeginNumbering readies tx, on PostgreSQL, to write numbered events
// itself: it takes the numbering lock and numbers the outbox rows already
// committed.
func BeginNumbering(ctx context.Context, tx bun.Tx) error {
	if _, err := tx.ExecContext(ctx, NumberingLockSQL); err != nil {
		return fmt.Errorf("take numbering lock: %w", err)
	}
	return RelayOutbox(ctx, tx)
}

// RelayOutbox numbers every outbox row tx can see, its own included; tx
// holds the numbering lock.
func RelayOutbox(ctx context.Context, tx bun.Tx) error {
	for {
		res, err := tx.ExecContext(ctx, RelayOutboxSQL)
		if err != nil {
			return fmt.Errorf("number outbox events: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n < relayBatch {
			return nil
		}
	}
}

// SignalNew tells the other instances, once tx commits, that there are
// new events.
func SignalNew(ctx context.Context, tx bun.Tx) error {
	if _, err := tx.ExecContext(ctx, SignalSQL); err != nil {
		return fmt.Errorf("signal new events: %w", err)
	}
	return nil
}
