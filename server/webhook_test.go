package server_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

type alertView struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	Severity    string `json:"severity"`
	Subject     string `json:"subject"`
	SourceID    string `json:"sourceId"`
	AppendCount int    `json:"appendCount"`
	Timeline    []struct {
		Type string `json:"type"`
	} `json:"timeline"`
}

func (a alertView) timelineTypes() []string {
	var out []string
	for _, e := range a.Timeline {
		out = append(out, e.Type)
	}
	return out
}

// TestWebhookDetectifySamples posts every Detectify sample, in an order
// that exercises each outcome in the samples README: the legacy event is
// posted after the low-severity update closed the SQL injection alert, so
// it opens a fresh alert, and the current-format repeat that follows
// appends to it (both formats share the finding uuid).
func TestWebhookDetectifySamples(t *testing.T) {
	t.Parallel()
	const sqliUUID = "3f9c2a8e-6b1d-4c57-9e0a-5d2b7c41f8a3"
	steps := []struct {
		file   string
		status string
		// alert names the alert the step touches: a step with new set opens
		// it, the others must touch the alert of that name. "" is none.
		alert string
		new   bool
	}{
		{"scan_started.json", "MAPPED_IGNORED", "", false},
		{"new_finding_high.json", "MAPPED_OPENED", "sqli", true},
		{"new_finding_high_repeat.json", "MAPPED_APPENDED", "sqli", false},
		{"new_finding_medium.json", "MAPPED_OPENED", "xss", true},
		{"new_finding_critical.json", "MAPPED_OPENED", "rce", true},
		{"finding_low.json", "MAPPED_CLOSED", "sqli", false},
		{"finding_low_unmatched.json", "MAPPED_IGNORED", "", false},
		{"legacy_event_finding_high.json", "MAPPED_OPENED", "sqli-again", true},
		{"new_finding_high.json", "MAPPED_APPENDED", "sqli-again", false},
		{"scan_completed.json", "PULSE", "", false},
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("DETECTIFY")
		token := integ.Token(t)

		alerts := map[string]string{} // name → id
		var messageIDs []string
		for i, step := range steps {
			ok := t.Run(step.file, func(t *testing.T) {
				h := h.with(t)
				r := h.webhook(http.MethodPost, token, sample(t, step.file), map[string]string{
					"Content-Type":          "application/json",
					"X-Detectify-Signature": "sig-" + step.file,
					"Authorization":         "Bearer must-not-be-stored",
				})
				if r.HTTPStatus != http.StatusOK {
					t.Fatalf("HTTP %d, want 200: %s", r.HTTPStatus, r.Raw)
				}
				if !strings.HasPrefix(r.ContentType, "application/json") {
					t.Fatalf("Content-Type %q", r.ContentType)
				}
				var keys map[string]json.RawMessage
				if err := json.Unmarshal(r.Raw, &keys); err != nil {
					t.Fatal(err)
				}
				for _, k := range []string{"messageId", "status", "alertId"} {
					if _, ok := keys[k]; !ok {
						t.Errorf("reply lacks %q: %s", k, r.Raw)
					}
				}
				if _, ok := keys["error"]; ok {
					t.Errorf("successful reply has an error key: %s", r.Raw)
				}
				if r.Status != step.status {
					t.Fatalf("status %s, want %s: %s", r.Status, step.status, r.Raw)
				}
				if r.MessageID == "" || slices.Contains(messageIDs, r.MessageID) {
					t.Fatalf("messageId %q missing or reused", r.MessageID)
				}
				messageIDs = append(messageIDs, r.MessageID)
				switch {
				case step.alert == "":
					if r.AlertID != nil {
						t.Fatalf("alertId %s, want null", *r.AlertID)
					}
				case step.new:
					if r.AlertID == nil {
						t.Fatal("alertId is null, want a new alert")
					}
					for name, id := range alerts {
						if id == *r.AlertID {
							t.Fatalf("opened alert %s, which is alert %q already", id, name)
						}
					}
					alerts[step.alert] = *r.AlertID
				default:
					if got, want := r.alert(), alerts[step.alert]; got != want {
						t.Fatalf("touched alert %q, want %q (%s)", got, want, step.alert)
					}
				}
			})
			if !ok {
				t.Fatalf("step %d (%s) failed; later steps depend on it", i, step.file)
			}
		}

		t.Run("alerts query", func(t *testing.T) {
			h := h.with(t)
			var data struct {
				Alerts struct {
					TotalCount int         `json:"totalCount"`
					Nodes      []alertView `json:"nodes"`
				} `json:"alerts"`
				Open struct {
					TotalCount int `json:"totalCount"`
				} `json:"open"`
				Closed struct {
					TotalCount int `json:"totalCount"`
				} `json:"closed"`
			}
			h.mustGQL(h.admin.Token, `{
				alerts { totalCount nodes { id status severity subject sourceId appendCount timeline { type } } }
				open: alerts(filter: {status: [OPEN]}) { totalCount }
				closed: alerts(filter: {status: [CLOSED]}) { totalCount } }`, nil, &data)
			if data.Alerts.TotalCount != 4 || len(data.Alerts.Nodes) != 4 {
				t.Fatalf("totalCount %d with %d nodes, want 4", data.Alerts.TotalCount, len(data.Alerts.Nodes))
			}
			if data.Open.TotalCount != 3 || data.Closed.TotalCount != 1 {
				t.Errorf("open %d, closed %d; want 3 and 1", data.Open.TotalCount, data.Closed.TotalCount)
			}
			byID := map[string]alertView{}
			for _, a := range data.Alerts.Nodes {
				byID[a.ID] = a
			}
			want := map[string]struct {
				status, severity, subject string
				appends                   int
				timeline                  []string
			}{
				"sqli": {"CLOSED", "high", "SQL Injection", 1, []string{"OPENED", "APPENDED", "CLOSED"}},
				"xss":  {"OPEN", "medium", "Reflected Cross-site Scripting (XSS)", 0, []string{"OPENED"}},
				"rce":  {"OPEN", "critical", "Remote Code Execution", 0, []string{"OPENED"}},
				// The finding came back after its alert closed.
				"sqli-again": {"OPEN", "high", "SQL Injection", 1, []string{"OPENED", "REGRESSION", "APPENDED"}},
			}
			for name, w := range want {
				a, ok := byID[alerts[name]]
				if !ok {
					t.Errorf("alert %s (%s) not listed", name, alerts[name])
					continue
				}
				if a.Status != w.status || a.Severity != w.severity || a.Subject != w.subject || a.AppendCount != w.appends {
					t.Errorf("alert %s: %+v, want %+v", name, a, w)
				}
				if got := a.timelineTypes(); !slices.Equal(got, w.timeline) {
					t.Errorf("alert %s timeline %v, want %v", name, got, w.timeline)
				}
			}
			for _, name := range []string{"sqli", "sqli-again"} {
				if got := byID[alerts[name]].SourceID; got != sqliUUID {
					t.Errorf("alert %s sourceId %q, want %q", name, got, sqliUUID)
				}
			}
		})

		t.Run("inboundMessages query", func(t *testing.T) {
			h := h.with(t)
			var data struct {
				All struct {
					TotalCount int `json:"totalCount"`
					Nodes      []struct {
						ID      string `json:"id"`
						Status  string `json:"status"`
						Headers []struct {
							Name  string `json:"name"`
							Value string `json:"value"`
						} `json:"headers"`
						Alert *struct {
							ID string `json:"id"`
						} `json:"alert"`
					} `json:"nodes"`
				} `json:"all"`
				Opened   struct{ TotalCount int } `json:"opened"`
				Appended struct{ TotalCount int } `json:"appended"`
				Closed   struct{ TotalCount int } `json:"closed"`
				Ignored  struct{ TotalCount int } `json:"ignored"`
			}
			h.mustGQL(h.admin.Token, `query($id: ID) {
				all: inboundMessages(integrationId: $id) { totalCount nodes { id status headers { name value } alert { id } } }
				opened: inboundMessages(status: [MAPPED_OPENED]) { totalCount }
				appended: inboundMessages(status: [MAPPED_APPENDED]) { totalCount }
				closed: inboundMessages(status: [MAPPED_CLOSED]) { totalCount }
				ignored: inboundMessages(status: [MAPPED_IGNORED]) { totalCount } }`,
				map[string]any{"id": integ.ID}, &data)
			if data.All.TotalCount != len(steps) || len(data.All.Nodes) != len(steps) {
				t.Fatalf("inbound log has %d (%d nodes), want %d", data.All.TotalCount, len(data.All.Nodes), len(steps))
			}
			if data.Opened.TotalCount != 4 || data.Appended.TotalCount != 2 || data.Closed.TotalCount != 1 || data.Ignored.TotalCount != 2 {
				t.Errorf("by status: opened %d appended %d closed %d ignored %d; want 4 2 1 2",
					data.Opened.TotalCount, data.Appended.TotalCount, data.Closed.TotalCount, data.Ignored.TotalCount)
			}
			// Newest first: the log is the webhook replies in reverse.
			for i, m := range data.All.Nodes {
				step := len(steps) - 1 - i
				if m.ID != messageIDs[step] || m.Status != steps[step].status {
					t.Errorf("log entry %d: id %s status %s, want id %s status %s", i, m.ID, m.Status, messageIDs[step], steps[step].status)
				}
				wantAlert := alerts[steps[step].alert]
				if (m.Alert == nil) != (wantAlert == "") || (m.Alert != nil && m.Alert.ID != wantAlert) {
					t.Errorf("log entry %d: alert %+v, want %q", i, m.Alert, wantAlert)
				}
				headers := map[string]string{}
				for _, hd := range m.Headers {
					headers[hd.Name] = hd.Value
				}
				if headers["Content-Type"] != "application/json" || headers["X-Detectify-Signature"] != "sig-"+steps[step].file {
					t.Errorf("log entry %d: headers %v lack Content-Type or the signature", i, headers)
				}
				if _, ok := headers["Authorization"]; ok {
					t.Errorf("log entry %d: Authorization header was stored", i)
				}
			}
		})
	})
}

// TestWebhookConcurrentIdenticalMessages posts one message 50 times at
// once: exactly one alert must open and take the other 49 as appends.
func TestWebhookConcurrentIdenticalMessages(t *testing.T) {
	t.Parallel()
	const n = 50
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		token := h.createIntegration("DETECTIFY").Token(t)
		body := sample(t, "new_finding_high.json")

		replies := make([]*webhookReply, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				replies[i] = h.postWebhook(token, body)
			})
		}
		close(start)
		wg.Wait()

		statuses := map[string]int{}
		alertIDs := map[string]bool{}
		for i, r := range replies {
			if r.HTTPStatus != http.StatusOK {
				t.Errorf("reply %d: HTTP %d: %s", i, r.HTTPStatus, r.Raw)
				continue
			}
			statuses[r.Status]++
			alertIDs[r.alert()] = true
		}
		if statuses["MAPPED_OPENED"] != 1 || statuses["MAPPED_APPENDED"] != n-1 || len(alertIDs) != 1 {
			t.Fatalf("replies: statuses %v over alerts %v; want 1 opened, %d appended, one alert", statuses, alertIDs, n-1)
		}

		var data struct {
			Alerts struct {
				TotalCount int         `json:"totalCount"`
				Nodes      []alertView `json:"nodes"`
			} `json:"alerts"`
			Opened   struct{ TotalCount int } `json:"opened"`
			Appended struct{ TotalCount int } `json:"appended"`
			All      struct{ TotalCount int } `json:"all"`
		}
		h.mustGQL(h.admin.Token, `{
			alerts { totalCount nodes { id status appendCount timeline { type } } }
			opened: inboundMessages(status: [MAPPED_OPENED]) { totalCount }
			appended: inboundMessages(status: [MAPPED_APPENDED]) { totalCount }
			all: inboundMessages { totalCount } }`, nil, &data)
		if data.Alerts.TotalCount != 1 || len(data.Alerts.Nodes) != 1 {
			t.Fatalf("%d alerts, want 1", data.Alerts.TotalCount)
		}
		a := data.Alerts.Nodes[0]
		if a.AppendCount != n-1 || a.Status != "OPEN" || !alertIDs[a.ID] {
			t.Errorf("alert %+v: want OPEN with %d appends, id among %v", a, n-1, alertIDs)
		}
		if len(a.Timeline) != n {
			t.Errorf("timeline has %d entries, want %d", len(a.Timeline), n)
		}
		if data.Opened.TotalCount != 1 || data.Appended.TotalCount != n-1 || data.All.TotalCount != n {
			t.Errorf("inbound log: %d opened, %d appended, %d in all; want 1, %d, %d",
				data.Opened.TotalCount, data.Appended.TotalCount, data.All.TotalCount, n-1, n)
		}
	})
}
