package events

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

const (
	// relayLockID serializes draining the outbox (see drainOutbox) across
	// the instances sharing one PostgreSQL database.
	relayLockID = 727_266_042
	// notifyChannel carries "new events" from the instance that committed
	// them to all.
	notifyChannel = "klaxon_events"
	relayBatch    = 1000
	fetchBatch    = 500
	// windowSize is how many recent events every instance keeps for its
	// live subscribers; readers further behind catch up from the database.
	windowSize = 4096
	// pollInterval is the safety net behind the signals: events whose
	// signal was lost (an instance that died between committing and
	// signalling, a listener reconnecting) are read by the next poll.
	pollInterval = time.Second
)

// signalGap is the least time between two signals of one instance: under
// load it commits hundreds of batches a second, and one wake-up in each
// gap tells the others as much.
const signalGap = 5 * time.Millisecond

// Bus reads and fans out events for one instance.
type Bus struct {
	db   *db.DB
	log  *slog.Logger
	wake chan struct{}
	// id names this instance in its signals, so that it ignores its own.
	id string
	// toSignal asks the signaller to tell the other instances that this
	// one committed events.
	toSignal chan struct{}

	ready chan struct{}

	mu sync.RWMutex
	// window is a ring of the most recent events; positions start..end-1
	// (counted from the bus's start) are in it.
	window     []*Event
	start, end int64
	// floor is the highest sequence number not in the window: events up
	// to it must be read from the database.
	floor int64
	// lastSeq is the highest sequence number in the window.
	lastSeq int64
	// changed is closed, and replaced, whenever the window grows or the
	// bus stops: one broadcast wakes every waiting subscriber.
	changed chan struct{}
	stopped bool
	maxLag  int64
	// active counts open subscriptions: with none, new events are not
	// loaded at all, nor is the settled number looked for, since anyone
	// subscribing later with a cursor reads them from the database. stale
	// says the window stopped following the events for that reason; the
	// next Subscribe brings it to the settled number.
	active atomic.Int64
	stale  bool
	// parked are the caught-up subscriptions waiting to be woken (see
	// Subscription.Park).
	parked map[*Subscription]struct{}
}

func NewBus(d *db.DB, log *slog.Logger) *Bus {
	return newBus(d, log, windowSize)
}

func newBus(d *db.DB, log *slog.Logger, size int) *Bus {
	return &Bus{db: d, log: log, wake: make(chan struct{}, 1), id: rand.Text(), toSignal: make(chan struct{}, 1),
		ready: make(chan struct{}), window: make([]*Event, size), changed: make(chan struct{}), maxLag: maxLag}
}

// Kick asks the bus to deliver at once, and to tell the other instances;
// callers kick after a commit that recorded events. It never blocks.
func (b *Bus) Kick() {
	if b == nil {
		return
	}
	b.askToSignal()
	b.wakeUp()
}

func (b *Bus) askToSignal() {
	select {
	case b.toSignal <- struct{}{}:
	default:
	}
}

func (b *Bus) wakeUp() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Run reads and delivers until ctx ends. Subscribers start receiving
// once it has begun.
func (b *Bus) Run(ctx context.Context) error {
	last, err := b.settled(ctx)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	b.mu.Lock()
	b.lastSeq, b.floor = last, last
	b.mu.Unlock()
	close(b.ready)

	if b.db.Kind == db.Postgres {
		go b.listen(ctx)
		go b.signaller(ctx)
	}
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	away, drain := false, true
	for {
		var drainErr error
		if drain {
			drainErr = b.drainOutbox(ctx)
		}
		deliverErr := b.deliverNew(ctx)
		if ctx.Err() == nil {
			away = b.report(ctx, away, drainErr, deliverErr)
		}
		select {
		case <-ctx.Done():
			b.stop()
			return nil
		case <-b.wake:
			drain = false
		case <-ticker.C:
			drain = true
		}
	}
}

// signaller tells the other instances, when asked, that this one
// committed events: at most once per signalGap however many commits ask.
// It is a statement of its own rather than part of each committing
// transaction, because PostgreSQL makes the commits of transactions that
// notify wait for each other. A lost signal costs the others a poll's
// delay, no more, so a failure is only logged.
func (b *Bus) signaller(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.toSignal:
		}
		if _, err := b.db.ExecContext(ctx, "SELECT pg_notify(?, ?)", notifyChannel, b.id); err != nil && ctx.Err() == nil &&
			!errors.Is(db.Classify(err), db.ErrUnavailable) {
			b.log.WarnContext(ctx, "signal new events", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(signalGap):
		}
	}
}

// report logs a pass's failures to drain and to deliver, and returns
// whether the database was unavailable. While it is, every pass fails the
// same way, on every poll and every kick: that is said once when it
// begins and once when it ends. Subscribers meanwhile just wait, and get
// what was committed before and after once it is back.
func (b *Bus) report(ctx context.Context, wasAway bool, numberErr, deliverErr error) (away bool) {
	for _, failed := range []struct {
		what string
		err  error
	}{{"number old events", numberErr}, {"deliver events", deliverErr}} {
		switch {
		case failed.err == nil:
		case errors.Is(db.Classify(failed.err), db.ErrUnavailable):
			away = true
		default:
			b.log.ErrorContext(ctx, failed.what, "err", failed.err)
		}
	}
	switch {
	case away && !wasAway:
		b.log.WarnContext(ctx, "events paused: the database is unavailable; subscribers resume when it is back", "err", errors.Join(numberErr, deliverErr))
	case !away && wasAway:
		b.log.InfoContext(ctx, "events resumed: the database is back")
	}
	return away
}

// drainOutbox numbers the events an earlier version left in the outbox,
// in the order they were recorded. Transactions now write their events
// numbered (see settled); only an instance of that version still running
// beside this one during an upgrade writes the outbox, and the poll
// drains it.
func (b *Bus) drainOutbox(ctx context.Context) error {
	for {
		pending, err := b.db.NewSelect().Model((*outboxRow)(nil)).Limit(1).Exists(ctx)
		if err != nil || !pending {
			return err
		}
		moved := 0
		err = b.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			// The rows move inside the database; reading them into Go and
			// writing them back cost a round trip per statement and per
			// row for nothing.
			var res sql.Result
			var err error
			if b.db.Kind == db.Postgres {
				if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", relayLockID); err != nil {
					return fmt.Errorf("take drain lock: %w", err)
				}
				res, err = tx.ExecContext(ctx, drainOutboxSQL)
			} else {
				// One writer: both statements see the same first rows.
				res, err = tx.ExecContext(ctx, `INSERT INTO events (kind, type, alert_id, integration_id, inbound_message_id, at)
				SELECT kind, type, alert_id, integration_id, inbound_message_id, at FROM event_outbox ORDER BY id LIMIT ?`, relayBatch)
				if err == nil {
					_, err = tx.ExecContext(ctx, `DELETE FROM event_outbox WHERE id IN (SELECT id FROM event_outbox ORDER BY id LIMIT ?)`, relayBatch)
				}
			}
			if err != nil {
				return fmt.Errorf("number events: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("number events: %w", err)
			}
			moved = int(n)
			return nil
		})
		if moved > 0 {
			b.askToSignal()
		}
		if err != nil || moved < relayBatch {
			return err
		}
	}
}

// drainOutboxSQL moves the oldest outbox rows, at most relayBatch, into
// the events table, numbered in the order they were recorded.
var drainOutboxSQL = fmt.Sprintf(`WITH moved AS (
	DELETE FROM event_outbox WHERE id IN (SELECT id FROM event_outbox ORDER BY id LIMIT %d)
	RETURNING id, kind, type, alert_id, integration_id, inbound_message_id, at)
INSERT INTO events (kind, type, alert_id, integration_id, inbound_message_id, at)
SELECT kind, type, alert_id, integration_id, inbound_message_id, at FROM moved ORDER BY id`, relayBatch)

// deliverNew moves every event after the last one delivered into the
// window and wakes the subscribers.
func (b *Bus) deliverNew(ctx context.Context) error {
	if b.active.Load() == 0 {
		b.mu.Lock()
		// Subscribe counts itself under the lock, so no subscription can
		// start between this check and the window going stale.
		idle := b.active.Load() == 0
		if idle {
			b.stale = true
			b.start = b.end
		}
		b.mu.Unlock()
		if idle {
			return nil
		}
	}
	settled, err := b.settled(ctx)
	if err != nil {
		return err
	}
	for {
		b.mu.RLock()
		last := b.lastSeq
		b.mu.RUnlock()
		evs, err := b.load(ctx, last, settled, fetchBatch)
		if err != nil || len(evs) == 0 {
			return err
		}
		b.mu.Lock()
		size := int64(len(b.window))
		for _, ev := range evs {
			if b.end-b.start == size {
				b.floor = b.window[b.start%size].Seq
				b.start++
			}
			b.window[b.end%size] = ev
			b.end++
		}
		b.lastSeq = evs[len(evs)-1].Seq
		close(b.changed)
		b.changed = make(chan struct{})
		woken := b.unpark(false)
		b.mu.Unlock()
		for _, wake := range woken {
			wake()
		}
		if len(evs) < fetchBatch {
			return nil
		}
	}
}

// load reads the events after after and up to upTo, a settled number
// (see settled), with the alerts and messages they refer to.
func (b *Bus) load(ctx context.Context, after, upTo int64, limit int) ([]*Event, error) {
	var evs []*Event
	q := b.db.NewSelect().Model(&evs).Where("seq > ?", after).Where("seq <= ?", upTo).Order("seq").Limit(int64(limit))
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("read events after %d: %w", after, err)
	}
	var alertIDs, messageIDs []int
	for _, ev := range evs {
		if ev.AlertID != nil {
			alertIDs = append(alertIDs, *ev.AlertID)
		}
		if ev.InboundMessageID != nil {
			messageIDs = append(messageIDs, *ev.InboundMessageID)
		}
	}
	alerts := map[int]*db.Alert{}
	if len(alertIDs) > 0 {
		var rows []*db.Alert
		if err := b.db.NewSelect().Model(&rows).Where("id IN (?)", bun.In(alertIDs)).Scan(ctx); err != nil {
			return nil, fmt.Errorf("load alerts of events: %w", err)
		}
		for _, a := range rows {
			alerts[a.ID] = a
		}
	}
	messages := map[int]*db.InboundMessage{}
	if len(messageIDs) > 0 {
		var rows []*db.InboundMessage
		if err := b.db.NewSelect().Model(&rows).Where("id IN (?)", bun.In(messageIDs)).Scan(ctx); err != nil {
			return nil, fmt.Errorf("load messages of events: %w", err)
		}
		for _, m := range rows {
			messages[m.ID] = m
		}
	}
	for _, ev := range evs {
		if ev.AlertID != nil {
			ev.Alert = alerts[*ev.AlertID]
		}
		if ev.InboundMessageID != nil {
			ev.Inbound = messages[*ev.InboundMessageID]
		}
	}
	return evs, nil
}

// listen turns other instances' NOTIFY into kicks, reconnecting after
// failures; the periodic poll covers the gaps.
func (b *Bus) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := b.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		b.log.WarnContext(ctx, "events listener stopped; reconnecting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (b *Bus) listenOnce(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, b.db.URL)
	if err != nil {
		return fmt.Errorf("connect listener: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	b.wakeUp() // catch up on anything committed while not listening
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Payload != b.id {
			b.wakeUp()
		}
	}
}

// stop ends every subscription with ErrClosed.
func (b *Bus) stop() {
	b.mu.Lock()
	b.stopped = true
	close(b.changed)
	b.changed = make(chan struct{})
	woken := b.unpark(true)
	b.mu.Unlock()
	for _, wake := range woken {
		wake()
	}
}

// unpark takes out of b.parked, and returns the wake functions of, the
// subscriptions with something to read now, or all of them. The others
// are moved past the new events their filters refuse. b.mu must be held
// for writing.
func (b *Bus) unpark(all bool) []func() {
	var woken []func()
	for s := range b.parked {
		if !all && s.pos >= b.start && !s.skipUnwanted() {
			continue
		}
		delete(b.parked, s)
		woken = append(woken, s.wake)
		s.wake = nil
	}
	return woken
}
