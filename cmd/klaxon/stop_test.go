package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/klaxonhq/klaxon/db"
)

// TestGracefulStop stops the real binary with SIGTERM while a webhook is
// half uploaded, a notification is being sent and a subscription is open:
// the webhook must be answered and stored, a request arriving after the
// stop began refused with 503, the subscription closed with "going away",
// the send finished and recorded, and the process must exit 0.
func TestGracefulStop(t *testing.T) {
	bin := buildKlaxon(t)
	for _, kind := range []db.Kind{db.SQLite, db.Postgres} {
		t.Run(string(kind), func(t *testing.T) {
			args, databaseURL := serveArgs(t, kind)
			testGracefulStop(t, bin, append(args, "--shutdown-timeout", "60s"), databaseURL)
		})
	}
}

func testGracefulStop(t *testing.T, bin string, args []string, databaseURL string) {
	// The receiver of outbound webhooks holds each send until released.
	arrived := make(chan struct{}, 16)
	release := make(chan struct{})
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(receiver.Close)
	released := sync.OnceFunc(func() { close(release) })
	t.Cleanup(released)

	p := startKlaxon(t, bin, args)
	base := "http://" + p.addr

	setup := setUpPaging(t, base, receiver.URL, 30)
	bearer, hookPath := setup.bearer, setup.hookPath

	// A live subscription.
	ws := subscribe(t, p.addr, bearer)

	// Finding A opens an alert, whose notification is now being sent.
	resp, err := http.Post(base+hookPath, "application/json", bytes.NewReader(detectifyFinding("finding-a", "high")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook A: HTTP %d", resp.StatusCode)
	}
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatalf("the notification for finding A was never sent\n%s", p.logs())
	}

	// Finding B is half uploaded by a slow sender when the stop begins:
	// the server has read its headers and counts it in flight (beside the
	// metrics request itself).
	bodyB := detectifyFinding("finding-b", "high")
	slow := dial(t, p.addr)
	fmt.Fprintf(slow, "POST %s HTTP/1.1\r\nHost: klaxon\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", hookPath, len(bodyB))
	if _, err := slow.Write(bodyB[:len(bodyB)/2]); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the slow upload to be in flight", func() bool { return requestsInFlight(t, base) >= 2 })
	// A client connected before the stop sends its request only after.
	late := dial(t, p.addr)

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", p.addr)
		if err == nil {
			c.Close()
			return false
		}
		return true
	})

	// The late request gets 503 with a JSON error; the server may also
	// have closed that connection, unused, before reading it.
	if _, err := late.Write([]byte("GET /graphql?query=%7Bme%7Bid%7D%7D HTTP/1.1\r\nHost: klaxon\r\n\r\n")); err == nil {
		if lateResp, err := http.ReadResponse(bufio.NewReader(late), nil); err == nil {
			var body struct{ Error string }
			err := json.NewDecoder(lateResp.Body).Decode(&body)
			lateResp.Body.Close()
			if lateResp.StatusCode != http.StatusServiceUnavailable || err != nil || body.Error == "" {
				t.Errorf("request after the stop began: HTTP %d, error %q (%v), want 503 with a JSON error", lateResp.StatusCode, body.Error, err)
			}
		} else {
			t.Logf("request after the stop began: connection closed unanswered (%v)", err)
		}
	}

	// The slow upload completes and is answered as stored.
	if _, err := slow.Write(bodyB[len(bodyB)/2:]); err != nil {
		t.Fatalf("finish the slow upload: %v\n%s", err, p.logs())
	}
	slowResp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatalf("slow webhook: %v\n%s", err, p.logs())
	}
	var reply struct{ Status string }
	json.NewDecoder(slowResp.Body).Decode(&reply)
	slowResp.Body.Close()
	if slowResp.StatusCode != http.StatusOK || reply.Status != "MAPPED_OPENED" {
		t.Errorf("slow webhook: HTTP %d status %q, want 200 MAPPED_OPENED", slowResp.StatusCode, reply.Status)
	}

	// The subscription is closed with "going away".
	select {
	case err := <-ws:
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Errorf("subscription ended with %v, want close 1001", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("subscription still open after the stop\n%s", p.logs())
	}

	// Only now, with the job workers told to stop, may the send finish.
	waitUntil(t, "the job workers to be stopping", func() bool { return strings.Contains(p.logs(), `msg="stopping job workers"`) })
	released()

	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", p.logs())
	}
	if !strings.Contains(p.logs(), "klaxon stopped") {
		t.Fatalf("no clean stop in the logs:\n%s", p.logs())
	}

	// What the process left behind: both messages stored, and the send
	// that was under way when it stopped recorded as sent, its job gone.
	d, err := db.Open(context.Background(), databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	if n, err := d.NewSelect().Model((*db.InboundMessage)(nil)).Count(ctx); err != nil || n != 2 {
		t.Errorf("inbound messages stored: %d (%v), want 2", n, err)
	}
	var alertA db.Alert
	if err := d.NewSelect().Model(&alertA).Where("source_id = ?", "finding-a").Scan(ctx); err != nil {
		t.Fatalf("alert for finding A: %v", err)
	}
	var sent []db.Notification
	if err := d.NewSelect().Model(&sent).Where("alert_id = ?", alertA.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || sent[0].Status != db.NotificationSent {
		t.Errorf("notifications of alert A: %+v, want one SENT\n%s", sent, p.logs())
	}
	if n, err := d.NewSelect().Model((*db.AlertJob)(nil)).Where("alert_id = ? AND kind = 'notify'", alertA.ID).Count(ctx); err != nil || n != 0 {
		t.Errorf("notify jobs left for alert A: %d (%v), want 0", n, err)
	}
}

// subscribe opens an alertEvents subscription over graphql-transport-ws
// and returns the error that ends it.
func subscribe(t *testing.T, addr, bearer string) <-chan error {
	t.Helper()
	dialer := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 10 * time.Second}
	conn, _, err := dialer.Dial("ws://"+addr+"/graphql", nil)
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := conn.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]string{"Authorization": "Bearer " + bearer}}); err != nil {
		t.Fatal(err)
	}
	var ack struct{ Type string }
	if err := conn.ReadJSON(&ack); err != nil || ack.Type != "connection_ack" {
		t.Fatalf("connection_init: %v %q", err, ack.Type)
	}
	if err := conn.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]string{"query": "subscription { alertEvents { type } }"}}); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Time{})
	ended := make(chan error, 1)
	go func() {
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				ended <- err
				return
			}
		}
	}()
	return ended
}

// requestsInFlight reads the server's own count of requests in flight.
func requestsInFlight(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "klaxon_http_requests_in_flight "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("in-flight gauge %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("no klaxon_http_requests_in_flight in /metrics")
	return 0
}
