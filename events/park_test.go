package events

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// awaitWake fails the test if wake is not called; the timeout only keeps
// a broken test from hanging.
func awaitWake(t *testing.T, woken <-chan struct{}) {
	t.Helper()
	select {
	case <-woken:
	case <-time.After(30 * time.Second):
		t.Fatal("the parked subscription was never woken")
	}
}

func wakeInto(woken chan struct{}) func() {
	return func() { woken <- struct{}{} }
}

func TestParkedSubscriberIsWokenForAWantedEvent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b := testBus(t, d, 64)
		sub, err := b.Subscribe(context.Background(), 0, func(ev *Event) bool { return *ev.AlertID%2 == 0 })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		if ev, err := sub.TryNext(context.Background()); ev != nil || err != nil {
			t.Fatalf("before any event: %v, %v", ev, err)
		}
		woken := make(chan struct{}, 2)
		if !sub.Park(wakeInto(woken)) {
			t.Fatal("a caught-up subscription refused to park")
		}
		record(t, d, b, 1, 3)
		awaitWake(t, woken)
		ev, ok := sub.Poll()
		if !ok || ev == nil || ev.Type != "2" {
			t.Fatalf("after the wake, Poll gave %v, %v; want event 2", ev, ok)
		}
		if ev, ok := sub.Poll(); !ok || ev != nil {
			t.Fatalf("event 3 is refused by the filter, yet Poll gave %v, %v", ev, ok)
		}
		if !sub.Park(wakeInto(woken)) || !sub.Unpark() {
			t.Fatal("park then unpark")
		}
		if sub.Unpark() {
			t.Fatal("a second Unpark found the subscription parked")
		}
	})
}

func TestParkRefusesWhileAnEventIsPending(t *testing.T) {
	d := dbtest.SQLite(t)
	b := testBus(t, d, 64)
	ctx := context.Background()
	sub, _ := b.Subscribe(ctx, 0, nil)
	defer sub.Close()
	sentinel, _ := b.Subscribe(ctx, 0, nil)
	defer sentinel.Close()
	record(t, d, b, 1, 1)
	// Once the sentinel has the event, it is in the window.
	equal(t, collect(t, sentinel, 1), sequence(1, 1))
	if sub.Park(func() { t.Error("woken although never parked") }) {
		t.Fatal("parked with an event pending")
	}
	if ev, ok := sub.Poll(); !ok || ev == nil || ev.Type != "1" {
		t.Fatalf("Poll gave %v, %v; want event 1", ev, ok)
	}
}

// The bus moves a parked subscription past the events its filter refuses
// and wakes it only for one it wants; a stop wakes every one.
func TestUnparkSkipsRefusedEventsAndStopWakesAll(t *testing.T) {
	b := newBus(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), 8)
	close(b.ready)
	ctx := context.Background()
	even, _ := b.Subscribe(ctx, 0, func(ev *Event) bool { return ev.Seq%2 == 0 })
	all, _ := b.Subscribe(ctx, 0, nil)
	woken := map[*Subscription]int{}
	for _, s := range []*Subscription{even, all} {
		if !s.Park(func() { woken[s]++ }) {
			t.Fatal("refused to park")
		}
	}
	add := func(seq int64) []func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.window[b.end%int64(len(b.window))] = &Event{Seq: seq}
		b.end++
		b.lastSeq = seq
		return b.unpark(false)
	}
	for _, wake := range add(1) {
		wake()
	}
	if woken[even] != 0 || woken[all] != 1 {
		t.Fatalf("after an odd event: woken %d and %d times, want 0 and 1", woken[even], woken[all])
	}
	if even.pos != b.end || even.after != 1 {
		t.Fatalf("the refused event was not skipped: pos %d of %d, after %d", even.pos, b.end, even.after)
	}
	for _, wake := range add(2) {
		wake()
	}
	if woken[even] != 1 {
		t.Fatalf("after an even event: woken %d times, want 1", woken[even])
	}
	if ev, ok := even.Poll(); !ok || ev == nil || ev.Seq != 2 {
		t.Fatalf("Poll gave %v, %v; want event 2", ev, ok)
	}

	if !even.Park(func() { woken[even]++ }) {
		t.Fatal("refused to park")
	}
	b.stop()
	if woken[even] != 2 {
		t.Fatal("the stop did not wake the parked subscription")
	}
	if _, ok := even.Poll(); ok {
		t.Fatal("Poll carried on after the stop")
	}
	if _, err := even.TryNext(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("TryNext after the stop: %v, want ErrClosed", err)
	}
	if even.Park(func() {}) {
		t.Fatal("parked on a stopped bus")
	}
}

func TestTryNextCatchesUpFromTheDatabase(t *testing.T) {
	d := dbtest.SQLite(t)
	b := testBus(t, d, 8)
	ctx := context.Background()
	sentinel, _ := b.Subscribe(ctx, 0, nil)
	defer sentinel.Close()
	record(t, d, b, 1, 1)
	equal(t, collect(t, sentinel, 1), sequence(1, 1))
	cursor := sentinel.after

	record(t, d, b, 2, 30)
	equal(t, collect(t, sentinel, 30), sequence(2, 30))
	// 30 events do not fit the window of 8: this reader starts from the
	// database and carries on from the window.
	sub, err := b.Subscribe(ctx, cursor, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var got []string
	for {
		ev, err := sub.TryNext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev == nil {
			break
		}
		got = append(got, ev.Type)
	}
	equal(t, got, sequence(2, 30))
	if _, ok := sub.Poll(); !ok {
		t.Fatal("a caught-up subscription cannot Poll")
	}
}
