package events

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/klaxonhq/klaxon/db"
)

// Kind says what an event is about.
type Kind string

const (
	KindAlert   Kind = "alert"
	KindInbound Kind = "inbound"
)

// Event is one relayed event with the state it refers to, loaded once for
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

type outboxRow struct {
	bun.BaseModel `bun:"table:event_outbox"`

	ID               int64     `bun:"id,pk,autoincrement"`
	Kind             Kind      `bun:"kind"`
	Type             string    `bun:"type"`
	AlertID          *int      `bun:"alert_id"`
	IntegrationID    int       `bun:"integration_id"`
	InboundMessageID *int      `bun:"inbound_message_id"`
	At               time.Time `bun:"at"`
}

// AlertChanged records that an alert changed, inside the transaction that
// changed it.
func AlertChanged(ctx context.Context, idb bun.IDB, typ string, alertID, integrationID int, at time.Time) error {
	row := &outboxRow{Kind: KindAlert, Type: typ, AlertID: &alertID, IntegrationID: integrationID, At: at}
	if err := recordEvent(ctx, idb, row); err != nil {
		return fmt.Errorf("record %s event of alert %d: %w", typ, alertID, err)
	}
	return nil
}

// MessageStored records that an inbound message was stored with its final
// status, inside the transaction that stored it.
func MessageStored(ctx context.Context, idb bun.IDB, msg *db.InboundMessage) error {
	row := &outboxRow{Kind: KindInbound, Type: string(msg.Status), AlertID: msg.AlertID, IntegrationID: msg.IntegrationID, InboundMessageID: &msg.ID, At: msg.ReceivedAt}
	if err := recordEvent(ctx, idb, row); err != nil {
		return fmt.Errorf("record event of inbound message %d: %w", msg.ID, err)
	}
	return nil
}

// recordEvent writes an event in the caller's transaction. SQLite has one
// writer, so transactions commit in the order they number their rows and
// the event can take its sequence number at once; the outbox and its
// relay (a second transaction and disk flush per commit) are needed only
// where transactions commit side by side.
func recordEvent(ctx context.Context, idb bun.IDB, row *outboxRow) error {
	if idb.Dialect().Name() == dialect.SQLite {
		ev := &Event{Kind: row.Kind, Type: row.Type, AlertID: row.AlertID, IntegrationID: row.IntegrationID, InboundMessageID: row.InboundMessageID, At: row.At}
		_, err := idb.NewInsert().Model(ev).Exec(ctx)
		return err
	}
	_, err := idb.NewInsert().Model(row).Exec(ctx)
	return err
}
