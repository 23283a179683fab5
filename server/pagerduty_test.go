package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	amalert "github.com/prometheus/alertmanager/alert"
	amcommoncfg "github.com/prometheus/alertmanager/config/common"
	"github.com/prometheus/alertmanager/notify"
	"github.com/prometheus/alertmanager/notify/pagerduty"
	"github.com/prometheus/alertmanager/template"
	commoncfg "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// routingKey reads an integration's routing key as token's user.
func (h *harness) routingKey(token, integrationID string) *string {
	h.t.Helper()
	var data struct {
		Integration struct {
			RoutingKey *string `json:"routingKey"`
		} `json:"integration"`
	}
	h.mustGQL(token, `query($id: ID!) { integration(id: $id) { routingKey } }`, map[string]any{"id": integrationID}, &data)
	return data.Integration.RoutingKey
}

// adminRoutingKey is the integration's routing key, which an admin sees.
func (h *harness) adminRoutingKey(integrationID string) string {
	h.t.Helper()
	key := h.routingKey(h.admin.Token, integrationID)
	if key == nil || len(*key) != 32 {
		h.t.Fatalf("routing key of integration %s: %v, want 32 characters", integrationID, key)
	}
	return *key
}

type sourceAlert struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Subject  string `json:"subject"`
	Severity string `json:"severity"`
	SourceID string `json:"sourceId"`
	URL      string `json:"url"`
	Details  string `json:"details"`
	Timeline []struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		User    *struct {
			ID string `json:"id"`
		} `json:"user"`
		InboundMessage *struct {
			Integration struct {
				ID string `json:"id"`
			} `json:"integration"`
		} `json:"inboundMessage"`
	} `json:"timeline"`
}

// alertsOf is every alert, newest first.
func (h *harness) alertsOf() []sourceAlert {
	h.t.Helper()
	var data struct {
		Alerts struct {
			Nodes []sourceAlert `json:"nodes"`
		} `json:"alerts"`
	}
	h.mustGQL(h.admin.Token, `{ alerts { nodes { id status subject severity sourceId url details timeline { type message user { id } inboundMessage { integration { id } } } } } }`, nil, &data)
	return data.Alerts.Nodes
}

type inboundView struct {
	Status   string `json:"status"`
	Detail   string `json:"detail"`
	SourceID string `json:"sourceId"`
	Body     string `json:"body"`
	Alert    *struct {
		ID string `json:"id"`
	} `json:"alert"`
}

// inbound is the integration's inbound log, newest first.
func (h *harness) inbound(integrationID string) []inboundView {
	h.t.Helper()
	var data struct {
		InboundMessages struct {
			Nodes []inboundView `json:"nodes"`
		} `json:"inboundMessages"`
	}
	h.mustGQL(h.admin.Token, `query($id: ID!) { inboundMessages(integrationId: $id) { nodes { status detail sourceId body alert { id } } } }`,
		map[string]any{"id": integrationID}, &data)
	return data.InboundMessages.Nodes
}

// pagerDutyNotifier is Alertmanager's own PagerDuty notifier, with its
// defaults, pointed at the server.
func pagerDutyNotifier(t *testing.T, baseURL, routingKey string, edit func(*pagerduty.PagerdutyConfig)) *pagerduty.Notifier {
	t.Helper()
	u, err := url.Parse(baseURL + "/v2/enqueue")
	if err != nil {
		t.Fatal(err)
	}
	conf := pagerduty.DefaultPagerdutyConfig
	conf.URL = &amcommoncfg.URL{URL: u}
	conf.RoutingKey = commoncfg.Secret(routingKey)
	conf.HTTPConfig = &commoncfg.HTTPClientConfig{}
	conf.Details = pagerduty.DefaultPagerdutyDetails
	conf.Severity = `{{ .CommonLabels.severity }}`
	conf.Source = conf.Client
	conf.Links = []pagerduty.PagerdutyLink{{Href: "https://runbooks.example/disk", Text: "Runbook"}}
	if edit != nil {
		edit(&conf)
	}
	n, err := pagerduty.New(&conf, alertmanagerTemplate(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("pagerduty notifier: %v", err)
	}
	return n
}

func alertmanagerTemplate(t *testing.T) *template.Template {
	t.Helper()
	tmpl, err := template.FromGlobs([]string{})
	if err != nil {
		t.Fatal(err)
	}
	tmpl.ExternalURL, _ = url.Parse("http://alertmanager.example")
	return tmpl
}

// notifyContext is what Alertmanager's pipeline hands a notifier.
func notifyContext(groupKey string) context.Context {
	ctx := notify.WithGroupKey(context.Background(), groupKey)
	ctx = notify.WithReceiverName(ctx, "klaxon")
	return notify.WithGroupLabels(ctx, model.LabelSet{"alertname": "DiskFull"})
}

// diskAlert is a firing alert, or a resolved one when resolved is set.
func diskAlert(resolved bool) *amalert.Alert {
	now := time.Now()
	a := model.Alert{
		Labels:       model.LabelSet{"alertname": "DiskFull", "instance": "db-1:9100", "severity": "critical"},
		Annotations:  model.LabelSet{"summary": "Disk almost full on db-1"},
		StartsAt:     now.Add(-time.Minute),
		GeneratorURL: "http://prometheus.example/graph",
	}
	if resolved {
		a.EndsAt = now.Add(-time.Second)
	}
	return amalert.New(a, now, false)
}

// TestPagerDutyAlertmanagerNotifier drives Alertmanager's own PagerDuty
// notifier, configured with nothing but Klaxon's URL and an integration's
// routing key: a firing group opens an alert, a repeat appends, and the
// resolved group closes it.
func TestPagerDutyAlertmanagerNotifier(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("PAGERDUTY")
		key := h.adminRoutingKey(integ.ID)
		if got := h.routingKey(h.newUser(db.RoleResponder).Token, integ.ID); got != nil {
			t.Fatalf("a responder reads the routing key %q; want null", *got)
		}
		n := pagerDutyNotifier(t, h.srv.URL, key, nil)
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
		a := alerts[0]
		if a.Status != "OPEN" || a.Subject != "[FIRING:1] DiskFull (db-1:9100 critical)" || a.Severity != "critical" ||
			a.URL != "https://runbooks.example/disk" || !strings.Contains(a.Details, "num_firing") {
			t.Fatalf("opened alert: %+v", a)
		}

		if v := n.Notify(ctx, diskAlert(true)); v.Err() != nil {
			t.Fatalf("resolved: %v", v.Err())
		}
		alerts = h.alertsOf()
		if len(alerts) != 1 || alerts[0].Status != "CLOSED" {
			t.Fatalf("alerts after resolving: %+v, want the one alert CLOSED", alerts)
		}
		log := h.inbound(integ.ID)
		var statuses []string
		for _, m := range log {
			statuses = append(statuses, m.Status)
			if strings.Contains(m.Body, key) || strings.Contains(m.Body, "routing_key") {
				t.Errorf("the inbound log keeps the routing key: %s", m.Body)
			}
		}
		if got := strings.Join(statuses, " "); got != "MAPPED_CLOSED MAPPED_APPENDED MAPPED_OPENED" {
			t.Fatalf("inbound log: %s", got)
		}
	})
}

type pagerDutyAnswer struct {
	HTTPStatus int
	RetryAfter string
	Status     string   `json:"status"`
	Message    string   `json:"message"`
	DedupKey   string   `json:"dedup_key"`
	Errors     []string `json:"errors"`
}

// postPagerDuty posts body to path and decodes the answer strictly: a
// field PagerDuty does not document fails the test.
func (h *harness) postPagerDuty(path string, body any) pagerDutyAnswer {
	h.t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			h.t.Fatal(err)
		}
	}
	resp, err := h.client.Post(h.srv.URL+path, "application/json", bytes.NewReader(raw))
	if err != nil {
		h.t.Fatalf("post %s: %v", path, err)
	}
	defer resp.Body.Close()
	answer := pagerDutyAnswer{HTTPStatus: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&answer); err != nil {
		h.t.Fatalf("answer of %s is not PagerDuty's shape: %v", path, err)
	}
	return answer
}

func trigger(key, dedupKey string) map[string]any {
	event := map[string]any{
		"routing_key":  key,
		"event_action": "trigger",
		"payload": map[string]any{
			"summary": "CPU hot on web-3", "source": "web-3", "severity": "warning",
			"component": "nginx", "group": "frontend", "class": "cpu",
			"custom_details": map[string]any{"load": 9.5},
		},
		"links":  []map[string]any{{"href": "https://grafana.example/d/cpu", "text": "Dashboard"}},
		"images": []map[string]any{{"src": "https://grafana.example/cpu.png"}},
	}
	if dedupKey != "" {
		event["dedup_key"] = dedupKey
	}
	return event
}

// TestPagerDutyEventsLifecycle follows PagerDuty's documented flow: a
// trigger without a dedup_key gets one back, an acknowledge with it
// acknowledges the alert on the integration's behalf, a resolve closes
// it; a change event is logged and opens nothing.
func TestPagerDutyEventsLifecycle(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("PAGERDUTY")
		key := h.adminRoutingKey(integ.ID)

		got := h.postPagerDuty("/v2/enqueue", trigger(key, ""))
		if got.HTTPStatus != http.StatusAccepted || got.Status != "success" || got.Message != "Event processed" || len(got.DedupKey) != 32 {
			t.Fatalf("trigger: %+v", got)
		}
		dedup := got.DedupKey
		alerts := h.alertsOf()
		if len(alerts) != 1 || alerts[0].SourceID != dedup || alerts[0].Subject != "CPU hot on web-3" ||
			alerts[0].Severity != "warning" || alerts[0].URL != "https://grafana.example/d/cpu" {
			t.Fatalf("triggered alert: %+v", alerts)
		}
		stored := h.inbound(integ.ID)[0].Body
		for _, kept := range []string{`"component":"nginx"`, `"group":"frontend"`, `"class":"cpu"`, `"images":[{"src":"https://grafana.example/cpu.png"}]`, `"dedup_key":"` + dedup + `"`} {
			if !strings.Contains(stored, kept) {
				t.Errorf("stored body lacks %s: %s", kept, stored)
			}
		}

		ack := h.postPagerDuty("/v2/enqueue", map[string]any{"routing_key": key, "event_action": "acknowledge", "dedup_key": dedup})
		if ack.HTTPStatus != http.StatusAccepted || ack.DedupKey != dedup {
			t.Fatalf("acknowledge: %+v", ack)
		}
		a := h.alertsOf()[0]
		last := a.Timeline[len(a.Timeline)-1]
		if a.Status != "ACKNOWLEDGED" || last.Type != "ACKNOWLEDGED" || last.User != nil || !strings.HasPrefix(last.Message, "Acknowledged by the integration") ||
			last.InboundMessage == nil || last.InboundMessage.Integration.ID != integ.ID {
			t.Fatalf("acknowledged alert: %+v", a)
		}
		if m := h.inbound(integ.ID)[0]; m.Status != "MAPPED_ACKNOWLEDGED" || m.Alert == nil || m.Alert.ID != a.ID {
			t.Fatalf("acknowledge in the inbound log: %+v", m)
		}
		again := h.postPagerDuty("/v2/enqueue", map[string]any{"routing_key": key, "event_action": "acknowledge", "dedup_key": dedup})
		if again.HTTPStatus != http.StatusAccepted {
			t.Fatalf("second acknowledge: %+v", again)
		}
		if m := h.inbound(integ.ID)[0]; m.Status != "MAPPED_IGNORED" {
			t.Fatalf("second acknowledge in the inbound log: %+v", m)
		}

		res := h.postPagerDuty("/v2/enqueue", map[string]any{"routing_key": key, "event_action": "resolve", "dedup_key": dedup})
		if res.HTTPStatus != http.StatusAccepted || res.DedupKey != dedup {
			t.Fatalf("resolve: %+v", res)
		}
		if a := h.alertsOf()[0]; a.Status != "CLOSED" {
			t.Fatalf("resolved alert: %+v", a)
		}

		change := h.postPagerDuty("/v2/change/enqueue", map[string]any{"routing_key": key,
			"payload": map[string]any{"summary": "Deployed web v42", "timestamp": "2026-12-02T10:00:00Z", "source": "ci"}})
		if change.HTTPStatus != http.StatusAccepted || change.Status != "success" || change.Message != "Change event processed" {
			t.Fatalf("change event: %+v", change)
		}
		if m := h.inbound(integ.ID)[0]; m.Status != "CHANGE" || m.Alert != nil || m.Detail != "Change event: Deployed web v42" {
			t.Fatalf("change event in the inbound log: %+v", m)
		}
		if n := len(h.alertsOf()); n != 1 {
			t.Fatalf("%d alerts after the change event, want 1", n)
		}

		// The webhook URL of the same integration still takes the same
		// events (routing_key or not).
		if r := h.postWebhook(integ.Token(t), mustJSON(t, trigger("", "by-url"))); r.HTTPStatus != http.StatusOK || r.Status != "MAPPED_OPENED" {
			t.Fatalf("webhook route: %+v", r)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestPagerDutyErrorAnswers checks each refusal's status and documented
// shape, what it leaves in the inbound log (only what reached a known
// integration, as MAPPING_FAILED) and that it opened no alert.
func TestPagerDutyErrorAnswers(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("PAGERDUTY")
		key := h.adminRoutingKey(integ.ID)
		generic := h.createIntegration("GENERIC")
		genericKey := h.adminRoutingKey(generic.ID)
		disabled := h.createIntegration("PAGERDUTY")
		disabledKey := h.adminRoutingKey(disabled.ID)
		h.mustGQL(h.admin.Token, `mutation($id: ID!) { updateIntegration(id: $id, input: {enabled: false}) { id } }`, map[string]any{"id": disabled.ID}, nil)

		with := func(edit func(map[string]any)) map[string]any {
			event := trigger(key, "k1")
			edit(event)
			return event
		}
		payload := func(event map[string]any) map[string]any { return event["payload"].(map[string]any) }
		cases := []struct {
			name   string
			path   string
			body   any
			status int
			// wantError is in the answer's errors; stored says the event
			// is in the inbound log as MAPPING_FAILED.
			wantError string
			stored    bool
		}{
			{"not JSON", "/v2/enqueue", []byte(`{"routing_key":`), 400, "Request body must be a JSON object", false},
			{"body over the limit", "/v2/enqueue", []byte(`{"routing_key":"` + key + `",` + strings.Repeat(" ", 1<<20) + `}`), 400, "Request body exceeds 1048576 bytes", false},
			{"no routing key", "/v2/enqueue", with(func(e map[string]any) { delete(e, "routing_key") }), 400, "'routing_key' is missing or blank", false},
			{"unknown routing key", "/v2/enqueue", with(func(e map[string]any) { e["routing_key"] = strings.Repeat("0", 32) }), 400, "Invalid routing key", false},
			{"key of another type", "/v2/enqueue", with(func(e map[string]any) { e["routing_key"] = genericKey }), 400, "Invalid routing key", false},
			{"disabled integration", "/v2/enqueue", with(func(e map[string]any) { e["routing_key"] = disabledKey }), 400, "disabled", false},
			{"unknown action", "/v2/enqueue", with(func(e map[string]any) { e["event_action"] = "escalate" }), 400, "'event_action' must be one of trigger, acknowledge, resolve", true},
			{"no summary", "/v2/enqueue", with(func(e map[string]any) { delete(payload(e), "summary") }), 400, "'payload.summary' is missing or blank", true},
			{"long summary", "/v2/enqueue", with(func(e map[string]any) { payload(e)["summary"] = strings.Repeat("x", 1025) }), 400, "'payload.summary' is longer than 1024 characters", true},
			{"no source", "/v2/enqueue", with(func(e map[string]any) { payload(e)["source"] = " " }), 400, "'payload.source' is missing or blank", true},
			{"bad severity", "/v2/enqueue", with(func(e map[string]any) { payload(e)["severity"] = "high" }), 400, "'payload.severity' must be one of critical, error, warning, info", true},
			{"bad timestamp", "/v2/enqueue", with(func(e map[string]any) { payload(e)["timestamp"] = "yesterday" }), 400, "'payload.timestamp' is not an ISO 8601 timestamp", true},
			{"dedup key not a string", "/v2/enqueue", with(func(e map[string]any) { e["dedup_key"] = 7 }), 400, "'dedup_key' must be a string", true},
			{"resolve without dedup key", "/v2/enqueue", map[string]any{"routing_key": key, "event_action": "resolve"}, 400, "'dedup_key' is required for resolve events", true},
			{"link without href", "/v2/enqueue", with(func(e map[string]any) { e["links"] = []map[string]any{{"text": "x"}} }), 400, "'links[0].href' is missing or blank", true},
			{"change without summary", "/v2/change/enqueue", map[string]any{"routing_key": key, "payload": map[string]any{}}, 400, "'payload.summary' is missing or blank", true},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				h := h.with(t)
				before := h.inboundCount()
				got := h.postPagerDuty(c.path, c.body)
				if got.HTTPStatus != c.status || got.Status != "invalid event" || got.Message != "Event object is invalid" ||
					!strings.Contains(strings.Join(got.Errors, "\n"), c.wantError) {
					t.Fatalf("answer: %+v, want %d invalid event with %q", got, c.status, c.wantError)
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
				m := h.inbound(integ.ID)[0]
				if m.Status != "MAPPING_FAILED" || !strings.Contains(m.Detail, c.wantError) || strings.Contains(m.Body, key) {
					t.Fatalf("stored message: %+v", m)
				}
			})
		}
		if n := len(h.alertsOf()); n != 0 {
			t.Fatalf("bad events opened %d alerts", n)
		}

		// Alertmanager reads the documented error shape back: a severity
		// PagerDuty does not know fails with the reason, not retried.
		n := pagerDutyNotifier(t, h.srv.URL, key, func(c *pagerduty.PagerdutyConfig) { c.Severity = "page" })
		v := n.Notify(notifyContext("bad"), diskAlert(false))
		if v.Err() == nil || v.ShouldRetry() ||
			!strings.Contains(v.Err().Error(), "Event object is invalid: 'payload.severity' must be one of critical, error, warning, info") {
			t.Fatalf("Alertmanager's verdict on a bad severity: retry=%v err=%v", v.ShouldRetry(), v.Err())
		}

		// Rotating the integration's secrets retires the routing key at
		// once, cached route or not.
		if got := h.postPagerDuty("/v2/enqueue", trigger(key, "before-rotation")); got.HTTPStatus != http.StatusAccepted {
			t.Fatalf("event before rotating: %+v", got)
		}
		h.mustGQL(h.admin.Token, `mutation($id: ID!) { rotateIntegrationToken(id: $id) { id } }`, map[string]any{"id": integ.ID}, nil)
		if got := h.postPagerDuty("/v2/enqueue", trigger(key, "after-rotation")); got.HTTPStatus != http.StatusBadRequest || got.Errors[0] != "Invalid routing key" {
			t.Fatalf("the old key after rotating: %+v", got)
		}
		rotated := h.adminRoutingKey(integ.ID)
		if got := h.postPagerDuty("/v2/enqueue", trigger(rotated, "after-rotation")); rotated == key || got.HTTPStatus != http.StatusAccepted {
			t.Fatalf("the new key %q after rotating: %+v", rotated, got)
		}

		// A rate-limited event is answered 429 with Retry-After, which
		// Alertmanager retries, and stores nothing.
		limited := h.createIntegration("PAGERDUTY")
		limitedKey := h.adminRoutingKey(limited.ID)
		h.mustGQL(h.admin.Token, `mutation($id: ID!) { updateIntegration(id: $id, input: {rateLimitPerMinute: 1}) { id } }`, map[string]any{"id": limited.ID}, nil)
		if got := h.postPagerDuty("/v2/enqueue", trigger(limitedKey, "r1")); got.HTTPStatus != http.StatusAccepted {
			t.Fatalf("first event under the limit: %+v", got)
		}
		before := h.inboundCount()
		got := h.postPagerDuty("/v2/enqueue", trigger(limitedKey, "r2"))
		if got.HTTPStatus != http.StatusTooManyRequests || got.Status != "throttle event" || got.RetryAfter == "" || h.inboundCount() != before {
			t.Fatalf("event over the limit: %+v", got)
		}
		v = pagerDutyNotifier(t, h.srv.URL, limitedKey, nil).Notify(notifyContext("limited"), diskAlert(false))
		if v.Err() == nil || !v.ShouldRetry() {
			t.Fatalf("Alertmanager's verdict on a 429: retry=%v err=%v", v.ShouldRetry(), v.Err())
		}
	})
}
