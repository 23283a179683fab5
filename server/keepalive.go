package server

import (
	"log/slog"
	"time"
)

// keepAlive pings every open websocket from one timer (see sweeper).
//
// graphql-ws clients get {"type":"ka"}, which they never answer.
// graphql-transport-ws clients get {"type":"ping"} and must answer with a
// pong: a socket from which nothing has been read for two intervals is
// closed. One sweep checks them all, where a read deadline would have to
// be moved on every message read.
type keepAlive struct {
	*sweeper[*gorillaConn]
	sends *sendQueue
	log   *slog.Logger
}

// newKeepAlive keeps the sockets added to it alive; a client must have
// been acknowledged before its socket is added, since clients may not
// expect a ping before connection_ack.
func newKeepAlive(interval time.Duration, sends *sendQueue, log *slog.Logger) *keepAlive {
	k := &keepAlive{sends: sends, log: log}
	k.sweeper = newSweeper[*gorillaConn](interval, func() { k.sweep(time.Now()) })
	return k
}

// sweep closes the graphql-transport-ws sockets that have gone silent as
// of now and pings the others.
func (k *keepAlive) sweep(now time.Time) {
	for _, c := range k.snapshot() {
		if c.answersPings() {
			if silent := now.Sub(c.lastRead()); silent > 2*k.interval {
				k.log.Info("closing unresponsive websocket", "silent", silent.Round(time.Second), "remote", c.conn.RemoteAddr().String())
				c.Close()
				continue
			}
		}
		// A socket whose last ping is still waiting to be written gets
		// no second one.
		if c.pinging.CompareAndSwap(false, true) {
			k.sends.push(c.ping)
		}
	}
}
