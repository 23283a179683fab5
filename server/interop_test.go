package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// TestGraphQLWSClientInterop runs the graphql-ws npm client on Node against
// the server: subscribe, post a Detectify sample, receive its alert event
// and its inbound log entry.
func TestGraphQLWSClientInterop(t *testing.T) {
	dir := filepath.Join("testdata", "graphqlws")
	node, err := exec.LookPath("node")
	if _, statErr := os.Stat(filepath.Join(dir, "node_modules", "graphql-ws")); err != nil || statErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node or the interop packages are missing (run npm ci in %s): %v %v", dir, err, statErr)
		}
		t.Skipf("node or the interop packages are missing; run npm ci in %s", dir)
	}
	sample, err := os.ReadFile(filepath.Join("..", "rules", "testdata", "detectify", "new_finding_high.json"))
	if err != nil {
		t.Fatal(err)
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("DETECTIFY")
		viewer := h.newUser(db.RoleViewer)

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "subscribe.mjs", "ws"+strings.TrimPrefix(h.srv.URL, "http")+"/graphql", viewer.Token)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); cmd.Wait() })
		lines := make(chan string, 100)
		go func() {
			defer close(lines)
			scanner := bufio.NewScanner(stdout)
			for scanner.Scan() {
				lines <- scanner.Text()
			}
		}()
		next := func(timeout time.Duration) (string, bool) {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("the client exited: %s", stderr.String())
				}
				return line, true
			case <-time.After(timeout):
				return "", false
			}
		}
		if line, ok := next(20 * time.Second); !ok || !strings.Contains(line, `"connected":true`) {
			t.Fatalf("the client did not connect: %q %s", line, stderr.String())
		}

		var printed struct {
			AlertEvents *struct {
				Data struct {
					AlertEvents struct {
						Type  string `json:"type"`
						Alert struct {
							ID       string `json:"id"`
							Severity string `json:"severity"`
						} `json:"alert"`
					} `json:"alertEvents"`
				} `json:"data"`
			} `json:"alertEvents"`
			InboundLog *struct {
				Data struct {
					InboundLog struct {
						ID     string `json:"id"`
						Status string `json:"status"`
					} `json:"inboundLog"`
				} `json:"data"`
			} `json:"inboundLog"`
		}
		// The client cannot tell when the server has registered its
		// subscriptions, so the sample is posted until it is seen.
		for range 50 {
			r := h.postWebhook(integ.Token(t), sample)
			if r.alert() == "" {
				t.Fatalf("the sample opened no alert: %s", r.Raw)
			}
			sawAlert, sawInbound := false, false
			for {
				line, ok := next(300 * time.Millisecond)
				if !ok {
					break
				}
				printed.AlertEvents, printed.InboundLog = nil, nil
				if err := json.Unmarshal([]byte(line), &printed); err != nil {
					t.Fatalf("client printed %q: %v", line, err)
				}
				if e := printed.AlertEvents; e != nil && e.Data.AlertEvents.Alert.ID == r.alert() {
					sawAlert = true
				}
				if e := printed.InboundLog; e != nil && e.Data.InboundLog.ID == r.MessageID && strings.HasPrefix(e.Data.InboundLog.Status, "MAPPED_") {
					sawInbound = true
				}
				if sawAlert && sawInbound {
					return
				}
			}
		}
		t.Fatalf("the graphql-ws client never received the sample's events; stderr: %s", stderr.String())
	})
}
