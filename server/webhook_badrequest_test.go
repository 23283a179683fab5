package server_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"testing"

	"github.com/klaxonhq/klaxon/db"
)

// badAddressing are requests to a webhook URL that is not (or no
// longer) open, or with a method other than POST.
func badAddressing() []badInput {
	return []badInput{
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
	}
}

// badSignatures are requests to an integration that requires a
// signature.
func badSignatures() []badInput {
	const secret = "a-shared-secret-of-some-length"
	return []badInput{
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
	}
}

// overRateLimit is a request past the integration's rate limit.
func overRateLimit() []badInput {
	return []badInput{
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
