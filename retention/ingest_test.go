package retention_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// Ingest goes on while a large backlog is pruned: every message sent
// meanwhile is stored whole, none fails, and the backlog is gone after.
func TestIngestWhilePruning(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d)
		due := backlog{Messages: 12_000, ClosedAlerts: 1_000, Events: 2_000}
		w.seed(due)
		p := w.pruner(defaults)

		const senders, each = 8, 100
		var wg sync.WaitGroup
		errs := make(chan error, senders*each+1)
		var report struct {
			pruned map[string]int
		}
		wg.Go(func() {
			r, err := p.RunOnce(context.Background())
			if err != nil {
				errs <- fmt.Errorf("prune: %w", err)
			}
			report.pruned = r.Pruned
		})
		sent := make(chan int, senders*each)
		for s := range senders {
			wg.Go(func() {
				for i := range each {
					body := fmt.Sprintf(`{"dedup_key":"new-%d-%d","summary":"sent while pruning"}`, s, i)
					res, err := w.svc.Ingest(context.Background(), alerting.Inbound{Token: w.integ.Token, Body: []byte(body)})
					if err != nil {
						errs <- fmt.Errorf("ingest %d/%d: %w", s, i, err)
						continue
					}
					sent <- res.MessageID
				}
			})
		}
		wg.Wait()
		close(errs)
		close(sent)
		for err := range errs {
			t.Fatal(err)
		}
		stored := 0
		for id := range sent {
			var m db.InboundMessage
			if err := d.NewSelect().Model(&m).Where("id = ?", id).Scan(w.ctx); err != nil {
				t.Fatalf("message %d: %v", id, err)
			}
			if m.BodyPrunedAt != nil || len(m.Body) == 0 || m.Status != db.InboundOpened {
				t.Fatalf("message %d stored as %s, pruned %v, body %q", id, m.Status, m.BodyPrunedAt, m.Body)
			}
			stored++
		}
		if stored != senders*each {
			t.Fatalf("%d messages stored, want %d", stored, senders*each)
		}
		if report.pruned["bodies"] != due.Messages || report.pruned["closed_alerts"] != due.ClosedAlerts || report.pruned["events"] < due.Events-1 {
			t.Fatalf("pruned %v, want the backlog %+v", report.pruned, due)
		}
		if n := w.count("inbound_messages", "body_pruned_at IS NULL AND received_at < ?", w.clock.Now().Add(-90*day)); n != 0 {
			t.Fatalf("%d old bodies left", n)
		}
	})
}
