package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"

	"github.com/klaxonhq/klaxon/auth"
)

const (
	wsWriteTimeout = 10 * time.Second
	wsReadLimit    = 64 << 10
	wsPingInterval = 15 * time.Second

	defaultWebsocketInitTimeout = 10 * time.Second

	subprotocolTransportWS = "graphql-transport-ws"
)

func (s *Server) newUpgrader() websocket.Upgrader {
	return websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// None: gorilla reads through the small buffered reader that
		// idleHijacker hands it, and must, since the read loop asks that
		// reader whether bytes wait (TestWebsocketMessagesSentTogetherAreAllRead
		// fails otherwise). Every socket holds its read buffer for life,
		// and clients send only small messages; a larger one is read in
		// several fills.
		ReadBufferSize:  0,
		WriteBufferSize: 1024,
		// Idle subscribers share write buffers instead of holding one each.
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     s.websocketOriginAllowed,
		// gorilla picks the first of these that the client offers.
		Subprotocols: []string{"graphql-ws", subprotocolTransportWS},
	}
}

// gorillaConn is one socket; gorilla allows one writer at a time.
type gorillaConn struct {
	conn *websocket.Conn
	wmu  sync.Mutex
	// read is when a message last arrived, in Unix nanoseconds: the
	// keep-alive's proof that the client is still there.
	read atomic.Int64
	// pinging is set while a keep-alive message is queued or being
	// written.
	pinging atomic.Bool
	// idle, when set, lets the read loop wait for a message with a small
	// stack (see wsidle.go).
	idle *idleWait
}

func newGorillaConn(conn *websocket.Conn) *gorillaConn {
	c := &gorillaConn{conn: conn}
	c.read.Store(time.Now().UnixNano())
	return c
}

func (c *gorillaConn) Close() error { return c.conn.Close() }

func (c *gorillaConn) nextReader() (int, io.Reader, error) {
	c.idle.wait()
	mt, r, err := c.conn.NextReader()
	if err == nil {
		c.read.Store(time.Now().UnixNano())
	}
	return mt, r, err
}

func (c *gorillaConn) lastRead() time.Time { return time.Unix(0, c.read.Load()) }

// answersPings reports whether the client must answer pings with pongs:
// graphql-transport-ws clients must, graphql-ws clients have no way to.
func (c *gorillaConn) answersPings() bool {
	return c.conn.Subprotocol() == subprotocolTransportWS
}

var (
	pingMessage = []byte(`{"type":"ping"}`)
	kaMessage   = []byte(`{"type":"ka"}`)
)

// ping writes the protocol's keep-alive message; a socket that cannot
// take it within the write timeout is closed. It runs on the send queue,
// like every other write that may block, so a client that has stopped
// reading holds up nobody's ping but its own.
func (c *gorillaConn) ping() {
	defer c.pinging.Store(false)
	msg := kaMessage
	if c.answersPings() {
		msg = pingMessage
	}
	if err := c.write(msg); err != nil {
		c.Close()
	}
}

// writeMessage writes {"payload":…,"id":…,"type":…}, leaving out an
// empty payload or id; payload is JSON already.
func (c *gorillaConn) writeMessage(typ, id string, payload []byte) error {
	buf := messageBuffers.Get().(*[]byte)
	defer messageBuffers.Put(buf)
	msg := (*buf)[:0]
	if len(payload) > 0 {
		msg = append(msg, `{"payload":`...)
		msg = append(msg, payload...)
		msg = append(msg, ',')
	} else {
		msg = append(msg, '{')
	}
	msg = appendIDAndType(msg, id, typ)
	if cap(msg) <= maxPooledMessage {
		*buf = msg
	}
	return c.write(msg)
}

// writeResponse writes an operation's result as the payload of a
// message, encoded straight into the message.
func (c *gorillaConn) writeResponse(typ, id string, resp *graphql.Response) error {
	buf := messageBuffers.Get().(*[]byte)
	defer messageBuffers.Put(buf)
	msg := append((*buf)[:0], `{"payload":`...)
	msg, err := appendResponse(msg, resp)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	msg = append(msg, ',')
	msg = appendIDAndType(msg, id, typ)
	if cap(msg) <= maxPooledMessage {
		*buf = msg
	}
	return c.write(msg)
}

func (c *gorillaConn) write(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// A stuck reader must not hold its writer forever.
	c.conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	return c.conn.WriteMessage(websocket.TextMessage, msg)
}

// messageBuffers hold outgoing messages while they are written; one
// larger than maxPooledMessage is left to the collector.
var messageBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledMessage = 64 << 10

func appendIDAndType(dst []byte, id, typ string) []byte {
	if id != "" {
		dst = append(dst, `"id":`...)
		dst = appendJSONString(dst, id)
		dst = append(dst, ',')
	}
	dst = append(dst, `"type":`...)
	dst = appendJSONString(dst, typ)
	return append(dst, '}')
}

// appendResponse encodes resp as encoding/json would, less its escaping
// of <, > and &, which JSON does not need: without encoding/json reading
// the data, which gqlgen has just encoded, through once more.
func appendResponse(dst []byte, resp *graphql.Response) ([]byte, error) {
	if resp.Label != "" || len(resp.Path) > 0 || resp.HasNext != nil {
		// Incremental delivery, which no subscription uses.
		b, err := json.Marshal(resp)
		return append(dst, b...), err
	}
	dst = append(dst, '{')
	if len(resp.Errors) > 0 {
		b, err := json.Marshal(resp.Errors)
		if err != nil {
			return dst, err
		}
		dst = append(dst, `"errors":`...)
		dst = append(dst, b...)
		dst = append(dst, ',')
	}
	dst = append(dst, `"data":`...)
	if len(resp.Data) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, resp.Data...)
	}
	if len(resp.Extensions) > 0 {
		b, err := json.Marshal(resp.Extensions)
		if err != nil {
			return dst, err
		}
		dst = append(dst, `,"extensions":`...)
		dst = append(dst, b...)
	}
	return append(dst, '}'), nil
}

// appendJSONString quotes s; anything beyond plain printable ASCII
// without quotes or backslashes goes through encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			b := bytes.NewBuffer(dst)
			enc := json.NewEncoder(b)
			enc.SetEscapeHTML(false)
			enc.Encode(s) // a string always encodes
			return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

func (c *gorillaConn) WriteClose(code int, message string) error {
	// A close frame's reason has room for 123 bytes.
	if len(message) > 123 {
		message = message[:123]
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, message), time.Now().Add(time.Second))
}

// closeWith tells the client why with a close frame, then closes the
// socket without waiting for the client's reply.
func (c *gorillaConn) closeWith(code int, reason string) {
	c.WriteClose(code, reason)
	c.Close()
}

// websocketOriginAllowed admits clients that send no Origin (not browsers),
// same-origin pages, and the configured origins.
func (s *Server) websocketOriginAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || slices.Contains(s.cfg.AllowedOrigins, origin) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// wsSession links a websocket's connection to its authenticated context,
// so the connection can be closed when its token expires.
type wsSession struct {
	mu     sync.Mutex
	conn   *gorillaConn
	expiry *time.Timer
	// keep pings the connection once its client is acknowledged.
	keep *keepAlive
	// taken is set by the transport that serves the socket, which calls
	// end when it is done with it; a socket nobody took is ended as soon
	// as the handlers return. Only the upgrading goroutine touches it.
	taken bool
	end   func()
	// token is the one connection_init carried, once it is accepted.
	token string
	// access is the caller's access, which the token check reads again
	// with the token (see wsrecheck.go) and the socket's subscriptions
	// judge each event by.
	access auth.LiveAccess
}

type wsSessionKey struct{}

func wsSessionFrom(ctx context.Context) *wsSession {
	s, _ := ctx.Value(wsSessionKey{}).(*wsSession)
	return s
}

// closeAt closes the connection with code at t.
func (s *wsSession) closeAt(t time.Time, code int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expiry = time.AfterFunc(time.Until(t), func() {
		s.mu.Lock()
		conn := s.conn
		s.mu.Unlock()
		if conn != nil {
			conn.closeWith(code, reason)
		}
	})
}

func (s *wsSession) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.expiry != nil {
		s.expiry.Stop()
	}
}

// websocketHandoff upgrades a websocket request itself, before the
// handlers in next run. The transport they reach starts the socket's read
// loop on a goroutine of its own and returns, so the HTTP server's
// connection goroutine, with its read and write buffers and its deep
// stack, is freed instead of being held by every idle subscriber.
func (s *Server) websocketHandoff(next http.Handler) http.Handler {
	upgrader := s.newUpgrader()
	keep := newKeepAlive(wsPingInterval, s.sends, s.log)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			next.ServeHTTP(w, r)
			return
		}
		if !speaksAnOffered(upgrader.Subprotocols, websocket.Subprotocols(r)) {
			// Answering in a protocol the client did not ask for would
			// leave it waiting for messages in the one it did.
			writeError(w, http.StatusBadRequest, "unsupported websocket subprotocol; this server speaks "+strings.Join(upgrader.Subprotocols, " and ")+", or graphql-ws when none is named")
			return
		}
		hj := &idleHijacker{ResponseWriter: w}
		conn, err := upgrader.Upgrade(hj, r, nil)
		if err != nil {
			// The upgrader has answered the client already.
			s.log.InfoContext(r.Context(), "refused websocket", "err", err, "origin", r.Header.Get("Origin"))
			return
		}
		gconn := newGorillaConn(conn)
		gconn.idle = newIdleWait(hj)
		if !s.sockets.add(gconn) {
			gconn.closeWith(websocket.CloseGoingAway, "server stopping")
			return
		}
		sess := &wsSession{conn: gconn, keep: keep}
		sess.end = func() {
			gconn.Close()
			keep.remove(gconn)
			s.tokenChecks.remove(sess)
			s.sockets.remove(gconn)
		}
		// The socket outlives this handler, so its context starts afresh:
		// the request's would be cancelled when the handler returns, and
		// would keep net/http's contexts for the connection and the
		// request alive for the socket's whole life.
		req := r.WithContext(context.WithValue(context.Background(), wsSessionKey{}, sess))
		next.ServeHTTP(hijackedWriter{}, req)
		if !sess.taken {
			// A handler refused the socket before the transport took it
			// (a bad bearer token).
			sess.end()
		}
	})
}

// speaksAnOffered reports whether the client offered no subprotocol,
// which gets the legacy one, or at least one of ours.
func speaksAnOffered(ours, offered []string) bool {
	named := false
	for _, p := range offered {
		if p == "" {
			continue
		}
		named = true
		if slices.Contains(ours, p) {
			return true
		}
	}
	return !named
}

// hijackedWriter stands in for the response of a request whose connection
// now belongs to a websocket; nothing may be written to it.
type hijackedWriter struct{}

func (hijackedWriter) Header() http.Header         { return http.Header{} }
func (hijackedWriter) Write(p []byte) (int, error) { return 0, http.ErrHijacked }
func (hijackedWriter) WriteHeader(int)             {}

// errInitUnavailable refuses a connection_init that could not be checked
// because the database is away; the client may connect again.
var errInitUnavailable = errors.New("the database is unavailable; connect again later")

// websocketInit authenticates a websocket from its connection_init
// payload, {"Authorization": "Bearer <token>"}, and arranges for the
// socket to close with 4401 when the token expires. The error says why
// the socket is refused, in words for its client.
func (s *Server) websocketInit(ctx context.Context, payload json.RawMessage) (context.Context, error) {
	var fields map[string]any
	if len(payload) > 0 && json.Unmarshal(payload, &fields) != nil {
		return ctx, errors.New("connection_init payload must be a JSON object")
	}
	header, _ := fields["Authorization"].(string)
	if header == "" {
		header, _ = fields["authorization"].(string)
	}
	token, ok := parseBearer(strings.TrimSpace(header))
	if !ok {
		return ctx, errors.New("connection_init needs {\"Authorization\": \"Bearer <token>\"}")
	}
	user, expires, err := s.auth.AuthenticateUntil(ctx, token)
	if err != nil {
		if errors.Is(err, auth.ErrUnauthenticated) {
			return ctx, errors.New("invalid or expired token")
		}
		if unavailable(err) {
			s.log.WarnContext(ctx, "authenticate websocket: database unavailable", "err", err)
			return ctx, errInitUnavailable
		}
		s.log.ErrorContext(ctx, "authenticate websocket", "err", err)
		return ctx, errors.New("internal error")
	}
	ctx = auth.WithCaller(ctx, user, token)
	if sess := wsSessionFrom(ctx); sess != nil {
		sess.closeAt(expires, closeUnauthorized, "token expired")
		sess.token = token
		ctx = auth.WithLiveAccess(ctx, &sess.access)
	}
	return ctx, nil
}
