package dbtest

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/klaxonhq/klaxon/db"
)

// Relay is a TCP relay between a test's database connections and
// PostgreSQL that the test can cut, as a network partition or a server
// restart would: every open connection is closed, and new ones are
// closed as soon as they arrive, until it is restored. The shared
// PostgreSQL itself is never touched.
type Relay struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
	// restoreAfter, when positive, restores the relay once that many
	// connections have been refused.
	restoreAfter int
}

// PostgresBehindRelay is Postgres reached through a Relay: a fresh,
// migrated schema, and a DB whose every connection goes through the
// relay.
func PostgresBehindRelay(t testing.TB) (*db.DB, *Relay) {
	t.Helper()
	direct := Postgres(t)
	u, err := url.Parse(direct.URL)
	if err != nil {
		t.Fatalf("parse %s: %v", direct.URL, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{ln: ln, target: u.Host, conns: map[net.Conn]struct{}{}}
	go r.serve()
	t.Cleanup(func() {
		ln.Close()
		r.Cut()
	})
	u.Host = ln.Addr().String()
	d, err := db.Open(context.Background(), u.String())
	if err != nil {
		t.Fatalf("open through the relay: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d, r
}

// Cut closes every connection through the relay and refuses new ones
// until Restore.
func (r *Relay) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = true
	for c := range r.conns {
		c.Close()
		delete(r.conns, c)
	}
}

// CutUntilRefused is Cut, restored by itself once n connections have
// been refused: the test knows the outage was met without waiting for it.
func (r *Relay) CutUntilRefused(n int) {
	r.Cut()
	r.mu.Lock()
	r.restoreAfter = n
	r.mu.Unlock()
}

// Restore lets connections through again.
func (r *Relay) Restore() {
	r.mu.Lock()
	r.down, r.restoreAfter = false, 0
	r.mu.Unlock()
}

func (r *Relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		go r.relay(c)
	}
}

func (r *Relay) relay(client net.Conn) {
	r.mu.Lock()
	if r.down {
		if r.restoreAfter > 0 {
			if r.restoreAfter--; r.restoreAfter == 0 {
				r.down = false
			}
		}
		r.mu.Unlock()
		client.Close()
		return
	}
	r.mu.Unlock()
	server, err := net.Dial("tcp", r.target)
	if err != nil {
		client.Close()
		return
	}
	r.mu.Lock()
	if r.down {
		r.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	r.conns[client], r.conns[server] = struct{}{}, struct{}{}
	r.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	client.Close()
	server.Close()
	r.mu.Lock()
	delete(r.conns, client)
	delete(r.conns, server)
	r.mu.Unlock()
}
