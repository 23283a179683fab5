package retention_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/retention"
	"github.com/klaxonhq/klaxon/rules"
	"github.com/klaxonhq/klaxon/schedules"
)

// clock is the injected clock the tests move.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const day = 24 * time.Hour

// world is one instance of Klaxon's run time over a test database: the
// alerting service with a GENERIC integration, the event bus running, and
// the audit log.
type world struct {
	t     testing.TB
	ctx   context.Context
	d     *db.DB
	clock *clock
	svc   *alerting.Service
	bus   *events.Bus
	audit *audit.Log
	integ *db.Integration
}

func newWorld(t testing.TB, d *db.DB) *world {
	t.Helper()
	c := &clock{now: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	pol := policies.NewStore(d, c.Now, nil)
	groups, err := auth.NewService(d, nil, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	bus := events.NewBus(d, quiet)
	ctx, stop := context.WithCancel(context.Background())
	var running sync.WaitGroup
	running.Go(func() { bus.Run(ctx) })
	t.Cleanup(func() { stop(); running.Wait() })
	svc := alerting.NewService(alerting.Options{DB: d, Now: c.Now, Log: quiet, Events: bus, Config: alerting.Config{
		OnCall: schedules.NewStore(d, c.Now, pol), Policies: pol, Groups: groups,
		Integrations: integrations.NewStore(d, "https://klaxon.example", c.Now, nil),
		Contacts:     contacts.NewStore(d, c.Now, quiet, nil),
	}})
	name, typ := "monitoring", rules.TypeGeneric
	integ, err := integrations.NewStore(d, "https://klaxon.example", c.Now, svc.RoutesChanged).
		CreateIntegration(context.Background(), integrations.IntegrationInput{Name: &name, Type: &typ})
	if err != nil {
		t.Fatalf("create integration: %v", err)
	}
	return &world{t: t, ctx: context.Background(), d: d, clock: c, svc: svc, bus: bus, audit: audit.NewLog(d), integ: integ}
}

// otherIntegration adds a second GENERIC integration.
func (w *world) otherIntegration(name string) *db.Integration {
	w.t.Helper()
	typ := rules.TypeGeneric
	integ, err := integrations.NewStore(w.d, "https://klaxon.example", w.clock.Now, w.svc.RoutesChanged).
		CreateIntegration(w.ctx, integrations.IntegrationInput{Name: &name, Type: &typ})
	if err != nil {
		w.t.Fatalf("create integration: %v", err)
	}
	return integ
}

// pruner is one instance's pruner over the world's database.
func (w *world) pruner(s retention.Settings) *retention.Pruner {
	return retention.New(retention.Options{Turns: w.svc, Kinds: retention.Kinds(s, w.d, w.svc, w.audit), Now: w.clock.Now})
}

// send ingests a GENERIC body: action "" opens (or appends to) the alert
// of key, "close" closes it.
func (w *world) send(key, action string) *alerting.IngestResult {
	w.t.Helper()
	return w.sendTo(w.integ, key, action)
}

// sendTo is send, to integ.
func (w *world) sendTo(integ *db.Integration, key, action string) *alerting.IngestResult {
	w.t.Helper()
	body := fmt.Sprintf(`{"dedup_key":%q,"summary":"disk full on %s","action":%q}`, key, key, action)
	res, err := w.svc.Ingest(w.ctx, alerting.Inbound{Token: integ.Token, Body: []byte(body)})
	if err != nil {
		w.t.Fatalf("ingest %s %s: %v", key, action, err)
	}
	return res
}

// count is the number of rows of table where cond holds.
func (w *world) count(table, cond string, args ...any) int {
	w.t.Helper()
	var n int
	if err := w.d.NewRaw(fmt.Sprintf("SELECT count(*) FROM %s WHERE %s", table, cond), args...).Scan(w.ctx, &n); err != nil {
		w.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func (w *world) exec(query string, args ...any) {
	w.t.Helper()
	if _, err := w.d.ExecContext(w.ctx, query, args...); err != nil {
		w.t.Fatalf("%s: %v", query, err)
	}
}

// run is one pruning run that must have had the turn.
func (w *world) run(p *retention.Pruner) map[string]int {
	w.t.Helper()
	report, err := p.RunOnce(w.ctx)
	if err != nil {
		w.t.Fatalf("prune: %v", err)
	}
	if !report.Ran {
		w.t.Fatal("the pruner did not get the turn")
	}
	return report.Pruned
}

// waitRelayed waits until the bus has numbered every event recorded so
// far (the outbox is empty); the generic ingest path writes to the
// outbox and the bus relays it on its own goroutine.
func (w *world) waitRelayed() {
	w.t.Helper()
	for range 2000 {
		if w.count("event_outbox", "1 = 1") == 0 {
			return
		}
		w.bus.Kick()
		time.Sleep(5 * time.Millisecond)
	}
	w.t.Fatal("events never relayed")
}

// addUser stores a user and returns its id.
func (w *world) addUser(email string) int {
	w.t.Helper()
	now := w.clock.Now()
	u := &db.User{Email: email, Role: db.RoleResponder, CreatedAt: now, UpdatedAt: now}
	if _, err := w.d.NewInsert().Model(u).Exec(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	return u.ID
}

// hangOff gives alert what an alert that paged someone has: a
// notification, a recipient and an action link.
func (w *world) hangOff(alertID, userID int) {
	w.t.Helper()
	now := w.clock.Now()
	w.exec(`INSERT INTO notifications (alert_id, user_id, channel, destination, status, step, round, dedup_key, created_at, updated_at)
		VALUES (?, ?, 'EMAIL', 'a@example.com', 'SENT', 0, 0, ?, ?, ?)`, alertID, userID, fmt.Sprintf("n-%d", alertID), now, now)
	w.exec(`INSERT INTO alert_recipients (alert_id, kind, target_id) VALUES (?, 'USER', ?)`, alertID, userID)
	w.exec(`INSERT INTO action_links (token_hash, alert_id, user_id, action, expires_at, created_at) VALUES (?, ?, ?, 'ACK', ?, ?)`,
		fmt.Sprintf("h-%d", alertID), alertID, userID, now.Add(day), now)
}
