package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/server"
)

func TestSubscriptionsOnBothProtocols(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("DETECTIFY")
		token := integ.Token(t)
		viewer := h.newUser(db.RoleViewer)
		responder := h.newUser(db.RoleResponder)
		for _, proto := range []string{protoTransportWS, protoLegacyWS} {
			t.Run(proto, func(t *testing.T) {
				h := h.with(t)
				c := h.connect(proto, viewer.Token)
				c.subscribe("alerts", alertEventsQuery, nil)
				c.subscribe("inbound", inboundLogQuery, map[string]any{"integrationId": integ.ID})
				// Nothing tells when a subscription is registered; an
				// acknowledged alert change on another alert makes sure.
				uuid := h.unique("finding")
				opened := h.postWebhook(token, finding(uuid, "high"))
				first := c.nextAlertEvent("alerts")
				for first.AlertEvents.Alert.ID != opened.alert() {
					first = c.nextAlertEvent("alerts")
				}
				if first.AlertEvents.Type != "OPENED" || first.AlertEvents.Alert.Severity != "high" {
					t.Fatalf("first event: %+v", first)
				}
				in := c.nextInbound("inbound")
				for in.InboundLog.ID != opened.MessageID {
					in = c.nextInbound("inbound")
				}
				if in.InboundLog.Status != "MAPPED_OPENED" || in.InboundLog.Alert == nil || in.InboundLog.Alert.ID != opened.alert() || in.InboundLog.Cursor == "" {
					t.Fatalf("inbound: %+v", in)
				}

				h.postWebhook(token, finding(uuid, "high"))
				if e := c.nextAlertEvent("alerts"); e.AlertEvents.Type != "APPENDED" {
					t.Fatalf("after a repeat: %s", describe(e))
				}
				if in := c.nextInbound("inbound"); in.InboundLog.Status != "MAPPED_APPENDED" {
					t.Fatalf("inbound after a repeat: %+v", in)
				}
				h.mustGQL(responder.Token, `mutation($id: ID!) { acknowledgeAlert(id: $id) { id } }`, map[string]any{"id": opened.alert()}, nil)
				if e := c.nextAlertEvent("alerts"); e.AlertEvents.Type != "ACKNOWLEDGED" || e.AlertEvents.Alert.Status != "ACKNOWLEDGED" {
					t.Fatalf("after acknowledge: %s", describe(e))
				}
			})
		}
	})
}

// TestSubscribersSeeOtherInstances posts to one instance and subscribes on
// another sharing the PostgreSQL database.
func TestSubscribersSeeOtherInstances(t *testing.T) {
	d := dbtest.Postgres(t)
	a := newHarness(t, d, server.Config{})
	other, err := db.Open(context.Background(), d.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	b := a.sibling(other)
	integ := a.createIntegration("DETECTIFY")
	c := a.connect(protoTransportWS, a.admin.Token)
	c.subscribe("alerts", alertEventsQuery, nil)
	for range 50 {
		r := b.postWebhook(integ.Token(t), finding(a.unique("f"), "critical"))
		m, err := c.read(500 * time.Millisecond)
		if err != nil {
			continue
		}
		var got alertEventData
		if err := jsonUnmarshalData(m.Payload, &got); err != nil {
			t.Fatal(err)
		}
		if got.AlertEvents.Type == "OPENED" && got.AlertEvents.Alert.ID == r.alert() {
			return
		}
	}
	t.Fatal("no event from the other instance")
}

// sibling is a second server instance on its own connection to the same
// database, with its own event bus, as another process would be.
func (h *harness) sibling(other *db.DB) *harness {
	h.t.Helper()
	ctx := context.Background()
	key, err := auth.SigningKey(ctx, other, "", time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	tokens, _ := auth.NewTokens(key, time.Hour, time.Now)
	authSvc, err := auth.NewService(other, tokens, time.Now)
	if err != nil {
		h.t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	alertingSvc := alerting.NewService(other, "https://klaxon.example", time.Now, log)
	bus := events.NewBus(other, log)
	alertingSvc.SetEvents(bus)
	busCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); bus.Run(busCtx) }()
	ts := httptest.NewServer(server.New(server.Config{}, other, alertingSvc, authSvc, bus, log).Handler())
	h.t.Cleanup(func() { ts.Close(); stop(); <-done })
	c := *h
	c.db, c.auth, c.alerting, c.bus, c.srv, c.client = other, authSvc, alertingSvc, bus, ts, ts.Client()
	return &c
}

// jsonUnmarshalData decodes the data of a next/data payload.
func jsonUnmarshalData(payload []byte, out any) error {
	var result struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(payload, &result); err != nil {
		return err
	}
	return json.Unmarshal(result.Data, out)
}
