package alerting_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/rules"
)

const (
	// escalationStormAlerts open within escalationStormSpan, evenly.
	escalationStormAlerts = 10_000
	escalationStormSpan   = 10 * time.Second
	// escalationStormSenders is how many webhooks are in flight at most.
	escalationStormSenders = 32
	// enginePoll is the server's default engine poll interval
	// (--engine-poll-interval).
	enginePoll = 100 * time.Millisecond
)

// BenchmarkEscalationStorm opens escalationStormAlerts alerts through the
// ingest path within escalationStormSpan, spread evenly over many
// senders, on an integration whose policy's first step notifies one user
// at once by outbound webhook. The engine runs as the server runs it: its
// default poll and workers, the real clock. The far end of the webhook is
// a local HTTP server that notes when each alert's notification reached
// it. It reports the latency from each alert's opening (its ingest call
// returning) to that arrival, and fails if any alert is notified twice or
// not at all.
//
// A webhook contact method has no rate limit and is not bundled: each
// alert is its own request, as a receiving system expects. (SMS and voice
// are limited to one message a minute per number, and a storm reaches a
// phone as a few bundled messages; see DefaultRateLimits.)
func BenchmarkEscalationStorm(b *testing.B) {
	for _, kind := range []db.Kind{db.SQLite, db.Postgres} {
		b.Run(string(kind), func(b *testing.B) { benchEscalationStorm(b, kind) })
	}
}

// farEnd is the receiving side of the outbound webhook: when each alert's
// first notification arrived, and how many arrived per alert.
type farEnd struct {
	mu     sync.Mutex
	first  map[string]time.Time
	count  map[string]int
	server *httptest.Server
}

func newFarEnd(b *testing.B) *farEnd {
	f := &farEnd{first: map[string]time.Time{}, count: map[string]int{}}
	f.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		var body struct {
			AlertID string `json:"alertId"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		if f.count[body.AlertID] == 0 {
			f.first[body.AlertID] = at
		}
		f.count[body.AlertID]++
		f.mu.Unlock()
	}))
	b.Cleanup(f.server.Close)
	return f
}

func (f *farEnd) reset() {
	f.mu.Lock()
	f.first, f.count = map[string]time.Time{}, map[string]int{}
	f.mu.Unlock()
}

func (f *farEnd) arrived() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.first)
}

func benchEscalationStorm(b *testing.B, kind db.Kind) {
	var d *db.DB
	if kind == db.SQLite {
		d = dbtest.SQLite(b)
	} else {
		d = dbtest.Postgres(b)
	}
	ctx := context.Background()
	now := time.Now
	svc := alerting.NewService(alerting.Options{DB: d, PublicURL: "https://klaxon.example", Now: now, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: stores(d, now),
		Channels: notifiers.NewChannels(notifiers.Senders{db.ContactWebhook: notifiers.NewWebhook(localSinks)}, nil)})
	far := newFarEnd(b)
	statements := &statementCounter{}
	d.AddQueryHook(statements)

	start := time.Now().UTC()
	user := &db.User{Email: "oncall@example.com", Name: "On call", Role: db.RoleResponder, CreatedAt: start, UpdatedAt: start}
	mustInsert(b, d, user)
	cm := &db.ContactMethod{UserID: user.ID, Type: db.ContactWebhook, Value: far.server.URL + "/oncall", Verified: true, CreatedAt: start}
	mustInsert(b, d, cm)
	mustInsert(b, d, &db.NotificationRule{UserID: user.ID, ContactMethodID: cm.ID, CreatedAt: start})
	policy := &db.EscalationPolicy{Name: "storm", CreatedAt: start, UpdatedAt: start}
	mustInsert(b, d, policy)
	mustInsert(b, d, &db.EscalationStep{PolicyID: policy.ID, DelayMinutes: 30, Targets: []db.Target{{Type: db.TargetUser, ID: user.ID}}})

	engineCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); svc.RunEngine(engineCtx, enginePoll) }()
	defer func() { stop(); <-done }()

	var latencies []time.Duration
	var notified, openSpan time.Duration
	var perAlert float64
	storms := 0
	for b.Loop() {
		storms++
		far.reset()
		typ := rules.TypeGeneric
		integ, err := integrationsOf(d, now, svc).CreateIntegration(ctx, integrations.IntegrationInput{Name: ptr(fmt.Sprintf("storm %d", storms)), Type: &typ, EscalationPolicyID: &policy.ID})
		if err != nil {
			b.Fatal(err)
		}

		// Alert n is sent at begin + n*gap by whichever sender is free, as
		// a storm from many sources arrives: evenly, and concurrently.
		opened := make([]time.Time, escalationStormAlerts)
		ids := make([]string, escalationStormAlerts)
		gap := escalationStormSpan / escalationStormAlerts
		var seq atomic.Int64
		var wg sync.WaitGroup
		counted := statements.n.Load()
		begin := time.Now()
		for range escalationStormSenders {
			wg.Go(func() {
				for {
					n := int(seq.Add(1)) - 1
					if n >= escalationStormAlerts {
						return
					}
					time.Sleep(time.Until(begin.Add(time.Duration(n) * gap)))
					body := fmt.Sprintf(`{"summary":"storm %d","dedup_key":"storm-%d-%d"}`, n, storms, n)
					res, err := svc.Ingest(ctx, alerting.Inbound{Token: integ.Token, Body: []byte(body)})
					if err != nil {
						b.Error(err)
						return
					}
					if res.Status != db.InboundOpened || res.AlertID == nil {
						b.Errorf("status %s: %s", res.Status, res.Detail)
						return
					}
					opened[n], ids[n] = time.Now(), fmt.Sprint(*res.AlertID)
				}
			})
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		openSpan += time.Since(begin)

		deadline := time.Now().Add(2 * time.Minute)
		for far.arrived() < escalationStormAlerts && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		notified += time.Since(begin)
		perAlert += float64(statements.n.Load()-counted) / escalationStormAlerts
		// Nothing is due any more once every step and notification ran;
		// a notification sent twice would have arrived by then.
		waitFor(b, func() bool {
			n, err := d.NewSelect().Model((*db.AlertJob)(nil)).Where("run_at <= ?", time.Now().UTC()).Count(ctx)
			if err != nil {
				b.Fatal(err)
			}
			return n == 0
		})
		time.Sleep(2 * enginePoll)

		far.mu.Lock()
		var missing, twice int
		for n, id := range ids {
			switch far.count[id] {
			case 0:
				missing++
			case 1:
				latencies = append(latencies, far.first[id].Sub(opened[n]))
			default:
				twice++
			}
		}
		far.mu.Unlock()
		if missing > 0 || twice > 0 {
			b.Fatalf("storm %d: %d alerts not notified, %d notified more than once; want every one of %d exactly once", storms, missing, twice, escalationStormAlerts)
		}
		// The next storm starts from closed alerts, as a storm that was
		// dealt with; the remaining steps are not what is measured.
		if _, err := d.NewUpdate().Model((*db.Alert)(nil)).Set("status = ?", db.AlertClosed).Where("integration_id = ?", integ.ID).Exec(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := d.NewDelete().Model((*db.AlertJob)(nil)).Where("alert_id IN (SELECT id FROM alerts WHERE integration_id = ?)", integ.ID).Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(latencies[len(latencies)/2]), "p50-ms")
	b.ReportMetric(ms(latencies[len(latencies)*99/100]), "p99-ms")
	b.ReportMetric(ms(latencies[len(latencies)-1]), "max-ms")
	b.ReportMetric(float64(len(latencies)/storms), "notified/storm")
	b.ReportMetric(0, "duplicates")
	b.ReportMetric(openSpan.Seconds()/float64(storms), "open-s")
	b.ReportMetric(notified.Seconds()/float64(storms), "all-notified-s")
	b.ReportMetric(perAlert/float64(storms), "statements/alert")
	b.ReportMetric(0, "ns/op")
}

// statementCounter counts the statements run through bun (the engine's
// and the ingest path's; PostgreSQL's one-statement ingest goes around
// bun and is not counted), transactions' BEGIN and COMMIT included.
type statementCounter struct{ n atomic.Int64 }

func (c *statementCounter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (c *statementCounter) AfterQuery(context.Context, *bun.QueryEvent) { c.n.Add(1) }
