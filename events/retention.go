package events

import (
	"context"
	"fmt"
	"time"

	"github.com/klaxonhq/klaxon/db"
)

// Retention of delivered events. The events table is the subscribers'
// replay log: a subscriber resumes after the cursor (sequence number) of
// the last event it saw. Pruning removes the oldest events, always a run
// from the lowest sequence number up, and never the newest event, so
// "the event a cursor names is still stored" is exactly "everything after
// it is still stored". That is the resume horizon: a cursor whose event
// is gone is refused with ErrCursorTooOld, at Subscribe or, if pruning
// overtakes a subscriber that is catching up, when it next reads the
// database; it never silently skips what was pruned.
//
// The outbox needs no pruning: the bus drains it as it numbers events.

// Prune deletes at most limit of the oldest events recorded before before,
// never the newest one, and returns how many it deleted. It stops at the
// first event recorded at or after before, so what it deletes is always
// contiguous from the bottom even where instances' clocks disagree a
// little.
func Prune(ctx context.Context, d *db.DB, before time.Time, limit int) (int, error) {
	var oldest []struct {
		Seq int64     `bun:"seq"`
		At  time.Time `bun:"at"`
	}
	err := d.NewRaw(`SELECT seq, at FROM events WHERE seq < (SELECT max(seq) FROM events) ORDER BY seq LIMIT ?`, limit).Scan(ctx, &oldest)
	if err != nil {
		return 0, fmt.Errorf("prune events: read the oldest: %w", db.Classify(err))
	}
	n := 0
	for n < len(oldest) && oldest[n].At.Before(before) {
		n++
	}
	if n == 0 {
		return 0, nil
	}
	res, err := d.ExecContext(ctx, `DELETE FROM events WHERE seq <= ?`, oldest[n-1].Seq)
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", db.Classify(err))
	}
	deleted, err := res.RowsAffected()
	return int(deleted), err
}

// Backlog estimates how many events are due for pruning at before, from
// the oldest and newest events alone: their sequence numbers spread over
// their times. Counting them would read the very rows that are due.
func Backlog(ctx context.Context, d *db.DB, before time.Time) (int64, error) {
	var ends []struct {
		Seq int64     `bun:"seq"`
		At  time.Time `bun:"at"`
	}
	err := d.NewRaw(`SELECT seq, at FROM (SELECT seq, at FROM events ORDER BY seq LIMIT 1) oldest
		UNION ALL SELECT seq, at FROM (SELECT seq, at FROM events ORDER BY seq DESC LIMIT 1) newest`).Scan(ctx, &ends)
	if err != nil {
		return 0, fmt.Errorf("estimate events due for pruning: %w", db.Classify(err))
	}
	if len(ends) < 2 || !ends[0].At.Before(before) {
		return 0, nil
	}
	first, last := ends[0], ends[1]
	if !last.At.After(first.At) || !before.Before(last.At) {
		// All of them but the newest, which is kept.
		return max(0, last.Seq-first.Seq), nil
	}
	share := float64(before.Sub(first.At)) / float64(last.At.Sub(first.At))
	return int64(share * float64(last.Seq-first.Seq)), nil
}

// cursorKept reports whether the event numbered after is still stored, so
// that resuming after it misses nothing. A cursor ahead of the newest
// stored event (from an instance that is ahead) counts as kept as long as
// some earlier event is.
func (b *Bus) cursorKept(ctx context.Context, after int64) (bool, error) {
	var found []int64
	if err := b.db.NewRaw(`SELECT seq FROM events WHERE seq <= ? ORDER BY seq LIMIT 1`, after).Scan(ctx, &found); err != nil {
		return false, fmt.Errorf("events: check cursor %d: %w", after, db.Classify(err))
	}
	return len(found) > 0, nil
}
