package alerting_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/rules"
)

// stormAlerts is the storm: related alerts, all within one minute.
const stormAlerts = 10_000

// BenchmarkIngestStorm sends a storm of stormAlerts related findings
// (one asset, each finding new) from 16 senders at once, through an
// integration that groups by asset and through one that does not, on each
// database. Each iteration runs both storms on the same database, taking
// turns at going first, so that a slower moment of the machine or a
// larger table weighs on both alike; it reports each one's throughput and
// their ratio. It checks that the grouped storm pages each person once
// per step: the storm is one notification, not ten thousand.
func BenchmarkIngestStorm(b *testing.B) {
	for _, kind := range []db.Kind{db.SQLite, db.Postgres} {
		b.Run(string(kind), func(b *testing.B) { benchStorm(b, kind) })
	}
}

func benchStorm(b *testing.B, kind db.Kind) {
	var d *db.DB
	if kind == db.SQLite {
		d = dbtest.SQLite(b)
	} else {
		d = dbtest.Postgres(b)
	}
	ctx := context.Background()
	base := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	// Each reading moves the clock on 3 ms, up to the end of the minute
	// the storm is in; the check afterwards sets it outright.
	var ticks atomic.Int64
	var after atomic.Pointer[time.Time]
	now := func() time.Time {
		if t := after.Load(); t != nil {
			return *t
		}
		return base.Add(min(time.Duration(ticks.Add(1))*3*time.Millisecond, 59*time.Second))
	}
	var pages atomic.Int64
	inbox := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { pages.Add(1) }))
	b.Cleanup(inbox.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	channels := notifiers.NewChannels(notifiers.Senders{db.ContactWebhook: notifiers.NewWebhook(localSinks)}, localSinks)
	config := stores(d, now)
	config.Contacts = contacts.NewStore(d, now, log, channels)
	svc := alerting.NewService(alerting.Options{DB: d, PublicURL: "https://klaxon.example", Now: now, Log: log, Config: config, Channels: channels})
	store := integrations.NewStore(d, "https://klaxon.example", now, svc.RoutesChanged)

	u := &db.User{Email: "oncall@example.com", Name: "On call", Role: db.RoleResponder, CreatedAt: base, UpdatedAt: base}
	mustInsert(b, d, u)
	cm := &db.ContactMethod{UserID: u.ID, Type: db.ContactWebhook, Value: inbox.URL + "/oncall", Verified: true, CreatedAt: base}
	mustInsert(b, d, cm)
	mustInsert(b, d, &db.NotificationRule{UserID: u.ID, ContactMethodID: cm.ID, CreatedAt: base})
	policy := &db.EscalationPolicy{Name: "Storm", CreatedAt: base, UpdatedAt: base}
	mustInsert(b, d, policy)
	mustInsert(b, d, &db.EscalationStep{PolicyID: policy.ID, DelayMinutes: 30, Targets: []db.Target{{Type: db.TargetUser, ID: u.ID}}})

	template := sample(b, "new_finding_high.json")
	const uuid = "3f9c2a8e-6b1d-4c57-9e0a-5d2b7c41f8a3"
	storms := 0
	// storm sends one storm and returns how long it took.
	storm := func(grouped bool) time.Duration {
		storms++
		after.Store(nil)
		ticks.Store(0)
		in := integrations.IntegrationInput{Name: ptr(fmt.Sprintf("Scanner %d", storms)), Type: ptr(rules.TypeDetectify), EscalationPolicyID: &policy.ID}
		if grouped {
			in.Grouping = &rules.Grouping{By: []string{"sourceName"}, WindowMinutes: 5}
		}
		integ, err := store.CreateIntegration(ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		var seq atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range 16 {
			wg.Go(func() {
				for {
					n := seq.Add(1)
					if n > stormAlerts {
						return
					}
					body := []byte(strings.Replace(string(template), uuid, fmt.Sprintf("storm-%d-%d", storms, n), 1))
					res, err := svc.Ingest(ctx, alerting.Inbound{Token: integ.Token, Body: body})
					if err != nil {
						b.Error(err)
						return
					}
					if res.Status != db.InboundOpened {
						b.Errorf("status %s: %s", res.Status, res.Detail)
						return
					}
				}
			})
		}
		wg.Wait()
		took := time.Since(start)

		if grouped {
			// The first step of every alert that pages is due within the
			// minute: run it, and count the pages.
			pages.Store(0)
			later := base.Add(2 * time.Minute)
			after.Store(&later)
			for {
				n, err := svc.RunDueJobs(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if n == 0 {
					break
				}
			}
			if got := pages.Load(); got != 1 {
				b.Fatalf("a grouped storm of %d alerts paged %d times, want once", stormAlerts, got)
			}
		}
		// The next storm's alerts must not join this one's group, and the
		// ungrouped storm's ten thousand pages are not what is measured.
		if _, err := d.NewUpdate().Model((*db.Alert)(nil)).Set("status = ?", db.AlertClosed).Where("integration_id = ?", integ.ID).Exec(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := d.NewDelete().Model((*db.AlertJob)(nil)).Where("alert_id IN (SELECT id FROM alerts WHERE integration_id = ?)", integ.ID).Exec(ctx); err != nil {
			b.Fatal(err)
		}
		return took
	}
	var ungroupedTook, groupedTook time.Duration
	rounds := 0
	for b.Loop() {
		b.StopTimer()
		rounds++
		if rounds%2 == 1 {
			ungroupedTook += storm(false)
			groupedTook += storm(true)
		} else {
			groupedTook += storm(true)
			ungroupedTook += storm(false)
		}
		b.StartTimer()
	}
	ungrouped := float64(rounds*stormAlerts) / ungroupedTook.Seconds()
	grouped := float64(rounds*stormAlerts) / groupedTook.Seconds()
	b.ReportMetric(ungrouped, "ungrouped-alerts/s")
	b.ReportMetric(grouped, "grouped-alerts/s")
	b.ReportMetric(grouped/ungrouped, "grouped/ungrouped")
	b.ReportMetric(0, "ns/op")
}
