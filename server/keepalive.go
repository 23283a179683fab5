package server

import (
	"log/slog"
	"sync"
	"time"
)

// keepAlive pings every open websocket from one timer. A goroutine and a
// ticker per socket would be most of what an idle subscriber costs; here
// an idle socket costs one map entry, and no goroutine runs at all while no socket is open, so
// nothing outlives the server once its sockets are closed.
//
// graphql-ws clients get {"type":"ka"}, which they never answer.
// graphql-transport-ws clients get {"type":"ping"} and must answer with a
// pong: a socket from which nothing has been read for two intervals is
// closed. One sweep checks them all, where a read deadline would have to
// be moved on every message read.
type keepAlive struct {
	interval time.Duration
	log      *slog.Logger

	mu    sync.Mutex
	conns map[*gorillaConn]struct{}
	// timer is the pending sweep, nil while no socket is registered. A
	// sweep that has fired keeps its timer until it either reschedules
	// it or, finding no socket left, clears it.
	timer *time.Timer
}

func newKeepAlive(interval time.Duration, log *slog.Logger) *keepAlive {
	return &keepAlive{interval: interval, log: log, conns: map[*gorillaConn]struct{}{}}
}

// add starts keeping conn alive; its client must have been acknowledged,
// since clients may not expect a ping before connection_ack.
func (k *keepAlive) add(conn *gorillaConn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.conns[conn] = struct{}{}
	if k.timer == nil {
		k.timer = time.AfterFunc(k.interval, k.tick)
	}
}

// remove forgets conn; the last one out stops the timer.
func (k *keepAlive) remove(conn *gorillaConn) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.conns, conn)
	// When Stop fails the sweep is already running and will find no
	// socket left.
	if len(k.conns) == 0 && k.timer != nil && k.timer.Stop() {
		k.timer = nil
	}
}

func (k *keepAlive) tick() {
	k.sweep(time.Now())
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.conns) == 0 {
		k.timer = nil
		return
	}
	k.timer.Reset(k.interval)
}

// sweep closes the graphql-transport-ws sockets that have gone silent as
// of now and pings the others.
func (k *keepAlive) sweep(now time.Time) {
	k.mu.Lock()
	conns := make([]*gorillaConn, 0, len(k.conns))
	for c := range k.conns {
		conns = append(conns, c)
	}
	k.mu.Unlock()
	for _, c := range conns {
		if c.answersPings() {
			if silent := now.Sub(c.lastRead()); silent > 2*k.interval {
				k.log.Info("closing unresponsive websocket", "silent", silent.Round(time.Second), "remote", c.conn.RemoteAddr().String())
				c.Close()
				continue
			}
		}
		c.keepAlive()
	}
}

// active reports how many sockets are registered and whether a sweep is
// scheduled.
func (k *keepAlive) active() (sockets int, scheduled bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.conns), k.timer != nil
}
