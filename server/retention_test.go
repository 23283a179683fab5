package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/retention"
	"github.com/klaxonhq/klaxon/server"
)

// A message whose body was pruned stays in the inbound log with body null
// and bodyPrunedAt set, and the pruning shows on /metrics.
func TestInboundLogShowsPrunedBodies(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		// The pruner runs as another instance would, a hundred days on.
		later := func() time.Time { return time.Now().Add(100 * 24 * time.Hour) }
		other := alerting.NewService(alerting.Options{DB: d, Now: later})
		pruner := retention.New(retention.Options{Turns: other, Now: later,
			Kinds: retention.Kinds(retention.Settings{Bodies: 90 * 24 * time.Hour}, d, other, audit.NewLog(d))})
		h := newHarness(t, d, server.Config{Metrics: pruner.Collectors()})
		token := h.createIntegration("GENERIC").Token(t)
		for _, key := range []string{"a", "b"} {
			if r := h.postWebhook(token, []byte(`{"dedup_key":"`+key+`","summary":"disk full"}`)); r.Status != "MAPPED_OPENED" {
				t.Fatalf("webhook: %s", r.Raw)
			}
		}
		report, err := pruner.RunOnce(context.Background())
		if err != nil || report.Pruned["bodies"] != 2 {
			t.Fatalf("prune: %+v, %v", report, err)
		}
		var data struct {
			InboundMessages struct {
				TotalCount int
				Nodes      []struct {
					Body         *string
					BodyPrunedAt *time.Time
					Status       string
					Alert        *struct{ ID string }
				}
			}
		}
		h.mustGQL(h.admin.Token, `{ inboundMessages { totalCount nodes { body bodyPrunedAt status alert { id } } } }`, nil, &data)
		if data.InboundMessages.TotalCount != 2 || len(data.InboundMessages.Nodes) != 2 {
			t.Fatalf("inbound log after pruning: %+v", data)
		}
		for _, m := range data.InboundMessages.Nodes {
			if m.Body != nil || m.BodyPrunedAt == nil || m.Status != "MAPPED_OPENED" || m.Alert == nil {
				t.Fatalf("pruned message shown as body %v, bodyPrunedAt %v, status %s, alert %v", m.Body, m.BodyPrunedAt, m.Status, m.Alert)
			}
		}
		_, metrics := get(t, h, "/metrics")
		for _, line := range []string{`klaxon_retention_pruned_total{kind="bodies"} 2`, `klaxon_retention_backlog{kind="bodies"} 0`} {
			if !strings.Contains(metrics, line) {
				t.Errorf("/metrics lacks %s", line)
			}
		}
	})
}

// A subscriber resuming from a cursor whose event retention has pruned
// is refused with BAD_USER_INPUT, not given a stream with a gap.
func TestResumeFromPrunedCursorIsRefused(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		token := h.createIntegration("DETECTIFY").Token(t)
		c := h.connect(protoTransportWS, h.admin.Token)
		c.subscribe("live", alertEventsQuery, nil)
		old := h.primed(c, "live", token)
		later := h.postWebhook(token, finding(h.unique("finding"), "high"))
		c.awaitAlert("live", later.alert())
		if n, err := events.Prune(context.Background(), d, time.Now().Add(time.Hour), 1000); err != nil || n == 0 {
			t.Fatalf("prune events: %d, %v", n, err)
		}
		c.subscribe("old", alertEventsQuery, map[string]any{"after": old})
		for {
			m, err := c.read(10 * time.Second)
			if err != nil {
				t.Fatalf("waiting for the refusal: %v", err)
			}
			if m.ID != "old" {
				continue
			}
			if payload := string(m.Payload); !strings.Contains(payload, "BAD_USER_INPUT") || !strings.Contains(payload, "cursor too old") {
				t.Fatalf("resume from a pruned cursor: %s %s", m.Type, payload)
			}
			return
		}
	})
}
