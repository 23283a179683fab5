package events

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// A transaction that drew a lower number but commits later must not be
// passed over: the bus waits for it, then delivers both in number order;
// one that rolls back leaves no hole and holds nothing up.
func TestEventCommittedAfterAHigherOneIsNotSkipped(t *testing.T) {
	d := dbtest.Postgres(t)
	b := testBus(t, d, 64)
	ctx := context.Background()
	sub, err := b.Subscribe(ctx, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	record(t, d, b, 0, 1)
	equal(t, collect(t, sub, 1), []string{"0"})
	before := b.lastSeq

	slow, err := d.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A failing check must not leave the transaction holding the schema.
	defer slow.Rollback()
	if err := AlertChanged(ctx, slow, "slow", 1, 1, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	record(t, d, b, 2, 1) // numbered after "slow", committed first

	waiting, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = b.settled(waiting)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("settled returned %v while a writer of a lower number was under way, want it to wait", err)
	}
	if err := slow.Commit(); err != nil {
		t.Fatal(err)
	}
	b.Kick()
	equal(t, collect(t, sub, 2), []string{"slow", "2"})

	resumed, err := b.Subscribe(ctx, before, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Close()
	equal(t, collect(t, resumed, 2), []string{"slow", "2"})

	// A writer that rolls back: the numbers it drew never appear, and the
	// ones after them arrive.
	aborted, err := d.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer aborted.Rollback()
	if err := AlertChanged(ctx, aborted, "aborted", 3, 1, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	record(t, d, b, 4, 1)
	if err := aborted.Rollback(); err != nil {
		t.Fatal(err)
	}
	b.Kick()
	equal(t, collect(t, sub, 1), []string{"4"})
}

// Writers on two instances commit side by side in random order: every
// subscriber, live or resuming from anywhere, gets each committed event
// once, in number order, and none that rolled back.
func TestConcurrentWritersLeaveNoGapAcrossInstances(t *testing.T) {
	d := dbtest.Postgres(t)
	other, err := db.Open(context.Background(), d.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	a, b := testBus(t, d, 64), testBus(t, other, 64)
	ctx := context.Background()
	live, err := a.Subscribe(ctx, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()

	const writers, each = 8, 25
	var mu sync.Mutex
	committed := map[string]bool{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			store, bus := d, a
			if w%2 == 1 {
				store, bus = other, b
			}
			for i := range each {
				name := fmt.Sprintf("w%d-%d", w, i)
				abort := errors.New("rolled back on purpose")
				err := store.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					for part := range 2 {
						if err := AlertChanged(ctx, tx, fmt.Sprintf("%s.%d", name, part), w, 1, time.Now().UTC()); err != nil {
							return err
						}
						time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
					}
					if i%7 == 3 {
						return abort
					}
					return nil
				})
				if err != nil && !errors.Is(err, abort) {
					t.Errorf("%s: %v", name, err)
					return
				}
				if err == nil {
					mu.Lock()
					committed[name+".0"], committed[name+".1"] = true, true
					mu.Unlock()
				}
				bus.Kick()
			}
		}()
	}
	wg.Wait()
	want := len(committed)

	check := func(what string, sub *Subscription, n int) []int64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		seen := map[string]bool{}
		var seqs []int64
		for len(seqs) < n {
			ev, err := sub.Next(ctx)
			if err != nil {
				t.Fatalf("%s: after %d of %d events: %v", what, len(seqs), n, err)
			}
			if !committed[ev.Type] || seen[ev.Type] {
				t.Fatalf("%s: event %q (seq %d) was rolled back or seen twice", what, ev.Type, ev.Seq)
			}
			if len(seqs) > 0 && ev.Seq <= seqs[len(seqs)-1] {
				t.Fatalf("%s: seq %d after %d", what, ev.Seq, seqs[len(seqs)-1])
			}
			seen[ev.Type] = true
			seqs = append(seqs, ev.Seq)
		}
		return seqs
	}
	seqs := check("live", live, want)

	// Resuming on the other instance from any point gets exactly the rest.
	for _, from := range []int{1, want / 3, want - 1} {
		cursor := seqs[from-1]
		resumed, err := b.Subscribe(ctx, cursor, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := check(fmt.Sprintf("resumed after %d", cursor), resumed, want-from)
		resumed.Close()
		if got[0] != seqs[from] {
			t.Fatalf("resumed after %d began at %d, want %d", cursor, got[0], seqs[from])
		}
	}
}

// A subscriber that comes to an idle bus, whose window stopped following
// the events, gets every event committed after Subscribe returns, even
// one whose writer drew its number before.
func TestSubscriberOfAnIdleBusMissesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b := testBus(t, d, 64)
		ctx := context.Background()
		record(t, d, b, 0, 3)
		for {
			b.Kick()
			b.mu.RLock()
			stale := b.stale
			b.mu.RUnlock()
			if stale {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		sub, err := b.Subscribe(ctx, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		record(t, d, b, 3, 2)
		equal(t, collect(t, sub, 2), []string{"3", "4"})
	})
}
