// Command klaxon-baseline is the least a webhook receiver can do and still keep
// Klaxon's promise that a 2xx means stored: it takes POST
// /webhooks/{token} and inserts the body in a transaction of its own,
// answering 202 after the commit. It opens its database through Klaxon's
// own db.Open, so the SQLite pragmas (WAL, synchronous=FULL, busy_timeout,
// immediate transactions) and connection pools are Klaxon's by
// construction, and it does nothing else: no parsing, no rules, no alerts.
// klaxon-bench -baseline measures Klaxon against it.
package main

import (
	"context"
	"database/sql"
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
	"syscall"
	"time"

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

	store, err := openStore(ctx, *databaseURL, *dataDir)
	if err != nil {
		return err
	}
	defer store.Close()
	h, err := newHandler(ctx, store, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	log.Info("baseline listening", "addr", ln.Addr().String(), "database", string(store.Kind))
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

// openStore opens the database named by rawURL, or a SQLite file in
// dataDir when rawURL is empty.
func openStore(ctx context.Context, rawURL, dataDir string) (*db.DB, error) {
	if rawURL == "" {
		rawURL = "sqlite://" + filepath.Join(dataDir, "baseline.db")
	}
	store, err := db.Open(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("open baseline database: %w", err)
	}
	return store, nil
}

// handler stores each webhook body with one INSERT in its own transaction.
// It uses database/sql under bun directly, so no query builder sits in the
// measured path.
type handler struct {
	sql    *sql.DB
	insert string
	log    *slog.Logger
}

func newHandler(ctx context.Context, store *db.DB, log *slog.Logger) (http.Handler, error) {
	h := &handler{sql: store.DB.DB, log: log}
	create := `CREATE TABLE IF NOT EXISTS baseline_messages (
	id INTEGER PRIMARY KEY,
	token TEXT NOT NULL,
	received_at TIMESTAMP NOT NULL,
	body BLOB NOT NULL
)`
	h.insert = `INSERT INTO baseline_messages (token, received_at, body) VALUES (?, ?, ?) RETURNING id`
	if store.Kind == db.Postgres {
		create = `CREATE TABLE IF NOT EXISTS baseline_messages (
	id BIGSERIAL PRIMARY KEY,
	token TEXT NOT NULL,
	received_at TIMESTAMPTZ NOT NULL,
	body BYTEA NOT NULL
)`
		h.insert = `INSERT INTO baseline_messages (token, received_at, body) VALUES ($1, $2, $3) RETURNING id`
	}
	if _, err := h.sql.ExecContext(ctx, create); err != nil {
		return nil, fmt.Errorf("create baseline_messages: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhooks/{token}", h.webhook)
	return mux, nil
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
	id, err := h.store(r.Context(), r.PathValue("token"), body)
	if err != nil {
		h.log.ErrorContext(r.Context(), "webhook not stored", "err", err)
		reply(w, http.StatusInternalServerError, `{"error":"the message could not be stored; retry later"}`)
		return
	}
	reply(w, http.StatusAccepted, `{"messageId":"`+strconv.FormatInt(id, 10)+`"}`)
}

// store runs the one transaction, so the commit (and its fsync) is what a
// 202 waits for, as in Klaxon.
func (h *handler) store(ctx context.Context, token string, body []byte) (int64, error) {
	tx, err := h.sql.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	var id int64
	if err := tx.QueryRowContext(ctx, h.insert, token, time.Now().UTC(), body).Scan(&id); err != nil {
		return 0, fmt.Errorf("insert message: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit message: %w", err)
	}
	return id, nil
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body+"\n")
}
