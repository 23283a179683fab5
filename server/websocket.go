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
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"

	"github.com/klaxonhq/klaxon/auth"
)

const (
	wsWriteTimeout = 10 * time.Second
	wsReadLimit    = 64 << 10
	wsPingInterval = 15 * time.Second
	wsInitTimeout  = 10 * time.Second

	subprotocolTransportWS = "graphql-transport-ws"

	// Close codes of graphql-transport-ws, used for both protocols.
	closeForbidden    = 4403
	closeUnauthorized = 4401
)

// gorillaWebsocket plugs gorilla/websocket into gqlgen's websocket
// transport.
type gorillaWebsocket struct {
	upgrader websocket.Upgrader
}

func (s *Server) newGorillaWebsocket() gorillaWebsocket {
	return gorillaWebsocket{upgrader: websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// Every socket holds its read buffer for life, and clients send
		// only small messages; a larger one is read in several fills.
		ReadBufferSize:  256,
		WriteBufferSize: 1024,
		// Idle subscribers share write buffers instead of holding one each.
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     s.websocketOriginAllowed,
	}}
}

// Accept hands gqlgen the connection that websocketHandoff upgraded.
func (g gorillaWebsocket) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	sess := wsSessionFrom(r.Context())
	if sess == nil || sess.conn == nil {
		return nil, errors.New("websocket was not upgraded")
	}
	return sess.conn, nil
}

// gorillaConn adapts one connection; gorilla allows one writer at a time.
type gorillaConn struct {
	conn *websocket.Conn
	wmu  sync.Mutex
	// read is when a message last arrived, in Unix nanoseconds: the
	// keep-alive's proof that the client is still there.
	read atomic.Int64
	// pinging is set while a keep-alive message is being written.
	pinging atomic.Bool
	// greeted is set once the first message has been read; only the
	// reading goroutine touches it.
	greeted bool
}

func newGorillaConn(conn *websocket.Conn) *gorillaConn {
	c := &gorillaConn{conn: conn}
	c.read.Store(time.Now().UnixNano())
	return c
}

func (c *gorillaConn) Close() error { return c.conn.Close() }

func (c *gorillaConn) NextReader() (int, io.Reader, error) {
	mt, r, err := c.conn.NextReader()
	if err == nil {
		c.read.Store(time.Now().UnixNano())
	}
	if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
		return mt, nil, transport.ErrWebsocketClosed
	}
	if err != nil || c.greeted {
		return mt, r, err
	}
	c.greeted = true
	return c.checkFirstMessage(mt, r)
}

// checkFirstMessage closes a graphql-transport-ws socket whose client
// subscribes before connection_init with 4401, as that protocol requires;
// gqlgen would close it as a protocol error (1002), which clients do not
// take for the authentication failure it is. The message is read whole
// (the read limit bounds it) and handed on unchanged otherwise.
func (c *gorillaConn) checkFirstMessage(mt int, r io.Reader) (int, io.Reader, error) {
	msg, err := io.ReadAll(r)
	if err != nil {
		return mt, nil, err
	}
	if c.conn.Subprotocol() == subprotocolTransportWS {
		var m struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(msg, &m) == nil && m.Type == "subscribe" {
			c.WriteClose(closeUnauthorized, "Unauthorized")
			c.Close()
			return mt, nil, transport.ErrWebsocketClosed
		}
	}
	return mt, bytes.NewReader(msg), nil
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

// keepAlive writes the protocol's keep-alive message without waiting for
// it: a client that has stopped reading holds its writer until the write
// times out, and must not hold up the pings of the others meanwhile. A
// socket that cannot take a ping in that time is closed.
func (c *gorillaConn) keepAlive() {
	if !c.pinging.CompareAndSwap(false, true) {
		return
	}
	msg := kaMessage
	if c.answersPings() {
		msg = pingMessage
	}
	go func() {
		defer c.pinging.Store(false)
		c.wmu.Lock()
		c.conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
		err := c.conn.WriteMessage(websocket.TextMessage, msg)
		c.wmu.Unlock()
		if err != nil {
			c.Close()
		}
	}()
}

func (c *gorillaConn) WriteJSON(v any) error {
	buf := messageBuffers.Get().(*[]byte)
	defer messageBuffers.Put(buf)
	msg, ok := appendEnvelope((*buf)[:0], v)
	if !ok {
		var err error
		if msg, err = json.Marshal(v); err != nil {
			return fmt.Errorf("encode websocket message: %w", err)
		}
	} else if cap(msg) <= maxPooledMessage {
		*buf = msg
	}
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

// envelopeFields locates, in one of gqlgen's websocket message types,
// the fields {Payload json.RawMessage; ID string; Type string}; ok is
// false for any other type.
type envelopeFields struct {
	payload, id, typ int
	ok               bool
}

var envelopes sync.Map // reflect.Type → envelopeFields

func envelopeOf(t reflect.Type) envelopeFields {
	if e, ok := envelopes.Load(t); ok {
		return e.(envelopeFields)
	}
	e := envelopeFields{payload: -1, id: -1, typ: -1}
	other := false
	if t.Kind() == reflect.Struct {
		for i := range t.NumField() {
			f := t.Field(i)
			switch tag := f.Tag.Get("json"); {
			case tag == "payload,omitempty" && f.Type == reflect.TypeFor[json.RawMessage]():
				e.payload = i
			case tag == "id,omitempty" && f.Type.Kind() == reflect.String:
				e.id = i
			case tag == "type" && f.Type.Kind() == reflect.String:
				e.typ = i
			case f.IsExported():
				other = true // a field the encoding would have to include
			}
		}
	}
	e.ok = !other && e.payload >= 0 && e.id >= 0 && e.typ >= 0
	envelopes.Store(t, e)
	return e
}

// appendEnvelope encodes gqlgen's websocket message v as encoding/json
// would, without encoding/json: the payload is JSON that gqlgen has just
// encoded, and encoding/json would only read it through once more to
// check it. ok is false when v is not such a message.
func appendEnvelope(dst []byte, v any) (_ []byte, ok bool) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return dst, false
	}
	m := rv.Elem()
	e := envelopeOf(m.Type())
	if !e.ok {
		return dst, false
	}
	dst = append(dst, '{')
	if payload := m.Field(e.payload).Bytes(); len(payload) > 0 {
		dst = append(dst, `"payload":`...)
		dst = append(dst, payload...)
		dst = append(dst, ',')
	}
	if id := m.Field(e.id).String(); id != "" {
		dst = append(dst, `"id":`...)
		dst = appendJSONString(dst, id)
		dst = append(dst, ',')
	}
	dst = append(dst, `"type":`...)
	dst = appendJSONString(dst, m.Field(e.typ).String())
	return append(dst, '}'), true
}

// appendJSONString quotes s; anything beyond plain printable ASCII
// without quotes or backslashes goes through encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(s)
			return append(dst, quoted...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

func (c *gorillaConn) WriteClose(code int, message string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, message), time.Now().Add(time.Second))
}

func (c *gorillaConn) Subprotocol() string               { return c.conn.Subprotocol() }
func (c *gorillaConn) SetReadLimit(limit int64)          { c.conn.SetReadLimit(limit) }
func (c *gorillaConn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

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
			conn.WriteClose(code, reason)
			conn.Close()
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

// websocketHandoff upgrades a websocket request itself and runs next for
// the connection's lifetime on a goroutine of its own, then returns. The
// HTTP server's connection goroutine, with its read and write buffers,
// is then freed instead of being held by every idle subscriber.
func (s *Server) websocketHandoff(next http.Handler) http.Handler {
	upgrader := s.newGorillaWebsocket().upgrader
	// gorilla picks the first of these that the client offers.
	upgrader.Subprotocols = []string{"graphql-ws", subprotocolTransportWS}
	keep := newKeepAlive(wsPingInterval, s.log)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			next.ServeHTTP(w, r)
			return
		}
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			// The upgrader has answered the client already.
			s.log.InfoContext(r.Context(), "refused websocket", "err", err, "origin", r.Header.Get("Origin"))
			return
		}
		gconn := newGorillaConn(conn)
		done, ok := s.sockets.add(gconn)
		if !ok {
			gconn.WriteClose(websocket.CloseGoingAway, "server stopping")
			gconn.Close()
			return
		}
		sess := &wsSession{conn: gconn, keep: keep}
		req := r.WithContext(context.WithValue(context.WithoutCancel(r.Context()), wsSessionKey{}, sess))
		// The request lives as long as the socket: it keeps only the
		// headers read after the upgrade.
		req.Header = websocketHeaders(r.Header)
		go func() {
			defer done()
			defer keep.remove(gconn)
			// A handler that refused the socket before gqlgen took it
			// (a bad bearer token) has closed nothing.
			defer gconn.Close()
			next.ServeHTTP(hijackedWriter{}, req)
		}()
	})
}

// websocketHeaders copies the headers that the handlers after the upgrade
// read: authenticate (Authorization, and X-Forwarded-For for the client's
// address) and gqlgen's choice of transport (Upgrade).
func websocketHeaders(h http.Header) http.Header {
	kept := make(http.Header, 3)
	for _, name := range []string{"Upgrade", "Authorization", "X-Forwarded-For"} {
		if v := h.Values(name); len(v) > 0 {
			// A copy: the parsed values share one array for all headers.
			kept[name] = slices.Clone(v)
		}
	}
	return kept
}

// hijackedWriter stands in for the response of a request whose connection
// now belongs to a websocket; nothing may be written to it.
type hijackedWriter struct{}

func (hijackedWriter) Header() http.Header         { return http.Header{} }
func (hijackedWriter) Write(p []byte) (int, error) { return 0, http.ErrHijacked }
func (hijackedWriter) WriteHeader(int)             {}

// websocketTransport is gqlgen's websocket transport on gorilla, with
// the token taken from connection_init.
func (s *Server) websocketTransport() transport.Websocket {
	limit := int64(wsReadLimit)
	return transport.Websocket{
		Implementation: s.newGorillaWebsocket(),
		InitFunc:       s.websocketInit,
		InitTimeout:    wsInitTimeout,
		// Both protocols' keep-alives, and dropping graphql-transport-ws
		// clients that stop answering pings, are keepAlive's, for every
		// socket at once (see keepalive.go).
		KeepAlivePingInterval: 0,
		PingPongInterval:      0,
		PayloadReadLimit:      &limit,
		CloseFunc: func(ctx context.Context, _ int) {
			if sess := wsSessionFrom(ctx); sess != nil {
				sess.stop()
			}
		},
	}
}

// websocketInit authenticates a websocket from its connection_init
// payload, {"Authorization": "Bearer <token>"}, and arranges for the
// socket to close with 4401 when the token expires.
func (s *Server) websocketInit(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	refuse := func(reason string) (context.Context, *transport.InitPayload, error) {
		ctx = transport.WithWebsocketCloseCode(ctx, closeForbidden)
		ctx = transport.AppendCloseReason(ctx, reason)
		return ctx, nil, errors.New(reason)
	}
	header := payload.Authorization()
	if header == "" {
		if v, ok := payload["authorization"].(string); ok {
			header = v
		}
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return refuse("connection_init needs {\"Authorization\": \"Bearer <token>\"}")
	}
	user, expires, err := s.auth.AuthenticateUntil(ctx, strings.TrimSpace(token))
	if err != nil {
		if errors.Is(err, auth.ErrUnauthenticated) {
			return refuse("invalid or expired token")
		}
		s.log.ErrorContext(ctx, "authenticate websocket", "err", err)
		return refuse("internal error")
	}
	if sess := wsSessionFrom(ctx); sess != nil {
		sess.closeAt(expires, closeUnauthorized, "token expired")
		if sess.keep != nil {
			sess.keep.add(sess.conn)
		}
	}
	return auth.WithCaller(ctx, user, strings.TrimSpace(token)), nil, nil
}
