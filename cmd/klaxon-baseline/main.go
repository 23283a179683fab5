// Command klaxon-baseline is the least a webhook receiver can do and still keep
// Klaxon's promise that a 2xx means stored: it takes POST
// /webhooks/{token} and stores the body with exactly one autocommit
// INSERT, answering 202 after the commit. On PostgreSQL that INSERT goes
// through a pgx pool of 16 connections with synchronous_commit on; on
// SQLite through Klaxon's own db.Open (WAL, synchronous=FULL, one
// connection). It does nothing else: no parsing, no rules, no alerts.
// klaxon-bench -baseline measures Klaxon against it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/klaxonhq/klaxon/db"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

// maxBodyBytes is Klaxon's default webhook body limit.
const maxBodyBytes = 1 << 20

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", ":8090", "listen address")
	databaseURL := fs.String("database-url", "", "sqlite:///path/file.db or postgres://…; default: baseline.db in -data-dir")
	dataDir := fs.String("data-dir", "./baseline-data", "directory for the SQLite file when -database-url is empty")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	st, err := openStore(ctx, *databaseURL, *dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	h := newHandler(st, log)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	log.Info("baseline listening", "addr", ln.Addr().String(), "database", string(st.kind()))
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Requests in flight finish before the database closes (deferred above).
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(stopCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	log.Info("baseline stopped")
	return nil
}

// store is where the baseline puts each body: one autocommit INSERT,
// nothing else.
type store interface {
	insert(ctx context.Context, token string, body []byte) (int64, error)
	kind() db.Kind
	Close() error
}

// openStore opens the database named by rawURL, or a SQLite file in
// dataDir when rawURL is empty, and creates the table if it is missing.
func openStore(ctx context.Context, rawURL, dataDir string) (store, error) {
	if rawURL == "" {
		rawURL = "sqlite://" + filepath.Join(dataDir, "baseline.db")
	}
	if strings.HasPrefix(rawURL, "postgres://") || strings.HasPrefix(rawURL, "postgresql://") {
		return openPostgres(ctx, rawURL)
	}
	d, err := db.Open(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("open baseline database: %w", err)
	}
	s := &sqliteStore{d: d}
	if _, err := d.DB.DB.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS baseline_messages (
	id INTEGER PRIMARY KEY,
	token TEXT NOT NULL,
	received_at TIMESTAMP NOT NULL,
	body BLOB NOT NULL
)`); err != nil {
		d.Close()
		return nil, fmt.Errorf("create baseline_messages: %w", err)
	}
	return s, nil
}

// sqliteStore opens SQLite through Klaxon's own db.Open, so the pragmas
// (WAL, synchronous=FULL, busy_timeout) and the one connection are
// Klaxon's by construction. A lone INSERT outside BEGIN is its own
// transaction: it returns after its commit reached the disk.
type sqliteStore struct{ d *db.DB }

func (s *sqliteStore) insert(ctx context.Context, token string, body []byte) (int64, error) {
	var id int64
	err := s.d.DB.DB.QueryRowContext(ctx, `INSERT INTO baseline_messages (token, received_at, body) VALUES (?, ?, ?) RETURNING id`,
		token, db.SQLiteTime(time.Now()), body).Scan(&id)
	return id, err
}

func (s *sqliteStore) kind() db.Kind { return db.SQLite }
func (s *sqliteStore) Close() error  { return s.d.Close() }

// postgresPoolSize is the plain server's pool: 16 connections, each
// sending one autocommit INSERT at a time. PostgreSQL already flushes
// the WAL of concurrent commits together, which is what a plain server
// gets for free and what Klaxon is measured against.
const postgresPoolSize = 16

// postgresStore talks to PostgreSQL through pgxpool directly: one round
// trip per message (the statement is prepared once per connection and
// cached), no database/sql or query builder in between.
type postgresStore struct{ pool *pgxpool.Pool }

func openPostgres(ctx context.Context, rawURL string) (*postgresStore, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open baseline database: the PostgreSQL URL does not parse: %w", err)
	}
	cfg.MaxConns = postgresPoolSize
	// Durability is the point of the comparison: whatever the server's
	// default, every commit waits for its WAL flush.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open baseline database: %w", err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS baseline_messages (
	id BIGSERIAL PRIMARY KEY,
	token TEXT NOT NULL,
	received_at TIMESTAMPTZ NOT NULL,
	body BYTEA NOT NULL
)`); err != nil {
		pool.Close()
		return nil, fmt.Errorf("create baseline_messages: %w", err)
	}
	return &postgresStore{pool: pool}, nil
}

func (s *postgresStore) insert(ctx context.Context, token string, body []byte) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO baseline_messages (token, received_at, body) VALUES ($1, $2, $3) RETURNING id`,
		token, time.Now().UTC(), body).Scan(&id)
	return id, err
}

func (s *postgresStore) kind() db.Kind { return db.Postgres }
func (s *postgresStore) Close() error  { s.pool.Close(); return nil }

// handler stores each webhook body with one INSERT and answers 202 after
// its commit.
type handler struct {
	store store
	log   *slog.Logger
}

func newHandler(st store, log *slog.Logger) http.Handler {
	h := &handler{store: st, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhooks/{token}", h.webhook)
	return mux
}

func (h *handler) webhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			reply(w, http.StatusRequestEntityTooLarge, `{"error":"body too large"}`)
			return
		}
		reply(w, http.StatusBadRequest, `{"error":"could not read the request body"}`)
		return
	}
	id, err := h.store.insert(r.Context(), r.PathValue("token"), body)
	if err != nil {
		h.log.ErrorContext(r.Context(), "webhook not stored", "err", err)
		reply(w, http.StatusInternalServerError, `{"error":"the message could not be stored; retry later"}`)
		return
	}
	reply(w, http.StatusAccepted, `{"messageId":"`+strconv.FormatInt(id, 10)+`"}`)
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body+"\n")
}
