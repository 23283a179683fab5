package heartbeats_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/egress"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/heartbeats"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/schedules"
)

// clock is the test clock every instance of a test shares.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// inbox is a real HTTP endpoint the webhook notifications reach; each
// user's contact method posts to /<name>.
type inbox struct {
	mu     sync.Mutex
	paths  []string
	server *httptest.Server
}

func newInbox(t *testing.T) *inbox {
	in := &inbox{}
	in.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		in.mu.Lock()
		in.paths = append(in.paths, r.URL.Path)
		in.mu.Unlock()
	}))
	t.Cleanup(in.server.Close)
	return in
}

func (in *inbox) take() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	got := in.paths
	in.paths = nil
	return got
}

var localSinks = func() *egress.Guard {
	allow, err := egress.ParseAllow("127.0.0.1/32,::1/128")
	if err != nil {
		panic(err)
	}
	return egress.New(allow, nil)
}()

// instance is one Klaxon process: its engine and its monitor store.
type instance struct {
	svc   *alerting.Service
	store *heartbeats.Store
}

type fixture struct {
	t     *testing.T
	ctx   context.Context
	d     *db.DB
	clock *clock
	inbox *inbox
	// bus, when set before newInstance, is woken by the instance.
	bus *events.Bus
	instance
}

func newFixture(t *testing.T, d *db.DB) *fixture {
	f := &fixture{t: t, ctx: context.Background(), d: d, clock: &clock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}, inbox: newInbox(t)}
	f.instance = f.newInstance()
	return f
}

// newInstance is another process on the same database, as after a
// restart or beside a second instance.
func (f *fixture) newInstance() instance {
	now := f.clock.Now
	log := slog.New(slog.NewTextHandler(f.t.Output(), nil))
	store := heartbeats.NewStore(f.d, "https://klaxon.example/", now)
	pol := policies.NewStore(f.d, now, nil)
	groups, err := auth.NewService(f.d, nil, now)
	if err != nil {
		f.t.Fatal(err)
	}
	channels := notifiers.NewChannels(notifiers.Senders{db.ContactWebhook: notifiers.NewWebhook(localSinks)}, localSinks)
	svc := alerting.NewService(alerting.Options{
		DB: f.d, PublicURL: "https://klaxon.example", Now: now, Log: log,
		Config: alerting.Config{
			OnCall: schedules.NewStore(f.d, now, pol), Policies: pol, Groups: groups,
			Integrations: integrations.NewStore(f.d, "https://klaxon.example", now, nil),
			Contacts:     contacts.NewStore(f.d, now, log, channels), Heartbeats: store,
		},
		Channels: channels, Events: f.bus,
	})
	store.UsePaging(svc)
	return instance{svc: svc, store: store}
}

func (f *fixture) insert(model any) {
	f.t.Helper()
	if _, err := f.d.NewInsert().Model(model).Exec(f.ctx); err != nil {
		f.t.Fatalf("insert %T: %v", model, err)
	}
}

// user makes a user notified at once by a webhook to the inbox.
func (f *fixture) user(name string) int {
	now := f.clock.Now()
	u := &db.User{Email: name + "@example.com", Name: name, Role: db.RoleResponder, CreatedAt: now, UpdatedAt: now}
	f.insert(u)
	cm := &db.ContactMethod{UserID: u.ID, Type: db.ContactWebhook, Value: f.inbox.server.URL + "/" + name, CreatedAt: now}
	f.insert(cm)
	f.insert(&db.NotificationRule{UserID: u.ID, ContactMethodID: cm.ID, CreatedAt: now})
	return u.ID
}

// advance moves the clock and runs what is due on inst.
func (f *fixture) advance(d time.Duration, inst instance) {
	f.t.Helper()
	f.clock.Advance(d)
	if _, err := inst.svc.RunDueJobs(f.ctx); err != nil {
		f.t.Fatalf("run due jobs: %v", err)
	}
}

func (f *fixture) pulse(token string) *heartbeats.Monitor {
	f.t.Helper()
	m, err := f.store.Pulse(f.ctx, token)
	if err != nil {
		f.t.Fatalf("pulse: %v", err)
	}
	return m
}

func (f *fixture) monitor(id int) *heartbeats.Monitor {
	f.t.Helper()
	m, err := f.store.Monitor(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

// deadlineJobs counts the monitors' deadline jobs.
func (f *fixture) deadlineJobs() int {
	f.t.Helper()
	n, err := f.d.NewSelect().Model((*db.AlertJob)(nil)).Where("kind = 'heartbeat_deadline'").Count(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return int(n)
}

// alerts returns the monitor's alerts by id.
func (f *fixture) alerts(monitorID int) []*db.Alert {
	f.t.Helper()
	var list []*db.Alert
	if err := f.d.NewSelect().Model(&list).Where("heartbeat_monitor_id = ?", monitorID).Order("id").Scan(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return list
}

func (f *fixture) timeline(alertID int) []string {
	f.t.Helper()
	entries, err := f.svc.Timeline(f.ctx, alertID)
	if err != nil {
		f.t.Fatal(err)
	}
	var lines []string
	for _, e := range entries {
		lines = append(lines, fmt.Sprintf("%s: %s", e.Type, e.Message))
	}
	return lines
}

// eventTypes lists the alertEvents types recorded for an alert, whether
// still in the outbox (PostgreSQL) or numbered already.
func (f *fixture) eventTypes(alertID int) []string {
	f.t.Helper()
	var types []string
	for _, table := range []string{"event_outbox", "events"} {
		var some []string
		if err := f.d.NewSelect().Table(table).Column("type").Where("alert_id = ? AND kind = 'alert'", alertID).Scan(f.ctx, &some); err != nil {
			f.t.Fatalf("read %s: %v", table, err)
		}
		types = append(types, some...)
	}
	return types
}

func wantFieldError(t *testing.T, err error, field string) {
	t.Helper()
	var fe *invalid.Field
	if !errors.As(err, &fe) || fe.Name != field {
		t.Fatalf("want invalid %s, got %v", field, err)
	}
}

func ptr[T any](v T) *T { return &v }
