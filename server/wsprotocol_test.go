package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// TestWebsocketProtocolErrorsCloseWithTheirCodes checks the close codes
// graphql-transport-ws gives each misuse; legacy graphql-ws clients, whose
// protocol has no codes of its own, hear the reason first.
func TestWebsocketProtocolErrorsCloseWithTheirCodes(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), server.Config{WebsocketInitTimeout: 300 * time.Millisecond})
	token := h.admin.Token
	cases := []struct {
		name string
		do   func(c *wsClient)
		code int
	}{
		{"no connection_init in time", func(c *wsClient) {}, 4408},
		{"a second connection_init", func(c *wsClient) {
			if got := c.init(token); got != "connection_ack" {
				t.Fatalf("connection_init: %s", got)
			}
			c.send(wsMessage{Type: "connection_init"})
		}, 4429},
		{"an operation id already running", func(c *wsClient) {
			c.init(token)
			c.subscribe("same", alertEventsQuery, nil)
			c.subscribe("same", alertEventsQuery, nil)
		}, 4409},
		{"a message that is not JSON", func(c *wsClient) {
			c.conn.WriteMessage(websocket.TextMessage, []byte("hello"))
		}, 4400},
		{"a message of no known type", func(c *wsClient) {
			c.init(token)
			c.send(wsMessage{Type: "shout"})
		}, 4400},
		{"an operation without an id", func(c *wsClient) {
			c.init(token)
			c.subscribe("", alertEventsQuery, nil)
		}, 4400},
	}
	for _, proto := range []string{protoTransportWS, protoLegacyWS} {
		for _, tc := range cases {
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				h := h.with(t)
				c, _, err := h.dialWS(proto, nil)
				if err != nil {
					t.Fatal(err)
				}
				c.t = t
				tc.do(c)
				var sawReason bool
				for {
					m, err := c.read(5 * time.Second)
					if err == nil {
						sawReason = sawReason || m.Type == "connection_error"
						continue
					}
					var ce *websocket.CloseError
					if !errors.As(err, &ce) {
						t.Fatalf("expected close %d, got %v", tc.code, err)
					}
					if ce.Code != tc.code {
						t.Fatalf("close code %d (%q), want %d", ce.Code, ce.Text, tc.code)
					}
					break
				}
				if proto == protoLegacyWS && !sawReason {
					t.Errorf("legacy client got no connection_error before the close")
				}
			})
		}
	}
}

// TestWebsocketOperationLifecycle covers what a client sees of its
// operations: a stopped subscription goes quiet without ending the
// socket, a query runs to its end, and a refused operation gets an error
// (and, on graphql-transport-ws, nothing after it).
func TestWebsocketOperationLifecycle(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	token := h.createIntegration("DETECTIFY").Token(t)
	for _, proto := range []string{protoTransportWS, protoLegacyWS} {
		t.Run(proto, func(t *testing.T) {
			h := h.with(t)
			c := h.connect(proto, h.admin.Token)
			c.t = t
			c.subscribe("kept", alertEventsQuery, nil)
			c.subscribe("stopped", alertEventsQuery, nil)
			h.postUntilLive(c, token, "kept", "stopped")

			stop := "complete"
			if proto == protoLegacyWS {
				stop = "stop"
			}
			c.send(wsMessage{ID: "stopped", Type: stop})
			// The id is free again at once.
			c.subscribe("stopped", alertEventsQuery, nil)
			c.send(wsMessage{ID: "stopped", Type: stop})
			// The socket and the webhook are two connections, which the
			// server reads independently: a value it sends before reading
			// the stop is no fault. The socket's messages are handled in
			// order, so once a query sent after the stop has its answer,
			// the stop has been handled.
			c.subscribe("barrier", `query { me { email } }`, nil)
			for c.skipTo("barrier").Type != "complete" {
			}

			r := h.postWebhook(token, finding(h.unique("after-stop"), "high"))
			for {
				m, err := c.read(5 * time.Second)
				if err != nil {
					t.Fatalf("waiting for the kept subscription: %v", err)
				}
				var e alertEventData
				if m.ID == "stopped" && (m.Type != "data" && m.Type != "next" || jsonUnmarshalData(m.Payload, &e) != nil || e.AlertEvents.Alert.ID == r.alert()) {
					t.Fatalf("stopped subscription still sent %s %s", m.Type, m.Payload)
				}
				if m.ID == "kept" && jsonUnmarshalData(m.Payload, &e) == nil && e.AlertEvents.Alert.ID == r.alert() {
					break
				}
			}

			c.subscribe("me", `query { me { email } }`, nil)
			var me struct{ Me struct{ Email string } }
			if errs := c.nextData("me", &me); len(errs) > 0 || me.Me.Email != h.admin.Email {
				t.Fatalf("query over the socket: %+v, errors %+v", me, errs)
			}
			if m := c.skipTo("me"); m.Type != "complete" {
				t.Fatalf("after the query's result: %s %s, want complete", m.Type, m.Payload)
			}

			c.subscribe("bad", `subscription { alertEvents { nope } }`, nil)
			m := c.skipTo("bad")
			if m.Type != "error" || !strings.Contains(string(m.Payload), "nope") {
				t.Fatalf("invalid subscription: %s %s, want error", m.Type, m.Payload)
			}
			// A message read after the error shows whether a complete for
			// the refused operation came first.
			c.subscribe("me2", `query { me { email } }`, nil)
			next := c.skipTo("me2", "bad")
			switch {
			case proto == protoTransportWS && next.ID == "bad":
				t.Fatalf("graphql-transport-ws: %s after error", next.Type)
			case proto == protoLegacyWS && (next.ID != "bad" || next.Type != "complete"):
				t.Fatalf("graphql-ws: %s %s after error, want complete", next.Type, next.ID)
			}
		})
	}
}

// skipTo reads until a message for one of ids, skipping other operations'.
func (c *wsClient) skipTo(ids ...string) wsMessage {
	c.t.Helper()
	for {
		m, err := c.read(5 * time.Second)
		if err != nil {
			c.t.Fatalf("waiting for %v: %v", ids, err)
		}
		for _, id := range ids {
			if m.ID == id {
				return m
			}
		}
	}
}

// TestIdleSubscriptionsHoldNoGoroutine checks what makes an idle
// subscriber cheap: once its events are delivered, a socket is its read
// loop alone, with no goroutine for its subscriptions.
func TestIdleSubscriptionsHoldNoGoroutine(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	token := h.createIntegration("DETECTIFY").Token(t)
	const sockets = 10
	var clients []*wsClient
	for i := range sockets {
		proto := protoTransportWS
		if i%2 == 1 {
			proto = protoLegacyWS
		}
		c := h.connect(proto, h.admin.Token)
		c.subscribe("alerts", alertEventsQuery, nil)
		c.subscribe("inbound", inboundLogQuery, nil)
		clients = append(clients, c)
	}
	for _, c := range clients {
		h.postUntilLive(c, token, "alerts", "inbound")
	}
	r := h.postWebhook(token, finding(h.unique("last"), "high"))
	for _, c := range clients {
		c.awaitAlert("alerts", r.alert())
	}

	// The goroutines that delivered, and other tests' read loops, may
	// take a moment to return.
	var loops, others int
	for range 100 {
		loops, others = countGoroutines("(*wsConnection).run", "(*wsOperation)", "resolvers.(*pump")
		if loops == sockets && others == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if loops != sockets || others != 0 {
		t.Fatalf("%d sockets with 2 subscriptions each: %d read loops and %d other goroutines, want %d and 0", sockets, loops, others, sockets)
	}
}

// countGoroutines counts the goroutines whose stack holds first, and
// those whose stack holds any of others.
func countGoroutines(first string, others ...string) (int, int) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var a, b int
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, first) {
			a++
		}
		for _, o := range others {
			if strings.Contains(g, o) {
				b++
				break
			}
		}
	}
	return a, b
}

// The legacy protocol's connection_terminate ends the socket normally.
func TestLegacyConnectionTerminate(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	c := h.connect(protoLegacyWS, h.admin.Token)
	c.send(wsMessage{Type: "connection_terminate"})
	if code := c.closeCode(5 * time.Second); code != websocket.CloseNormalClosure {
		t.Fatalf("close code %d, want %d", code, websocket.CloseNormalClosure)
	}
}

// Signing out ends the websockets the session opened, not only its HTTP
// requests; other users' sockets stay open.
func TestSignOutEndsWebsockets(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	token := h.createIntegration("DETECTIFY").Token(t)
	for _, proto := range []string{protoTransportWS, protoLegacyWS} {
		t.Run(proto, func(t *testing.T) {
			h := h.with(t)
			leaving, staying := h.newUser(db.RoleViewer), h.newUser(db.RoleViewer)
			gone := h.connect(proto, leaving.Token)
			gone.subscribe("s", alertEventsQuery, nil)
			kept := h.connect(proto, staying.Token)
			kept.subscribe("s", alertEventsQuery, nil)
			h.postUntilLive(kept, token, "s")

			h.server.CheckWebsocketTokens()
			r := h.postWebhook(token, finding(h.unique("before"), "high"))
			gone.awaitAlert("s", r.alert())

			h.mustGQL(leaving.Token, `mutation { signOut }`, nil, nil)
			h.server.CheckWebsocketTokens()
			if code := gone.closeCode(5 * time.Second); code != 4401 {
				t.Fatalf("signed-out socket: close code %d, want 4401", code)
			}
			r = h.postWebhook(token, finding(h.unique("after"), "high"))
			kept.awaitAlert("s", r.alert())
		})
	}
}

// A socket runs at most 100 operations at once; the next is refused with
// an error, and completing one makes room.
func TestWebsocketOperationsPerSocketAreBounded(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	c := h.connect(protoTransportWS, h.admin.Token)
	for i := range 100 {
		c.subscribe(fmt.Sprint("s", i), alertEventsQuery, nil)
	}
	c.subscribe("one-too-many", alertEventsQuery, nil)
	m := c.skipTo("one-too-many")
	if m.Type != "error" || !strings.Contains(string(m.Payload), "at most 100") {
		t.Fatalf("101st operation: %s %s, want an error", m.Type, m.Payload)
	}
	c.send(wsMessage{ID: "s0", Type: "complete"})
	c.subscribe("me", `query { me { email } }`, nil)
	var me struct{ Me struct{ Email string } }
	if errs := c.nextData("me", &me); len(errs) > 0 || me.Me.Email != h.admin.Email {
		t.Fatalf("after one completed: %+v, errors %+v", me, errs)
	}
}

// TestWebsocketUnknownSubprotocolIsRefused holds that a client offering
// only subprotocols Klaxon does not speak is refused at the handshake with
// a 400 saying which ones it does, instead of being answered in the legacy
// protocol it never asked for; one that names none still gets the legacy
// protocol.
func TestWebsocketUnknownSubprotocolIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	url := "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/graphql"
	dial := func(protocols ...string) (*websocket.Conn, *http.Response, error) {
		d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 5 * time.Second}
		conn, resp, err := d.Dial(url, nil)
		if conn != nil {
			t.Cleanup(func() { conn.Close() })
		}
		return conn, resp, err
	}
	for _, offered := range [][]string{{"graphql-sse"}, {"mqtt", "wamp.2.json"}, {"GRAPHQL-WS-NOT"}} {
		_, resp, err := dial(offered...)
		if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("offering %v: want a 400 handshake refusal, got %v, %v", offered, resp, err)
		}
		var body struct{ Error string }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || !strings.Contains(body.Error, "graphql-transport-ws") || !strings.Contains(body.Error, "graphql-ws") {
			t.Errorf("offering %v: want a JSON error naming the protocols spoken, got %q (%v)", offered, body.Error, err)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("offering %v: the refusal lacks the security headers: %v", offered, resp.Header)
		}
	}
	for offered, want := range map[string]string{
		"mqtt, graphql-transport-ws": "graphql-transport-ws",
		"graphql-ws":                 "graphql-ws",
		"":                           "",
	} {
		var protocols []string
		if offered != "" {
			protocols = strings.Split(offered, ", ")
		}
		conn, _, err := dial(protocols...)
		if err != nil {
			t.Fatalf("offering %q: %v", offered, err)
		}
		if conn.Subprotocol() != want {
			t.Errorf("offering %q: got subprotocol %q, want %q", offered, conn.Subprotocol(), want)
		}
	}
}
