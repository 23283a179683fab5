package server_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// openedOnly keeps escalation and other later events of the test's
// alerts out of the counts.
var openedOnly = map[string]any{"filter": map[string]any{"types": []string{"OPENED"}}}

// Subscriptions of one operation whose selection no caller changes get
// the same bytes for an event, encoded once, each under its own id and
// in its own protocol.
func TestSubscriptionsOfOneOperationShareOneEncoding(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		token := h.createIntegration("DETECTIFY").Token(t)
		viewer := h.newUser(db.RoleViewer)
		clients := []*wsClient{
			h.connect(protoTransportWS, h.admin.Token),
			h.connect(protoTransportWS, viewer.Token),
			h.connect(protoLegacyWS, viewer.Token),
		}
		ids := []string{"first", "second", "third"}
		for i, c := range clients {
			c.subscribe(ids[i], alertEventsQuery, openedOnly)
			h.postUntilLive(c, token, ids[i])
		}
		// Once every subscriber has this one, all earlier events are
		// delivered and counted.
		settled := h.postWebhook(token, finding(h.unique("settled"), "high"))
		for i, c := range clients {
			c.awaitAlert(ids[i], settled.alert())
		}

		before := h.server.SharedEncodes()
		r := h.postWebhook(token, finding(h.unique("shared"), "high"))
		var payloads [][]byte
		for i, c := range clients {
			payloads = append(payloads, awaitAlertMessage(c, ids[i], r.alert()).Payload)
		}
		if n := h.server.SharedEncodes() - before; n != 1 {
			t.Errorf("the event was encoded %d times for three subscriptions of one operation, want once", n)
		}
		for i := range payloads[1:] {
			if !bytes.Equal(payloads[0], payloads[i+1]) {
				t.Errorf("payloads differ:\n%s\n%s", payloads[0], payloads[i+1])
			}
		}
		var e alertEventData
		if err := jsonUnmarshalData(payloads[0], &e); err != nil || e.AlertEvents.Alert.ID != r.alert() || e.AlertEvents.Type != "OPENED" {
			t.Errorf("shared payload %s: %v", payloads[0], err)
		}
	})
}

// A selection that reaches past what is the same for every caller (here
// contact methods, redacted by who asks) is executed for each subscriber.
func TestCallerDependentSelectionIsNotShared(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	token := h.createIntegration("DETECTIFY").Token(t)
	viewer := h.newUser(db.RoleViewer)
	const query = `subscription($filter: AlertEventFilter) {
		alertEvents(filter: $filter) { type alert { id notifications { contactMethod { value } } } } }`
	clients := []*wsClient{h.connect(protoTransportWS, h.admin.Token), h.connect(protoTransportWS, viewer.Token)}
	for _, c := range clients {
		c.subscribe("s", query, openedOnly)
		h.postUntilLive(c, token, "s")
	}
	settled := h.postWebhook(token, finding(h.unique("settled"), "high"))
	for _, c := range clients {
		awaitAlertMessage(c, "s", settled.alert())
	}

	before := h.server.SharedEncodes()
	r := h.postWebhook(token, finding(h.unique("own"), "high"))
	for _, c := range clients {
		awaitAlertMessage(c, "s", r.alert())
	}
	if n := h.server.SharedEncodes() - before; n != 0 {
		t.Errorf("a caller-dependent selection was encoded to share %d times", n)
	}
}

// Sharing a result never hands it to a subscriber whose filter (its team
// scope) refuses the event: two members of team A share A's event, and
// a member of team B with the same operation never sees it.
func TestSharedResultsReachOnlyThoseWhoMayReadThem(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newTeamsFixture(t, d)
		a1 := f.connect(protoTransportWS, f.responderA.Token)
		a2 := f.connect(protoTransportWS, f.managerA.Token)
		b := f.connect(protoTransportWS, f.responderB.Token)
		for _, c := range []*wsClient{a1, a2, b} {
			c.subscribe("a", alertEventsQuery, openedOnly)
		}
		f.postUntilLive(a1, f.integA.Token(t), "a")
		f.postUntilLive(a2, f.integA.Token(t), "a")
		f.postUntilLive(b, f.integB.Token(t), "a")
		settled, _ := f.open(f.integOrg)
		for _, c := range []*wsClient{a1, a2, b} {
			c.awaitAlert("a", settled)
		}

		before := f.server.SharedEncodes()
		denied, _ := f.open(f.integA)
		a1.awaitAlert("a", denied)
		a2.awaitAlert("a", denied)
		if n := f.server.SharedEncodes() - before; n != 1 {
			t.Errorf("team A's event was encoded %d times for its two members, want once", n)
		}
		allowed, _ := f.open(f.integB)
		for {
			e := b.nextAlertEvent("a")
			if e.AlertEvents.Alert.ID == denied {
				t.Fatalf("a member of B got the shared event of an alert of A: %s", describe(e))
			}
			if e.AlertEvents.Alert.ID == allowed {
				break
			}
		}
	})
}

// Messages that reach the server together, in one read, are all handled:
// a socket waits for more only once it has read what it was sent. The
// pong says the server got to the last of them.
func TestWebsocketMessagesSentTogetherAreAllRead(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	token := h.createIntegration("DETECTIFY").Token(t)
	c := h.connectStuck(protoTransportWS, h.admin.Token)
	var frames []byte
	for _, id := range []string{"s1", "s2"} {
		m, _ := json.Marshal(wsMessage{ID: id, Type: "subscribe", Payload: json.RawMessage(`{"query":"subscription { alertEvents { alert { id } } }"}`)})
		frames = append(frames, maskedTextFrame(t, m)...)
	}
	frames = append(frames, maskedTextFrame(t, []byte(`{"type":"ping"}`))...)
	if _, err := c.conn.UnderlyingConn().Write(frames); err != nil {
		t.Fatal(err)
	}
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var m wsMessage
		if err := c.conn.ReadJSON(&m); err != nil {
			t.Fatalf("no pong for the last of three messages sent together: %v", err)
		}
		if m.Type == "pong" {
			break
		}
	}
	c.conn.SetReadDeadline(time.Time{})
	h.postUntilLive(c, token, "s1", "s2")
}

// maskedTextFrame frames p as a client must; a zero mask leaves the
// payload as it is.
func maskedTextFrame(t *testing.T, p []byte) []byte {
	f := []byte{0x81}
	switch {
	case len(p) < 126:
		f = append(f, 0x80|byte(len(p)))
	case len(p) < 1<<16:
		f = append(f, 0x80|126, byte(len(p)>>8), byte(len(p)))
	default:
		t.Fatalf("a %d-byte message needs a longer frame header", len(p))
	}
	f = append(f, 0, 0, 0, 0)
	return append(f, p...)
}

// awaitAlertMessage reads operation id's results until one is about
// alertID, and returns it as it arrived.
func awaitAlertMessage(c *wsClient, id, alertID string) wsMessage {
	c.t.Helper()
	for {
		m, err := c.read(10 * time.Second)
		if err != nil {
			c.t.Fatalf("waiting for alert %s on %s: %v", alertID, id, err)
		}
		if m.ID != id || (m.Type != "next" && m.Type != "data") {
			continue
		}
		var d struct {
			AlertEvents struct{ Alert struct{ ID string } }
		}
		if err := jsonUnmarshalData(m.Payload, &d); err != nil {
			c.t.Fatalf("undecodable result %s: %v", m.Payload, err)
		}
		if d.AlertEvents.Alert.ID == alertID {
			return m
		}
	}
}
