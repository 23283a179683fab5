package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/heartbeats"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/maintenance"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/resolvers"
	"github.com/klaxonhq/klaxon/schedules"
	"github.com/klaxonhq/klaxon/server"
	"github.com/klaxonhq/klaxon/workflows"
)

// serve wires everything together and runs until ctx ends. Shutdown runs
// in the reverse order of start, all within the shutdown timeout: HTTP
// first (refusing new requests, finishing those in flight, closing
// websockets), then the job workers (finishing the jobs in hand), then
// the database.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig("serve", args, stderr, false, nil)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	now := time.Now

	store, err := openAndMigrate(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()

	tokens, err := auth.NewRotatingTokens(ctx, auth.KeyRingLoader(store, cfg.JWTSecret, cfg.JWTPreviousSecret, now().UTC()), cfg.SessionTTL, now)
	if err != nil {
		return err
	}
	authSvc, err := auth.NewService(store, tokens, now)
	if err != nil {
		return err
	}
	if !cfg.LoginBackoff {
		authSvc.SetLoginLimits(nil)
	}
	admin, generated, err := authSvc.EnsureAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword)
	if err != nil {
		return err
	}
	if admin != nil {
		log.Info("created the first admin", "email", admin.Email)
		if generated != "" {
			// Shown once, on stdout rather than in the logs, so it is not kept
			// by log collectors.
			fmt.Fprintf(stdout, "First admin: %s  password: %s  (shown once; change it after signing in)\n", admin.Email, generated)
		}
	}
	breakGlassEmail := cfg.AdminEmail
	if breakGlassEmail == "" {
		breakGlassEmail = auth.DefaultAdminEmail
	}
	singleSignOn, err := cfg.OIDC.build(store, authSvc, breakGlassEmail, now, log)
	if err != nil {
		return err
	}
	// Webhook routes are cached by alerting from the policies (and the
	// integrations and rulesets): each change to them drops the cache.
	var alertingSvc *alerting.Service
	policyStore := policies.NewStore(store, now, func() { alertingSvc.RoutesChanged() })
	scheduleStore := schedules.NewStore(store, now, policyStore)
	// The API keeps which team owns each integration, to decide cheaply
	// who may see each event; a change of integration drops that too.
	res := &resolvers.Resolver{}
	integrationStore := integrations.NewStore(store, cfg.PublicURL, now, func() { alertingSvc.RoutesChanged(); res.OwnersChanged() })
	heartbeatStore := heartbeats.NewStore(store, cfg.PublicURL, now)
	// Maintenance windows hold back paging, which alerting carries out:
	// it reads the windows, and each change to one is followed by it.
	maintenanceStore := maintenance.NewStore(store, now)
	guard, err := cfg.Channels.guard()
	if err != nil {
		return err
	}
	senders, err := cfg.Channels.senders(ctx, store, guard, cfg.PublicURL, now(), log)
	if err != nil {
		return err
	}
	// The engine pages, and verification sends codes, through one set of
	// channels.
	channels := notifiers.NewChannels(senders, guard)
	// Workflows' requests are queued by alerting with each alert change,
	// which keeps the workflows in memory: each change drops its copy.
	workflowStore := workflows.NewStore(store, now, guard, func() { alertingSvc.RoutesChanged() })
	contactStore := contacts.NewStore(store, now, log, channels)
	bus := events.NewBus(store, log)
	alertingSvc = alerting.NewService(alerting.Options{
		DB: store, PublicURL: cfg.PublicURL, Now: now, Log: log,
		Config: alerting.Config{
			OnCall: scheduleStore, Policies: policyStore, Integrations: integrationStore, Contacts: contactStore, Groups: authSvc, Heartbeats: heartbeatStore,
			Maintenance: maintenanceStore, Workflows: workflowStore,
		},
		Channels: channels, RateLimits: cfg.Channels.rateLimits(), JobLease: cfg.EngineJobLease, Events: bus, IngestLanes: int(cfg.IngestLanes),
		ReplayMaxMessages: int(cfg.ReplayMaxMessages),
	})
	heartbeatStore.UsePaging(alertingSvc)
	integrationStore.UseScanHeartbeats(alertingSvc)
	maintenanceStore.SetPaging(alertingSvc)
	// A shift swap's notices are alerting's jobs, queued in the swap's
	// transaction.
	scheduleStore.UseNotices(alertingSvc)
	auditLog := audit.NewLog(store)
	*res = resolvers.Resolver{
		Alerting: alertingSvc, Auth: authSvc, Events: bus, Audit: auditLog, ScheduleStore: scheduleStore, PolicyStore: policyStore, ContactStore: contactStore,
		IntegrationStore: integrationStore, HeartbeatStore: heartbeatStore, MaintenanceStore: maintenanceStore,
		InboundEmailDomain: cfg.InboundEmail.Domain,
		WorkflowStore:      workflowStore,
	}
	pruner := cfg.Retention.pruner(store, alertingSvc, auditLog, now, log)
	mattermostKey, err := notifiers.StoredMattermostKey(ctx, store, now())
	if err != nil {
		return err
	}
	srv := server.New(server.Config{
		AllowedOrigins:  cfg.AllowedOrigins,
		TrustedProxies:  cfg.TrustedProxies,
		MaxBodyBytes:    cfg.MaxBodyBytes,
		ShutdownTimeout: cfg.ShutdownTimeout,
		PublicURL:       cfg.PublicURL,
		TwilioAuthToken: cfg.Channels.TwilioAuthToken,
		MetricsToken:    cfg.MetricsToken,

		SlackSigningSecret: cfg.Channels.SlackSigningSecret,
		Slack:              cfg.Channels.slackApp(),
		MattermostKey:      mattermostKey,
		Now:                now,

		GraphQLMaxDepth:        int(cfg.GraphQL.MaxDepth),
		GraphQLMaxComplexity:   int(cfg.GraphQL.MaxComplexity),
		GraphQLMaxBodyBytes:    cfg.GraphQL.MaxBodyBytes,
		GraphQLNoIntrospection: !cfg.GraphQL.Introspection,
		Metrics:                pruner.Collectors(),

		SingleSignOn:       singleSignOn,
		SingleSignOnAppURL: cfg.OIDC.AppURL,
	}, store, alertingSvc, authSvc, bus, res, log)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	log.Info("klaxon listening", "addr", ln.Addr().String(), "database", string(store.Kind), "public_url", cfg.PublicURL)
	stopInboundEmail, err := startInboundEmail(cfg.InboundEmail, alertingSvc, log)
	if err != nil {
		ln.Close()
		return err
	}

	background, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var workers sync.WaitGroup
	workers.Go(func() { alertingSvc.RunEngine(background, cfg.EnginePollInterval) })
	workers.Go(func() { pruner.Run(background, pruneCheckInterval) })
	workers.Go(func() {
		if err := bus.Run(background); err != nil {
			log.Error("event bus stopped", "err", err)
		}
	})

	// The whole stop shares one deadline, counted from the signal.
	stopBy := make(chan time.Time, 1)
	context.AfterFunc(ctx, func() { stopBy <- time.Now().Add(cfg.ShutdownTimeout) })
	serveErr := srv.Serve(ctx, ln)
	var deadline time.Time
	select {
	case deadline = <-stopBy:
	default:
		deadline = time.Now().Add(cfg.ShutdownTimeout)
	}
	// Mail is a way in like HTTP: it stops with it, its sessions finishing
	// the message in hand within the same deadline.
	stopCtx, cancelStop := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	stopInboundEmail(stopCtx)
	cancelStop()
	// HTTP has stopped taking work; the engine finishes the jobs in hand and
	// the bus ends its subscriptions before the database closes.
	log.Info("stopping job workers", "deadline", time.Until(deadline).Round(time.Millisecond))
	stopBackground()
	finished := make(chan struct{})
	go func() { workers.Wait(); close(finished) }()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-finished:
	case <-timer.C:
		// Closing the database rolls back what they were doing; their jobs
		// stay queued and run again once their lease ends.
		log.Warn("job workers still busy at the shutdown timeout; their jobs will be retried")
		if serveErr == nil {
			serveErr = fmt.Errorf("job workers still busy after %s", cfg.ShutdownTimeout)
		}
	}
	if serveErr != nil {
		return serveErr
	}
	log.Info("klaxon stopped")
	return nil
}

// pruneCheckInterval is how often an instance asks whether a pruning run
// is due; the run itself comes once per retention.DefaultInterval.
const pruneCheckInterval = time.Minute

func openAndMigrate(ctx context.Context, cfg *config, log interface {
	Info(string, ...any)
}) (*db.DB, error) {
	store, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	applied, err := store.Migrate(ctx)
	if err != nil {
		store.Close()
		return nil, err
	}
	if len(applied) > 0 {
		log.Info("database migrated", "applied", applied)
	}
	return store, nil
}

func migrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	store, err := openForCommand(ctx, "migrate", args, stderr, nil)
	if err != nil {
		return err
	}
	return store.Close()
}

// openForCommand reads the storage flags of a command that works on the
// database and no server, then opens and migrates the database.
func openForCommand(ctx context.Context, command string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*db.DB, error) {
	cfg, err := parseConfig(command, args, stderr, true, extra)
	if err != nil {
		return nil, err
	}
	return openAndMigrate(ctx, cfg, newLogger(cfg, stderr))
}
