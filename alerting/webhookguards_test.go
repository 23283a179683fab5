package alerting_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"github.com/klaxonhq/klaxon/invalid"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/rules"
)

func sign(secret string, body []byte) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return mac.Sum(nil)
}

func TestSignedWebhooks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc := newService(t, d)
		const secret = "a-shared-secret-of-some-length"
		name, typ, s := "Detectify", rules.TypeDetectify, secret
		integ, err := integrationsOf(d, time.Now, svc).CreateIntegration(ctx, integrations.IntegrationInput{Name: &name, Type: &typ, SignatureSecret: &s})
		if err != nil {
			t.Fatal(err)
		}
		body := sample(t, "new_finding_high.json")
		mac := sign(secret, body)
		ingest := func(headers map[string]string) *alerting.IngestResult {
			t.Helper()
			res, err := svc.Ingest(ctx, alerting.Inbound{Token: integ.Token, Body: body, Headers: headers})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		refused := map[string]map[string]string{
			"missing":              {},
			"wrong key":            {"X-Detectify-Signature": hex.EncodeToString(sign("another-secret-entirely", body))},
			"other body":           {"X-Detectify-Signature": hex.EncodeToString(sign(secret, append(body, ' ')))},
			"truncated":            {"X-Detectify-Signature": hex.EncodeToString(mac[:16])},
			"not hex nor base64":   {"X-Detectify-Signature": "not a signature"},
			"another sender's one": {"X-Signature": hex.EncodeToString(mac)},
		}
		for label, headers := range refused {
			res := ingest(headers)
			if res.Status != db.InboundRefused || res.AlertID != nil || res.Detail == "" {
				t.Fatalf("%s: %+v, want REFUSED with a reason", label, res)
			}
		}
		_, total, _, err := svc.Alerts(ctx, alerting.AlertFilter{}, db.PageRequest{})
		if err != nil || total != 0 {
			t.Fatalf("a refused message touched the alerts: %d, %v", total, err)
		}
		accepted := []map[string]string{
			{"X-Detectify-Signature": hex.EncodeToString(mac)},
			{"X-Detectify-Signature": "sha256=" + hex.EncodeToString(mac)},
			{"X-Detectify-Signature": base64.StdEncoding.EncodeToString(mac)},
		}
		for i, headers := range accepted {
			if res := ingest(headers); res.Status != db.InboundOpened && res.Status != db.InboundAppended {
				t.Fatalf("signature %d: %+v", i, res)
			}
		}
		refusedLog, count, _, err := svc.InboundMessages(ctx, alerting.InboundFilter{Statuses: []db.InboundStatus{db.InboundRefused}}, db.PageRequest{})
		if err != nil || count != len(refused) || refusedLog[0].SourceID != "" || refusedLog[0].AlertID != nil {
			t.Fatalf("refused messages in the log: %d, %v", count, err)
		}

		// An empty secret stops requiring a signature.
		empty := ""
		if _, err := integrationsOf(d, time.Now, svc).UpdateIntegration(ctx, integ.ID, integrations.IntegrationInput{SignatureSecret: &empty}); err != nil {
			t.Fatal(err)
		}
		if res := ingest(nil); res.Status != db.InboundAppended {
			t.Fatalf("unsigned after the secret was removed: %+v", res)
		}
		short := "short"
		var fe *invalid.Field
		if _, err := integrationsOf(d, time.Now, svc).UpdateIntegration(ctx, integ.ID, integrations.IntegrationInput{SignatureSecret: &short}); !errors.As(err, &fe) || fe.Name != "signatureSecret" {
			t.Fatalf("short secret: %v", err)
		}
	})
}

func TestWebhookRateLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		svc := alerting.NewService(alerting.Options{DB: d, PublicURL: "https://klaxon.example", Now: func() time.Time { return clock }, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: stores(d, func() time.Time { return clock })})
		integ := detectify(t, d, svc)
		body := sample(t, "scan_started.json")
		send := func() error {
			_, err := svc.Ingest(ctx, alerting.Inbound{Token: integ.Token, Body: body})
			return err
		}
		// Off by default: a storm is taken, not dropped.
		for range 50 {
			if err := send(); err != nil {
				t.Fatalf("no limit set: %v", err)
			}
		}
		limit := 2
		if _, err := integrationsOf(d, time.Now, svc).UpdateIntegration(ctx, integ.ID, integrations.IntegrationInput{RateLimitPerMinute: &limit}); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if err := send(); err != nil {
				t.Fatalf("webhook %d of a minute's two: %v", i+1, err)
			}
		}
		var rl *db.RateLimitError
		if err := send(); !errors.As(err, &rl) || rl.Wait != 30*time.Second {
			t.Fatalf("third webhook in the minute: %v, want a 30s wait", err)
		}
		clock = clock.Add(30 * time.Second)
		if err := send(); err != nil {
			t.Fatalf("after waiting: %v", err)
		}
		if err := send(); !errors.As(err, &rl) {
			t.Fatalf("allowance spent again: %v", err)
		}
		_, stored, _, err := svc.InboundMessages(ctx, alerting.InboundFilter{IntegrationID: &integ.ID}, db.PageRequest{})
		if err != nil || stored != 53 {
			t.Fatalf("stored %d, want the 53 taken (refused ones are not stored): %v", stored, err)
		}
		if _, err := integrationsOf(d, time.Now, svc).UpdateIntegration(ctx, integ.ID, integrations.IntegrationInput{ClearRateLimit: true}); err != nil {
			t.Fatal(err)
		}
		if err := send(); err != nil {
			t.Fatalf("limit removed: %v", err)
		}
		zero := 0
		var fe *invalid.Field
		if _, err := integrationsOf(d, time.Now, svc).UpdateIntegration(ctx, integ.ID, integrations.IntegrationInput{RateLimitPerMinute: &zero}); !errors.As(err, &fe) || fe.Name != "rateLimitPerMinute" {
			t.Fatalf("zero limit: %v", err)
		}
	})
}
