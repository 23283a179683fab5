package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// keepAlivePair is a websocket whose server end reads continually, as
// a socket's read loop does, and reports each message it reads on reads.
type keepAlivePair struct {
	client *websocket.Conn
	server *gorillaConn
	reads  chan struct{}
	ended  chan struct{}
}

func newKeepAlivePair(t *testing.T, subprotocol string) *keepAlivePair {
	t.Helper()
	p := &keepAlivePair{reads: make(chan struct{}, 16), ended: make(chan struct{})}
	accepted := make(chan *gorillaConn, 1)
	upgrader := websocket.Upgrader{Subprotocols: []string{subprotocol}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		accepted <- newGorillaConn(conn)
	}))
	t.Cleanup(srv.Close)
	dialer := websocket.Dialer{Subprotocols: []string{subprotocol}}
	client, _, err := dialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	p.client, p.server = client, <-accepted
	t.Cleanup(func() { p.server.Close() })
	go func() {
		defer close(p.ended)
		for {
			_, r, err := p.server.nextReader()
			if err != nil {
				return
			}
			io.Copy(io.Discard, r)
			p.reads <- struct{}{}
		}
	}()
	return p
}

// next reads the client's next message; the deadline only keeps a broken
// test from hanging.
func (p *keepAlivePair) next(t *testing.T) (string, error) {
	t.Helper()
	p.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := p.client.ReadMessage()
	return string(msg), err
}

func TestKeepAliveClosesSilentTransportWSClients(t *testing.T) {
	const interval = time.Hour // the timer never fires: sweeps are called here
	k := newKeepAlive(interval, newSendQueue(2, time.Hour), slog.New(slog.NewTextHandler(io.Discard, nil)))
	p := newKeepAlivePair(t, subprotocolTransportWS)
	k.add(p.server)
	if n, scheduled := k.active(); n != 1 || !scheduled {
		t.Fatalf("after add: %d sockets, scheduled %v", n, scheduled)
	}

	k.sweep(time.Now())
	if msg, err := p.next(t); err != nil || msg != `{"type":"ping"}` {
		t.Fatalf("first sweep: got %q, %v; want a ping", msg, err)
	}
	if err := p.client.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`)); err != nil {
		t.Fatal(err)
	}
	<-p.reads
	answered := p.server.lastRead()

	// Within two intervals of the pong the socket stays open.
	k.sweep(answered.Add(2 * interval))
	if err := p.server.writeMessage("next", "", nil); err != nil {
		t.Fatalf("socket closed although its client answered: %v", err)
	}
	for {
		msg, err := p.next(t)
		if err != nil {
			t.Fatalf("socket closed although its client answered: %v", err)
		}
		if msg != `{"type":"ping"}` {
			break
		}
	}

	// Silent for longer, it is closed.
	k.sweep(answered.Add(2*interval + time.Nanosecond))
	for {
		if _, err := p.next(t); err != nil {
			break
		}
	}
	<-p.ended
	k.remove(p.server)
	if n, scheduled := k.active(); n != 0 || scheduled {
		t.Fatalf("after the last socket left: %d sockets, scheduled %v", n, scheduled)
	}
}

func TestKeepAliveOnlyPingsGraphQLWSClients(t *testing.T) {
	const interval = time.Hour
	k := newKeepAlive(interval, newSendQueue(2, time.Hour), slog.New(slog.NewTextHandler(io.Discard, nil)))
	p := newKeepAlivePair(t, "graphql-ws")
	k.add(p.server)
	t.Cleanup(func() { k.remove(p.server) })

	// graphql-ws clients never answer; silence is no reason to close.
	k.sweep(time.Now().Add(10 * interval))
	if msg, err := p.next(t); err != nil || msg != `{"type":"ka"}` {
		t.Fatalf("got %q, %v; want a keep-alive", msg, err)
	}
}

func TestKeepAliveRunsOnlyWhileSocketsAreOpen(t *testing.T) {
	k := newKeepAlive(time.Hour, newSendQueue(2, time.Hour), slog.New(slog.NewTextHandler(io.Discard, nil)))
	a, b := newKeepAlivePair(t, "graphql-ws"), newKeepAlivePair(t, subprotocolTransportWS)
	k.add(a.server)
	k.add(b.server)

	// A sweep reschedules itself while sockets remain.
	k.tick()
	if n, scheduled := k.active(); n != 2 || !scheduled {
		t.Fatalf("after a sweep: %d sockets, scheduled %v", n, scheduled)
	}
	k.remove(a.server)
	if _, scheduled := k.active(); !scheduled {
		t.Fatal("the sweep stopped with a socket still open")
	}
	k.remove(b.server)
	if n, scheduled := k.active(); n != 0 || scheduled {
		t.Fatalf("after the last socket left: %d sockets, scheduled %v", n, scheduled)
	}

	// A sweep that was already due when the last socket left does not
	// reschedule itself, and a new socket starts the timer again.
	k.add(a.server)
	k.mu.Lock()
	k.timer.Stop() // as if it had just fired
	k.mu.Unlock()
	k.remove(a.server)
	if _, scheduled := k.active(); !scheduled {
		t.Fatal("a sweep in flight lost its timer")
	}
	k.tick()
	if n, scheduled := k.active(); n != 0 || scheduled {
		t.Fatalf("after the due sweep: %d sockets, scheduled %v", n, scheduled)
	}
	k.add(b.server)
	if _, scheduled := k.active(); !scheduled {
		t.Fatal("a new socket did not start the timer")
	}
	k.remove(b.server)
}
