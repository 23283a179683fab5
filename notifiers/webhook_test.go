package notifiers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func testMessage(dest string) Message {
	return Message{
		AlertID: 42, AlertNumber: 42, Subject: "Disk full on db-1", Severity: "high",
		Details: "Only 2% left on /var.", SourceName: "Detectify", URL: "https://klaxon.example/alerts/42",
		AckURL: "https://klaxon.example/actions/ack-token", CloseURL: "https://klaxon.example/actions/close-token",
		Destination: dest, Recipient: "Ada",
	}
}

func TestWebhookSigned(t *testing.T) {
	const secret = "whsec-test"
	var gotBody webhookBody
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := VerifyWebhookSignature(secret, r.Header.Get(WebhookTimestampHeader), string(body),
			r.Header.Get(WebhookSignatureHeader), time.Now(), 5*time.Minute)
		if err != nil {
			t.Errorf("receiver rejected signature: %v", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if err := json.Unmarshal(body, &gotBody); err != nil {
			t.Errorf("decode body: %v", err)
		}
		w.Header().Set("X-Request-Id", "req-1")
	}))
	defer srv.Close()

	id, err := NewSignedWebhook(localSinks, secret).Send(context.Background(), testMessage(srv.URL))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if id != "req-1" {
		t.Errorf("provider id = %q, want req-1", id)
	}
	if gotBody.AlertID != "42" || gotBody.AckURL == "" || gotBody.CloseURL == "" || gotBody.Severity != "high" {
		t.Errorf("body = %+v", gotBody)
	}
}

func TestWebhookUnsignedHasNoSignature(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(WebhookSignatureHeader) != "" || r.Header.Get(WebhookTimestampHeader) != "" {
			t.Error("unsigned webhook sent signature headers")
		}
	}))
	defer srv.Close()
	if _, err := NewWebhook(localSinks).Send(context.Background(), testMessage(srv.URL)); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

func TestVerifyWebhookSignature(t *testing.T) {
	const secret = "s3cret"
	body := `{"alertId":"1"}`
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := "v1=" + webhookMAC(secret, ts, []byte(body))

	tests := []struct {
		name      string
		secret    string
		ts        string
		body      string
		sig       string
		now       time.Time
		wantErr   error
		wantValid bool
	}{
		{name: "valid", secret: secret, ts: ts, body: body, sig: sig, now: now, wantValid: true},
		{name: "valid within tolerance", secret: secret, ts: ts, body: body, sig: sig, now: now.Add(4 * time.Minute), wantValid: true},
		{name: "rotation list", secret: secret, ts: ts, body: body, sig: "v1=00ff, " + sig, now: now, wantValid: true},
		{name: "tampered body", secret: secret, ts: ts, body: `{"alertId":"2"}`, sig: sig, now: now, wantErr: ErrWebhookSignature},
		{name: "tampered timestamp", secret: secret, ts: strconv.FormatInt(now.Unix()+1, 10), body: body, sig: sig, now: now, wantErr: ErrWebhookSignature},
		{name: "wrong secret", secret: "other", ts: ts, body: body, sig: sig, now: now, wantErr: ErrWebhookSignature},
		{name: "unknown scheme", secret: secret, ts: ts, body: body, sig: "v0=" + webhookMAC(secret, ts, []byte(body)), now: now, wantErr: ErrWebhookSignature},
		{name: "not hex", secret: secret, ts: ts, body: body, sig: "v1=zz", now: now, wantErr: ErrWebhookSignature},
		{name: "empty signature", secret: secret, ts: ts, body: body, sig: "", now: now, wantErr: ErrWebhookSignature},
		{name: "expired", secret: secret, ts: ts, body: body, sig: sig, now: now.Add(6 * time.Minute), wantErr: ErrWebhookTimestamp},
		{name: "from the future", secret: secret, ts: ts, body: body, sig: sig, now: now.Add(-6 * time.Minute), wantErr: ErrWebhookTimestamp},
		{name: "bad timestamp", secret: secret, ts: "yesterday", body: body, sig: sig, now: now, wantErr: ErrWebhookTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyWebhookSignature(tt.secret, tt.ts, tt.body, tt.sig, tt.now, 5*time.Minute)
			if tt.wantValid {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestWebhookStatusMapping(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter string
		permanent  bool
		wait       time.Duration
	}{
		{status: http.StatusBadRequest, permanent: true},
		{status: http.StatusGone, permanent: true},
		{status: http.StatusRequestTimeout},
		{status: http.StatusTooManyRequests},
		{status: http.StatusTooManyRequests, retryAfter: "30", wait: 30 * time.Second},
		{status: http.StatusServiceUnavailable, retryAfter: "120", wait: 2 * time.Minute},
		{status: http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status)+"/"+tt.retryAfter, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			_, err := NewWebhook(localSinks).Send(context.Background(), testMessage(srv.URL))
			if err == nil {
				t.Fatal("want error")
			}
			if IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v (%v)", IsPermanent(err), tt.permanent, err)
			}
			wait, ok := RetryAfter(err)
			if ok != (tt.wait > 0) || wait != tt.wait {
				t.Errorf("RetryAfter = %v, %v; want %v", wait, ok, tt.wait)
			}
		})
	}
}

func TestParseRetryAfterDate(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	wait, ok := parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now)
	if !ok || wait != 90*time.Second {
		t.Errorf("got %v, %v; want 90s", wait, ok)
	}
	if _, ok := parseRetryAfter("soon", now); ok {
		t.Error("garbage parsed")
	}
}

func TestWebhookConnectionErrorIsTemporary(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	_, err := NewWebhook(localSinks).Send(context.Background(), testMessage(url))
	if err == nil || IsPermanent(err) {
		t.Fatalf("want temporary error, got %v", err)
	}
}

func TestWebhookBundleCarriesTheOtherAlerts(t *testing.T) {
	var gotBody map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := json.NewDecoder(r.Body).Decode(&gotBody); err != nil {
			t.Errorf("decode body: %v", err)
		}
	}))
	defer srv.Close()
	msg := testMessage(srv.URL)
	if _, err := NewWebhook(localSinks).Send(context.Background(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if _, ok := gotBody["otherAlerts"]; ok {
		t.Errorf("a single alert's body has otherAlerts: %v", gotBody)
	}
	msg.Others = []AlertSummary{{AlertID: 43, AlertNumber: 43, Subject: "Cert expires", Severity: "low"}}
	if _, err := NewWebhook(localSinks).Send(context.Background(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	others, _ := gotBody["otherAlerts"].([]any)
	if len(others) != 1 || others[0].(map[string]any)["alertId"] != "43" || others[0].(map[string]any)["subject"] != "Cert expires" {
		t.Errorf("otherAlerts = %v", gotBody["otherAlerts"])
	}
}
