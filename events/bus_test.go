package events

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// testBus runs a bus with a small window over d until the test ends.
func testBus(t *testing.T, d *db.DB, size int) *Bus {
	t.Helper()
	b := newBus(d, slog.New(slog.NewTextHandler(io.Discard, nil)), size)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-b.ready
	return b
}

// record commits n alert events typed first, first+1, … and kicks the
// bus, as a domain transaction would.
func record(t *testing.T, d *db.DB, b *Bus, first, n int) {
	t.Helper()
	err := d.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		for i := first; i < first+n; i++ {
			if err := AlertChanged(ctx, tx, fmt.Sprint(i), i, 1, time.Now().UTC()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("record events: %v", err)
	}
	b.Kick()
}

// collect reads n events from sub and returns their types in order.
func collect(t *testing.T, sub *Subscription, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		got = append(got, ev.Type)
	}
	return got
}

func sequence(first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(first + i)
	}
	return out
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %v", len(got), len(want), got)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("event %d is %s, want %s (all: %v)", i, got[i], want[i], got)
		}
	}
}

func TestLiveEventsArriveInOrderForEverySubscriber(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b := testBus(t, d, 64)
		ctx := context.Background()
		subs := make([]*Subscription, 3)
		for i := range subs {
			sub, err := b.Subscribe(ctx, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			subs[i] = sub
		}
		// Bursts larger than the window still arrive whole to readers
		// that keep up.
		var wg sync.WaitGroup
		results := make([][]string, len(subs))
		for i, sub := range subs {
			wg.Add(1)
			go func() { defer wg.Done(); results[i] = collect(t, sub, 200) }()
		}
		for i := 0; i < 200; i += 20 {
			record(t, d, b, i, 20)
		}
		wg.Wait()
		for _, got := range results {
			equal(t, got, sequence(0, 200))
		}
	})
}

func TestFilterSkipsUnwantedEvents(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b := testBus(t, d, 64)
		sub, err := b.Subscribe(context.Background(), 0, func(ev *Event) bool { return *ev.AlertID%2 == 0 })
		if err != nil {
			t.Fatal(err)
		}
		record(t, d, b, 0, 10)
		equal(t, collect(t, sub, 5), []string{"0", "2", "4", "6", "8"})
	})
}

func TestResumeReplaysWhatWasMissedThenContinuesLive(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		// The window holds 8 events, so resuming 30 back must read from
		// the database first and then switch to the window.
		b := testBus(t, d, 8)
		ctx := context.Background()
		watcher, _ := b.Subscribe(ctx, 0, nil)
		record(t, d, b, 0, 40)
		collect(t, watcher, 40) // the bus has taken all 40 in
		var first int64
		if err := d.NewSelect().Model((*Event)(nil)).ColumnExpr("min(seq)").Scan(ctx, &first); err != nil {
			t.Fatal(err)
		}
		resumed, err := b.Subscribe(ctx, first+9, nil)
		if err != nil {
			t.Fatal(err)
		}
		record(t, d, b, 40, 5)
		equal(t, collect(t, resumed, 35), sequence(10, 35))
	})
}

func TestReaderBehindTheWindowCatchesUpFromTheDatabase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b := testBus(t, d, 8)
		ctx := context.Background()
		slow, _ := b.Subscribe(ctx, 0, nil)
		record(t, d, b, 0, 3)
		equal(t, collect(t, slow, 1), []string{"0"})
		record(t, d, b, 3, 30)
		record(t, d, b, 33, 7)
		equal(t, collect(t, slow, 39), sequence(1, 39))
	})
}

func TestResumeFromTheNewestEventRepeatsNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b := testBus(t, d, 8)
		ctx := context.Background()
		sub, _ := b.Subscribe(ctx, 0, nil)
		record(t, d, b, 0, 3)
		collect(t, sub, 3)
		resumed, err := b.Subscribe(ctx, b.lastSeq, nil)
		if err != nil {
			t.Fatal(err)
		}
		record(t, d, b, 3, 2)
		equal(t, collect(t, resumed, 2), []string{"3", "4"})
	})
}

func TestSubscriberAWindowBehindFailsAlone(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b := testBus(t, d, 16)
		b.maxLag = 50
		ctx := context.Background()
		stuck, _ := b.Subscribe(ctx, 0, nil)
		healthy, _ := b.Subscribe(ctx, 0, nil)
		// The healthy one keeps up batch by batch, however slow the
		// machine; the stuck one never reads.
		for i := 0; i < 100; i += 10 {
			record(t, d, b, i, 10)
			equal(t, collect(t, healthy, 10), sequence(i, 10))
		}
		_, err := stuck.Next(ctx)
		if !errors.Is(err, ErrTooSlow) {
			t.Fatalf("a subscriber 100 events behind with a lag limit of 50: %v, want ErrTooSlow", err)
		}
	})
}

func TestResumeTooFarBackIsRefused(t *testing.T) {
	d := dbtest.SQLite(t)
	b := testBus(t, d, 8)
	b.mu.Lock()
	b.lastSeq = maxLag + 10
	b.mu.Unlock()
	if _, err := b.Subscribe(context.Background(), 5, nil); !errors.Is(err, ErrCursorTooOld) {
		t.Fatalf("got %v, want ErrCursorTooOld", err)
	}
}

func TestStoppingTheBusEndsSubscriptions(t *testing.T) {
	d := dbtest.SQLite(t)
	b := newBus(d, slog.New(slog.NewTextHandler(io.Discard, nil)), 8)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	sub, err := b.Subscribe(context.Background(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	next := make(chan error)
	go func() { _, err := sub.Next(context.Background()); next <- err }()
	cancel()
	<-done
	if err := <-next; !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

func TestEventsOfOtherInstancesArrive(t *testing.T) {
	d := dbtest.Postgres(t)
	other, err := db.Open(context.Background(), d.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	a, b := testBus(t, d, 64), testBus(t, other, 64)
	sub, _ := a.Subscribe(context.Background(), 0, nil)
	record(t, other, b, 0, 5)
	equal(t, collect(t, sub, 5), sequence(0, 5))
}

// With nobody subscribed the bus loads nothing, yet a subscriber that
// comes back with its cursor still gets every event, then live ones.
func TestIdleBusLoadsNothingAndResumeStillSeesAll(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b := testBus(t, d, 64)
		ctx := context.Background()
		first, err := b.Subscribe(ctx, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		record(t, d, b, 1, 3)
		equal(t, collect(t, first, 3), sequence(1, 3))
		first.Close()
		cursor := b.lastSeq

		record(t, d, b, 4, 200)
		deadline := time.Now().Add(30 * time.Second)
		for {
			b.Kick()
			b.mu.RLock()
			stale, loaded := b.stale, b.end-b.start
			b.mu.RUnlock()
			if stale {
				if loaded != 0 {
					t.Fatalf("an idle bus kept %d events in its window", loaded)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the bus kept following the events with nobody subscribed")
			}
			time.Sleep(10 * time.Millisecond)
		}
		for range 5 {
			b.Kick()
			time.Sleep(10 * time.Millisecond)
		}
		b.mu.RLock()
		loaded := b.end - b.start
		b.mu.RUnlock()
		if loaded != 0 {
			t.Fatalf("an idle bus loaded %d events into its window", loaded)
		}

		resumed, err := b.Subscribe(ctx, cursor, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resumed.Close()
		record(t, d, b, 204, 2)
		equal(t, collect(t, resumed, 202), sequence(4, 202))
	})
}
