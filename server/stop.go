package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// A stop runs in this order: the listener closes, so new connections are
// refused; requests arriving on connections already open get 503 with a
// JSON error and "Connection: close" while the requests in flight finish;
// then http.Server.Shutdown closes the idle connections, and the open
// websockets are told the server is going away and closed.
//
// Shutdown alone would drop, unanswered, any request read after it began,
// leaving a webhook sender unable to tell whether its message was stored;
// a 503 says plainly that it was not. Websockets are hijacked connections,
// which Shutdown neither waits for nor closes, hence their own set.

// refuseWhileStopping counts the requests in flight and, once a stop has
// begun, answers 503 to new ones, readiness checks included, so a load
// balancer stops sending here too.
func (s *Server) refuseWhileStopping(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Counted before the check, so drain cannot miss a request that
		// saw the server still running.
		s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		if s.stopping.Load() {
			w.Header().Set("Connection", "close")
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "the server is stopping; retry shortly")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// drain waits until no request is in flight, or until ctx ends. Refused
// requests end at once and close their connection, so the count reaches
// zero once the requests that were running have finished. It polls, as
// http.Server.Shutdown does.
func (s *Server) drain(ctx context.Context) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for s.inFlight.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// socketSet holds the open websockets so a stop can close them.
type socketSet struct {
	mu     sync.Mutex
	closed bool
	live   map[*gorillaConn]struct{}
	// drained is closed once the set is closed and no session is left.
	drained chan struct{}
}

// add registers conn for the length of its session; it reports false
// once the set is closed.
func (s *socketSet) add(conn *gorillaConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.live == nil {
		s.live = map[*gorillaConn]struct{}{}
	}
	s.live[conn] = struct{}{}
	return true
}

// remove forgets conn, whose session has ended.
func (s *socketSet) remove(conn *gorillaConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live[conn]; !ok {
		return
	}
	delete(s.live, conn)
	if s.closed && len(s.live) == 0 {
		close(s.drained)
	}
}

// closeAll refuses new websockets, sends every open one a "going away"
// close frame (clients reconnect on it, to this instance once it is back
// or to another) and waits until their sessions end or ctx does.
func (s *socketSet) closeAll(ctx context.Context) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.drained = make(chan struct{})
	if len(s.live) == 0 {
		close(s.drained)
	}
	live := make([]*gorillaConn, 0, len(s.live))
	for conn := range s.live {
		live = append(live, conn)
	}
	s.mu.Unlock()
	for _, conn := range live {
		conn.closeWith(websocket.CloseGoingAway, "server stopping")
	}
	select {
	case <-s.drained:
	case <-ctx.Done():
	}
}
