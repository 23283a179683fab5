package notifiers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"text/template"
	"time"

	"github.com/klaxonhq/klaxon/db"
)

// WorkflowData is what a workflow's body and header templates see, e.g.
// {{.Alert.Subject}}, {{.Event}}, {{json .Alert.Details}}.
type WorkflowData struct {
	// Event is the change: OPENED, ACKNOWLEDGED, ESCALATED, CLOSED or
	// NOTE_ADDED.
	Event string
	// Actor is who made the change (name, else email); empty when Klaxon
	// itself did (an escalation, a message from a monitor).
	Actor       string
	Alert       WorkflowAlert
	Integration string
	// Link is the alert's page in the web app.
	Link string
}

// WorkflowAlert is the alert as a workflow's templates see it.
type WorkflowAlert struct {
	ID          int
	Number      int
	Subject     string
	Severity    string
	Status      string
	URL         string
	Details     string
	SourceID    string
	SourceName  string
	OpenedAt    time.Time
	AppendCount int
}

// SampleWorkflowData is a made-up alert that a template must render
// against to be saved, so a template that only fails at run time (a
// field that does not exist, a call with the wrong arguments) is caught
// when it is written.
func SampleWorkflowData() WorkflowData {
	return WorkflowData{
		Event: "OPENED", Actor: "Ada Lovelace", Integration: "Detectify",
		Link: "https://klaxon.example.com/alerts/42",
		Alert: WorkflowAlert{ID: 42, Number: 42, Subject: "SQL injection on /login", Severity: "critical", Status: "OPEN",
			URL: "https://app.example.com/login", Details: `{"param":"user"}`, SourceID: "finding-1", SourceName: "app.example.com",
			OpenedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), AppendCount: 1},
	}
}

// maxWorkflowOutput bounds what one template renders: a receiver takes
// requests of ordinary size, and a template must not grow without bound.
const maxWorkflowOutput = 256 << 10

var workflowFuncs = template.FuncMap{
	// json quotes a value for a JSON body: {"title": {{json .Alert.Subject}}}.
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

// ParseWorkflowTemplate parses a workflow template. Templates are
// text/template: they print data and call only the functions of
// text/template and json, so a template can read the alert but do
// nothing else.
func ParseWorkflowTemplate(text string) (*template.Template, error) {
	return template.New("workflow").Option("missingkey=error").Funcs(workflowFuncs).Parse(text)
}

// RenderWorkflow parses and executes text against data.
func RenderWorkflow(text string, data WorkflowData) (string, error) {
	t, err := ParseWorkflowTemplate(text)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	if err := t.Execute(&limitedWriter{w: &out, left: maxWorkflowOutput}, data); err != nil {
		return "", err
	}
	return out.String(), nil
}

var errWorkflowTooLong = fmt.Errorf("the rendered text is over %d bytes", maxWorkflowOutput)

type limitedWriter struct {
	w    io.Writer
	left int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.left {
		return 0, errWorkflowTooLong
	}
	l.left -= len(p)
	return l.w.Write(p)
}

// WorkflowRequest is a workflow's rendered request.
type WorkflowRequest struct {
	Method  string
	URL     string
	Headers [][2]string
	Body    string
}

// Request sends a workflow's request like an outbound webhook: through
// the egress guard, bounded in time, signed when a secret is set. It
// returns the status code of the answer (0 when there was none); an
// error means the request should be tried again later unless it is
// Permanent.
func (w *Webhook) Request(ctx context.Context, r WorkflowRequest) (int, error) {
	body := []byte(r.Body)
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, bytes.NewReader(body))
	if err != nil {
		return 0, Permanent(errors.New("workflow request: the URL is not valid"))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Klaxon")
	for _, h := range r.Headers {
		req.Header.Set(h[0], h[1])
	}
	// Set last, so that no header of the workflow's can stand in for them.
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
		return 0, fmt.Errorf("workflow request: %w", noAnswer(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, statusError("workflow request", resp, "")
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return resp.StatusCode, nil
}

// Request sends a workflow's request through the webhook channel's sender
// (its signing secret and guard), or, when that channel is not set up,
// through an unsigned one behind the same guard as every contact URL.
func (c *Channels) Request(ctx context.Context, r WorkflowRequest) (int, error) {
	c.mu.RLock()
	webhook, _ := c.senders[db.ContactWebhook].(*Webhook)
	guard := c.guard
	c.mu.RUnlock()
	if webhook == nil {
		webhook = NewWebhook(guard)
	}
	return webhook.Request(ctx, r)
}
