package alerting_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// Instances on one PostgreSQL database commit their batches side by side
// with no lock between them, and a load balancer sends them messages of
// the same sources. Each source still has one alert that counts every
// repeat, every message is stored once with one event, and nothing fails
// for waiting on the other instance.
func TestTwoInstancesIngestTheSameSourcesSideBySide(t *testing.T) {
	d := dbtest.Postgres(t)
	second, err := db.Open(context.Background(), d.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	ctx := context.Background()
	instances := []*alerting.Service{newService(t, d), newService(t, second)}
	integ := detectify(t, d, instances[0])
	template := sample(t, "new_finding_high.json")

	const sources, repeats, senders = 24, 12, 16
	bodies := make(chan []byte, sources*repeats)
	for range repeats {
		for s := range sources {
			bodies <- bytes.Replace(template, []byte("3f9c2a8e-6b1d-4c57-9e0a-5d2b7c41f8a3"), fmt.Appendf(nil, "source-%02d", s), 1)
		}
	}
	close(bodies)
	var wg sync.WaitGroup
	errs := make(chan error, sources*repeats)
	for i := range senders {
		svc := instances[i%len(instances)]
		wg.Go(func() {
			for body := range bodies {
				if _, err := svc.Ingest(ctx, alerting.Inbound{Token: integ.Token, Body: body}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("ingest: %v", err)
	}

	var perSource []struct {
		SourceID string `bun:"source_id"`
		Alerts   int    `bun:"alerts"`
		Appends  int    `bun:"appends"`
	}
	if err := d.NewRaw("SELECT source_id, count(*) AS alerts, sum(append_count) AS appends FROM alerts GROUP BY source_id ORDER BY source_id").Scan(ctx, &perSource); err != nil {
		t.Fatal(err)
	}
	if len(perSource) != sources {
		t.Fatalf("%d sources have alerts, want %d", len(perSource), sources)
	}
	for _, s := range perSource {
		if s.Alerts != 1 || s.Appends != repeats-1 {
			t.Errorf("source %s: %d alerts with %d appends, want 1 with %d", s.SourceID, s.Alerts, s.Appends, repeats-1)
		}
	}
	var stored, inboundEvents, alertEvents int
	if err := d.NewRaw(`SELECT (SELECT count(*) FROM inbound_messages),
		(SELECT count(DISTINCT inbound_message_id) FROM events WHERE kind = 'inbound'),
		(SELECT count(*) FROM events WHERE kind = 'alert')`).Scan(ctx, &stored, &inboundEvents, &alertEvents); err != nil {
		t.Fatal(err)
	}
	if want := sources * repeats; stored != want || inboundEvents != want || alertEvents != want {
		t.Fatalf("%d messages stored, %d with an event, %d alert events; want %d of each", stored, inboundEvents, alertEvents, want)
	}
}
