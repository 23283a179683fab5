package server_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
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
		t.Run("/playground has a policy of its own", func(t *testing.T) {
			resp, _ := get(t, h0.with(t), "/playground")
			csp := resp.Header.Get("Content-Security-Policy")
			if resp.StatusCode != http.StatusOK || !strings.Contains(csp, "script-src 'self';") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
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

// securityHeaderValues are the headers every answer of Klaxon's carries;
// the playground's policy is its own (TestPlaygroundServesItsOwnAssets).
var securityHeaderValues = map[string]string{
	"X-Content-Type-Options":     "nosniff",
	"X-Frame-Options":            "DENY",
	"Referrer-Policy":            "no-referrer",
	"Cross-Origin-Opener-Policy": "same-origin",
	"Cache-Control":              "no-store",
	"Content-Security-Policy":    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}

func wantSecurityHeaders(t *testing.T, what string, header http.Header) {
	t.Helper()
	for name, want := range securityHeaderValues {
		if got := header.Get(name); got != want {
			t.Errorf("%s: %s %q, want %q", what, name, got, want)
		}
	}
}

// TestSecurityHeadersOnEveryAnswer holds that the answers Klaxon's own
// handlers give for errors — the mux's 404s and redirects, refusals of a
// method, a body over the limit or of the wrong type, a missing metrics
// token, the 503 of a stop, net/http's "OPTIONS *" — carry the security
// headers too. What net/http answers before any handler runs (a malformed
// request line or header) cannot; docs/SECURITY.md says so.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dbtest.SQLite(t), server.Config{MaxBodyBytes: 16, MetricsToken: "a-metrics-token"})
	token := h.createIntegration("DETECTIFY").Token(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		method, path, contentType, body string
		want                            int
	}{
		{"GET", "/no/such/route", "", "", http.StatusNotFound},
		{"DELETE", "/graphql", "", "", http.StatusNotFound},
		{"GET", "/healthz/../readyz", "", "", http.StatusMovedPermanently},
		{"GET", "/webhooks/" + token, "", "", http.StatusMethodNotAllowed},
		{"POST", "/webhooks/" + token, "application/json", `{"a": "more than sixteen bytes"}`, http.StatusRequestEntityTooLarge},
		{"POST", "/graphql", "text/plain", `{ me { id } }`, http.StatusUnsupportedMediaType},
		{"GET", "/metrics", "", "", http.StatusUnauthorized},
	} {
		req, err := http.NewRequest(tc.method, h.srv.URL+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		what := tc.method + " " + tc.path
		// The mux's redirect to a clean path is 301 or 307 by Go version.
		if resp.StatusCode != tc.want && (tc.want != http.StatusMovedPermanently || resp.StatusCode/100 != 3) {
			t.Errorf("%s: HTTP %d, want %d", what, resp.StatusCode, tc.want)
		}
		wantSecurityHeaders(t, what, resp.Header)
	}

	// Serve's own http.Server, on a listener of its own.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- h.server.Serve(ctx, ln) }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "OPTIONS * HTTP/1.1\r\nHost: klaxon.example\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("OPTIONS *: HTTP %d, want 400", resp.StatusCode)
	}
	wantSecurityHeaders(t, "OPTIONS *", resp.Header)

	// Once stopping, requests get 503; the test's own server shares the
	// handler, so it shows the stop's answer.
	stop()
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	resp, _ = get(t, h, "/healthz")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("while stopping: HTTP %d, want 503", resp.StatusCode)
	}
	wantSecurityHeaders(t, "while stopping", resp.Header)
}

// TestMetricsToken holds that with KLAXON_METRICS_TOKEN set, GET /metrics
// needs it as a bearer token, and anything else gets a JSON 401.
func TestMetricsToken(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-metrics-token"
	h := newHarness(t, dbtest.SQLite(t), server.Config{MetricsToken: secret})
	for auth, want := range map[string]int{
		"":                                 http.StatusUnauthorized,
		"Bearer " + secret:                 http.StatusOK,
		"bearer " + secret:                 http.StatusOK,
		"Bearer " + secret + "x":           http.StatusUnauthorized,
		"Bearer " + secret[:len(secret)-1]: http.StatusUnauthorized,
		"Bearer ":                          http.StatusUnauthorized,
		"Basic " + secret:                  http.StatusUnauthorized,
		secret:                             http.StatusUnauthorized,
		"Bearer " + h.admin.Token:          http.StatusUnauthorized,
	} {
		req, err := http.NewRequest(http.MethodGet, h.srv.URL+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Authorization %q: HTTP %d, want %d", auth, resp.StatusCode, want)
			continue
		}
		if want == http.StatusOK {
			if !strings.Contains(string(body), "klaxon_http_requests_in_flight") {
				t.Errorf("Authorization %q: no metrics in %.200s", auth, body)
			}
			continue
		}
		var reply struct{ Error string }
		if err := json.Unmarshal(body, &reply); err != nil || reply.Error == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("Authorization %q: want a JSON error, got %q", auth, body)
		}
		if strings.Contains(string(body), "klaxon_") {
			t.Errorf("Authorization %q: the refusal shows metrics", auth)
		}
	}
	// Without the setting, /metrics stays open, as before.
	open := newHarness(t, dbtest.SQLite(t), server.Config{})
	if resp, _ := get(t, open, "/metrics"); resp.StatusCode != http.StatusOK {
		t.Errorf("no token set: HTTP %d", resp.StatusCode)
	}
}

// TestPlaygroundServesItsOwnAssets holds that /playground works without
// the internet: the page and every file it references come from the
// server itself, with their content types, under a policy that names no
// other host and allows nothing inline; the vendored files are the ones
// playground/SHA256SUMS lists.
func TestPlaygroundServesItsOwnAssets(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	resp, page := get(t, h, "/playground")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /playground: HTTP %d, %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	host := strings.TrimPrefix(h.srv.URL, "http://")
	wantCSP := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; " +
		"connect-src 'self' ws://" + host + " wss://" + host + "; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
	if got := resp.Header.Get("Content-Security-Policy"); got != wantCSP {
		t.Errorf("policy %q, want %q", got, wantCSP)
	}
	for _, inline := range []string{"<style", " style=", "<script>", " onload=", " onerror=", "javascript:"} {
		if strings.Contains(page, inline) {
			t.Errorf("the page has inline %q, which its policy forbids", inline)
		}
	}

	sums := map[string]string{}
	raw, err := os.ReadFile("playground/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", line)
		}
		sums[name] = sum
	}

	refs := regexp.MustCompile(`(?:src|href)="([^"]*)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 6 {
		t.Fatalf("the page references %d files, want GraphiQL, React, ReactDOM, their styles and the page's own: %s", len(refs), page)
	}
	base, err := url.Parse(h.srv.URL + "/playground")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range refs {
		ref, err := url.Parse(m[1])
		if err != nil || ref.IsAbs() || ref.Host != "" || strings.HasPrefix(m[1], "//") {
			t.Errorf("the page references %q, not a file of this server", m[1])
			continue
		}
		u := base.ResolveReference(ref)
		resp, body := get(t, h, u.Path)
		name := path.Base(u.Path)
		seen[name] = true
		want := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}[path.Ext(name)]
		if resp.StatusCode != http.StatusOK || want == "" || resp.Header.Get("Content-Type") != want || len(body) == 0 {
			t.Errorf("GET %s: HTTP %d, %q, %d bytes; want 200, %q", u.Path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), want)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Content-Security-Policy") != wantCSP {
			t.Errorf("GET %s lacks the playground's headers: %v", u.Path, resp.Header)
		}
		if sum, vendored := sums[name]; vendored {
			if got := fmt.Sprintf("%x", sha256.Sum256([]byte(body))); got != sum {
				t.Errorf("%s: sha256 %s, SHA256SUMS says %s", name, got, sum)
			}
		}
		if path.Ext(name) == ".css" && regexp.MustCompile(`url\(\s*["']?(https?:)?//`).MatchString(body) {
			t.Errorf("%s loads from another host", name)
		}
	}
	for name := range sums {
		if !seen[name] {
			t.Errorf("the page does not load %s", name)
		}
	}
	for _, p := range []string{"/playground/", "/playground/nothing.js", "/playground/index.html", "/playground/README.md", "/playground/fetch.sh"} {
		if resp, _ := get(t, h, p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: HTTP %d, want 404", p, resp.StatusCode)
		}
	}
	off := newHarness(t, dbtest.SQLite(t), server.Config{GraphQLNoIntrospection: true})
	if resp, _ := get(t, off, "/playground/playground.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("introspection off: GET /playground/playground.js: HTTP %d, want 404", resp.StatusCode)
	}
}
