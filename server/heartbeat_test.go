package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/heartbeats"
	"github.com/klaxonhq/klaxon/server"
)

type pulseAnswer struct {
	status     int
	retryAfter string
	body       map[string]any
}

func (h *harness) pulse(method, url, body string) pulseAnswer {
	h.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := pulseAnswer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if method != http.MethodHead {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			h.t.Fatalf("%s %s: HTTP %d, not JSON: %q", method, url, resp.StatusCode, raw)
		}
	}
	return a
}

// createHeartbeat creates a monitor over GraphQL as admin and returns its
// id and URL.
func (h *harness) createHeartbeat() (id, url string) {
	h.t.Helper()
	var data struct {
		CreateHeartbeatMonitor struct {
			ID     string
			URL    string
			Status string
		}
	}
	h.mustGQL(h.admin.Token, `mutation($name: String!, $user: ID!) {
		createHeartbeatMonitor(input: {name: $name, intervalMinutes: 10, graceMinutes: 2, severity: "critical", recipientUserIds: [$user]}) { id url status } }`,
		map[string]any{"name": h.unique("backup"), "user": h.admin.ID}, &data)
	m := data.CreateHeartbeatMonitor
	if m.Status != "PENDING" || !strings.HasPrefix(m.URL, "https://klaxon.example/heartbeats/") {
		h.t.Fatalf("new monitor %+v", m)
	}
	return m.ID, h.srv.URL + strings.TrimPrefix(m.URL, "https://klaxon.example")
}

// A pulse is a GET or a POST to the monitor's URL with no other
// credential: answered {"status":"UP"} and counted; the body is ignored
// but capped; an unknown token is a JSON 404; other methods 405; and a
// monitor flooded with pulses is answered 429 with Retry-After.
func TestHeartbeatPulseRoute(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		id, url := h.createHeartbeat()
		if a := h.pulse(http.MethodGet, url, ""); a.status != http.StatusOK || a.body["status"] != "UP" {
			t.Fatalf("GET pulse: %+v", a)
		}
		if a := h.pulse(http.MethodPost, url, `{"output":"3 files backed up"}`); a.status != http.StatusOK || a.body["status"] != "UP" {
			t.Fatalf("POST pulse: %+v", a)
		}
		var data struct {
			HeartbeatMonitor struct {
				Status      string
				PulseCount  int
				LastPulseAt *string
			}
		}
		h.mustGQL(h.admin.Token, `query($id: ID!) { heartbeatMonitor(id: $id) { status pulseCount lastPulseAt } }`, map[string]any{"id": id}, &data)
		if m := data.HeartbeatMonitor; m.Status != "UP" || m.PulseCount != 2 || m.LastPulseAt == nil {
			t.Fatalf("after two pulses %+v", m)
		}

		if a := h.pulse(http.MethodPost, url, strings.Repeat("x", 65<<10)); a.status != http.StatusRequestEntityTooLarge || a.body["error"] == nil {
			t.Fatalf("oversized pulse: %+v", a)
		}
		if a := h.pulse(http.MethodGet, h.srv.URL+"/heartbeats/not-a-token", ""); a.status != http.StatusNotFound || a.body["error"] == nil {
			t.Fatalf("unknown token: %+v", a)
		}
		if a := h.pulse(http.MethodPut, url, ""); a.status != http.StatusMethodNotAllowed {
			t.Fatalf("PUT: %+v", a)
		}
		var last pulseAnswer
		for range heartbeats.PulsesPerMinute {
			if last = h.pulse(http.MethodGet, url, ""); last.status != http.StatusOK {
				break
			}
		}
		if last.status != http.StatusTooManyRequests || last.retryAfter == "" || last.body["error"] == nil {
			t.Fatalf("flood: %+v, want 429 with Retry-After", last)
		}
	})
}

// While the database is away a pulse is answered 503 with Retry-After,
// as a webhook is, and nothing is counted.
func TestHeartbeatPulseWhileTheDatabaseIsAway(t *testing.T) {
	d, relay := dbtest.PostgresBehindRelay(t)
	h := newHarness(t, d, server.Config{})
	_, url := h.createHeartbeat()
	relay.Cut()
	a := h.pulse(http.MethodGet, url, "")
	relay.Restore()
	if a.status != http.StatusServiceUnavailable || a.retryAfter == "" || a.body["error"] == nil {
		t.Fatalf("pulse while the database is away: %+v, want 503 with Retry-After", a)
	}
	if a := h.pulse(http.MethodGet, url, ""); a.status != http.StatusOK {
		t.Fatalf("pulse once the database is back: %+v", a)
	}
}

// An alert a monitor opened names it.
func TestAlertNamesItsHeartbeatMonitor(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		id, _ := h.createHeartbeat()
		monitorID, _ := strconv.Atoi(id)
		now := time.Now().UTC()
		a := &db.Alert{SourceID: "heartbeat:" + id + ":1", Subject: "heartbeat missed", Status: db.AlertOpen, OpenedAt: now, LastSeenAt: now, HeartbeatMonitorID: &monitorID}
		if _, err := d.NewInsert().Model(a).Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
		var data struct {
			Alert struct {
				HeartbeatMonitor *struct{ ID string }
				Integration      *struct{ ID string }
			}
		}
		h.mustGQL(h.newUser(db.RoleViewer).Token, `query($id: ID!) { alert(id: $id) { heartbeatMonitor { id } integration { id } } }`, map[string]any{"id": a.ID}, &data)
		if m := data.Alert.HeartbeatMonitor; m == nil || m.ID != id || data.Alert.Integration != nil {
			t.Fatalf("alert %+v, want monitor %s and no integration", data.Alert, id)
		}
	})
}
