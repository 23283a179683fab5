package alerting_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/rules"
	"github.com/klaxonhq/klaxon/schedules"
)

func sample(t testing.TB, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "rules", "testdata", "detectify", name))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func newService(t testing.TB, d *db.DB) *alerting.Service {
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	svc := alerting.NewService(alerting.Options{DB: d, PublicURL: "https://klaxon.example", Now: func() time.Time { return clock }, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: stores(d, func() time.Time { return clock })})
	return svc
}

// stores builds the configuration stores the service reads.
func stores(d *db.DB, now func() time.Time) alerting.Config {
	pol := policies.NewStore(d, now, nil)
	groups, _ := auth.NewService(d, nil, now)
	return alerting.Config{
		OnCall: schedules.NewStore(d, now, pol), Policies: pol, Groups: groups,
		Integrations: integrations.NewStore(d, "https://klaxon.example", now, nil),
		Contacts:     contacts.NewStore(d, now, slog.New(slog.NewTextHandler(io.Discard, nil)), nil),
	}
}

// integrationsOf is the store the tests configure svc's integrations
// through; its changes drop svc's webhook routes, as in the server.
func integrationsOf(d *db.DB, now func() time.Time, svc *alerting.Service) *integrations.Store {
	return integrations.NewStore(d, "https://klaxon.example", now, svc.RoutesChanged)
}

func detectify(t testing.TB, d *db.DB, svc *alerting.Service) *db.Integration {
	t.Helper()
	name, typ := "Detectify", rules.TypeDetectify
	integ, err := integrationsOf(d, time.Now, svc).CreateIntegration(context.Background(), integrations.IntegrationInput{Name: &name, Type: &typ})
	if err != nil {
		t.Fatalf("create integration: %v", err)
	}
	return integ
}

func TestDetectifyStory(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc := newService(t, d)
		integ := detectify(t, d, svc)
		steps := []struct {
			file string
			want db.InboundStatus
		}{
			{"scan_started.json", db.InboundIgnored},
			{"new_finding_high.json", db.InboundOpened},
			{"new_finding_high_repeat.json", db.InboundAppended},
			{"legacy_event_finding_high.json", db.InboundAppended},
			{"new_finding_medium.json", db.InboundOpened},
			{"new_finding_critical.json", db.InboundOpened},
			{"finding_low.json", db.InboundClosed},
			{"finding_low_unmatched.json", db.InboundIgnored},
			{"scan_completed.json", db.InboundPulse},
			{"new_finding_high.json", db.InboundOpened},
		}
		var firstAlert int
		for i, step := range steps {
			res, err := svc.Ingest(ctx, alerting.Inbound{Token: integ.Token, Body: sample(t, step.file)})
			if err != nil {
				t.Fatalf("step %d %s: %v", i, step.file, err)
			}
			if res.Status != step.want {
				t.Fatalf("step %d %s: status %s (%s), want %s", i, step.file, res.Status, res.Detail, step.want)
			}
			if i == 1 {
				firstAlert = *res.AlertID
			}
			if (i == 2 || i == 6) && *res.AlertID != firstAlert {
				t.Fatalf("step %d %s: touched alert %d, want %d", i, step.file, *res.AlertID, firstAlert)
			}
			if i == 9 && *res.AlertID == firstAlert {
				t.Fatalf("a finding reopened after close must get a new alert")
			}
		}
		first, err := svc.Alert(ctx, firstAlert)
		if err != nil {
			t.Fatal(err)
		}
		if first.Status != db.AlertClosed || first.AppendCount != 2 || first.Severity != "high" || first.Subject != "SQL Injection" {
			t.Fatalf("first alert: %+v", first)
		}
		timeline, err := svc.Timeline(ctx, firstAlert)
		if err != nil {
			t.Fatal(err)
		}
		var types []db.AlertLogType
		for _, e := range timeline {
			types = append(types, e.Type)
		}
		want := []db.AlertLogType{db.LogOpened, db.LogAppended, db.LogAppended, db.LogClosed}
		if len(types) != len(want) {
			t.Fatalf("timeline %v, want %v", types, want)
		}
		for i := range want {
			if types[i] != want[i] {
				t.Fatalf("timeline %v, want %v", types, want)
			}
		}
		msgs, total, _, err := svc.InboundMessages(ctx, alerting.InboundFilter{IntegrationID: &integ.ID}, db.PageRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if total != len(steps) || len(msgs) != len(steps) {
			t.Fatalf("inbound log has %d (total %d), want %d", len(msgs), total, len(steps))
		}
	})
}

func TestConcurrentIdenticalMessagesOpenOneAlert(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc := newService(t, d)
		integ := detectify(t, d, svc)
		body := sample(t, "new_finding_high.json")
		const n = 50
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() {
				if _, err := svc.Ingest(ctx, alerting.Inbound{Token: integ.Token, Body: body}); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("ingest: %v", err)
		}
		alerts, total, _, err := svc.Alerts(ctx, alerting.AlertFilter{}, db.PageRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if total != 1 || alerts[0].AppendCount != n-1 {
			t.Fatalf("got %d alerts (first has %d appends), want 1 with %d", total, alerts[0].AppendCount, n-1)
		}
		for _, status := range []db.InboundStatus{db.InboundOpened, db.InboundAppended} {
			_, count, _, err := svc.InboundMessages(ctx, alerting.InboundFilter{Statuses: []db.InboundStatus{status}}, db.PageRequest{})
			if err != nil {
				t.Fatal(err)
			}
			want := 1
			if status == db.InboundAppended {
				want = n - 1
			}
			if count != want {
				t.Fatalf("%s messages: %d, want %d", status, count, want)
			}
		}
	})
}
