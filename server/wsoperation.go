package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/resolvers"
)

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

	// Each operation reads the caller's team roles afresh, as each HTTP
	// request does, however long the socket has been open.
	ctx := graphql.StartOperationTrace(auth.WithFreshAccess(c.ctx))
	params := &graphql.RawParams{}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(params); err != nil {
		op.fail(gqlerror.List{{Message: "the payload must be {query, variables, operationName}", Extensions: map[string]any{"code": codeBadUserInput}}})
		return true
	}
	params.ReadTime = graphql.TraceTiming{Start: received, End: graphql.Now()}
	// A subscription keeps its query text for life, and a frontend's
	// many subscribers send the same few: they share one copy, kept while
	// some operation holds its handle.
	op.query = unique.Make(params.Query)
	params.Query = op.query.Value()
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
	if key, ok := shareKey(rc); ok {
		op.share = c.srv.shares.join(key)
		op.notice = notice
		notice.SentFrom = op.readyFrom
	}
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
	// done is ctx.Done(), found once rather than through ctx's values
	// for every event.
	done <-chan struct{}
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

	// query holds the shared copy of the operation's text.
	query unique.Handle[string]

	// share, when set, is the group of subscriptions this one shares its
	// results with (see wsshare.go); from then holds the event of each
	// pending value, nil for those that are not an event's, in order.
	share  *shareGroup
	notice *resolvers.StreamNotice
	from   []*events.Event
	left   atomic.Bool
}

func (o *wsOperation) nextType() string {
	if o.conn.legacy {
		return "data"
	}
	return "next"
}

// readyFrom is ready for a subscription that shares its results: it
// notes which event the value is.
func (o *wsOperation) readyFrom(ev *events.Event) {
	o.mu.Lock()
	o.pending++
	o.from = append(o.from, ev)
	start := o.claimSend()
	o.mu.Unlock()
	if start {
		o.conn.srv.sends.push(o.sendFn)
	}
}

// listen starts delivering a subscription's responses as its stream
// reports them.
func (o *wsOperation) listen(ctx context.Context, responses graphql.ResponseHandler) {
	o.mu.Lock()
	o.ctx, o.done, o.responses = ctx, ctx.Done(), responses
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
