package resolvers

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/graph"
)

// stream copies a subscription's events to a GraphQL subscription channel.
// When the subscription ends for a reason the client must hear of (it fell
// behind, the server is stopping), the last value carries that error.
//
// An idle subscriber holds no goroutine here: its subscription is parked
// on the bus, which hands each new event straight to the channel while
// the channel has room. A goroutine runs only while delivering could
// block: while the subscriber catches up from the database, waits for its
// consumer, or is told why it ends.
func stream[T any](ctx context.Context, sub *events.Subscription, convert func(*events.Event) T, failed func(error) T) <-chan T {
	p := &pump[T]{ctx: ctx, done: ctx.Done(), sub: sub, convert: convert, failed: failed, out: make(chan T, 1), sent: func(*events.Event) {}}
	p.wakeFn = p.wake
	if n, ok := ctx.Value(streamNoticeKey{}).(*StreamNotice); ok && n.taken.CompareAndSwap(false, true) {
		p.sent = n.SentFrom
		if p.sent == nil {
			sent := n.Sent
			p.sent = func(*events.Event) { sent() }
		}
		n.cancelled = p.cancel
		n.skip = func() { <-p.out }
		p.stop = func() bool { return true }
	} else {
		p.stop = context.AfterFunc(ctx, p.cancel)
	}
	// wake never blocks: a new subscription with nothing to replay parks
	// at once, without a goroutine being started for it.
	p.wake()
	return p.out
}

// StreamNotice lets a transport deliver a subscription with no goroutine
// waiting on its channel while it is idle. Sent is called after each
// value the stream puts in the channel, and after it closes the channel,
// so each call stands for one receive that will not block. It may run on
// the event bus's goroutine and must not block.
//
// A transport that passes a notice also tells the stream when it has
// cancelled the context, by calling Cancelled, which spares the stream
// watching the context itself.
//
// SentFrom, when set, is called in place of Sent with the event the
// value was made from: nil for a value that tells why the stream ends,
// and for the close. A transport that already has the response to that
// event for this subscription (it shares responses between
// subscriptions) takes the value out with Skip instead of executing it.
type StreamNotice struct {
	Sent      func()
	SentFrom  func(*events.Event)
	taken     atomic.Bool
	cancelled func()
	skip      func()
}

// Skip takes the next value out of the channel without anything reading
// it. It is for a value announced by Sent or SentFrom and not yet
// received, so it never blocks; the caller must not receive meanwhile.
func (n *StreamNotice) Skip() { n.skip() }

type streamNoticeKey struct{}

// WithStreamNotice asks the subscription resolved with ctx to report to n.
func WithStreamNotice(ctx context.Context, n *StreamNotice) context.Context {
	return context.WithValue(ctx, streamNoticeKey{}, n)
}

// Taken reports whether a subscription's stream took n: only then is
// Sent ever called.
func (n *StreamNotice) Taken() bool { return n.taken.Load() }

// Cancelled tells the stream that took n that its context has been
// cancelled.
func (n *StreamNotice) Cancelled() {
	if n.cancelled != nil {
		n.cancelled()
	}
}

// pump moves one subscription's events to its channel. One of run, wake
// or cancel owns it at a time: run and wake until the subscription is
// parked, cancel once it has unparked it.
type pump[T any] struct {
	ctx context.Context
	// done is ctx.Done(), found once: ctx is a dozen values deep, and
	// walking them for every event of 10,000 subscribers cost more than a
	// twentieth of a delivery's CPU.
	done    <-chan struct{}
	sub     *events.Subscription
	convert func(*events.Event) T
	failed  func(error) T
	out     chan T
	sent    func(*events.Event)
	wakeFn  func()
	stop    func() bool
	ended   sync.Once
}

// cancelled reports whether ctx has ended.
func (p *pump[T]) cancelled() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// run delivers on a goroutine of its own until the subscription parks or
// ends.
func (p *pump[T]) run() {
	for {
		if p.cancelled() {
			p.end()
			return
		}
		ev, err := p.sub.TryNext(p.ctx)
		if err != nil {
			if errors.Is(err, events.ErrTooSlow) || errors.Is(err, events.ErrClosed) || errors.Is(err, events.ErrCursorTooOld) {
				select {
				case p.out <- p.failed(err):
					p.sent(nil)
				case <-p.done:
				}
			}
			p.end()
			return
		}
		if ev == nil {
			if p.park() {
				return
			}
			continue
		}
		select {
		case p.out <- p.convert(ev):
			p.sent(ev)
		case <-p.done:
			p.end()
			return
		}
	}
}

// wake runs on the bus's goroutine, which must not block: it hands over
// the events the window holds while the channel has room, and leaves the
// rest to run. The channel has one sender, so room seen stays room.
func (p *pump[T]) wake() {
	for {
		if p.cancelled() {
			p.end()
			return
		}
		if len(p.out) == cap(p.out) {
			go p.run()
			return
		}
		ev, ok := p.sub.Poll()
		if !ok {
			go p.run()
			return
		}
		if ev == nil {
			if p.park() {
				return
			}
			continue
		}
		p.out <- p.convert(ev)
		p.sent(ev)
	}
}

// park parks the subscription and reports whether it did; after true the
// caller owns the pump no more.
func (p *pump[T]) park() bool {
	if !p.sub.Park(p.wakeFn) {
		return false
	}
	// A cancel that ran before the subscription was parked found nothing
	// to end.
	if p.cancelled() && p.sub.Unpark() {
		p.end()
	}
	return true
}

// cancel runs when ctx ends; it ends the pump only if it was parked, as
// a running pump ends itself.
func (p *pump[T]) cancel() {
	if p.sub.Unpark() {
		p.end()
	}
}

func (p *pump[T]) end() {
	p.ended.Do(func() {
		p.stop()
		p.sub.Close()
		close(p.out)
		p.sent(nil)
	})
}

func alertEventFilter(f *graph.AlertEventFilter) events.Filter {
	return func(ev *events.Event) bool {
		if ev.Kind != events.KindAlert || ev.Alert == nil {
			return false
		}
		if f == nil {
			return true
		}
		if f.IntegrationID != nil && ev.IntegrationID != *f.IntegrationID {
			return false
		}
		if len(f.Status) > 0 && !slices.Contains(f.Status, ev.Alert.Status) {
			return false
		}
		if len(f.Severity) > 0 && !slices.ContainsFunc(f.Severity, func(s string) bool { return strings.EqualFold(s, ev.Alert.Severity) }) {
			return false
		}
		if len(f.Types) > 0 && !slices.Contains(f.Types, ev.Type) {
			return false
		}
		return true
	}
}

// readableEvents narrows a subscription's filter to the events of things
// the subscriber may read now. On a websocket that is the socket's live
// access, which the server reads again at an interval, so a subscriber
// removed from a team stops hearing of it without subscribing anew; the
// access read for this subscription is the newest, and is stored there
// first. The owners come from a cache, so an event costs no database
// read.
func (r *Resolver) readableEvents(ctx context.Context, access *auth.Access, filter events.Filter) events.Filter {
	live := auth.LiveAccessFrom(ctx)
	if live == nil {
		live = &auth.LiveAccess{}
	}
	live.Store(access)
	return func(ev *events.Event) bool {
		scope := live.ReadScope()
		if scope == nil {
			return filter(ev)
		}
		if !filter(ev) {
			return false
		}
		var team *int
		var err error
		switch {
		case ev.Alert != nil:
			team, err = r.alertTeam(ctx, ev.Alert)
		case ev.Kind == events.KindInbound:
			team, err = r.integrationTeam(ctx, ev.IntegrationID)
		default:
			return false
		}
		if err != nil {
			// Unsure who owns it: withhold rather than leak.
			slog.ErrorContext(ctx, "find the owner of an event", "seq", ev.Seq, "err", err)
			return false
		}
		return scope.Includes(team)
	}
}
