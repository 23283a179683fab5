package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/server"
)

// serve wires everything together and runs until ctx ends. Shutdown runs
// in the reverse order of start: HTTP first (finishing requests in
// flight), then the database.
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

	key, err := auth.SigningKey(ctx, store, cfg.JWTSecret, now().UTC())
	if err != nil {
		return err
	}
	tokens, err := auth.NewTokens(key, cfg.SessionTTL, now)
	if err != nil {
		return err
	}
	authSvc, err := auth.NewService(store, tokens, now)
	if err != nil {
		return err
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
	alertingSvc := alerting.NewService(store, cfg.PublicURL, now, log)
	senders, err := cfg.Channels.senders(ctx, store, cfg.PublicURL, now(), log)
	if err != nil {
		return err
	}
	alertingSvc.SetSenders(senders)
	alertingSvc.SetRateLimits(cfg.Channels.rateLimits())
	bus := events.NewBus(store, log)
	alertingSvc.SetEvents(bus)
	srv := server.New(server.Config{
		AllowedOrigins:  cfg.AllowedOrigins,
		MaxBodyBytes:    cfg.MaxBodyBytes,
		ShutdownTimeout: cfg.ShutdownTimeout,
		PublicURL:       cfg.PublicURL,
		TwilioAuthToken: cfg.Channels.TwilioAuthToken,
	}, store, alertingSvc, authSvc, bus, log)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	log.Info("klaxon listening", "addr", ln.Addr().String(), "database", string(store.Kind), "public_url", cfg.PublicURL)

	background, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var workers sync.WaitGroup
	workers.Go(func() { alertingSvc.RunEngine(background, cfg.EnginePollInterval) })
	workers.Go(func() {
		if err := bus.Run(background); err != nil {
			log.Error("event bus stopped", "err", err)
		}
	})

	serveErr := srv.Serve(ctx, ln)
	// HTTP has stopped taking work; the engine finishes the job in hand and
	// the bus ends its subscriptions before the database closes.
	stopBackground()
	workers.Wait()
	if serveErr != nil {
		return serveErr
	}
	log.Info("klaxon stopped")
	return nil
}

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
	cfg, err := parseConfig("migrate", args, stderr, true, nil)
	if err != nil {
		return err
	}
	store, err := openAndMigrate(ctx, cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	return store.Close()
}
