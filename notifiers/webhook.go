package notifiers

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klaxonhq/klaxon/egress"
)

// Webhook POSTs the alert as JSON to the contact method's URL.
type Webhook struct {
	Client *http.Client
	// SigningSecret, when set, makes every request carry
	// X-Klaxon-Timestamp and X-Klaxon-Signature so receivers can tell our
	// requests from forgeries and replays (see VerifyWebhookSignature).
	SigningSecret string

	now func() time.Time
}

// NewWebhook returns an unsigned sender whose client reaches only what
// guard allows (nil: public addresses only) and is bounded in time: a
// slow receiver must not hold up the engine.
func NewWebhook(guard *egress.Guard) *Webhook {
	return &Webhook{Client: outboundClient(guard), now: time.Now}
}

// NewSignedWebhook returns a sender that signs every request with secret.
func NewSignedWebhook(guard *egress.Guard, secret string) *Webhook {
	w := NewWebhook(guard)
	w.SigningSecret = secret
	return w
}

// Signature headers on outbound webhooks; part of the public contract.
const (
	WebhookTimestampHeader = "X-Klaxon-Timestamp"
	WebhookSignatureHeader = "X-Klaxon-Signature"
)

type webhookBody struct {
	AlertID     string `json:"alertId"`
	AlertNumber int    `json:"alertNumber"`
	Subject     string `json:"subject"`
	Severity    string `json:"severity"`
	Details     string `json:"details,omitempty"`
	Source      string `json:"source,omitempty"`
	URL         string `json:"url,omitempty"`
	AckURL      string `json:"ackUrl,omitempty"`
	CloseURL    string `json:"closeUrl,omitempty"`
	Recipient   string `json:"recipient,omitempty"`
	// OtherAlerts are alerts sent along in the same message.
	OtherAlerts []webhookOther `json:"otherAlerts,omitempty"`
	// Grouped is how many alerts joined this alert's group.
	Grouped int `json:"grouped,omitempty"`
}

type webhookOther struct {
	AlertID     string `json:"alertId"`
	AlertNumber int    `json:"alertNumber"`
	Subject     string `json:"subject"`
	Severity    string `json:"severity"`
}

func (w *Webhook) Send(ctx context.Context, msg Message) (string, error) {
	payload := webhookBody{
		AlertID: fmt.Sprint(msg.AlertID), AlertNumber: msg.AlertNumber, Subject: msg.Subject, Severity: msg.Severity,
		Details: msg.Details, Source: msg.SourceName, URL: msg.URL, AckURL: msg.AckURL, CloseURL: msg.CloseURL,
		Recipient: msg.Recipient, Grouped: msg.Grouped,
	}
	for _, o := range msg.Others {
		payload.OtherAlerts = append(payload.OtherAlerts, webhookOther{AlertID: fmt.Sprint(o.AlertID), AlertNumber: o.AlertNumber, Subject: o.Subject, Severity: o.Severity})
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return "", Permanent(fmt.Errorf("encode webhook body: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, msg.Destination, bytes.NewReader(body))
	if err != nil {
		// Its text would quote the URL.
		return "", Permanent(errors.New("webhook request: the URL is not valid"))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Klaxon")
	if w.SigningSecret != "" {
		now := time.Now
		if w.now != nil {
			now = w.now
		}
		ts := strconv.FormatInt(now().Unix(), 10)
		req.Header.Set(WebhookTimestampHeader, ts)
		req.Header.Set(WebhookSignatureHeader, "v1="+webhookMAC(w.SigningSecret, ts, body))
	}
	client := w.Client
	if client == nil {
		client = outboundClient(nil)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("webhook: %w", noAnswer(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", statusError("webhook", resp, "")
	}
	// Drain so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return resp.Header.Get("X-Request-Id"), nil
}

// webhookMAC signs the timestamp together with the body so a captured
// request cannot be replayed later under a fresh timestamp.
func webhookMAC(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Errors from VerifyWebhookSignature.
var (
	ErrWebhookSignature = errors.New("notifiers: webhook signature does not match")
	ErrWebhookTimestamp = errors.New("notifiers: webhook timestamp outside tolerance")
)

// VerifyWebhookSignature checks a request Klaxon signed: timestamp and
// signature are the X-Klaxon-Timestamp and X-Klaxon-Signature header
// values, body the raw request body. The timestamp must lie within
// tolerance of now, which bounds how long a captured request can be
// replayed. The signature header may list several comma-separated "v1="
// values (sent while a secret is rotated); any one matching is enough.
// It is the reference for receivers written in other languages.
func VerifyWebhookSignature(secret, timestamp, body, signature string, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad timestamp %q", ErrWebhookTimestamp, timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: off by %s", ErrWebhookTimestamp, d.Round(time.Second))
	}
	want, err := hex.DecodeString(webhookMAC(secret, strings.TrimSpace(timestamp), []byte(body)))
	if err != nil {
		return fmt.Errorf("verify webhook signature: %w", err)
	}
	for part := range strings.SplitSeq(signature, ",") {
		scheme, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || scheme != "v1" {
			continue
		}
		got, err := hex.DecodeString(value)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrWebhookSignature
}
