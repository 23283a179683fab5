package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/klaxonhq/klaxon/resolvers"
)

// websocketTransport runs GraphQL over a socket that websocketHandoff has
// upgraded, in graphql-transport-ws or, for older clients, the legacy
// graphql-ws protocol, on gqlgen's executor.
//
// It is ours rather than gqlgen's because of what an idle subscriber
// costs: gqlgen's transport keeps, per socket, a goroutine that reads, one
// per operation that waits on its channel and one that waits for the
// socket's end. Here a socket has one goroutine, its read loop, and an
// operation none while it waits: its stream (resolvers.StreamNotice) says
// when a value is ready, and only then does a goroutine run to send it.
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
	go func() {
		defer sess.end()
		// Nothing recovers a panic on this goroutine but this: it would
		// take the whole server down with one socket.
		defer func() {
			if v := recover(); v != nil {
				t.s.log.Error("panic in websocket read loop", "panic", v)
				c.conn.WriteClose(closeInternalError, "internal error")
			}
		}()
		c.run()
	}()
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

	mu sync.Mutex
	// ops are the running operations, rarely more than a few: a slice
	// costs an idle subscriber less than a map.
	ops []*wsOperation
}

// maxOperations bounds the operations one socket may run at once, and
// with it what one client can make the server hold.
const maxOperations = 100

// opIndex is the position of the operation with id in c.ops, or -1; c.mu
// must be held.
func (c *wsConnection) opIndex(id string) int {
	for i, op := range c.ops {
		if op.id == id {
			return i
		}
	}
	return -1
}

// dropOp removes the operation at i from c.ops; c.mu must be held.
func (c *wsConnection) dropOp(i int) {
	last := len(c.ops) - 1
	c.ops[i] = c.ops[last]
	c.ops[last] = nil
	c.ops = c.ops[:last]
}

func (c *wsConnection) run() {
	defer c.endOperations()
	defer c.sess.stop()
	c.conn.conn.SetReadLimit(wsReadLimit)
	c.conn.conn.SetReadDeadline(time.Now().Add(c.srv.cfg.WebsocketInitTimeout))
	acknowledged := false
	for {
		m, err := c.next()
		switch {
		case errors.Is(err, errBadMessage):
			c.refuse(closeBadRequest, "invalid message: "+err.Error())
			return
		case isTimeout(err) && !acknowledged:
			c.refuse(closeInitTimeout, "Connection initialisation timeout")
			return
		case err != nil:
			return
		}
		received := graphql.Now()
		switch m.Type {
		case "connection_init":
			if acknowledged {
				c.refuse(closeTooManyInitialise, "Too many initialisation requests")
				return
			}
			ctx, err := c.srv.websocketInit(c.ctx, m.Payload)
			if errors.Is(err, errInitUnavailable) {
				c.refuse(closeTryAgainLater, err.Error())
				return
			}
			if err != nil {
				c.refuse(closeForbidden, err.Error())
				return
			}
			c.ctx = ctx
			acknowledged = true
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
				return
			}
			if !acknowledged {
				c.refuse(closeUnauthorized, "Unauthorized")
				return
			}
			if m.ID == "" {
				c.refuse(closeBadRequest, m.Type+" without an id")
				return
			}
			if !c.startOperation(m.ID, m.Payload, received) {
				c.refuse(closeSubscriberExists, fmt.Sprintf("Subscriber for %s already exists", m.ID))
				return
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
			return
		default:
			c.refuse(closeBadRequest, "unexpected message "+m.Type)
			return
		}
	}
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

// startOperation runs the operation a subscribe (start) message asks
// for; it reports false when one with that id is already running.
func (c *wsConnection) startOperation(id string, payload json.RawMessage, received time.Time) bool {
	c.mu.Lock()
	exists := c.opIndex(id) >= 0
	op := &wsOperation{conn: c, id: id}
	op.sendFn = op.sendPending
	full := len(c.ops) >= maxOperations
	if !exists && !full {
		c.ops = append(c.ops, op)
	}
	c.mu.Unlock()
	if exists {
		return false
	}
	if full {
		op.fail(gqlerror.List{{Message: fmt.Sprintf("a socket runs at most %d operations at once; complete one first", maxOperations), Extensions: map[string]any{"code": codeBadUserInput}}})
		return true
	}

	ctx := graphql.StartOperationTrace(c.ctx)
	params := &graphql.RawParams{}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(params); err != nil {
		op.fail(gqlerror.List{{Message: "the payload must be {query, variables, operationName}", Extensions: map[string]any{"code": codeBadUserInput}}})
		return true
	}
	params.ReadTime = graphql.TraceTiming{Start: received, End: graphql.Now()}
	rc, errs := c.exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp := c.exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs)
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			op.fail(resp.Errors)
		} else {
			op.send(resp)
			op.finish()
		}
		return true
	}
	ctx, cancel := context.WithCancel(ctx)
	op.cancel = cancel
	if rc.Operation.Operation != ast.Subscription {
		go op.runToEnd(ctx, rc)
		return true
	}
	notice := &resolvers.StreamNotice{Sent: op.ready}
	responses, ctx := c.exec.DispatchOperation(resolvers.WithStreamNotice(ctx, notice), rc)
	if !notice.Taken() {
		// The resolver failed (the response carries why) or made a
		// stream of another kind: read it the plain way.
		go op.drainAll(ctx, responses)
		return true
	}
	op.cancel = func() {
		cancel()
		notice.Cancelled()
	}
	op.listen(ctx, responses)
	return true
}

// endOperations ends every operation once the socket has ended.
func (c *wsConnection) endOperations() {
	c.ending.Store(true)
	c.mu.Lock()
	ops := slices.Clone(c.ops)
	c.mu.Unlock()
	for _, op := range ops {
		if op.cancel != nil {
			op.cancel()
		}
	}
}

// stopOperation ends the operation the client no longer wants; the
// client hears nothing more of it.
func (c *wsConnection) stopOperation(id string) {
	var op *wsOperation
	c.mu.Lock()
	if i := c.opIndex(id); i >= 0 {
		op = c.ops[i]
		c.dropOp(i)
	}
	c.mu.Unlock()
	if op != nil {
		op.stopped.Store(true)
		if op.cancel != nil {
			op.cancel()
		}
	}
}

// wsOperation is one running operation of a socket.
type wsOperation struct {
	conn   *wsConnection
	id     string
	cancel context.CancelFunc
	// stopped is set when the client has stopped the operation.
	stopped atomic.Bool

	mu sync.Mutex
	// ctx and responses are set once the resolver has returned; the
	// stream may have sent values before that.
	ctx       context.Context
	responses graphql.ResponseHandler
	// pending counts the values, and the close, that the stream has put
	// in its channel and no response has taken yet: that many calls of
	// responses return without blocking.
	pending int
	// sending is set while the operation is queued for sending or a
	// sender is at work on it.
	sending bool
	// sendFn is sendPending, taken as a func value once: taking a method
	// value allocates, and the fan-out queues one send per value.
	sendFn func()
}

func (o *wsOperation) nextType() string {
	if o.conn.legacy {
		return "data"
	}
	return "next"
}

// listen starts delivering a subscription's responses as its stream
// reports them.
func (o *wsOperation) listen(ctx context.Context, responses graphql.ResponseHandler) {
	o.mu.Lock()
	o.ctx, o.responses = ctx, responses
	start := o.claimSend()
	o.mu.Unlock()
	if start {
		o.conn.srv.sends.push(o.sendFn)
	}
}

// ready is the stream's notice of one more value, or of its close. It
// runs on the goroutine that sent the value, the event bus's included,
// and must not block.
func (o *wsOperation) ready() {
	o.mu.Lock()
	o.pending++
	start := o.claimSend()
	o.mu.Unlock()
	if start {
		o.conn.srv.sends.push(o.sendFn)
	}
}

// claimSend reports whether the caller must queue a send: values wait,
// the responses can be read, and no send is queued or at work. o.mu must
// be held.
func (o *wsOperation) claimSend() bool {
	start := o.responses != nil && o.pending > 0 && !o.sending
	o.sending = o.sending || start
	return start
}

// sendPending sends responses while the stream has values waiting, then
// returns; the next notice starts it again.
func (o *wsOperation) sendPending() {
	defer o.recoverPanic()
	for {
		o.mu.Lock()
		if o.pending == 0 {
			o.sending = false
			o.mu.Unlock()
			return
		}
		o.pending--
		o.mu.Unlock()
		resp := o.responses(o.ctx)
		if resp == nil {
			o.finish()
			return
		}
		o.send(resp)
	}
}

// drainAll sends every response of an operation whose responses may
// block, on a goroutine of its own.
func (o *wsOperation) drainAll(ctx context.Context, responses graphql.ResponseHandler) {
	defer o.recoverPanic()
	for {
		resp := responses(ctx)
		if resp == nil {
			break
		}
		o.send(resp)
	}
	o.finish()
}

// runToEnd runs a query or mutation sent over the socket.
func (o *wsOperation) runToEnd(ctx context.Context, rc *graphql.OperationContext) {
	defer o.recoverPanic()
	responses, ctx := o.conn.exec.DispatchOperation(ctx, rc)
	o.drainAll(ctx, responses)
}

func (o *wsOperation) recoverPanic() {
	if v := recover(); v != nil {
		o.conn.srv.log.Error("panic in websocket operation", "panic", v, "operation", o.id)
		o.fail(gqlerror.List{{Message: "internal error", Extensions: map[string]any{"code": codeInternal}}})
	}
}

func (o *wsOperation) send(resp *graphql.Response) {
	if o.stopped.Load() {
		return
	}
	if err := o.conn.conn.writeResponse(o.nextType(), o.id, resp); err != nil {
		// The socket is broken; its read loop ends the rest.
		o.conn.conn.Close()
	}
}

// fail ends the operation with errors that came before any result.
func (o *wsOperation) fail(errs gqlerror.List) {
	payload, err := json.Marshal(errs)
	if err != nil {
		payload = []byte(`[{"message":"internal error"}]`)
	}
	o.end()
	if !o.stopped.Load() {
		o.conn.conn.writeMessage("error", o.id, payload)
		// graphql-transport-ws sends nothing after an error; the legacy
		// protocol ends every operation with complete.
		if o.conn.legacy {
			o.conn.conn.writeMessage("complete", o.id, nil)
		}
	}
}

// finish ends the operation after its last response.
func (o *wsOperation) finish() {
	o.end()
	// Once the socket is ending, its close is the end of everything.
	if !o.stopped.Load() && !o.conn.ending.Load() {
		o.conn.conn.writeMessage("complete", o.id, nil)
	}
}

func (o *wsOperation) end() {
	c := o.conn
	c.mu.Lock()
	if i := c.opIndex(o.id); i >= 0 && c.ops[i] == o {
		c.dropOp(i)
	}
	c.mu.Unlock()
	if o.cancel != nil {
		o.cancel()
	}
}
