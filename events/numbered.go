package events

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/klaxonhq/klaxon/db"
)

// Numbered is an event that a transaction writes straight into the
// numbered events table with WriteNumbered, skipping the outbox.
type Numbered struct {
	Kind             Kind
	Type             string
	AlertID          *int
	IntegrationID    int
	InboundMessageID *int
	At               time.Time
}

// relaySQL moves the oldest outbox rows into the events table, numbering
// them in the order they were recorded. The caller holds the relay lock.
const relaySQL = `WITH moved AS (
	DELETE FROM event_outbox WHERE id IN (SELECT id FROM event_outbox ORDER BY id LIMIT ?)
	RETURNING id, kind, type, alert_id, integration_id, inbound_message_id, at)
INSERT INTO events (kind, type, alert_id, integration_id, inbound_message_id, at)
SELECT kind, type, alert_id, integration_id, inbound_message_id, at FROM moved ORDER BY id`

// A batch sent as one pipeline with a single Sync, run by PostgreSQL as one
// transaction, numbers the events it writes itself by starting with
// NumberingLockSQL and RelayOutboxSQL and ending with SignalSQL: the
// same lock and order as WriteNumbered, without a round trip of their
// own. RelayOutboxSQL moves at most relayBatch rows; a longer outbox is
// left to the relay.
var (
	NumberingLockSQL = fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", relayLockID)
	RelayOutboxSQL   = strings.Replace(relaySQL, "LIMIT ?", fmt.Sprintf("LIMIT %d", relayBatch), 1)
	SignalSQL        = fmt.Sprintf("SELECT pg_notify('%s', '')", notifyChannel)
)

// numberedSQL writes a batch of events in the order given. Zero IDs stand
// for NULL: no row has ID zero, and plain arrays pass through the driver
// without a type of their own for NULLs.
const numberedSQL = `INSERT INTO events (kind, type, alert_id, integration_id, inbound_message_id, at)
SELECT k, t, NULLIF(a, 0), i, NULLIF(m, 0), at
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::timestamptz[]) WITH ORDINALITY AS e(k, t, a, i, m, at, n)
ORDER BY n`

// WriteNumbered writes evs, in order, into the numbered events table
// inside tx, for a transaction that records many events at once (the
// ingest batches).
//
// On PostgreSQL, sequence numbers must follow commit order or a reader
// could pass a number whose transaction commits later. The outbox gets
// that by numbering in one relay at a time; here the transaction takes the
// same lock and numbers its events itself, just before it commits. It
// first moves the outbox rows already committed, so that an alert's
// earlier changes keep their place before its new ones. Against the
// outbox this saves writing and deleting every event once more, and a
// second transaction, with its own disk flush, per batch.
func WriteNumbered(ctx context.Context, tx bun.Tx, evs []Numbered) error {
	if len(evs) == 0 {
		return nil
	}
	if tx.Dialect().Name() == dialect.SQLite {
		// One writer: the sequence follows commit order already.
		for _, e := range evs {
			ev := &Event{Kind: e.Kind, Type: e.Type, AlertID: e.AlertID, IntegrationID: e.IntegrationID, InboundMessageID: e.InboundMessageID, At: e.At}
			if _, err := tx.NewInsert().Model(ev).Exec(ctx); err != nil {
				return fmt.Errorf("record %s event: %w", e.Type, err)
			}
		}
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", relayLockID); err != nil {
		return fmt.Errorf("take relay lock: %w", err)
	}
	for {
		res, err := tx.ExecContext(ctx, relaySQL, relayBatch)
		if err != nil {
			return fmt.Errorf("number outbox events: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n < relayBatch {
			break
		}
	}
	kinds, types := make([]string, len(evs)), make([]string, len(evs))
	alerts, integrations, messages := make([]int64, len(evs)), make([]int64, len(evs)), make([]int64, len(evs))
	at := make([]time.Time, len(evs))
	for i, e := range evs {
		kinds[i], types[i], integrations[i], at[i] = string(e.Kind), e.Type, int64(e.IntegrationID), e.At
		if e.AlertID != nil {
			alerts[i] = int64(*e.AlertID)
		}
		if e.InboundMessageID != nil {
			messages[i] = int64(*e.InboundMessageID)
		}
	}
	// The driver's own parameters, not bun's: the statement's text stays
	// the same, so its plan is made once per connection.
	if _, err := tx.Tx.ExecContext(ctx, numberedSQL, db.PlanOnce, kinds, types, alerts, integrations, messages, at); err != nil {
		return fmt.Errorf("record %d events: %w", len(evs), err)
	}
	if _, err := tx.ExecContext(ctx, "NOTIFY "+notifyChannel); err != nil {
		return fmt.Errorf("signal new events: %w", err)
	}
	return nil
}
