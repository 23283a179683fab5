package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/server"
)

// config is every setting, parsed once from flags and the environment and
// validated before anything starts.
type config struct {
	Addr          string
	DataDir       string
	DatabaseURL   string
	PublicURL     string
	AdminEmail    string
	AdminPassword string
	JWTSecret     string
	// JWTPreviousSecret, beside a configured JWTSecret, keeps the tokens
	// signed before a manual rotation valid for one session lifetime.
	JWTPreviousSecret string
	AllowedOrigins    []string
	TrustedProxies    []netip.Prefix
	LoginBackoff      bool
	MaxBodyBytes      int64
	ShutdownTimeout   time.Duration
	SessionTTL        time.Duration
	// EnginePollInterval is how often due escalation steps and
	// notifications are looked for: the most they can run late.
	EnginePollInterval time.Duration
	// IngestLanes is how many ingest batches commit side by side on
	// PostgreSQL.
	IngestLanes int64
	// EngineJobLease is how long a job taken by an instance is reserved
	// to it: after a crash, how long its jobs wait to be run again.
	EngineJobLease time.Duration
	LogLevel       slog.Level
	LogFormat      string
	Channels       channelSettings
	GraphQL        graphQLSettings

	// MetricsToken, when set, is the bearer token GET /metrics needs.
	MetricsToken string
	// ReplayMaxMessages is how many stored messages one replay of a
	// ruleset may read.
	ReplayMaxMessages int64
	// InboundEmail is the SMTP listener for EMAIL integrations.
	InboundEmail inboundEmailSettings
	// OIDC is single sign-on and whether passwords still sign in.
	OIDC oidcSettings
	// Retention is how long each kind of record is kept.
	Retention retentionSettings
}

// graphQLSettings bound what one GraphQL request may ask of the server.
type graphQLSettings struct {
	MaxDepth      int64
	MaxComplexity int64
	MaxBodyBytes  int64
	Introspection bool
}

// settings binds a flag set to the environment: each flag's default is its
// variable's value when that is set.
type settings struct {
	fs   *flag.FlagSet
	errs []error
}

func (s *settings) env(name string) (string, bool) { return os.LookupEnv(name) }

func (s *settings) string(p *string, flagName, envName, def, help string) {
	if v, ok := s.env(envName); ok {
		def = v
	}
	s.fs.StringVar(p, flagName, def, help+" ("+envName+")")
}

func (s *settings) duration(p *time.Duration, flagName, envName string, def time.Duration, help string) {
	if v, ok := s.env(envName); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", envName, err))
		}
		def = d
	}
	s.fs.DurationVar(p, flagName, def, help+" ("+envName+")")
}

func (s *settings) bool(p *bool, flagName, envName string, def bool, help string) {
	if v, ok := s.env(envName); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", envName, err))
		}
		def = b
	}
	s.fs.BoolVar(p, flagName, def, help+" ("+envName+")")
}

func (s *settings) int64(p *int64, flagName, envName string, def int64, help string) {
	if v, ok := s.env(envName); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", envName, err))
		}
		def = n
	}
	s.fs.Int64Var(p, flagName, def, help+" ("+envName+")")
}

// parseConfig reads the flags for one command; storageOnly limits them to
// what commands without a server need.
func parseConfig(command string, args []string, stderr io.Writer, storageOnly bool, extra func(*flag.FlagSet)) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("klaxon "+command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	s := &settings{fs: fs}
	var origins, proxies, level string
	s.string(&cfg.DataDir, "data-dir", "KLAXON_DATA_DIR", "./data", "directory for the embedded database")
	s.string(&cfg.DatabaseURL, "database-url", "KLAXON_DATABASE_URL", "", "sqlite:///path/file.db or postgres://…; default: a SQLite file in the data directory")
	s.string(&level, "log-level", "KLAXON_LOG_LEVEL", "info", "debug, info, warn or error")
	s.string(&cfg.LogFormat, "log-format", "KLAXON_LOG_FORMAT", "text", "text or json")
	if !storageOnly {
		s.string(&cfg.Addr, "addr", "KLAXON_ADDR", ":8080", "listen address")
		s.string(&cfg.PublicURL, "public-url", "KLAXON_PUBLIC_URL", "http://localhost:8080", "base of the integration URLs shown to users")
		s.string(&cfg.AdminEmail, "admin-email", "KLAXON_ADMIN_EMAIL", "", "email of the first admin, created when no user exists")
		s.string(&cfg.AdminPassword, "admin-password", "KLAXON_ADMIN_PASSWORD", "", "password of the first admin; generated and printed once when empty")
		s.string(&cfg.JWTSecret, "jwt-secret", "KLAXON_JWT_SECRET", "", "session signing key (32+ characters); generated and stored when empty")
		s.string(&cfg.JWTPreviousSecret, "jwt-previous-secret", "KLAXON_JWT_PREVIOUS_SECRET", "", "the signing key before KLAXON_JWT_SECRET, accepted for one session lifetime after start")
		s.string(&origins, "allowed-origins", "KLAXON_ALLOWED_ORIGINS", "", "comma-separated browser origins allowed for CORS and websockets")
		s.string(&proxies, "trusted-proxies", "KLAXON_TRUSTED_PROXIES", "", "comma-separated addresses or CIDR ranges of reverse proxies whose X-Forwarded-For is believed")
		s.bool(&cfg.LoginBackoff, "login-backoff", "KLAXON_LOGIN_BACKOFF", true, "slow down repeated failed sign-ins per address and per account")
		s.int64(&cfg.MaxBodyBytes, "max-body-bytes", "KLAXON_MAX_BODY_BYTES", 1<<20, "largest webhook body accepted")
		s.duration(&cfg.ShutdownTimeout, "shutdown-timeout", "KLAXON_SHUTDOWN_TIMEOUT", 30*time.Second, "how long requests in flight and jobs in hand may take to finish on SIGTERM or SIGINT")
		s.int64(&cfg.GraphQL.MaxDepth, "graphql-max-depth", "KLAXON_GRAPHQL_MAX_DEPTH", server.DefaultGraphQLMaxDepth, "deepest field nesting a GraphQL operation may have")
		s.int64(&cfg.GraphQL.MaxComplexity, "graphql-max-complexity", "KLAXON_GRAPHQL_MAX_COMPLEXITY", server.DefaultGraphQLMaxComplexity, "most a GraphQL operation may cost: each field counts once per item of the lists above it")
		s.int64(&cfg.GraphQL.MaxBodyBytes, "graphql-max-body-bytes", "KLAXON_GRAPHQL_MAX_BODY_BYTES", server.DefaultGraphQLMaxBodyBytes, "largest POST /graphql body accepted")
		s.bool(&cfg.GraphQL.Introspection, "graphql-introspection", "KLAXON_GRAPHQL_INTROSPECTION", true, "answer GraphQL introspection and serve the playground")
		s.string(&cfg.MetricsToken, "metrics-token", "KLAXON_METRICS_TOKEN", "", "bearer token GET /metrics requires; empty: /metrics is open")
		s.duration(&cfg.SessionTTL, "session-ttl", "KLAXON_SESSION_TTL", 12*time.Hour, "how long a login token is valid")
		s.duration(&cfg.EnginePollInterval, "engine-poll-interval", "KLAXON_ENGINE_POLL_INTERVAL", 100*time.Millisecond, "how often due escalations and notifications are run")
		s.duration(&cfg.EngineJobLease, "engine-job-lease", "KLAXON_ENGINE_JOB_LEASE", alerting.DefaultJobLease, "how long a job taken by an instance is reserved to it; after a crash its jobs run again once this has passed")
		s.int64(&cfg.IngestLanes, "ingest-lanes", "KLAXON_INGEST_LANES", alerting.DefaultIngestLanes, "how many ingest batches commit side by side on PostgreSQL, each on a connection of its own; SQLite always has one")
		s.int64(&cfg.ReplayMaxMessages, "replay-max-messages", "KLAXON_REPLAY_MAX_MESSAGES", alerting.DefaultReplayMaxMessages, "most stored messages one replayRuleset may read; a longer range is refused")
		cfg.Channels.bind(s)
		cfg.InboundEmail.bind(s)
		cfg.OIDC.bind(s)
		cfg.Retention.bind(s)
	}
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := errors.Join(s.errs...); err != nil {
		return nil, err
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		return nil, fmt.Errorf("log format must be text or json, not %q", cfg.LogFormat)
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = db.DefaultURL(cfg.DataDir)
	}
	if storageOnly {
		return cfg, nil
	}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
		}
	}
	var err error
	if cfg.TrustedProxies, err = server.ParseTrustedProxies(proxies); err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	if u, err := url.Parse(cfg.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("public URL %q must be an absolute http(s) URL", cfg.PublicURL)
	}
	if cfg.MaxBodyBytes <= 0 {
		return nil, errors.New("max body bytes must be positive")
	}
	if cfg.ShutdownTimeout <= 0 {
		return nil, errors.New("shutdown timeout must be positive")
	}
	if cfg.GraphQL.MaxDepth <= 0 || cfg.GraphQL.MaxComplexity <= 0 || cfg.GraphQL.MaxBodyBytes <= 0 {
		return nil, errors.New("GraphQL max depth, max complexity and max body bytes must be positive")
	}
	if cfg.EnginePollInterval < 10*time.Millisecond {
		return nil, errors.New("engine poll interval must be at least 10ms")
	}
	if cfg.EngineJobLease < time.Second {
		return nil, errors.New("engine job lease must be at least 1s")
	}
	if cfg.JWTPreviousSecret != "" && cfg.JWTSecret == "" {
		return nil, errors.New("a previous JWT secret needs a JWT secret")
	}
	if cfg.IngestLanes < 1 || cfg.IngestLanes > 64 {
		return nil, errors.New("ingest lanes must be between 1 and 64")
	}
	if cfg.ReplayMaxMessages <= 0 {
		return nil, errors.New("replay max messages must be positive")
	}
	if cfg.SessionTTL <= 0 {
		return nil, errors.New("session TTL must be positive")
	}
	if cfg.Channels.SMSRateLimit < 0 {
		return nil, errors.New("SMS rate limit must not be negative (0 disables it)")
	}
	if _, err := cfg.Channels.guard(); err != nil {
		return nil, err
	}
	if err := cfg.InboundEmail.validate(); err != nil {
		return nil, err
	}
	if err := cfg.OIDC.validate(cfg.PublicURL); err != nil {
		return nil, err
	}
	return cfg, nil
}
