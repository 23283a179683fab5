package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

func get(t *testing.T, h *harness, path string) (*http.Response, string) {
	t.Helper()
	resp, err := h.client.Get(h.srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h0 := newHarness(t, d, server.Config{AllowedOrigins: []string{"https://ui.example"}})
		token := h0.createIntegration("DETECTIFY").Token(t)

		for _, tc := range []struct {
			path, status string
		}{
			{"/healthz", "ok"},
			{"/readyz", "ready"},
		} {
			t.Run(tc.path, func(t *testing.T) {
				resp, body := get(t, h0.with(t), tc.path)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("HTTP %d: %s", resp.StatusCode, body)
				}
				var reply struct{ Status string }
				if err := json.Unmarshal([]byte(body), &reply); err != nil || reply.Status != tc.status {
					t.Errorf("body %q, want status %q", body, tc.status)
				}
				for name, want := range map[string]string{
					"X-Content-Type-Options":  "nosniff",
					"X-Frame-Options":         "DENY",
					"Referrer-Policy":         "no-referrer",
					"Cache-Control":           "no-store",
					"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
				} {
					if got := resp.Header.Get(name); got != want {
						t.Errorf("%s %q, want %q", name, got, want)
					}
				}
			})
		}
		t.Run("/playground keeps its CDN", func(t *testing.T) {
			resp, _ := get(t, h0.with(t), "/playground")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Security-Policy") != "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("HTTP %d, headers %v", resp.StatusCode, resp.Header)
			}
		})

		t.Run("/metrics after webhooks", func(t *testing.T) {
			h := h0.with(t)
			if r := h.postWebhook(token, sample(t, "new_finding_high.json")); r.Status != "MAPPED_OPENED" {
				t.Fatalf("webhook: %s", r.Raw)
			}
			if r := h.postWebhook(token, sample(t, "new_finding_high_repeat.json")); r.Status != "MAPPED_APPENDED" {
				t.Fatalf("webhook: %s", r.Raw)
			}
			if r := h.postWebhook("unknown", []byte(`{}`)); r.HTTPStatus != http.StatusNotFound {
				t.Fatalf("unknown token: HTTP %d", r.HTTPStatus)
			}
			resp, body := get(t, h, "/metrics")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("HTTP %d", resp.StatusCode)
			}
			for _, line := range []string{
				`klaxon_inbound_messages_total{status="MAPPED_OPENED"} 1`,
				`klaxon_inbound_messages_total{status="MAPPED_APPENDED"} 1`,
				`klaxon_webhooks_refused_total{reason="unknown_token"} 1`,
				`klaxon_http_request_duration_seconds_count{code="200",route="POST /webhooks/{token}"} 2`,
			} {
				if !strings.Contains(body, line+"\n") {
					t.Errorf("metrics lack %q", line)
				}
			}
			if strings.Contains(body, token) {
				t.Error("metrics expose a webhook token")
			}
		})

		t.Run("CORS", func(t *testing.T) {
			h := h0.with(t)
			for _, tc := range []struct {
				origin   string
				wantHTTP int
			}{
				{"https://ui.example", http.StatusNoContent},
				{"https://evil.example", http.StatusForbidden},
			} {
				req, err := http.NewRequest(http.MethodOptions, h.srv.URL+"/graphql", nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Origin", tc.origin)
				req.Header.Set("Access-Control-Request-Method", "POST")
				resp, err := h.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				allowOrigin := resp.Header.Get("Access-Control-Allow-Origin")
				if resp.StatusCode != tc.wantHTTP {
					t.Errorf("preflight from %s: HTTP %d, want %d", tc.origin, resp.StatusCode, tc.wantHTTP)
				}
				if (tc.wantHTTP == http.StatusNoContent) != (allowOrigin == tc.origin) {
					t.Errorf("preflight from %s: Access-Control-Allow-Origin %q", tc.origin, allowOrigin)
				}
				if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
					t.Errorf("preflight from %s allows credentials", tc.origin)
				}
			}
		})
	})
}
