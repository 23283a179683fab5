package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/rules"
	"github.com/klaxonhq/klaxon/server"
)

// badInputLimit is the webhook body limit of the bad-input matrix: large
// enough for a body nested 100,000 levels deep to be refused by the parser
// rather than by the size check.
const badInputLimit = 256 << 10

// badInput is one row of the matrix in docs/SECURITY.md.
type badInput struct {
	name string
	// setup returns the token to send to and anything check needs; nil
	// sends to a fresh DETECTIFY integration.
	setup func(t *testing.T, h *harness) (token, other string)
	// method is POST when empty.
	method      string
	body        func(t *testing.T) []byte
	headers     func(body []byte) map[string]string
	wantHTTP    int
	wantStatus  string // the reply's inbound status; "" when nothing is stored
	wantError   string // in the reply's "error"; "" for a 2xx
	wantInbound map[string]int
	wantAlerts  int
	// check looks further at what was stored: the message row (nil when
	// none) and its alert (nil when none).
	check func(t *testing.T, h *harness, other string, r *webhookReply, msg *db.InboundMessage, alert *db.Alert)
}

func TestWebhookBadInput(t *testing.T) {
	t.Parallel()
	const secret = "a-shared-secret-of-some-length"
	cases := []badInput{
		{
			name:        "empty body",
			body:        func(*testing.T) []byte { return nil },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "invalid JSON: empty body",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name:        "body exactly at the size limit",
			body:        func(t *testing.T) []byte { return paddedFinding(t, "at-limit", badInputLimit) },
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
		},
		{
			name:      "body one byte over the size limit",
			body:      func(t *testing.T) []byte { return paddedFinding(t, "over-limit", badInputLimit+1) },
			wantHTTP:  http.StatusRequestEntityTooLarge,
			wantError: "body exceeds " + strconv.Itoa(badInputLimit) + " bytes",
		},
		{
			name:        "JSON nested 1,000 levels deep (the limit)",
			body:        func(*testing.T) []byte { return deepJSON(rules.MaxDepth) },
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_IGNORED",
			wantInbound: map[string]int{"MAPPED_IGNORED": 1},
		},
		{
			name:        "JSON nested 1,001 levels deep",
			body:        func(*testing.T) []byte { return deepJSON(rules.MaxDepth + 1) },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "invalid JSON: nested deeper than 1000 levels",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name:        "JSON nested 10,000 levels deep",
			body:        func(*testing.T) []byte { return deepJSON(10_000) },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "invalid JSON: nested deeper than 1000 levels",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			// Past encoding/json's own limit, so the error must still be ours.
			name:        "JSON nested 100,000 levels deep",
			body:        func(*testing.T) []byte { return deepJSON(100_000) },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "invalid JSON: nested deeper than 1000 levels",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name: "invalid UTF-8 inside strings",
			body: func(*testing.T) []byte {
				return []byte("{\"finding\":{\"uuid\":\"utf8\",\"severity\":\"high\",\"title\":\"Caf\xe9 \xff\xfe\"}}")
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
			check: func(t *testing.T, _ *harness, _ string, _ *webhookReply, _ *db.InboundMessage, a *db.Alert) {
				if a.Subject != "Caf\uFFFD \uFFFD\uFFFD" {
					t.Errorf("subject %q, want the bad bytes as U+FFFD", a.Subject)
				}
			},
		},
		{
			name:        "UTF-16 body (invalid UTF-8 outside strings)",
			body:        func(*testing.T) []byte { return []byte("\xff\xfe{\x00}\x00") },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "invalid JSON: invalid character",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name: "UTF-8 byte order mark",
			body: func(*testing.T) []byte {
				return append([]byte("\xef\xbb\xbf"), finding("with-bom", "high")...)
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
			check: func(t *testing.T, _ *harness, _ string, _ *webhookReply, _ *db.InboundMessage, a *db.Alert) {
				if a.SourceID != "with-bom" {
					t.Errorf("source id %q, want with-bom", a.SourceID)
				}
			},
		},
		{
			name: "NUL characters in strings",
			body: func(*testing.T) []byte {
				return []byte(`{"finding":{"uuid":"nul\u0000id","severity":"high","title":"a\u0000b","description":"\u0000"}}`)
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
			check: func(t *testing.T, _ *harness, _ string, _ *webhookReply, _ *db.InboundMessage, a *db.Alert) {
				if a.SourceID != "nul\uFFFDid" || a.Subject != "a\uFFFDb" || a.Details != "\uFFFD" {
					t.Errorf("alert %q/%q/%q, want each NUL as U+FFFD", a.SourceID, a.Subject, a.Details)
				}
			},
		},
		{
			// The work of mapping one message is bounded in steps
			// (rules.MaxSteps): a descendant of a descendant over a deep
			// body would otherwise hold a worker for minutes.
			name: "JSONPath too costly for the body",
			setup: func(t *testing.T, h *harness) (string, string) {
				var data struct {
					Create integration `json:"createIntegration"`
				}
				h.mustGQL(h.admin.Token, `mutation($name: String!) {
					createIntegration(input: {name: $name, type: GENERIC, mapping: {sourceId: ["$.id"], subject: ["$..*..*"]}}) { id url } }`,
					map[string]any{"name": h.unique("costly")}, &data)
				return data.Create.Token(t), ""
			},
			body:        func(*testing.T) []byte { return deepJSON(rules.MaxDepth) },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "mapping failed: the mapping and rules need more than 500000 steps",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name:        "JSON array at top level",
			body:        func(*testing.T) []byte { return []byte("[" + string(finding("in-array", "high")) + "]") },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "not a JSON object: the body is an array",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name:        "JSON string at top level",
			body:        func(*testing.T) []byte { return []byte(`"severity high"`) },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "not a JSON object: the body is a string",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name:        "not JSON",
			body:        func(*testing.T) []byte { return []byte("severity=high&uuid=1") },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "invalid JSON: invalid character 's'",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name:        "trailing data after the JSON",
			body:        func(*testing.T) []byte { return []byte(`{"a":1} {"b":2}`) },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "invalid JSON: trailing data after offset 7",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name: "numbers where strings are expected",
			body: func(*testing.T) []byte {
				return []byte(`{"finding":{"uuid":12345,"severity":"high","title":404,"asset":true}}`)
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
			check: func(t *testing.T, _ *harness, _ string, _ *webhookReply, _ *db.InboundMessage, a *db.Alert) {
				if a.SourceID != "12345" || a.Subject != "404" || a.SourceName != "true" {
					t.Errorf("alert %q/%q/%q, want the values' JSON text", a.SourceID, a.Subject, a.SourceName)
				}
			},
		},
		{
			name: "number where the severity is expected",
			body: func(*testing.T) []byte {
				return []byte(`{"finding":{"uuid":"numeric-severity","severity":3,"title":"Scored"}}`)
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_IGNORED",
			wantInbound: map[string]int{"MAPPED_IGNORED": 1},
		},
		{
			name: "huge numbers",
			body: func(*testing.T) []byte {
				return []byte(`{"finding":{"uuid":` + hundredDigits + `,"severity":"high","title":1e400,"score":-1e-400}}`)
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
			check: func(t *testing.T, _ *harness, _ string, _ *webhookReply, _ *db.InboundMessage, a *db.Alert) {
				if a.SourceID != hundredDigits || a.Subject != "1e400" {
					t.Errorf("alert %q/%q, want the numbers' exact text", a.SourceID, a.Subject)
				}
			},
		},
		{
			name: "duplicate keys",
			body: func(*testing.T) []byte {
				return []byte(`{"finding":{"uuid":"dup","severity":"low","title":"First","severity":"high","title":"Last"}}`)
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
			check: func(t *testing.T, _ *harness, _ string, _ *webhookReply, _ *db.InboundMessage, a *db.Alert) {
				if a.Severity != "high" || a.Subject != "Last" {
					t.Errorf("alert %q/%q, want the last of each duplicate key", a.Severity, a.Subject)
				}
			},
		},
		{
			name: "JSON sent as text/plain",
			body: func(*testing.T) []byte { return finding("sent-as-text", "high") },
			headers: func([]byte) map[string]string {
				return map[string]string{"Content-Type": "text/plain"}
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
		},
		{
			name:      "unknown token",
			setup:     func(*testing.T, *harness) (string, string) { return "no-such-token", "" },
			body:      func(t *testing.T) []byte { return sample(t, "new_finding_high.json") },
			wantHTTP:  http.StatusNotFound,
			wantError: "no integration has this URL",
		},
		{
			name: "disabled integration",
			setup: func(t *testing.T, h *harness) (string, string) {
				integ := h.createIntegration("DETECTIFY")
				var data struct {
					Update integration `json:"updateIntegration"`
				}
				h.mustGQL(h.admin.Token, `mutation($id: ID!) { updateIntegration(id: $id, input: {enabled: false}) { id enabled } }`,
					map[string]any{"id": integ.ID}, &data)
				if data.Update.Enabled {
					t.Fatal("integration still enabled")
				}
				return integ.Token(t), ""
			},
			body:      func(t *testing.T) []byte { return sample(t, "new_finding_high.json") },
			wantHTTP:  http.StatusForbidden,
			wantError: "this integration is disabled",
		},
		{
			name: "rotated-out token",
			setup: func(t *testing.T, h *harness) (string, string) {
				integ := h.createIntegration("DETECTIFY")
				var data struct {
					Rotate integration `json:"rotateIntegrationToken"`
				}
				h.mustGQL(h.admin.Token, `mutation($id: ID!) { rotateIntegrationToken(id: $id) { id url } }`,
					map[string]any{"id": integ.ID}, &data)
				if data.Rotate.ID != integ.ID || data.Rotate.URL == integ.URL {
					t.Fatalf("rotation gave %+v for %+v", data.Rotate, integ)
				}
				return integ.Token(t), data.Rotate.Token(t)
			},
			body:      func(t *testing.T) []byte { return sample(t, "new_finding_high.json") },
			wantHTTP:  http.StatusNotFound,
			wantError: "no integration has this URL",
			check: func(t *testing.T, h *harness, newToken string, _ *webhookReply, _ *db.InboundMessage, _ *db.Alert) {
				if r := h.postWebhook(newToken, sample(t, "new_finding_high.json")); r.HTTPStatus != http.StatusOK || r.Status != "MAPPED_OPENED" {
					t.Errorf("the new URL: HTTP %d: %s", r.HTTPStatus, r.Raw)
				}
			},
		},
		{
			name:      "GET on the webhook URL",
			method:    http.MethodGet,
			body:      func(*testing.T) []byte { return nil },
			wantHTTP:  http.StatusMethodNotAllowed,
			wantError: "webhooks take POST only",
			check:     wantAllowPost,
		},
		{
			name:      "PUT on the webhook URL",
			method:    http.MethodPut,
			body:      func(t *testing.T) []byte { return sample(t, "new_finding_high.json") },
			wantHTTP:  http.StatusMethodNotAllowed,
			wantError: "webhooks take POST only",
			check:     wantAllowPost,
		},
		{
			name:  "signature missing where one is required",
			setup: signedIntegration(secret),
			body:  func(t *testing.T) []byte { return sample(t, "new_finding_high.json") },
			// The message is kept for the record, unread.
			wantHTTP:    http.StatusUnauthorized,
			wantStatus:  "REFUSED",
			wantError:   "refused: no signature",
			wantInbound: map[string]int{"REFUSED": 1},
		},
		{
			name:  "signature of another body",
			setup: signedIntegration(secret),
			body:  func(t *testing.T) []byte { return sample(t, "new_finding_high.json") },
			headers: func(body []byte) map[string]string {
				return map[string]string{"X-Detectify-Signature": hmacHex(secret, append(bytes.Clone(body), ' '))}
			},
			wantHTTP:    http.StatusUnauthorized,
			wantStatus:  "REFUSED",
			wantError:   "refused: the signature does not match the body",
			wantInbound: map[string]int{"REFUSED": 1},
		},
		{
			name:  "right signature",
			setup: signedIntegration(secret),
			body:  func(t *testing.T) []byte { return sample(t, "new_finding_high.json") },
			headers: func(body []byte) map[string]string {
				return map[string]string{"X-Detectify-Signature": hmacHex(secret, body)}
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
		},
		{
			// A signature vouches for who sent the body, not for what it
			// holds: a signed body that is not JSON is the sender's
			// mapping problem, not a forgery.
			name:  "right signature on a body that is not JSON",
			setup: signedIntegration(secret),
			body:  func(*testing.T) []byte { return []byte("severity=high&uuid=1") },
			headers: func(body []byte) map[string]string {
				return map[string]string{"X-Detectify-Signature": hmacHex(secret, body)}
			},
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "invalid JSON: invalid character 's'",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name:  "right signature on a JSON array",
			setup: signedIntegration(secret),
			body:  func(*testing.T) []byte { return []byte(`[{"uuid":"1"}]`) },
			headers: func(body []byte) map[string]string {
				return map[string]string{"X-Detectify-Signature": hmacHex(secret, body)}
			},
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "not a JSON object: the body is an array",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name: "over the integration's rate limit",
			setup: func(t *testing.T, h *harness) (string, string) {
				var data struct {
					Create integration `json:"createIntegration"`
				}
				h.mustGQL(h.admin.Token, `mutation($name: String!) {
					createIntegration(input: {name: $name, type: DETECTIFY, rateLimitPerMinute: 1}) { id url } }`,
					map[string]any{"name": h.unique("limited")}, &data)
				token := data.Create.Token(t)
				if r := h.postWebhook(token, finding("within-limit", "high")); r.HTTPStatus != http.StatusOK {
					t.Fatalf("first webhook: HTTP %d: %s", r.HTTPStatus, r.Raw)
				}
				return token, ""
			},
			body:      func(*testing.T) []byte { return finding("over-limit", "high") },
			wantHTTP:  http.StatusTooManyRequests,
			wantError: "this integration takes at most 1 webhooks a minute",
			check: func(t *testing.T, _ *harness, _ string, r *webhookReply, _ *db.InboundMessage, _ *db.Alert) {
				if secs, err := strconv.Atoi(r.RetryAfter); err != nil || secs < 1 || secs > 60 {
					t.Errorf("Retry-After %q, want 1 to 60 seconds", r.RetryAfter)
				}
			},
		},
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{MaxBodyBytes: badInputLimit})
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				runBadInput(t, h.with(t), tc)
			})
		}
	})
}

func runBadInput(t *testing.T, h *harness, tc badInput) {
	var token, other string
	if tc.setup != nil {
		token, other = tc.setup(t, h)
	} else {
		token = h.createIntegration("DETECTIFY").Token(t)
	}
	body := tc.body(t)
	headers := map[string]string{"Content-Type": "application/json"}
	if tc.headers != nil {
		maps.Copy(headers, tc.headers(body))
	}
	method := tc.method
	if method == "" {
		method = http.MethodPost
	}
	inboundBefore, alertsBefore := h.stored()
	r := h.webhook(method, token, body, headers)
	inboundAfter, alertsAfter := h.stored()

	if r.HTTPStatus != tc.wantHTTP {
		t.Fatalf("HTTP %d, want %d: %s", r.HTTPStatus, tc.wantHTTP, r.Raw)
	}
	if !strings.HasPrefix(r.ContentType, "application/json") || !json.Valid(r.Raw) {
		t.Errorf("reply is not JSON (Content-Type %q): %q", r.ContentType, r.Raw)
	}
	if tc.wantError != "" && !strings.Contains(r.Error, tc.wantError) {
		t.Errorf("reply error %q, want it to say %q", r.Error, tc.wantError)
	}
	if tc.wantError == "" && r.Error != "" {
		t.Errorf("reply error %q on a success", r.Error)
	}
	if r.Status != tc.wantStatus {
		t.Errorf("reply status %q, want %q: %s", r.Status, tc.wantStatus, r.Raw)
	}
	if (r.MessageID != "") != (tc.wantStatus != "") {
		t.Errorf("reply messageId %q with status %q", r.MessageID, tc.wantStatus)
	}

	added := map[string]int{}
	for status, n := range inboundAfter {
		if n != inboundBefore[status] {
			added[status] = n - inboundBefore[status]
		}
	}
	if !maps.Equal(added, tc.wantInbound) {
		t.Errorf("inbound log gained %v, want %v", added, tc.wantInbound)
	}
	if alertsAfter-alertsBefore != tc.wantAlerts {
		t.Errorf("%d alerts opened, want %d", alertsAfter-alertsBefore, tc.wantAlerts)
	}

	var msg *db.InboundMessage
	var alert *db.Alert
	if tc.wantStatus != "" && r.MessageID != "" {
		msg = h.inboundMessage(r.MessageID)
		if string(msg.Status) != tc.wantStatus || !bytes.Equal(msg.Body, body) {
			t.Errorf("stored status %s with a body of %d bytes; want %s with the %d bytes sent",
				msg.Status, len(msg.Body), tc.wantStatus, len(body))
		}
		if tc.wantError != "" && !strings.Contains(msg.Detail, tc.wantError) {
			t.Errorf("stored detail %q, want it to say %q", msg.Detail, tc.wantError)
		}
		if (msg.AlertID != nil) != (tc.wantAlerts > 0) || (r.AlertID != nil) != (tc.wantAlerts > 0) {
			t.Errorf("stored alert %v, replied alert %v; want one only when an alert opened", msg.AlertID, r.AlertID)
		}
		if msg.AlertID != nil {
			alert = h.alertRow(*msg.AlertID)
			if alert.IntegrationID != msg.IntegrationID || alert.Status != db.AlertOpen {
				t.Errorf("alert %+v does not belong to message %+v", alert, msg)
			}
		}
	}
	if tc.check != nil {
		tc.check(t, h, other, r, msg, alert)
	}
}

// hundredDigits is an integer no float64 or int64 holds exactly.
const hundredDigits = "1234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890"

// deepJSON returns an object holding arrays nested depth levels deep in
// all, the object included.
func deepJSON(depth int) []byte {
	return []byte(`{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`)
}

// paddedFinding returns a valid Detectify finding of exactly size bytes.
func paddedFinding(t *testing.T, uuid string, size int) []byte {
	t.Helper()
	base := finding(uuid, "high")
	pad := size - len(base) - len(`,"pad":""`)
	if pad < 0 {
		t.Fatalf("a finding needs %d bytes", len(base))
	}
	body := append(base[:len(base)-1:len(base)-1], []byte(`,"pad":"`+strings.Repeat("x", pad)+`"}`)...)
	if len(body) != size || !json.Valid(body) {
		t.Fatalf("padded body: %d bytes, valid %v", len(body), json.Valid(body))
	}
	return body
}

func signedIntegration(secret string) func(t *testing.T, h *harness) (string, string) {
	return func(t *testing.T, h *harness) (string, string) {
		var data struct {
			Create integration `json:"createIntegration"`
		}
		h.mustGQL(h.admin.Token, `mutation($name: String!, $secret: String!) {
			createIntegration(input: {name: $name, type: DETECTIFY, signatureSecret: $secret}) { id url } }`,
			map[string]any{"name": h.unique("signed"), "secret": secret}, &data)
		return data.Create.Token(t), ""
	}
}

func hmacHex(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

func wantAllowPost(t *testing.T, _ *harness, _ string, r *webhookReply, _ *db.InboundMessage, _ *db.Alert) {
	if r.Allow != http.MethodPost {
		t.Errorf("Allow %q, want POST", r.Allow)
	}
}

// stored is the inbound log's rows by status and the number of alerts,
// straight from the database.
func (h *harness) stored() (inbound map[string]int, alerts int) {
	h.t.Helper()
	ctx := context.Background()
	var rows []struct {
		Status string `bun:"status"`
		N      int    `bun:"n"`
	}
	if err := h.db.NewSelect().Model((*db.InboundMessage)(nil)).
		ColumnExpr("status").ColumnExpr("count(*) AS n").Group("status").Scan(ctx, &rows); err != nil {
		h.t.Fatalf("count inbound messages by status: %v", err)
	}
	inbound = map[string]int{}
	for _, r := range rows {
		inbound[r.Status] = r.N
	}
	n, err := h.db.NewSelect().Model((*db.Alert)(nil)).Count(ctx)
	if err != nil {
		h.t.Fatalf("count alerts: %v", err)
	}
	return inbound, int(n)
}

func (h *harness) inboundMessage(id string) *db.InboundMessage {
	h.t.Helper()
	msg := new(db.InboundMessage)
	if err := h.db.NewSelect().Model(msg).Where("id = ?", id).Scan(context.Background()); err != nil {
		h.t.Fatalf("load inbound message %s: %v", id, err)
	}
	return msg
}

func (h *harness) alertRow(id int) *db.Alert {
	h.t.Helper()
	a := new(db.Alert)
	if err := h.db.NewSelect().Model(a).Where("id = ?", id).Scan(context.Background()); err != nil {
		h.t.Fatalf("load alert %d: %v", id, err)
	}
	return a
}
