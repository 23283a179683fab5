package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	amcommoncfg "github.com/prometheus/alertmanager/config/common"
	"github.com/prometheus/alertmanager/notify/opsgenie"
	commoncfg "github.com/prometheus/common/config"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// opsgenieNotifier is Alertmanager's own Opsgenie notifier, with its
// defaults, pointed at the server.
func opsgenieNotifier(t *testing.T, baseURL, key string, edit func(*opsgenie.OpsGenieConfig)) *opsgenie.Notifier {
	t.Helper()
	u, err := url.Parse(baseURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	conf := opsgenie.DefaultOpsGenieConfig
	conf.APIURL = &amcommoncfg.URL{URL: u}
	conf.APIKey = commoncfg.Secret(key)
	conf.HTTPConfig = &commoncfg.HTTPClientConfig{}
	conf.Priority = "P2"
	conf.Entity = `{{ .CommonLabels.instance }}`
	conf.Tags = "disk,db"
	if edit != nil {
		edit(&conf)
	}
	n, err := opsgenie.New(&conf, alertmanagerTemplate(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("opsgenie notifier: %v", err)
	}
	return n
}

// TestOpsgenieAlertmanagerNotifier drives Alertmanager's own Opsgenie
// notifier, configured with nothing but Klaxon's URL and an integration's
// key: a firing group opens an alert, a repeat appends, the resolved
// group closes it by alias.
func TestOpsgenieAlertmanagerNotifier(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("OPSGENIE")
		key := h.adminRoutingKey(integ.ID)
		n := opsgenieNotifier(t, h.srv.URL, key, nil)
		ctx := notifyContext("{}:{alertname=\"DiskFull\"}")

		for range 2 {
			if v := n.Notify(ctx, diskAlert(false)); v.Err() != nil {
				t.Fatalf("firing: %v", v.Err())
			}
		}
		alerts := h.alertsOf()
		if len(alerts) != 1 {
			t.Fatalf("alerts after firing twice: %+v, want one", alerts)
		}
		if a := alerts[0]; a.Status != "OPEN" || a.Subject != "[FIRING:1] DiskFull (db-1:9100 critical)" || a.Severity != "high" || !strings.Contains(a.Details, "Disk almost full on db-1") {
			t.Fatalf("opened alert: %+v", a)
		}
		if v := n.Notify(ctx, diskAlert(true)); v.Err() != nil {
			t.Fatalf("resolved: %v", v.Err())
		}
		if alerts := h.alertsOf(); len(alerts) != 1 || alerts[0].Status != "CLOSED" {
			t.Fatalf("alerts after resolving: %+v, want the one alert CLOSED", alerts)
		}
		var statuses []string
		for _, m := range h.inbound(integ.ID) {
			statuses = append(statuses, m.Status)
		}
		if got := strings.Join(statuses, " "); got != "MAPPED_CLOSED MAPPED_APPENDED MAPPED_OPENED" {
			t.Fatalf("inbound log: %s", got)
		}

		// A PAGERDUTY integration's key is no GenieKey: Alertmanager is
		// told so, and does not retry.
		pd := h.adminRoutingKey(h.createIntegration("PAGERDUTY").ID)
		v := opsgenieNotifier(t, h.srv.URL, pd, nil).Notify(ctx, diskAlert(false))
		if v.Err() == nil || v.ShouldRetry() || !strings.Contains(v.Err().Error(), "401") {
			t.Fatalf("Alertmanager's verdict on a wrong key: retry=%v err=%v", v.ShouldRetry(), v.Err())
		}
	})
}

type opsgenieAnswer struct {
	HTTPStatus int
	RetryAfter string
	Result     string            `json:"result"`
	Message    string            `json:"message"`
	Errors     map[string]string `json:"errors"`
	Took       *float64          `json:"took"`
	RequestID  string            `json:"requestId"`
	Data       *struct {
		Success       bool      `json:"success"`
		Action        string    `json:"action"`
		ProcessedAt   time.Time `json:"processedAt"`
		IntegrationID string    `json:"integrationId"`
		IsSuccess     bool      `json:"isSuccess"`
		Status        string    `json:"status"`
		AlertID       string    `json:"alertId"`
		Alias         string    `json:"alias"`
	} `json:"data"`
}

// opsgenie sends a request with "Authorization: GenieKey key" and decodes
// the answer strictly: a field Opsgenie does not document fails the
// test, and so does a missing took or requestId.
func (h *harness) opsgenie(method, path, key string, body any) opsgenieAnswer {
	h.t.Helper()
	var reader io.Reader
	if body != nil {
		raw, ok := body.([]byte)
		if !ok {
			var err error
			if raw, err = json.Marshal(body); err != nil {
				h.t.Fatal(err)
			}
		}
		reader = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, reader)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "GenieKey "+key)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	answer := opsgenieAnswer{HTTPStatus: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&answer); err != nil {
		h.t.Fatalf("answer of %s %s is not Opsgenie's shape: %v", method, path, err)
	}
	if answer.Took == nil || answer.RequestID == "" {
		h.t.Fatalf("answer of %s %s lacks took or requestId: %+v", method, path, answer)
	}
	return answer
}

// TestOpsgenieAlertAPI follows Opsgenie's documented flow: create, read
// the request's outcome back, acknowledge by id, close by alias.
func TestOpsgenieAlertAPI(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("OPSGENIE")
		key := h.adminRoutingKey(integ.ID)

		created := h.opsgenie("POST", "/v2/alerts", key, map[string]any{
			"message": "Disk full on db-1", "alias": "db-1/disk", "description": "3% free", "priority": "P1",
			"tags": []string{"db"}, "details": map[string]string{"url": "https://grafana.example/d/disk"},
			"entity": "db-1", "source": "cron", "responders": []map[string]string{{"name": "DBA", "type": "team"}},
		})
		if created.HTTPStatus != http.StatusAccepted || created.Result != "Request will be processed" {
			t.Fatalf("create: %+v", created)
		}
		alerts := h.alertsOf()
		if len(alerts) != 1 || alerts[0].SourceID != "db-1/disk" || alerts[0].Subject != "Disk full on db-1" ||
			alerts[0].Severity != "critical" || alerts[0].URL != "https://grafana.example/d/disk" || alerts[0].Details != "3% free" {
			t.Fatalf("created alert: %+v", alerts)
		}
		alertID := alerts[0].ID

		status := h.opsgenie("GET", "/v2/alerts/requests/"+created.RequestID, key, nil)
		if status.HTTPStatus != http.StatusOK || status.Data == nil || !status.Data.IsSuccess || !status.Data.Success ||
			status.Data.Action != "Create" || status.Data.Status != "Created alert" || status.Data.AlertID != alertID ||
			status.Data.Alias != "db-1/disk" || status.Data.IntegrationID != integ.ID || status.Data.ProcessedAt.IsZero() {
			t.Fatalf("request status: %+v %+v", status, status.Data)
		}
		// Another integration's key does not read the request.
		other := h.adminRoutingKey(h.createIntegration("OPSGENIE").ID)
		if got := h.opsgenie("GET", "/v2/alerts/requests/"+created.RequestID, other, nil); got.HTTPStatus != http.StatusNotFound {
			t.Fatalf("request status under another key: %+v", got)
		}

		ack := h.opsgenie("POST", "/v2/alerts/"+alertID+"/acknowledge", key, map[string]any{"user": "cron", "note": "on it"})
		if ack.HTTPStatus != http.StatusAccepted {
			t.Fatalf("acknowledge by id: %+v", ack)
		}
		if a := h.alertsOf()[0]; a.Status != "ACKNOWLEDGED" {
			t.Fatalf("acknowledged alert: %+v", a)
		}
		if s := h.opsgenie("GET", "/v2/alerts/requests/"+ack.RequestID, key, nil); s.Data == nil || s.Data.Action != "Acknowledge" || !s.Data.IsSuccess {
			t.Fatalf("acknowledge status: %+v", s)
		}

		noted := h.opsgenie("POST", "/v2/alerts/db-1%2Fdisk/notes?identifierType=alias", key, map[string]any{"user": "cron", "note": "Rotated the logs"})
		if noted.HTTPStatus != http.StatusAccepted {
			t.Fatalf("add note: %+v", noted)
		}
		a := h.alertsOf()[0]
		last := a.Timeline[len(a.Timeline)-1]
		if last.Type != "NOTE" || last.Message != "Rotated the logs" || last.User != nil {
			t.Fatalf("noted alert's timeline: %+v", a.Timeline)
		}
		if s := h.opsgenie("GET", "/v2/alerts/requests/"+noted.RequestID, key, nil); s.Data == nil || s.Data.Action != "AddNote" || s.Data.Status != "Added note" {
			t.Fatalf("add note status: %+v", s.Data)
		}

		closed := h.opsgenie("POST", "/v2/alerts/db-1%2Fdisk/close?identifierType=alias", key, map[string]any{"source": "cron"})
		if closed.HTTPStatus != http.StatusAccepted {
			t.Fatalf("close by alias: %+v", closed)
		}
		if a := h.alertsOf()[0]; a.Status != "CLOSED" {
			t.Fatalf("closed alert: %+v", a)
		}
		// Closing again finds nothing to close: accepted, and the
		// request's outcome says so.
		again := h.opsgenie("POST", "/v2/alerts/db-1%2Fdisk/close?identifierType=alias", key, nil)
		if again.HTTPStatus != http.StatusAccepted {
			t.Fatalf("second close: %+v", again)
		}
		if s := h.opsgenie("GET", "/v2/alerts/requests/"+again.RequestID, key, nil); s.Data == nil || s.Data.IsSuccess || s.Data.Action != "Close" {
			t.Fatalf("second close status: %+v", s.Data)
		}

		// A create without an alias is a new alert each time.
		for range 2 {
			if got := h.opsgenie("POST", "/v2/alerts", key, map[string]any{"message": "Backup failed"}); got.HTTPStatus != http.StatusAccepted {
				t.Fatalf("create without alias: %+v", got)
			}
		}
		if n := len(h.alertsOf()); n != 3 {
			t.Fatalf("%d alerts, want 3", n)
		}
	})
}

// TestOpsgenieErrorAnswers checks each refusal's status and documented
// shape, what it leaves in the inbound log (only what reached a known
// integration, as MAPPING_FAILED) and that it opened no alert.
func TestOpsgenieErrorAnswers(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("OPSGENIE")
		key := h.adminRoutingKey(integ.ID)
		pdKey := h.adminRoutingKey(h.createIntegration("PAGERDUTY").ID)
		disabled := h.createIntegration("OPSGENIE")
		disabledKey := h.adminRoutingKey(disabled.ID)
		h.mustGQL(h.admin.Token, `mutation($id: ID!) { updateIntegration(id: $id, input: {enabled: false}) { id } }`, map[string]any{"id": disabled.ID}, nil)
		// An alert of another integration, which this key may not name.
		other := h.adminRoutingKey(h.createIntegration("OPSGENIE").ID)
		if got := h.opsgenie("POST", "/v2/alerts", other, map[string]any{"message": "theirs", "alias": "theirs"}); got.HTTPStatus != http.StatusAccepted {
			t.Fatalf("other integration's create: %+v", got)
		}
		theirs := h.alertsOf()[0].ID

		cases := []struct {
			name, method, path, key string
			body                    any
			status                  int
			// field and wantError: the error by field (422) or the
			// message; stored says the request is in the inbound log
			// as MAPPING_FAILED.
			field, wantError string
			stored           bool
		}{
			{"no key", "POST", "/v2/alerts", "", map[string]any{"message": "m"}, 401, "", "Could not authenticate", false},
			{"unknown key", "POST", "/v2/alerts", strings.Repeat("0", 32), map[string]any{"message": "m"}, 401, "", "Could not authenticate", false},
			{"PagerDuty key", "POST", "/v2/alerts", pdKey, map[string]any{"message": "m"}, 401, "", "Could not authenticate", false},
			{"disabled integration", "POST", "/v2/alerts", disabledKey, map[string]any{"message": "m"}, 403, "", "disabled", false},
			{"not JSON", "POST", "/v2/alerts", key, []byte(`{"message":`), 422, "body", "must be a JSON object", true},
			{"body over the limit", "POST", "/v2/alerts", key, []byte(`{"message":"m",` + strings.Repeat(" ", 1<<20) + `}`), 413, "", "Request body exceeds 1048576 bytes", false},
			{"no message", "POST", "/v2/alerts", key, map[string]any{"alias": "a"}, 422, "message", "Message can not be empty.", true},
			{"long message", "POST", "/v2/alerts", key, map[string]any{"message": strings.Repeat("x", 131)}, 422, "message", "Message can not be longer than 130 characters.", true},
			{"bad priority", "POST", "/v2/alerts", key, map[string]any{"message": "m", "priority": "P0"}, 422, "priority", "Priority should be one of [P1, P2, P3, P4, P5].", true},
			{"tags not strings", "POST", "/v2/alerts", key, map[string]any{"message": "m", "tags": []int{1}}, 422, "tags", "Tags should be a list of strings.", true},
			{"details not strings", "POST", "/v2/alerts", key, map[string]any{"message": "m", "details": map[string]any{"n": 1}}, 422, "details", "Details should be an object of string values.", true},
			{"source not a string", "POST", "/v2/alerts", key, map[string]any{"message": "m", "source": 5}, 422, "source", "Source should be a string.", true},
			{"tiny identifier", "POST", "/v2/alerts/7/close?identifierType=tiny", key, nil, 422, "identifierType", "must be id or alias", true},
			{"unknown alert id", "POST", "/v2/alerts/999999/acknowledge", key, nil, 404, "", "Alert with id [999999] does not exist", true},
			{"another integration's alert", "POST", "/v2/alerts/" + theirs + "/close", key, nil, 404, "", "does not exist", true},
			{"unknown action", "POST", "/v2/alerts/a/snooze?identifierType=alias", key, nil, 404, "", "Klaxon's Opsgenie API takes", false},
			{"update message", "PUT", "/v2/alerts/a/message?identifierType=alias", key, map[string]any{"message": "m"}, 404, "", "Klaxon's Opsgenie API takes", false},
			{"list alerts", "GET", "/v2/alerts", key, nil, 404, "", "Klaxon's Opsgenie API takes", false},
			{"note without text", "POST", "/v2/alerts/a/notes?identifierType=alias", key, map[string]any{"user": "cron"}, 422, "note", "Note can not be empty.", true},
			{"unknown request", "GET", "/v2/alerts/requests/999999", key, nil, 404, "", "Request with id [999999] does not exist", false},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				h := h.with(t)
				before, alertsBefore := h.inboundCount(), len(h.alertsOf())
				got := h.opsgenie(c.method, c.path, c.key, c.body)
				if got.HTTPStatus != c.status {
					t.Fatalf("answer: %+v, want %d", got, c.status)
				}
				if c.field != "" {
					if got.Message != "Request body is not processable. Please check the errors." || got.Errors[c.field] != c.wantError {
						t.Fatalf("answer: %+v, want %s: %q", got, c.field, c.wantError)
					}
				} else if !strings.Contains(got.Message, c.wantError) {
					t.Fatalf("answer: %+v, want a message with %q", got, c.wantError)
				}
				if n := len(h.alertsOf()); n != alertsBefore {
					t.Fatalf("%d alerts, was %d", n, alertsBefore)
				}
				stored := h.inboundCount() - before
				if !c.stored {
					if stored != 0 {
						t.Fatalf("%d messages stored, want none", stored)
					}
					return
				}
				if stored != 1 {
					t.Fatalf("%d messages stored, want 1", stored)
				}
				if m := h.inbound(integ.ID)[0]; m.Status != "MAPPING_FAILED" || !strings.Contains(m.Detail, c.wantError) {
					t.Fatalf("stored message: %+v", m)
				}
				if s := h.opsgenie("GET", "/v2/alerts/requests/"+got.RequestID, c.key, nil); s.Data == nil || s.Data.IsSuccess {
					t.Fatalf("the refused request's status: %+v", s)
				}
			})
		}

		// A rate-limited request is answered 429 with Retry-After, which
		// Alertmanager retries, and stores nothing.
		limited := h.createIntegration("OPSGENIE")
		limitedKey := h.adminRoutingKey(limited.ID)
		h.mustGQL(h.admin.Token, `mutation($id: ID!) { updateIntegration(id: $id, input: {rateLimitPerMinute: 1}) { id } }`, map[string]any{"id": limited.ID}, nil)
		if got := h.opsgenie("POST", "/v2/alerts", limitedKey, map[string]any{"message": "first"}); got.HTTPStatus != http.StatusAccepted {
			t.Fatalf("first request under the limit: %+v", got)
		}
		before := h.inboundCount()
		got := h.opsgenie("POST", "/v2/alerts", limitedKey, map[string]any{"message": "second"})
		if got.HTTPStatus != http.StatusTooManyRequests || got.RetryAfter == "" || h.inboundCount() != before {
			t.Fatalf("request over the limit: %+v", got)
		}
		v := opsgenieNotifier(t, h.srv.URL, limitedKey, nil).Notify(notifyContext("limited"), diskAlert(false))
		if v.Err() == nil || !v.ShouldRetry() {
			t.Fatalf("Alertmanager's verdict on a 429: retry=%v err=%v", v.ShouldRetry(), v.Err())
		}
	})
}
