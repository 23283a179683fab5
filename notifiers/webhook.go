package notifiers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Webhook POSTs the alert as JSON to the contact method's URL.
type Webhook struct {
	Client *http.Client
}

// NewWebhook returns a sender with a bounded client: a slow receiver must
// not hold up the engine.
func NewWebhook() *Webhook {
	return &Webhook{Client: &http.Client{Timeout: 10 * time.Second}}
}

type webhookBody struct {
	AlertID     string `json:"alertId"`
	AlertNumber int    `json:"alertNumber"`
	Subject     string `json:"subject"`
	Severity    string `json:"severity"`
	Details     string `json:"details,omitempty"`
	Source      string `json:"source,omitempty"`
	URL         string `json:"url,omitempty"`
	Recipient   string `json:"recipient,omitempty"`
}

func (w *Webhook) Send(ctx context.Context, msg Message) (string, error) {
	body, err := json.Marshal(webhookBody{
		AlertID: fmt.Sprint(msg.AlertID), AlertNumber: msg.AlertNumber, Subject: msg.Subject, Severity: msg.Severity,
		Details: msg.Details, Source: msg.SourceName, URL: msg.URL, Recipient: msg.Recipient,
	})
	if err != nil {
		return "", Permanent(fmt.Errorf("encode webhook body: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, msg.Destination, bytes.NewReader(body))
	if err != nil {
		return "", Permanent(fmt.Errorf("webhook request: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Klaxon")
	resp, err := w.Client.Do(req)
	if err != nil {
		return "", fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.Header.Get("X-Request-Id"), nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return "", fmt.Errorf("webhook answered %s", resp.Status)
	default:
		return "", Permanent(fmt.Errorf("webhook answered %s", resp.Status))
	}
}
