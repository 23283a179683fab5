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
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// TestStoresEachBody posts bodies, some concurrently, and reads each back
// by the id the reply names.
func TestStoresEachBody(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		h, err := newHandler(ctx, d, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		// A second start finds the table already there.
		if _, err := newHandler(ctx, d, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
			t.Fatalf("second start: %v", err)
		}
		ts := httptest.NewServer(h)
		defer ts.Close()

		sample, err := os.ReadFile("../../rules/testdata/detectify/new_finding_high.json")
		if err != nil {
			t.Fatal(err)
		}
		const n = 20
		ids := make([]int64, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				body := sample
				if i > 0 {
					body = fmt.Appendf(nil, `{"n":%d}`, i)
				}
				ids[i] = post(t, ts.URL+"/webhooks/tok-"+strconv.Itoa(i), body)
			})
		}
		wg.Wait()

		var count int
		if err := d.DB.DB.QueryRowContext(ctx, "SELECT count(*) FROM baseline_messages").Scan(&count); err != nil {
			t.Fatal(err)
		}
		if count != n {
			t.Fatalf("%d rows stored, want %d", count, n)
		}
		var token string
		var stored []byte
		q := "SELECT token, body FROM baseline_messages WHERE id = ?"
		if d.Kind == db.Postgres {
			q = "SELECT token, body FROM baseline_messages WHERE id = $1"
		}
		if err := d.DB.DB.QueryRowContext(ctx, q, ids[0]).Scan(&token, &stored); err != nil {
			t.Fatalf("read message %d: %v", ids[0], err)
		}
		if token != "tok-0" || !bytes.Equal(stored, sample) {
			t.Fatalf("message %d: token %q, body %q; want tok-0 and the sample", ids[0], token, stored)
		}

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
	})
}

// TestDefaultDatabaseIsDurableSQLite checks that an empty -database-url
// gives a SQLite file in the data directory with Klaxon's durability
// settings, the point of the comparison.
func TestDefaultDatabaseIsDurableSQLite(t *testing.T) {
	dir := t.TempDir()
	store, err := openStore(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if store.Kind != db.SQLite {
		t.Fatalf("kind %s, want sqlite", store.Kind)
	}
	if _, err := os.Stat(filepath.Join(dir, "baseline.db")); err != nil {
		t.Fatalf("database file: %v", err)
	}
	var mode string
	var synchronous, maxConns int
	if err := store.DB.DB.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := store.DB.DB.QueryRow("PRAGMA synchronous").Scan(&synchronous); err != nil {
		t.Fatal(err)
	}
	maxConns = store.DB.DB.Stats().MaxOpenConnections
	if mode != "wal" || synchronous != 2 || maxConns != 1 {
		t.Fatalf("journal_mode %q, synchronous %d, max connections %d; want wal, 2 (FULL), 1", mode, synchronous, maxConns)
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
