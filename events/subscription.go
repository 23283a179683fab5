package events

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
)

var (
	// ErrTooSlow ends a subscription whose reader fell too far behind.
	ErrTooSlow = errors.New("events: subscriber fell too far behind; resubscribe with the last cursor")
	// ErrClosed ends subscriptions when the bus stops.
	ErrClosed = errors.New("events: bus stopped")
	// ErrCursorTooOld refuses a resume that would replay too much, or
	// from before the resume horizon: the events after the cursor have
	// been pruned (see Prune), so resuming would skip them.
	ErrCursorTooOld = errors.New("events: cursor too old to resume from; subscribe without it")
)

// maxLag bounds how far back a resume may go, and how far a reader may
// lag before it is cut off: catching up reads the database, and a reader
// that never catches up must not keep doing so.
const maxLag = 100_000

// Filter decides which events a subscriber wants.
type Filter func(*Event) bool

// Subscription is one subscriber's place in the stream of events: a
// cursor, not a queue. Every subscriber reads the bus's one shared window
// of recent events, so an idle or slow subscriber costs a few words, and
// a burst reaches all of them without copying. A reader the window has
// moved past catches up from the database; only one that lags by more
// than maxLag events fails.
//
// A Subscription is read by one goroutine at a time.
type Subscription struct {
	bus    *Bus
	filter Filter

	// after is the last sequence number handed out. While replaying,
	// pending holds events read from the database but not yet handed out.
	replaying bool
	after     int64
	pending   []*Event

	// pos is the window position of the next live event.
	pos int64

	// wake is set while the subscription is parked (see Park).
	wake func()

	closeOnce sync.Once
}

// awaitReady waits until the bus has its starting point. It looks before
// it waits, since waiting on ctx would give ctx a channel to hold for as
// long as the subscription lives.
func (b *Bus) awaitReady(ctx context.Context) error {
	select {
	case <-b.ready:
		return nil
	default:
	}
	select {
	case <-b.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscribe starts a stream of the events filter accepts. With after > 0
// it first replays the events after that sequence number from the
// database, then continues live, with no gap and no repeat between the
// two. A cursor whose event retention has pruned gets ErrCursorTooOld,
// now or, if pruning overtakes the replay, from Next.
func (b *Bus) Subscribe(ctx context.Context, after int64, filter Filter) (*Subscription, error) {
	if err := b.awaitReady(ctx); err != nil {
		return nil, err
	}
	if filter == nil {
		filter = func(*Event) bool { return true }
	}
	if after > 0 {
		kept, err := b.cursorKept(ctx, after)
		if err != nil {
			return nil, err
		}
		if !kept {
			return nil, ErrCursorTooOld
		}
	}
	sub := &Subscription{bus: b, filter: filter}
	b.mu.RLock()
	if b.stale {
		// Nobody was subscribed, so the window stopped following the
		// events and does not say where "now" is; the settled number does
		// (see settled). The window starts afresh from it, before this
		// subscription counts itself under the same lock, so that nothing
		// committed after Subscribe returns is missed.
		b.mu.RUnlock()
		settled, err := b.settled(ctx)
		if err != nil {
			return nil, fmt.Errorf("events: subscribe: %w", err)
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.stale {
			b.start = b.end
			b.floor, b.lastSeq = max(b.lastSeq, settled), max(b.lastSeq, settled)
			b.stale = false
		}
	} else {
		defer b.mu.RUnlock()
	}
	now := b.lastSeq
	if after > 0 {
		if now-after > b.maxLag {
			return nil, ErrCursorTooOld
		}
		// A cursor from an instance that is ahead of this one is honoured
		// too: events up to it are skipped when they arrive here.
		sub.replaying, sub.after = true, after
	} else {
		sub.pos = b.end
	}
	b.active.Add(1)
	return sub, nil
}

// Close ends the subscription; the bus stops loading events for
// subscribers once none is left.
func (s *Subscription) Close() {
	s.closeOnce.Do(func() {
		s.Unpark()
		s.bus.active.Add(-1)
	})
}

// Next blocks until the next wanted event, ctx ends, the subscriber falls
// too far behind (ErrTooSlow) or the bus stops (ErrClosed).
func (s *Subscription) Next(ctx context.Context) (*Event, error) {
	return s.read(ctx, true)
}

// TryNext is Next without the wait: it returns a nil event when the
// subscriber has caught up. It may still read the database to catch up.
func (s *Subscription) TryNext(ctx context.Context) (*Event, error) {
	return s.read(ctx, false)
}

func (s *Subscription) read(ctx context.Context, wait bool) (*Event, error) {
	for {
		ev, err := s.next(ctx, wait)
		if err != nil || ev == nil {
			return nil, err
		}
		if s.filter(ev) {
			return ev, nil
		}
	}
}

// Poll returns the next wanted event if the window holds it, without
// blocking or reading the database; a nil event means the subscriber has
// caught up. ok is false when only TryNext or Next can continue: the
// subscriber is behind the window, or the bus has stopped.
func (s *Subscription) Poll() (ev *Event, ok bool) {
	if s.replaying {
		return nil, false
	}
	b := s.bus
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.stopped || s.pos < b.start {
		return nil, false
	}
	if !s.skipUnwanted() {
		return nil, true
	}
	ev = b.window[s.pos%int64(len(b.window))]
	s.pos++
	s.after = ev.Seq
	return ev, true
}

// skipUnwanted moves s past the window's events it has seen or its filter
// refuses, up to the first it wants, and reports whether there is one.
// s.pos is in the window; b.mu is held.
func (s *Subscription) skipUnwanted() bool {
	b := s.bus
	for ; s.pos < b.end; s.pos++ {
		ev := b.window[s.pos%int64(len(b.window))]
		if ev.Seq <= s.after {
			continue
		}
		if s.filter(ev) {
			return true
		}
		s.after = ev.Seq
	}
	return false
}

// Park lets a caught-up subscriber wait without a goroutine of its own:
// the bus calls wake, once, when Poll, TryNext or Next has something to
// return, an event the filter accepts or a reason to end. The bus skips
// the events the filter refuses meanwhile, so a subscriber is never woken
// for nothing. Park reports false, arranging nothing, when there is
// something to return already.
//
// Until wake is called or Unpark succeeds, the subscription must not be
// read, and its filter is called on the bus's goroutine. wake runs on the
// bus's goroutine too, and must not block.
func (s *Subscription) Park(wake func()) bool {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped || s.replaying || s.pos != b.end {
		return false
	}
	if b.parked == nil {
		b.parked = map[*Subscription]struct{}{}
	}
	s.wake = wake
	b.parked[s] = struct{}{}
	return true
}

// Unpark cancels Park. It reports whether the subscription was still
// parked, in which case wake will not be called; otherwise wake has been
// called or is being called.
func (s *Subscription) Unpark() bool {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.parked[s]; !ok {
		return false
	}
	delete(b.parked, s)
	s.wake = nil
	return true
}

// next returns the next event of any kind; without wait, nil when there
// is none yet.
func (s *Subscription) next(ctx context.Context, wait bool) (*Event, error) {
	b := s.bus
	for s.replaying {
		if len(s.pending) > 0 {
			ev := s.pending[0]
			s.pending = s.pending[1:]
			s.after = ev.Seq
			return ev, nil
		}
		b.mu.RLock()
		floor := b.floor
		if s.after >= floor {
			// The window holds everything after s.after: continue live
			// from the first event past it.
			s.pos = b.start + int64(sort.Search(int(b.end-b.start), func(i int) bool {
				return b.window[(b.start+int64(i))%int64(len(b.window))].Seq > s.after
			}))
			s.replaying = false
		}
		b.mu.RUnlock()
		if !s.replaying {
			break
		}
		evs, err := b.load(ctx, s.after, floor, fetchBatch)
		if err != nil {
			return nil, err
		}
		// Checked after the read: pruning only ever removes the oldest
		// events, so an event at or before s.after still stored now means
		// none after it was gone when they were read.
		if s.after > 0 {
			kept, err := b.cursorKept(ctx, s.after)
			if err != nil {
				return nil, err
			}
			if !kept {
				return nil, ErrCursorTooOld
			}
		}
		if len(evs) == 0 {
			s.after = floor
		}
		s.pending = evs
	}
	for {
		b.mu.RLock()
		switch {
		case b.stopped:
			b.mu.RUnlock()
			return nil, ErrClosed
		case s.pos < b.start:
			lag := b.lastSeq - s.after
			b.mu.RUnlock()
			if lag > b.maxLag {
				return nil, ErrTooSlow
			}
			s.replaying = true
			return s.next(ctx, wait)
		case s.pos < b.end:
			ev := b.window[s.pos%int64(len(b.window))]
			b.mu.RUnlock()
			s.pos++
			if ev.Seq <= s.after {
				continue
			}
			s.after = ev.Seq
			return ev, nil
		}
		changed := b.changed
		b.mu.RUnlock()
		if !wait {
			return nil, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
