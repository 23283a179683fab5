package events

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

var (
	// ErrTooSlow ends a subscription whose reader fell too far behind.
	ErrTooSlow = errors.New("events: subscriber fell too far behind; resubscribe with the last cursor")
	// ErrClosed ends subscriptions when the bus stops.
	ErrClosed = errors.New("events: bus stopped")
	// ErrCursorTooOld refuses a resume that would replay too much.
	ErrCursorTooOld = errors.New("events: cursor too old to resume from; subscribe without it")
)

const (
	// buffer is how many events a subscriber may lag behind before it is
	// dropped. Its channel is the only per-subscriber allocation of size.
	buffer = 256
	// maxHeld bounds the live events kept for a subscriber while it
	// replays what it missed.
	maxHeld = 4096
	// maxReplay bounds how far back a resume may go.
	maxReplay = 100_000
)

// Filter decides which events a subscriber wants.
type Filter func(*Event) bool

// Subscription is one subscriber's stream. Read Events until Done is
// closed; Err then says why.
type Subscription struct {
	events chan *Event
	done   chan struct{}
	filter Filter
	bus    *Bus

	mu        sync.Mutex
	replaying bool
	replayTo  int64
	held      []*Event
	err       error
}

func (s *Subscription) Events() <-chan *Event { return s.events }
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err is why the subscription ended; nil while it runs.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close ends the subscription.
func (s *Subscription) Close() { s.fail(context.Canceled) }

// Subscribe starts a stream of the events filter accepts. With after > 0
// it first replays the events after that sequence number, then continues
// live, with no gap and no repeat between the two. It ends when ctx does.
func (b *Bus) Subscribe(ctx context.Context, after int64, filter Filter) (*Subscription, error) {
	select {
	case <-b.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if filter == nil {
		filter = func(*Event) bool { return true }
	}
	sub := &Subscription{events: make(chan *Event, buffer), done: make(chan struct{}), filter: filter, bus: b}
	b.mu.Lock()
	if after > 0 && after < b.last {
		if b.last-after > maxReplay {
			b.mu.Unlock()
			return nil, ErrCursorTooOld
		}
		sub.replaying, sub.replayTo = true, b.last
	}
	b.subs[sub] = struct{}{}
	b.mu.Unlock()

	go func() {
		select {
		case <-ctx.Done():
			sub.fail(ctx.Err())
		case <-sub.done:
		}
	}()
	if sub.replaying {
		go sub.replay(ctx, after)
	}
	return sub, nil
}

// offer hands a live event to the subscriber without ever blocking.
func (s *Subscription) offer(ev *Event) {
	if !s.filter(ev) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	if s.replaying {
		if ev.Seq > s.replayTo {
			s.held = append(s.held, ev)
			if len(s.held) > maxHeld {
				s.failLocked(ErrTooSlow)
			}
		}
		return
	}
	select {
	case s.events <- ev:
	default:
		s.failLocked(ErrTooSlow)
	}
}

// replay sends what the subscriber missed, then the live events held
// meanwhile, then lets live events flow directly.
func (s *Subscription) replay(ctx context.Context, after int64) {
	for after < s.replayTo {
		evs, err := s.bus.load(ctx, after, s.replayTo, fetchBatch)
		if err != nil {
			s.fail(fmt.Errorf("events: replay: %w", err))
			return
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			if !s.filter(ev) {
				continue
			}
			select {
			case s.events <- ev:
			case <-s.done:
				return
			}
		}
		after = evs[len(evs)-1].Seq
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range s.held {
		select {
		case s.events <- ev:
		default:
			s.failLocked(ErrTooSlow)
			return
		}
	}
	s.held, s.replaying = nil, false
}

func (s *Subscription) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLocked(err)
}

func (s *Subscription) failLocked(err error) {
	if s.err != nil {
		return
	}
	s.err = err
	close(s.done)
	// Removing from the bus must not wait for the bus lock while the bus
	// holds it to offer to us, so it happens on its own goroutine.
	go func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
	}()
}
