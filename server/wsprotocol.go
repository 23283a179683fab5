package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// websocketTransport runs GraphQL over a socket that websocketHandoff has
// upgraded, in graphql-transport-ws or, for older clients, the legacy
// graphql-ws protocol, on gqlgen's executor.
//
// It is ours rather than gqlgen's because of what an idle subscriber
// costs: gqlgen's transport keeps, per socket, a goroutine that reads, one
// per operation that waits on its channel and one that waits for the
// socket's end. Here a socket has one goroutine, its read loop, waiting
// with a small stack, and an operation none while it waits: its stream
// (resolvers.StreamNotice) says when a value is ready, and only then does
// a goroutine run to send it.
type websocketTransport struct{ s *Server }

var _ graphql.Transport = websocketTransport{}

func (websocketTransport) Supports(r *http.Request) bool { return r.Header.Get("Upgrade") != "" }

func (t websocketTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	sess := wsSessionFrom(r.Context())
	if sess == nil || sess.conn == nil {
		writeGraphQLError(w, http.StatusBadRequest, codeBadUserInput, "websocket was not upgraded")
		return
	}
	c := &wsConnection{
		srv:    t.s,
		sess:   sess,
		conn:   sess.conn,
		exec:   exec,
		legacy: sess.conn.conn.Subprotocol() != subprotocolTransportWS,
		ctx:    r.Context(),
	}
	sess.taken = true
	c.conn.conn.SetReadLimit(wsReadLimit)
	c.conn.conn.SetReadDeadline(time.Now().Add(t.s.cfg.WebsocketInitTimeout))
	go c.run()
}

// Close codes of graphql-transport-ws; the legacy protocol has none of its
// own and gets the same.
const (
	closeBadRequest        = 4400
	closeUnauthorized      = 4401
	closeForbidden         = 4403
	closeInitTimeout       = 4408
	closeSubscriberExists  = 4409
	closeTooManyInitialise = 4429
)

// wsClientMessage is a message from the client, in either protocol.
type wsClientMessage struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

var errBadMessage = errors.New("message is not a JSON object with a string type")

// wsConnection is one socket's protocol state.
type wsConnection struct {
	srv  *Server
	sess *wsSession
	conn *gorillaConn
	exec graphql.GraphExecutor
	// legacy is set for graphql-ws (subscriptions-transport-ws), the
	// protocol of clients that name none.
	legacy bool
	// ctx carries the caller once the client is acknowledged. It is not
	// cancelled when the socket ends: each operation is, which spares
	// every idle subscriber a cancellable context and its list of
	// children.
	ctx context.Context
	// ending is set once the read loop has ended.
	ending atomic.Bool
	// acknowledged is set once connection_init is accepted. Only the
	// goroutine reading the socket touches it.
	acknowledged bool

	mu sync.Mutex
	// ops are the running operations, rarely more than a few: a slice
	// costs an idle subscriber less than a map.
	ops []*wsOperation
}

// run waits for the client's next message, then serves the socket.
// While it waits its stack is a few small frames (see wsidle.go), which
// the collector shrinks; serving grows it again, so serve leaves the
// next wait to a fresh goroutine instead of coming back here.
func (c *wsConnection) run() {
	c.conn.idle.wait()
	c.serve()
}

// serve reads and handles messages until the socket ends, or until
// nothing is left to read without waiting, when it starts run on a
// goroutine of its own and returns.
func (c *wsConnection) serve() {
	ended := true
	defer func() {
		// Nothing recovers a panic on this goroutine but this: it would
		// take the whole server down with one socket.
		if v := recover(); v != nil {
			c.srv.log.Error("panic in websocket read loop", "panic", v)
			c.conn.WriteClose(closeInternalError, "internal error")
		}
		if ended {
			c.sess.stop()
			c.endOperations()
			c.sess.end()
		}
	}()
	// run waited for bytes, so there is a message to read first.
	for c.handle(c.next()) {
		if c.conn.idle.mustWait() {
			ended = false
			go c.run()
			return
		}
	}
}

// handle acts on the client's message; false ends the socket.
func (c *wsConnection) handle(m wsClientMessage, err error) bool {
	switch {
	case errors.Is(err, errBadMessage):
		c.refuse(closeBadRequest, "invalid message: "+err.Error())
		return false
	case isTimeout(err) && !c.acknowledged:
		c.refuse(closeInitTimeout, "Connection initialisation timeout")
		return false
	case err != nil:
		return false
	}
	received := graphql.Now()
	switch m.Type {
	case "connection_init":
		if c.acknowledged {
			c.refuse(closeTooManyInitialise, "Too many initialisation requests")
			return false
		}
		ctx, err := c.srv.websocketInit(c.ctx, m.Payload)
		if errors.Is(err, errInitUnavailable) {
			c.refuse(closeTryAgainLater, err.Error())
			return false
		}
		if err != nil {
			c.refuse(closeForbidden, err.Error())
			return false
		}
		c.ctx = ctx
		c.acknowledged = true
		c.conn.conn.SetReadDeadline(time.Time{})
		c.conn.writeMessage("connection_ack", "", nil)
		if c.legacy {
			c.conn.writeMessage("ka", "", nil)
		}
		// Pings only after the ack, which clients expect first.
		c.sess.keep.add(c.conn)
		c.srv.tokenChecks.add(c.sess)
	case "subscribe", "start":
		if (m.Type == "start") != c.legacy {
			c.refuse(closeBadRequest, "unexpected message "+m.Type)
			return false
		}
		if !c.acknowledged {
			c.refuse(closeUnauthorized, "Unauthorized")
			return false
		}
		if m.ID == "" {
			c.refuse(closeBadRequest, m.Type+" without an id")
			return false
		}
		if !c.startOperation(m.ID, m.Payload, received) {
			c.refuse(closeSubscriberExists, fmt.Sprintf("Subscriber for %s already exists", m.ID))
			return false
		}
	case "complete", "stop":
		c.stopOperation(m.ID)
	case "ping":
		if !c.legacy {
			c.conn.writeMessage("pong", "", m.Payload)
		}
	case "pong":
		// Reading it was the proof of life the keep-alive looks for.
	case "connection_terminate":
		c.conn.closeWith(closeNormal, "terminated")
		return false
	default:
		c.refuse(closeBadRequest, "unexpected message "+m.Type)
		return false
	}
	return true
}

const (
	closeNormal        = 1000
	closeInternalError = 1011
	// closeTryAgainLater (RFC 6455's registry) refuses a socket that
	// cannot be authenticated while the database is away.
	closeTryAgainLater = 1013
)

// next reads the client's next message.
func (c *wsConnection) next() (wsClientMessage, error) {
	var m wsClientMessage
	_, r, err := c.conn.nextReader()
	if err != nil {
		return m, err
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(raw, &m); err != nil || m.Type == "" {
		return m, errBadMessage
	}
	return m, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// refuse ends the connection with code; a legacy client, whose protocol
// has no close codes of its own, first gets the reason as a
// connection_error.
func (c *wsConnection) refuse(code int, reason string) {
	if c.legacy {
		payload, _ := json.Marshal(map[string]string{"message": reason})
		c.conn.writeMessage("connection_error", "", payload)
	}
	c.conn.closeWith(code, reason)
}
