package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// TestStoresEachBody posts bodies, some concurrently, then closes the
// store and reads each body back by the id its reply named through a
// store opened afresh: what a 202 promised is on disk, not in a pool.
func TestStoresEachBody(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		st, err := openStore(ctx, d.URL, "")
		if err != nil {
			t.Fatal(err)
		}
		// A second start finds the table already there.
		again, err := openStore(ctx, d.URL, "")
		if err != nil {
			t.Fatalf("second start: %v", err)
		}
		again.Close()
		if st.kind() != d.Kind {
			t.Fatalf("kind %s, want %s", st.kind(), d.Kind)
		}
		ts := httptest.NewServer(newHandler(st, slog.New(slog.NewTextHandler(io.Discard, nil))))

		sample, err := os.ReadFile("../../rules/testdata/detectify/new_finding_high.json")
		if err != nil {
			t.Fatal(err)
		}
		const n = 40
		ids := make([]int64, n)
		bodies := make([][]byte, n)
		var wg sync.WaitGroup
		for i := range n {
			bodies[i] = sample
			if i > 0 {
				bodies[i] = fmt.Appendf(nil, `{"n":%d}`, i)
			}
			wg.Go(func() { ids[i] = post(t, ts.URL+"/webhooks/tok-"+strconv.Itoa(i), bodies[i]) })
		}
		wg.Wait()

		resp, err := http.Get(ts.URL + "/webhooks/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("GET: %d, want 405", resp.StatusCode)
		}
		big := bytes.Repeat([]byte("x"), maxBodyBytes+1)
		resp, err = http.Post(ts.URL+"/webhooks/x", "application/json", bytes.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("oversized body: %d, want 413", resp.StatusCode)
		}
		ts.Close()
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}

		var count int
		if err := d.DB.DB.QueryRowContext(ctx, "SELECT count(*) FROM baseline_messages").Scan(&count); err != nil {
			t.Fatal(err)
		}
		if count != n {
			t.Fatalf("%d rows stored, want %d (the refused ones must not be)", count, n)
		}
		q := "SELECT token, body FROM baseline_messages WHERE id = ?"
		if d.Kind == db.Postgres {
			q = "SELECT token, body FROM baseline_messages WHERE id = $1"
		}
		for i, id := range ids {
			var token string
			var stored []byte
			if err := d.DB.DB.QueryRowContext(ctx, q, id).Scan(&token, &stored); err != nil {
				t.Fatalf("read message %d: %v", id, err)
			}
			if want := "tok-" + strconv.Itoa(i); token != want || !bytes.Equal(stored, bodies[i]) {
				t.Fatalf("message %d: token %q, body %q; want %s and %q", id, token, stored, want, bodies[i])
			}
		}
	})
}

// TestDefaultDatabaseIsDurableSQLite checks that an empty -database-url
// gives a SQLite file in the data directory with Klaxon's durability
// settings, the point of the comparison.
func TestDefaultDatabaseIsDurableSQLite(t *testing.T) {
	dir := t.TempDir()
	st, err := openStore(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, ok := st.(*sqliteStore)
	if !ok {
		t.Fatalf("store %T, want SQLite", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "baseline.db")); err != nil {
		t.Fatalf("database file: %v", err)
	}
	var mode string
	var synchronous int
	if err := s.d.DB.DB.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := s.d.DB.DB.QueryRow("PRAGMA synchronous").Scan(&synchronous); err != nil {
		t.Fatal(err)
	}
	maxConns := s.d.DB.DB.Stats().MaxOpenConnections
	if mode != "wal" || synchronous != 2 || maxConns != 1 {
		t.Fatalf("journal_mode %q, synchronous %d, max connections %d; want wal, 2 (FULL), 1", mode, synchronous, maxConns)
	}
}

// TestPostgresPoolIsSixteenDurableConnections checks the plain server's
// shape on PostgreSQL: a pgx pool of 16 whose sessions commit
// synchronously, even against a server whose default says otherwise.
func TestPostgresPoolIsSixteenDurableConnections(t *testing.T) {
	d := dbtest.Postgres(t)
	u, err := url.Parse(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	st, err := openStore(context.Background(), u.String(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, ok := st.(*postgresStore)
	if !ok {
		t.Fatalf("store %T, want PostgreSQL", st)
	}
	if got := s.pool.Config().MaxConns; got != postgresPoolSize || postgresPoolSize != 16 {
		t.Fatalf("pool of %d, want 16", got)
	}
	var setting string
	if err := s.pool.QueryRow(context.Background(), "SHOW synchronous_commit").Scan(&setting); err != nil {
		t.Fatal(err)
	}
	if setting != "on" {
		t.Fatalf("synchronous_commit %q, want on", setting)
	}
}

func post(t *testing.T, url string, body []byte) int64 {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Errorf("post: %v", err)
		return 0
	}
	defer resp.Body.Close()
	var reply struct {
		MessageID string `json:"messageId"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		t.Errorf("reply: %v", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("status %d, want 202", resp.StatusCode)
	}
	id, err := strconv.ParseInt(reply.MessageID, 10, 64)
	if err != nil {
		t.Errorf("message id %q: %v", reply.MessageID, err)
	}
	return id
}
