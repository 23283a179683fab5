package server

import (
	"context"
	"encoding/json"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/klaxonhq/klaxon/events"
)

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
		var from *events.Event
		if len(o.from) > 0 {
			from = o.from[0]
			n := copy(o.from, o.from[1:])
			o.from[n] = nil
			o.from = o.from[:n]
		}
		o.mu.Unlock()
		var resp *graphql.Response
		if from != nil && o.share != nil {
			res, mine := o.share.result(from)
			if !mine {
				// Another subscription of the same operation is executing
				// this event, or has.
				<-res.done
				if res.payload != nil && !o.ended() {
					o.notice.Skip()
					o.sendPayload(res.payload)
					continue
				}
				resp = o.responses(o.ctx)
			} else {
				resp = o.executeFor(res)
				if resp != nil && res.payload != nil {
					o.sendPayload(res.payload)
					continue
				}
			}
		} else {
			resp = o.responses(o.ctx)
		}
		if resp == nil {
			o.finish()
			return
		}
		o.send(resp)
	}
}

// ended reports whether the operation's context has ended.
func (o *wsOperation) ended() bool {
	select {
	case <-o.done:
		return true
	default:
		return false
	}
}

// executeFor executes the next value for every subscription of the
// operation, and settles res however that ends: on a panic too, since
// the others wait for it.
func (o *wsOperation) executeFor(res *sharedResult) (resp *graphql.Response) {
	defer func() { o.share.settle(res, resp) }()
	return o.responses(o.ctx)
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

// sendPayload sends a result encoded already.
func (o *wsOperation) sendPayload(payload []byte) {
	if o.stopped.Load() {
		return
	}
	if err := o.conn.conn.writeMessage(o.nextType(), o.id, payload); err != nil {
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
	if o.share != nil && o.left.CompareAndSwap(false, true) {
		c.srv.shares.leave(o.share)
	}
}
