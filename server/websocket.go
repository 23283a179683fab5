package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
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
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
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
}

func (c *gorillaConn) Close() error { return c.conn.Close() }

func (c *gorillaConn) NextReader() (int, io.Reader, error) {
	mt, r, err := c.conn.NextReader()
	if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
		return mt, nil, transport.ErrWebsocketClosed
	}
	return mt, r, err
}

func (c *gorillaConn) WriteJSON(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// A stuck reader must not hold its writer forever.
	c.conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
	return c.conn.WriteJSON(v)
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
	upgrader.Subprotocols = []string{"graphql-ws", "graphql-transport-ws"}
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
		gconn := &gorillaConn{conn: conn}
		done, ok := s.sockets.add(gconn)
		if !ok {
			gconn.WriteClose(websocket.CloseGoingAway, "server stopping")
			gconn.Close()
			return
		}
		sess := &wsSession{conn: gconn}
		ctx := context.WithValue(context.WithoutCancel(r.Context()), wsSessionKey{}, sess)
		go func() {
			defer done()
			next.ServeHTTP(hijackedWriter{}, r.WithContext(ctx))
		}()
	})
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
		Implementation:        s.newGorillaWebsocket(),
		InitFunc:              s.websocketInit,
		InitTimeout:           wsInitTimeout,
		KeepAlivePingInterval: wsPingInterval, // graphql-ws "ka"
		// graphql-transport-ws pings, and drops a client that stops
		// answering with pongs.
		PingPongInterval: wsPingInterval,
		PayloadReadLimit: &limit,
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
	}
	return auth.WithCaller(ctx, user, strings.TrimSpace(token)), nil, nil
}
