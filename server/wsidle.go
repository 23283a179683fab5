package server

import (
	"bufio"
	"net"
	"net/http"
	"syscall"
)

// An idle subscriber's socket has one goroutine, its read loop, blocked
// until the client sends something, which it rarely does. Blocked inside
// gorilla's read, the goroutine's frames (our loop, gorilla's frame
// parser, its buffered reader, the net package, the poller) keep an
// 8 KiB stack in use for the socket's whole life. Instead the wait is
// for the socket to become readable, through its syscall.RawConn, on a
// fresh goroutine whose few small frames fit the smallest stack, 2 KiB;
// only once bytes have arrived does it go down gorilla's read path, and
// once it has read all there is it hands the next wait to another fresh
// goroutine and ends (wsConnection.serve).
//
// That is correct only when gorilla has nothing buffered already: the
// next message may have arrived with the last one. gorilla does not say,
// so the upgrade hands it a buffered reader of ours (see idleHijacker),
// which gorilla then reads through, and which we can ask.

// idleReadBufferSize is the buffered reader's size: gorilla uses a
// hijacked reader only when it is larger than 256 bytes, and 288 costs
// no more than 257 in the allocator's size classes.
const idleReadBufferSize = 288

// idleHijacker hands gorilla's upgrader the connection with a buffered
// reader of idleReadBufferSize in place of net/http's 4 KiB one.
type idleHijacker struct {
	http.ResponseWriter
	// conn and br are what Hijack handed out; br is nil when net/http's
	// reader held bytes and was handed out itself (gorilla refuses such
	// a connection).
	conn net.Conn
	br   *bufio.Reader
}

func (h *idleHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = conn
	if brw.Reader.Buffered() > 0 {
		return conn, brw, nil
	}
	h.br = bufio.NewReaderSize(conn, idleReadBufferSize)
	return conn, bufio.NewReadWriter(h.br, brw.Writer), nil
}

// idleWait is how a socket's read loop waits for its next message
// without gorilla's frames on its stack.
type idleWait struct {
	br  *bufio.Reader
	raw syscall.RawConn
	// peek is the function raw.Read calls, made once.
	peek func(fd uintptr) bool
}

// newIdleWait returns nil, meaning read the usual way, for a connection
// that is not a plain socket (TLS ends in this process).
func newIdleWait(h *idleHijacker) *idleWait {
	if h.br == nil {
		return nil
	}
	sc, ok := h.conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil || !rawPeekSupported {
		return nil
	}
	return &idleWait{br: h.br, raw: raw, peek: peekReadable}
}

// mustWait reports whether reading now would block: the socket can be
// waited for this way and gorilla holds no bytes of the next message.
func (w *idleWait) mustWait() bool { return w != nil && w.br.Buffered() == 0 }

// wait returns once the socket has something to read, or is closed, or
// its read deadline has passed: in every case gorilla's read, which
// follows, says which.
func (w *idleWait) wait() {
	if !w.mustWait() {
		return
	}
	// A failure (closed, deadline) is left for gorilla's read to report.
	_ = w.raw.Read(w.peek)
}
