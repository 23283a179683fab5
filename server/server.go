package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/resolvers"
	"github.com/klaxonhq/klaxon/sso"
)

// Config is the HTTP layer's share of the settings.
type Config struct {
	// AllowedOrigins are the browser origins allowed by CORS.
	AllowedOrigins []string
	// MaxBodyBytes caps a webhook body; larger bodies get 413.
	MaxBodyBytes int64
	// ShutdownTimeout bounds how long requests in flight may take to
	// finish once a stop is asked for.
	ShutdownTimeout time.Duration
	// PublicURL is the base Twilio was given for its callbacks; their
	// signatures cover it.
	PublicURL string
	// TwilioAuthToken verifies Twilio's callbacks; without it the Twilio
	// routes answer 404.
	TwilioAuthToken string
	// GraphQLMaxDepth refuses operations whose fields nest deeper.
	GraphQLMaxDepth int
	// GraphQLMaxComplexity refuses operations that ask for more, every
	// field counting once per item of the lists above it (see limits.go).
	GraphQLMaxComplexity int
	// GraphQLMaxBodyBytes caps a POST /graphql body; larger ones get 413.
	GraphQLMaxBodyBytes int64
	// GraphQLNoIntrospection refuses __schema and __type queries and
	// drops the playground, which cannot work without them. It is a
	// negative so that the zero Config keeps the default, on.
	GraphQLNoIntrospection bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client; sign-in attempts are counted per client address.
	TrustedProxies []netip.Prefix
	// WebsocketInitTimeout is how long a websocket client has to send
	// connection_init; by default 10 s.
	WebsocketInitTimeout time.Duration
	// MetricsToken, when set, must come as "Authorization: Bearer
	// <token>" with every GET /metrics.
	MetricsToken string
	// SlackSigningSecret verifies Slack's interactivity requests; with
	// Slack, the app's Web API client, it turns on POST /slack/actions
	// (404 otherwise).
	SlackSigningSecret string
	Slack              *notifiers.SlackAPI
	// MattermostKey verifies the buttons of Mattermost pages; without it
	// POST /mattermost/actions answers 404.
	MattermostKey []byte
	// Now is the clock signature windows are checked against; time.Now
	// when nil.
	Now func() time.Time
	// SingleSignOn, when set, serves GET /auth/oidc/login and
	// /auth/oidc/callback (404 otherwise).
	SingleSignOn *sso.Service
	// SingleSignOnAppURL is where the browser lands after single sign-on,
	// with the login code or the error in the fragment of
	// {SingleSignOnAppURL}/#/login; PublicURL when empty.
	SingleSignOnAppURL string
	// Metrics are the collectors of other parts of the process (the
	// pruner's progress) that GET /metrics shows with the server's own.
	Metrics []prometheus.Collector
}

// Defaults for the GraphQL limits. The depth allows GraphiQL's own
// introspection query (its type references nest nine levels under
// __schema { types { fields { args { type … } } } }); the complexity a
// full page of 500 with nine fields each.
const (
	DefaultGraphQLMaxDepth      = 15
	DefaultGraphQLMaxComplexity = 5000
	DefaultGraphQLMaxBodyBytes  = 1 << 20
)

// webhookRoute is where senders post their messages.
const webhookRoute = "POST /webhooks/{token}"

// Server serves Klaxon over HTTP.
type Server struct {
	cfg      Config
	db       *db.DB
	alerting *alerting.Service
	auth     *auth.Service
	events   *events.Bus
	resolver *resolvers.Resolver
	log      *slog.Logger
	metrics  *metrics
	handler  http.Handler
	// stopping is set once Serve has been asked to stop; inFlight counts
	// the requests being served.
	stopping atomic.Bool
	inFlight atomic.Int64
	sockets  socketSet
	sends    *sendQueue
	// shares are the results that subscriptions of one operation share.
	shares *resultShares
	// tokenChecks ends websockets whose session has ended.
	tokenChecks *tokenCheck
	// slackEmails caches the email address of Slack users who pressed a
	// button.
	slackEmails *emailCache
}

// New builds the server over the services the wiring built once; res is
// the GraphQL resolver over the same services.
func New(cfg Config, d *db.DB, alertingSvc *alerting.Service, authSvc *auth.Service, bus *events.Bus, res *resolvers.Resolver, log *slog.Logger) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.GraphQLMaxDepth <= 0 {
		cfg.GraphQLMaxDepth = DefaultGraphQLMaxDepth
	}
	if cfg.GraphQLMaxComplexity <= 0 {
		cfg.GraphQLMaxComplexity = DefaultGraphQLMaxComplexity
	}
	if cfg.GraphQLMaxBodyBytes <= 0 {
		cfg.GraphQLMaxBodyBytes = DefaultGraphQLMaxBodyBytes
	}
	if cfg.WebsocketInitTimeout <= 0 {
		cfg.WebsocketInitTimeout = defaultWebsocketInitTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, db: d, alerting: alertingSvc, auth: authSvc, events: bus, resolver: res, log: log}
	s.slackEmails = newEmailCache(slackEmailTTL, cfg.Now)
	// A few senders per core keep the cores busy while some wait on
	// their sockets.
	s.sends = newSendQueue(4*runtime.GOMAXPROCS(0), 10*time.Millisecond)
	s.shares = newResultShares()
	s.tokenChecks = newTokenCheck(wsTokenCheckInterval, func(ctx context.Context, token string) (*auth.Access, error) {
		user, _, err := s.auth.AuthenticateUntil(ctx, token)
		if err != nil {
			return nil, err
		}
		return s.auth.AccessOf(ctx, user)
	}, log)
	s.metrics = newMetrics(&s.inFlight)
	s.metrics.registry.MustRegister(cfg.Metrics...)
	s.handler = s.routes()
	return s
}

// Handler is the whole HTTP API, middleware included.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	api := s.graphQLHandler()
	mux.Handle("POST /graphql", limitGraphQLBody(s.cfg.GraphQLMaxBodyBytes, s.authenticate(api)))
	mux.Handle("GET /graphql", s.websocketHandoff(s.authenticate(api)))
	if !s.cfg.GraphQLNoIntrospection {
		playground := playgroundHandler()
		mux.Handle("GET /playground", playground)
		mux.Handle("GET /playground/{file}", playground)
	}
	mux.HandleFunc(webhookRoute, s.handleWebhook)
	mux.HandleFunc(pagerDutyEnqueueRoute, s.handlePagerDutyEvent)
	mux.HandleFunc(pagerDutyChangeRoute, s.handlePagerDutyChange)
	mux.HandleFunc(opsgenieCreateRoute, s.handleOpsgenieCreate)
	mux.HandleFunc(opsgenieActionRoute, s.handleOpsgenieAction)
	mux.HandleFunc(opsgenieRequestRoute, s.handleOpsgenieRequest)
	mux.HandleFunc("/v2/alerts", s.handleOpsgenieUnknown)
	mux.HandleFunc("/v2/alerts/", s.handleOpsgenieUnknown)
	mux.HandleFunc("GET /heartbeats/{token}", s.handlePulse)
	mux.HandleFunc("POST /heartbeats/{token}", s.handlePulse)
	mux.HandleFunc("GET /actions/{token}", s.handleActionPage)
	mux.HandleFunc("POST /actions/{token}", s.handleAction)
	mux.HandleFunc("GET /swaps/{token}/{answer}", s.handleSwapPage)
	mux.HandleFunc("POST /swaps/{token}/{answer}", s.handleSwapAnswer)
	mux.HandleFunc("POST /twilio/sms", s.handleTwilioSMS)
	mux.HandleFunc("POST /twilio/status", s.handleTwilioStatus)
	mux.HandleFunc("POST /twilio/voice", s.handleTwilioVoice)
	mux.HandleFunc("POST /slack/actions", s.handleSlackActions)
	mux.HandleFunc("POST /mattermost/actions", s.handleMattermostActions)
	mux.HandleFunc(oidcLoginRoute, s.handleOIDCLogin)
	mux.HandleFunc(oidcCallbackRoute, s.handleOIDCCallback)
	mux.HandleFunc("/webhooks/{token}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "webhooks take POST only")
	})
	mux.HandleFunc("/heartbeats/{token}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeError(w, http.StatusMethodNotAllowed, "heartbeats take GET or POST only")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such route")
	})
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", requireToken(s.cfg.MetricsToken, s.metrics.handler()))
	// The headers come first, so every answer of ours carries them: the
	// 503 of a stop and the 500 of a panic as much as the mux's 404s and
	// redirects.
	return securityHeaders(s.recoverPanics(s.logRequests(s.refuseWhileStopping(s.cors(mux)))))
}

// Serve answers on ln until ctx is cancelled, then stops (see stop.go):
// the listener closes, new requests get 503, requests in flight get up to
// ShutdownTimeout to finish, and open websockets are closed with "going
// away". It returns an error if requests had to be cut off.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// "OPTIONS *" is then answered by our handler (400, with the
		// security headers) rather than by net/http's own, bare 200.
		DisableGeneralOptionsHandler: true,
		// Requests in flight must finish after the stop signal, so they do
		// not inherit its cancellation.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("stopping http server", "timeout", s.cfg.ShutdownTimeout)
	stopCtx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	s.stopping.Store(true)
	// Closing the listener ends srv.Serve, with an error that only says so.
	ln.Close()
	<-served
	err := s.drain(stopCtx)
	if err == nil {
		err = srv.Shutdown(stopCtx)
	}
	s.sockets.closeAll(stopCtx)
	if err != nil {
		// Cut off what is left rather than outlive the timeout.
		srv.Close()
		return fmt.Errorf("stop http server: requests still running after %s: %w", s.cfg.ShutdownTimeout, err)
	}
	s.log.Info("http server stopped")
	return nil
}
