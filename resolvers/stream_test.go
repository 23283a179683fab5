package resolvers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/events"
)

// runBus runs a bus over a new SQLite database; stop ends it.
func runBus(t *testing.T) (d *db.DB, bus *events.Bus, stop func()) {
	t.Helper()
	d = dbtest.SQLite(t)
	bus = events.NewBus(d, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); bus.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return d, bus, stop
}

// recordAlertEvents commits alert events typed first, first+1, … and
// kicks the bus.
func recordAlertEvents(t *testing.T, d *db.DB, bus *events.Bus, first, n int) {
	t.Helper()
	err := d.RunInTx(context.Background(), nil, func(ctx context.Context, tx bun.Tx) error {
		for i := first; i < first+n; i++ {
			if err := events.AlertChanged(ctx, tx, fmt.Sprint(i), i, 1, time.Now().UTC()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	bus.Kick()
}

type streamed struct {
	typ string
	err error
}

// receive reads one value; the timeout only keeps a broken test from
// hanging.
func receive(t *testing.T, ch <-chan streamed) (streamed, bool) {
	t.Helper()
	select {
	case v, ok := <-ch:
		return v, ok
	case <-time.After(30 * time.Second):
		t.Fatal("nothing arrived on the stream")
		return streamed{}, false
	}
}

func streamOf(ctx context.Context, t *testing.T, bus *events.Bus, after int64) <-chan streamed {
	t.Helper()
	sub, err := bus.Subscribe(ctx, after, nil)
	if err != nil {
		t.Fatal(err)
	}
	return stream(ctx, sub, func(ev *events.Event) streamed { return streamed{typ: ev.Type} }, func(err error) streamed { return streamed{err: err} })
}

// A consumer that falls behind gets every event in order, whether the bus
// hands them over directly or a goroutine waits for room.
func TestStreamDeliversEverythingInOrder(t *testing.T) {
	d, bus, _ := runBus(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := streamOf(ctx, t, bus, 0)
	recordAlertEvents(t, d, bus, 0, 1)
	if v, _ := receive(t, ch); v.typ != "0" {
		t.Fatalf("first event: %+v", v)
	}
	for batch := 1; batch < 100; batch += 33 {
		recordAlertEvents(t, d, bus, batch, 33)
		for i := batch; i < batch+33; i++ {
			if v, ok := receive(t, ch); !ok || v.typ != fmt.Sprint(i) {
				t.Fatalf("event %d: got %+v (open %v)", i, v, ok)
			}
		}
	}
}

func TestStreamEndsWithItsContext(t *testing.T) {
	d, bus, _ := runBus(t)
	ctx, cancel := context.WithCancel(context.Background())
	ch := streamOf(ctx, t, bus, 0)
	recordAlertEvents(t, d, bus, 0, 1)
	receive(t, ch)
	cancel()
	for {
		v, ok := receive(t, ch)
		if !ok {
			break
		}
		if v.err != nil {
			t.Fatalf("a cancelled stream reported %v", v.err)
		}
	}
}

func TestStreamReportsTheBusStopping(t *testing.T) {
	d, bus, stop := runBus(t)
	ch := streamOf(context.Background(), t, bus, 0)
	recordAlertEvents(t, d, bus, 0, 1)
	receive(t, ch)
	stop()
	if v, ok := receive(t, ch); !ok || !errors.Is(v.err, events.ErrClosed) {
		t.Fatalf("got %+v (open %v), want ErrClosed", v, ok)
	}
	if _, ok := receive(t, ch); ok {
		t.Fatal("the stream stayed open after reporting the stop")
	}
}

// A stream that resumes from a cursor replays from the database first.
func TestStreamResumesFromACursor(t *testing.T) {
	d, bus, _ := runBus(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	live := streamOf(ctx, t, bus, 0)
	recordAlertEvents(t, d, bus, 0, 1)
	receive(t, live)
	recordAlertEvents(t, d, bus, 1, 10)
	for range 10 {
		receive(t, live)
	}
	resumed := streamOf(ctx, t, bus, 1)
	for i := 1; i < 11; i++ {
		if v, ok := receive(t, resumed); !ok || v.typ != fmt.Sprint(i) {
			t.Fatalf("replayed event %d: got %+v (open %v)", i, v, ok)
		}
	}
}

// A stream given a notice reports every value and its close, so its
// reader receives only when told to and never blocks; Cancelled ends it
// in place of the context's own watch.
func TestStreamNoticeCountsEveryReceive(t *testing.T) {
	d, bus, stop := runBus(t)
	for _, end := range []string{"cancelled", "bus stopped"} {
		t.Run(end, func(t *testing.T) {
			ready := make(chan struct{}, 1000)
			notice := &StreamNotice{Sent: func() { ready <- struct{}{} }}
			ctx, cancel := context.WithCancel(WithStreamNotice(context.Background(), notice))
			defer cancel()
			ch := streamOf(ctx, t, bus, 0)
			if !notice.Taken() {
				t.Fatal("the stream did not take the notice")
			}
			// Receives without blocking, one per notice.
			receiveNow := func() (streamed, bool) {
				<-ready
				select {
				case v, ok := <-ch:
					return v, ok
				default:
					t.Fatal("a notice came with nothing to receive")
					return streamed{}, false
				}
			}
			recordAlertEvents(t, d, bus, 0, 1)
			if v, ok := receiveNow(); !ok || v.typ != "0" {
				t.Fatalf("first event: %+v", v)
			}
			recordAlertEvents(t, d, bus, 1, 50)
			for i := 1; i <= 50; i++ {
				if v, ok := receiveNow(); !ok || v.typ != fmt.Sprint(i) {
					t.Fatalf("event %d: got %+v (open %v)", i, v, ok)
				}
			}
			if end == "cancelled" {
				cancel()
				notice.Cancelled()
				if _, ok := receiveNow(); ok {
					t.Fatal("the stream stayed open after Cancelled")
				}
				return
			}
			stop()
			if v, ok := receiveNow(); !ok || !errors.Is(v.err, events.ErrClosed) {
				t.Fatalf("got %+v (open %v), want ErrClosed", v, ok)
			}
			if _, ok := receiveNow(); ok {
				t.Fatal("the stream stayed open after reporting the stop")
			}
		})
	}
}
