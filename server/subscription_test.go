package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/resolvers"
	"github.com/klaxonhq/klaxon/schedules"
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
				uuid, opened, seen := h.postUntilLive(c, token, "alerts", "inbound")
				var first alertEventData
				var in inboundLogData
				if jsonUnmarshalData(seen["alerts"].Payload, &first) != nil || jsonUnmarshalData(seen["inbound"].Payload, &in) != nil {
					t.Fatalf("undecodable events: %+v", seen)
				}
				if first.AlertEvents.Type != "OPENED" || first.AlertEvents.Alert.Severity != "high" {
					t.Fatalf("first event: %+v", first)
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
		if errors.Is(err, errReadTimeout) {
			continue
		}
		if err != nil {
			t.Fatal(err)
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
	key, err := auth.SigningKey(ctx, other, time.Now())
	if err != nil {
		h.t.Fatal(err)
	}
	tokens, _ := auth.NewTokens(key, time.Hour, time.Now)
	authSvc, err := auth.NewService(other, tokens, time.Now)
	if err != nil {
		h.t.Fatal(err)
	}
	authSvc.SetPasswordCost(bcrypt.MinCost)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var alertingSvc *alerting.Service
	policyStore := policies.NewStore(other, time.Now, func() { alertingSvc.RoutesChanged() })
	scheduleStore := schedules.NewStore(other, time.Now, policyStore)
	integrationStore := integrations.NewStore(other, "https://klaxon.example", time.Now, func() { alertingSvc.RoutesChanged() })
	channels := notifiers.NewChannels(nil, nil)
	contactStore := contacts.NewStore(other, time.Now, log, channels)
	bus := events.NewBus(other, log)
	alertingSvc = alerting.NewService(alerting.Options{DB: other, PublicURL: "https://klaxon.example", Now: time.Now, Log: log, Config: alerting.Config{
		OnCall: scheduleStore, Policies: policyStore, Integrations: integrationStore, Contacts: contactStore, Groups: authSvc,
	}, Channels: channels, Events: bus})
	busCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); bus.Run(busCtx) }()
	ts := httptest.NewServer(server.New(server.Config{}, other, alertingSvc, authSvc, bus, &resolvers.Resolver{Alerting: alertingSvc, Auth: authSvc, Events: bus, Audit: audit.NewLog(other), ScheduleStore: scheduleStore, PolicyStore: policyStore, ContactStore: contactStore, IntegrationStore: integrationStore}, log).Handler())
	h.t.Cleanup(func() { ts.Close(); stop(); <-done })
	c := *h
	c.db, c.auth, c.alerting, c.channels, c.contacts, c.bus, c.srv, c.client = other, authSvc, alertingSvc, channels, contactStore, bus, ts, ts.Client()
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

func TestSubscriptionAuthFailures(t *testing.T) {
	d := dbtest.SQLite(t)
	h := newHarness(t, d, server.Config{AllowedOrigins: []string{"https://ui.example"}})
	viewer := h.createUser(db.RoleViewer)
	for _, proto := range []string{protoTransportWS, protoLegacyWS} {
		t.Run(proto, func(t *testing.T) {
			h := h.with(t)
			for name, token := range map[string]string{"no token": "", "forged token": "eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl"} {
				c, _, err := h.dialWS(proto, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got := c.init(token); got == "connection_ack" {
					t.Fatalf("%s: connection accepted", name)
				}
			}

			// graphql-transport-ws: subscribing before connection_init
			// is closed with 4401, as the protocol requires.
			if proto == protoTransportWS {
				c, _, err := h.dialWS(proto, nil)
				if err != nil {
					t.Fatal(err)
				}
				c.subscribe("early", alertEventsQuery, nil)
				if code := c.closeCode(5 * time.Second); code != 4401 {
					t.Fatalf("subscribe before connection_init: close code %d, want 4401", code)
				}
			}

			// A browser page from an origin that is not allowed never
			// gets a socket.
			_, resp, err := h.dialWS(proto, http.Header{"Origin": {"https://evil.example"}})
			if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("foreign origin: err %v, response %+v", err, resp)
			}
			if _, _, err := h.dialWS(proto, http.Header{"Origin": {"https://ui.example"}}); err != nil {
				t.Fatalf("allowed origin: %v", err)
			}

			// A token that expires while the socket is open closes it
			// with 4401.
			key, err := auth.SigningKey(context.Background(), d, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			almostExpired, _ := auth.NewTokens(key, time.Hour, func() time.Time { return time.Now().Add(-time.Hour + 3*time.Second) })
			id, _ := strconv.Atoi(viewer.ID)
			u, err := h.auth.User(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			token, _, err := almostExpired.Issue(u)
			if err != nil {
				t.Fatal(err)
			}
			c := h.connect(proto, token)
			c.subscribe("alerts", alertEventsQuery, nil)
			if code := c.closeCode(10 * time.Second); code != 4401 {
				t.Fatalf("expired token: close code %d, want 4401", code)
			}
		})
	}
}

// TestSubscriptionFilters checks each filter against one ordered story;
// every stream ends with an event that all filters accept, so an event
// a filter should have dropped shows up before it.
func TestSubscriptionFilters(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		a, b := h.createIntegration("DETECTIFY"), h.createIntegration("DETECTIFY")
		all := h.connect(protoTransportWS, h.admin.Token)
		all.subscribe("s", alertEventsQuery, nil)
		// The others start from the warm-up's cursor, so they miss
		// nothing however late they register.
		from := h.primed(all, "s", b.Token(t))
		filtered := map[string]map[string]any{
			"integration": {"integrationId": a.ID},
			"severity":    {"severity": []string{"CRITICAL"}},
			"status":      {"status": []string{"ACKNOWLEDGED"}},
			"types":       {"types": []string{"OPENED"}},
		}
		clients := map[string]*wsClient{}
		for name, filter := range filtered {
			c := h.connect(protoTransportWS, h.admin.Token)
			c.subscribe("s", alertEventsQuery, map[string]any{"filter": filter, "after": from})
			clients[name] = c
		}
		inboundB := h.connect(protoLegacyWS, h.admin.Token)
		inboundB.subscribe("s", inboundLogQuery, map[string]any{"integrationId": b.ID, "after": from})
		// Each step waits for its event, so the window holds each alert
		// in the status it had then.
		step := func(typ, alertID string) string {
			t.Helper()
			e := all.nextAlertEvent("s")
			if e.AlertEvents.Type != typ || e.AlertEvents.Alert.ID != alertID {
				t.Fatalf("story: got %s, want %s %s", describe(e), typ, alertID)
			}
			return typ + " " + alertID
		}
		ack := func(id string) {
			h.mustGQL(h.admin.Token, `mutation($id: ID!) { acknowledgeAlert(id: $id) { id } }`, map[string]any{"id": id}, nil)
		}
		f1 := h.postWebhook(a.Token(t), finding(h.unique("f"), "high"))
		opened1 := step("OPENED", f1.alert())
		f2 := h.postWebhook(b.Token(t), finding(h.unique("f"), "critical"))
		opened2 := step("OPENED", f2.alert())
		ack(f1.alert())
		acked1 := step("ACKNOWLEDGED", f1.alert())
		f3 := h.postWebhook(a.Token(t), finding(h.unique("f"), "critical"))
		opened3 := step("OPENED", f3.alert())
		ack(f3.alert())
		acked3 := step("ACKNOWLEDGED", f3.alert())
		f4 := h.postWebhook(b.Token(t), finding(h.unique("f"), "low"))

		want := map[string][]string{
			"integration": {opened1, acked1, opened3, acked3},
			"severity":    {opened2, opened3, acked3},
			"status":      {acked1, acked3},
			"types":       {opened1, opened2, opened3},
		}
		for name, c := range clients {
			var got []string
			for range want[name] {
				e := c.nextAlertEvent("s")
				got = append(got, e.AlertEvents.Type+" "+e.AlertEvents.Alert.ID)
			}
			if strings.Join(got, ", ") != strings.Join(want[name], ", ") {
				t.Errorf("filter %s: got %v, want %v", name, got, want[name])
			}
		}
		for _, id := range []string{f2.MessageID, f4.MessageID} {
			if in := inboundB.nextInbound("s"); in.InboundLog.ID != id {
				t.Fatalf("inboundLog of one integration: got message %s, want %s", in.InboundLog.ID, id)
			}
		}
	})
}

func TestSubscriptionResumesFromCursorWithoutGapsOrRepeats(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("DETECTIFY")
		c := h.connect(protoTransportWS, h.admin.Token)
		c.subscribe("s", alertEventsQuery, map[string]any{"filter": map[string]any{"types": []string{"OPENED"}}})
		cursor := h.primed(c, "s", integ.Token(t))
		c.conn.Close()

		// Missed while disconnected.
		var missed []string
		for range 5 {
			missed = append(missed, h.postWebhook(integ.Token(t), finding(h.unique("f"), "high")).alert())
		}
		c = h.connect(protoLegacyWS, h.admin.Token)
		c.subscribe("s", alertEventsQuery, map[string]any{"after": cursor, "filter": map[string]any{"types": []string{"OPENED"}}})
		live := h.postWebhook(integ.Token(t), finding(h.unique("f"), "high")).alert()
		var got []string
		for range len(missed) + 1 {
			got = append(got, c.nextAlertEvent("s").AlertEvents.Alert.ID)
		}
		want := append(missed, live)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("after resuming: got alerts %v, want %v", got, want)
		}
	})
}

func TestSubscriptionWithBadCursorIsRefused(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	c := h.connect(protoTransportWS, h.admin.Token)
	c.subscribe("s", alertEventsQuery, map[string]any{"after": "not-a-cursor"})
	m, err := c.read(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var errs []gqlError
	switch m.Type {
	case "error":
		json.Unmarshal(m.Payload, &errs)
	case "next":
		var result struct {
			Errors []gqlError `json:"errors"`
		}
		json.Unmarshal(m.Payload, &result)
		errs = result.Errors
	}
	if len(errs) == 0 || errs[0].Extensions.Code != "BAD_USER_INPUT" {
		t.Fatalf("bad cursor: got %s %s", m.Type, m.Payload)
	}
}

// TestStuckSubscriberSlowsNobody keeps one subscriber that never reads
// while 1,000 webhooks are ingested; a healthy subscriber gets them all.
func TestStuckSubscriberSlowsNobody(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("DETECTIFY")
		token := integ.Token(t)
		stuck := h.connectStuck(protoTransportWS, h.admin.Token)
		stuck.subscribe("s", alertEventsQuery, nil)
		healthy := h.connect(protoTransportWS, h.admin.Token)
		healthy.subscribe("s", alertEventsQuery, map[string]any{"filter": map[string]any{"types": []string{"OPENED"}}})
		h.primed(healthy, "s", token)

		const total, senders = 1000, 8
		opened := make(chan string, total)
		received := make(chan map[string]bool)
		go func() {
			seen := map[string]bool{}
			for len(seen) < total {
				m, err := healthy.read(30 * time.Second)
				if err != nil {
					break
				}
				var e alertEventData
				if jsonUnmarshalData(m.Payload, &e) == nil {
					seen[e.AlertEvents.Alert.ID] = true
				}
			}
			received <- seen
		}()
		start := time.Now()
		var wg sync.WaitGroup
		for s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := s; i < total; i += senders {
					r := h.webhook(http.MethodPost, token, finding(h.unique("f"), "high"), map[string]string{"Content-Type": "application/json"})
					if r.HTTPStatus != http.StatusAccepted && r.HTTPStatus != http.StatusOK {
						t.Errorf("webhook %d: %d %s", i, r.HTTPStatus, r.Raw)
						return
					}
					opened <- r.alert()
				}
			}()
		}
		wg.Wait()
		close(opened)
		t.Logf("%d webhooks ingested in %v with a stuck subscriber", total, time.Since(start))
		seen := <-received
		for id := range opened {
			if !seen[id] {
				t.Fatalf("healthy subscriber missed alert %s (got %d of %d)", id, len(seen), total)
			}
		}
	})
}
