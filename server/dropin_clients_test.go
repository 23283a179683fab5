package server_test

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"

	pagerduty "github.com/PagerDuty/go-pagerduty"
	"github.com/opsgenie/opsgenie-go-sdk-v2/alert"
	"github.com/opsgenie/opsgenie-go-sdk-v2/client"
	"github.com/sirupsen/logrus"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// TestPagerDutyGoClient drives PagerDuty's own Go client against the
// server: it parses every answer, so a shape PagerDuty does not give
// fails here.
func TestPagerDutyGoClient(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("PAGERDUTY")
		key := h.adminRoutingKey(integ.ID)
		pd := pagerduty.NewClient("", pagerduty.WithV2EventsAPIEndpoint(h.srv.URL))
		ctx := context.Background()

		res, err := pd.ManageEventWithContext(ctx, &pagerduty.V2Event{RoutingKey: key, Action: "trigger",
			Payload: &pagerduty.V2Payload{Summary: "Queue backlog", Source: "worker-2", Severity: "error", Component: "jobs"}})
		if err != nil || res.Status != "success" || res.Message != "Event processed" || res.DedupKey == "" {
			t.Fatalf("trigger: %+v, %v", res, err)
		}
		if a := h.alertsOf(); len(a) != 1 || a[0].Status != "OPEN" || a[0].SourceID != res.DedupKey || a[0].Subject != "Queue backlog" {
			t.Fatalf("triggered alert: %+v", a)
		}
		for _, step := range []struct{ action, want string }{{"acknowledge", "ACKNOWLEDGED"}, {"resolve", "CLOSED"}} {
			if _, err := pd.ManageEventWithContext(ctx, &pagerduty.V2Event{RoutingKey: key, Action: step.action, DedupKey: res.DedupKey}); err != nil {
				t.Fatalf("%s: %v", step.action, err)
			}
			if a := h.alertsOf(); a[0].Status != step.want {
				t.Fatalf("after %s: %+v, want %s", step.action, a[0], step.want)
			}
		}

		change, err := pd.CreateChangeEventWithContext(ctx, pagerduty.ChangeEvent{RoutingKey: key,
			Payload: pagerduty.ChangeEventPayload{Summary: "Deployed workers v7", Source: "ci"}})
		if err != nil || change.Status != "success" || change.Message != "Change event processed" {
			t.Fatalf("change event: %+v, %v", change, err)
		}

		_, err = pd.ManageEventWithContext(ctx, &pagerduty.V2Event{RoutingKey: key, Action: "trigger",
			Payload: &pagerduty.V2Payload{Summary: "s", Source: "x", Severity: "high"}})
		// The client's method reads a refusal as an HTTP error (it parses
		// error bodies in the REST API's shape, not the Events API's; the
		// Events shape is checked by Alertmanager and TestPagerDutyErrorAnswers).
		var apiErr pagerduty.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
			t.Fatalf("bad severity: %#v", err)
		}
		if n := len(h.alertsOf()); n != 1 {
			t.Fatalf("%d alerts, want 1", n)
		}
	})
}

// TestOpsgenieGoSDK drives Opsgenie's own Go SDK against the server,
// reading each request's outcome back as the SDK does.
func TestOpsgenieGoSDK(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("OPSGENIE")
		key := h.adminRoutingKey(integ.ID)
		u, err := url.Parse(h.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		quiet := logrus.New()
		quiet.SetOutput(io.Discard)
		// The SDK speaks plain HTTP to a host without "api" in its name.
		og, err := alert.NewClient(&client.Config{ApiKey: key, OpsGenieAPIURL: client.ApiUrl(u.Host), RetryCount: 1, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()

		created, err := og.Create(ctx, &alert.CreateAlertRequest{Message: "Certificate expires in 3 days", Alias: "cert-www",
			Priority: alert.P2, Entity: "www", Tags: []string{"tls"}, Details: map[string]string{"url": "https://www.example"}})
		if err != nil || created.Result != "Request will be processed" || created.RequestId == "" {
			t.Fatalf("create: %+v, %v", created, err)
		}
		status, err := created.RetrieveStatus(ctx)
		if err != nil || !status.IsSuccess || status.Action != "Create" || status.Alias != "cert-www" || status.AlertID == "" ||
			status.IntegrationId != integ.ID || status.RequestId == "" || status.ResponseTime == 0 || status.RateLimitState != "OK" {
			t.Fatalf("create status: %+v, %v", status, err)
		}
		if a := h.alertsOf(); len(a) != 1 || a[0].Severity != "high" || a[0].SourceID != "cert-www" || a[0].URL != "https://www.example" {
			t.Fatalf("created alert: %+v", a)
		}

		ack, err := og.Acknowledge(ctx, &alert.AcknowledgeAlertRequest{IdentifierType: alert.ALERTID, IdentifierValue: status.AlertID, User: "ops"})
		if err != nil {
			t.Fatalf("acknowledge: %v", err)
		}
		if s, err := ack.RetrieveStatus(ctx); err != nil || !s.IsSuccess || s.Status != "Acknowledged alert" {
			t.Fatalf("acknowledge status: %+v, %v", s, err)
		}
		if _, err := og.AddNote(ctx, &alert.AddNoteRequest{IdentifierType: alert.ALIAS, IdentifierValue: "cert-www", Note: "Renewal ordered"}); err != nil {
			t.Fatalf("add note: %v", err)
		}
		closed, err := og.Close(ctx, &alert.CloseAlertRequest{IdentifierType: alert.ALIAS, IdentifierValue: "cert-www", Source: "certbot"})
		if err != nil {
			t.Fatalf("close: %v", err)
		}
		if s, err := closed.RetrieveStatus(ctx); err != nil || !s.IsSuccess || s.Action != "Close" {
			t.Fatalf("close status: %+v, %v", s, err)
		}
		a := h.alertsOf()[0]
		var types []string
		for _, e := range a.Timeline {
			types = append(types, e.Type)
		}
		if a.Status != "CLOSED" || strings.Join(types, " ") != "OPENED ACKNOWLEDGED NOTE CLOSED" {
			t.Fatalf("alert after the SDK's requests: %s, timeline %v", a.Status, types)
		}

		_, err = og.Create(ctx, &alert.CreateAlertRequest{Message: "m", Priority: "P9"})
		var apiErr *client.ApiError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 422 || apiErr.Errors["priority"] == "" || apiErr.RequestId == "" {
			t.Fatalf("bad priority: %#v", err)
		}
	})
}
