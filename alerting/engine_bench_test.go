package alerting_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/rules"
)

// BenchmarkEscalationLateness measures how late due escalation steps run
// with the engine on its default poll interval and the real clock: each
// iteration opens a burst of alerts whose second step falls due two
// seconds later, and the lateness of every step is the time its timeline
// entry was written minus the time it was due.
func BenchmarkEscalationLateness(b *testing.B) {
	for _, kind := range []db.Kind{db.SQLite, db.Postgres} {
		b.Run(string(kind), func(b *testing.B) {
			var d *db.DB
			if kind == db.SQLite {
				d = dbtest.SQLite(b)
			} else {
				d = dbtest.Postgres(b)
			}
			ctx := context.Background()
			now := func() time.Time { return time.Now() }
			svc := alerting.NewService(alerting.Options{DB: d, PublicURL: "https://klaxon.example", Now: now, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: stores(d, now),
				Channels: notifiers.NewChannels(notifiers.Senders{db.ContactWebhook: notifiers.NewWebhook(localSinks)}, nil)})
			inbox := newInbox(b)
			name, typ := "bench", rules.TypeGeneric
			integ, err := integrationsOf(d, now, svc).CreateIntegration(ctx, integrations.IntegrationInput{Name: &name, Type: &typ})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now().UTC()
			user := &db.User{Email: "oncall@example.com", Role: db.RoleResponder, CreatedAt: start, UpdatedAt: start}
			mustInsert(b, d, user)
			cm := &db.ContactMethod{UserID: user.ID, Type: db.ContactWebhook, Value: inbox.server.URL + "/oncall", CreatedAt: start}
			mustInsert(b, d, cm)
			mustInsert(b, d, &db.NotificationRule{UserID: user.ID, ContactMethodID: cm.ID, CreatedAt: start})
			policy := &db.EscalationPolicy{Name: "bench", CreatedAt: start, UpdatedAt: start}
			mustInsert(b, d, policy)
			// A step delay in minutes is too long to wait for here; the
			// first step targets nobody and the second is made due in two
			// seconds by moving its job.
			mustInsert(b, d, &db.EscalationStep{PolicyID: policy.ID, Position: 0, DelayMinutes: 1, Targets: []db.Target{{Type: db.TargetRecipients}}})
			mustInsert(b, d, &db.EscalationStep{PolicyID: policy.ID, Position: 1, DelayMinutes: 10, Targets: []db.Target{{Type: db.TargetUser, ID: user.ID}}})
			integ.EscalationPolicyID = &policy.ID
			if _, err := d.NewUpdate().Model(integ).Column("escalation_policy_id").WherePK().Exec(ctx); err != nil {
				b.Fatal(err)
			}

			engineCtx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); svc.RunEngine(engineCtx, 100*time.Millisecond) }()
			defer func() { stop(); <-done }()

			const burst = 200
			var lateness []time.Duration
			seq := 0
			for b.Loop() {
				for range burst {
					seq++
					body := fmt.Sprintf(`{"summary":"disk full","dedup_key":"host-%d"}`, seq)
					if _, err := svc.Ingest(ctx, alerting.Inbound{Token: integ.Token, Body: []byte(body)}); err != nil {
						b.Fatal(err)
					}
				}
				waitFor(b, func() bool { return countJobs(b, d, `args LIKE '%"step":1,%'`) == burst })
				due := time.Now().Add(2 * time.Second).UTC().Truncate(time.Microsecond)
				if _, err := d.NewUpdate().Model((*db.AlertJob)(nil)).Set("run_at = ?", due).Where("kind = 'escalate'").Exec(ctx); err != nil {
					b.Fatal(err)
				}
				waitFor(b, func() bool { return countJobs(b, d, "1 = 1") == 0 })
				var ats []time.Time
				if err := d.NewSelect().Model((*db.AlertLog)(nil)).Column("at").
					Where("type = ? AND message LIKE 'Escalated to step 2%' AND at >= ?", db.LogEscalated, due).Scan(ctx, &ats); err != nil {
					b.Fatal(err)
				}
				if len(ats) != burst {
					b.Fatalf("%d steps ran, want %d", len(ats), burst)
				}
				for _, at := range ats {
					lateness = append(lateness, at.Sub(due))
				}
				if _, err := d.NewDelete().Model((*db.Alert)(nil)).Where("1 = 1").Exec(ctx); err != nil {
					b.Fatal(err)
				}
			}
			slices.Sort(lateness)
			b.ReportMetric(float64(lateness[len(lateness)/2].Milliseconds()), "p50-late-ms")
			b.ReportMetric(float64(lateness[len(lateness)*99/100].Milliseconds()), "p99-late-ms")
			b.ReportMetric(float64(lateness[len(lateness)-1].Milliseconds()), "max-late-ms")
		})
	}
}

func mustInsert(b *testing.B, d *db.DB, model any) {
	b.Helper()
	if _, err := d.NewInsert().Model(model).Exec(context.Background()); err != nil {
		b.Fatal(err)
	}
}

func countJobs(b *testing.B, d *db.DB, where string) int {
	n, err := d.NewSelect().Model((*db.AlertJob)(nil)).Where(where).Count(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return int(n)
}

// waitFor polls a condition of the running engine; the benchmark measures
// real time, so it cannot fast-forward.
func waitFor(b *testing.B, cond func() bool) {
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("timed out waiting for the engine")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
