package events

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// Kind says what an event is about.
type Kind string

const (
	KindAlert   Kind = "alert"
	KindInbound Kind = "inbound"
)

// Event is one numbered event with the state it refers to, loaded once for
// every subscriber.
type Event struct {
	bun.BaseModel `bun:"table:events"`

	Seq     int64  `bun:"seq,pk,autoincrement"`
	Kind    Kind   `bun:"kind"`
	Type    string `bun:"type"`
	AlertID *int   `bun:"alert_id"`
	// IntegrationID is 0 for an alert opened by hand, which has none.
	IntegrationID    int       `bun:"integration_id"`
	InboundMessageID *int      `bun:"inbound_message_id"`
	At               time.Time `bun:"at"`

	// Alert is the alert as it was when the event was loaded (nil when it
	// has since been deleted); Inbound likewise for inbound events.
	Alert   *db.Alert          `bun:"-"`
	Inbound *db.InboundMessage `bun:"-"`
	// Err, set only on a stream's last value, says why the stream ended.
	Err error `bun:"-"`
}

// outboxRow is an event an earlier version recorded unnumbered; the bus
// drains them (see drainOutbox).
type outboxRow struct {
	bun.BaseModel `bun:"table:event_outbox"`

	ID int64 `bun:"id,pk,autoincrement"`
}

// AlertChanged records that an alert changed, inside the transaction that
// changed it. The event takes its number as it is written: SQLite's one
// writer commits in the order it numbers, and on PostgreSQL the bus waits
// for the writers under way before it reads past a number (see settled).
func AlertChanged(ctx context.Context, idb bun.IDB, typ string, alertID, integrationID int, at time.Time) error {
	ev := &Event{Kind: KindAlert, Type: typ, AlertID: &alertID, IntegrationID: integrationID, At: at}
	if _, err := idb.NewInsert().Model(ev).Exec(ctx); err != nil {
		return fmt.Errorf("record %s event of alert %d: %w", typ, alertID, err)
	}
	return nil
}

// MessageStored records that an inbound message was stored with its final
// status, inside the transaction that stored it.
func MessageStored(ctx context.Context, idb bun.IDB, msg *db.InboundMessage) error {
	ev := &Event{Kind: KindInbound, Type: string(msg.Status), AlertID: msg.AlertID, IntegrationID: msg.IntegrationID, InboundMessageID: &msg.ID, At: msg.ReceivedAt}
	if _, err := idb.NewInsert().Model(ev).Exec(ctx); err != nil {
		return fmt.Errorf("record event of inbound message %d: %w", msg.ID, err)
	}
	return nil
}
