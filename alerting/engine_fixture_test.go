package alerting_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/rules"
)

// clock is a test clock shared by every service of a test.
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

// inbox is a real HTTP endpoint that outbound webhook notifications reach;
// each contact method posts to its own path.
type inbox struct {
	mu       sync.Mutex
	received []delivery
	server   *httptest.Server
}

type delivery struct {
	Path             string
	AlertID          string
	AckURL, CloseURL string
	Grouped          int
}

func newInbox(t testing.TB) *inbox {
	in := &inbox{}
	in.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			AlertID  string `json:"alertId"`
			AckURL   string `json:"ackUrl"`
			CloseURL string `json:"closeUrl"`
			Grouped  int    `json:"grouped"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		in.mu.Lock()
		in.received = append(in.received, delivery{Path: r.URL.Path, AlertID: body.AlertID, AckURL: body.AckURL, CloseURL: body.CloseURL, Grouped: body.Grouped})
		in.mu.Unlock()
	}))
	t.Cleanup(in.server.Close)
	return in
}

// take returns the paths notified so far, in order, and forgets them.
func (in *inbox) take() []string {
	var paths []string
	for _, d := range in.takeDeliveries() {
		paths = append(paths, d.Path)
	}
	return paths
}

func (in *inbox) takeDeliveries() []delivery {
	in.mu.Lock()
	defer in.mu.Unlock()
	got := in.received
	in.received = nil
	return got
}

type engineFixture struct {
	t     *testing.T
	ctx   context.Context
	d     *db.DB
	clock *clock
	inbox *inbox
	svc   *alerting.Service
	// channels are the senders svc pages through, shared with contacts,
	// which verifies through them.
	channels *notifiers.Channels
	contacts *contacts.Store
	// rateLimits are the limits of the services newService builds; nil
	// means the default.
	rateLimits map[db.ContactType]time.Duration
	users      map[string]int
	integ      *db.Integration
	now        time.Time
	nextID     int
}

func newEngineFixture(t *testing.T, d *db.DB) *engineFixture {
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	f := &engineFixture{t: t, ctx: context.Background(), d: d, clock: &clock{now: start}, inbox: newInbox(t), users: map[string]int{}}
	f.channels = notifiers.NewChannels(notifiers.Senders{db.ContactWebhook: notifiers.NewWebhook(localSinks)}, localSinks)
	f.contacts = contacts.NewStore(d, f.clock.Now, slog.New(slog.NewTextHandler(t.Output(), nil)), f.channels)
	f.svc = f.newService()
	name, typ := "Detectify", rules.TypeDetectify
	integ, err := f.integrations().CreateIntegration(f.ctx, integrations.IntegrationInput{Name: &name, Type: &typ})
	if err != nil {
		t.Fatal(err)
	}
	f.integ = integ
	return f
}

// integrations is the store the fixture configures integrations and
// rulesets through; its changes drop the webhook routes of f.svc.
func (f *engineFixture) integrations() *integrations.Store {
	return integrationsOf(f.d, f.clock.Now, f.svc)
}

// newService is another instance of the server against the same database.
func (f *engineFixture) newService() *alerting.Service {
	config := stores(f.d, f.clock.Now)
	config.Contacts = f.contacts
	return alerting.NewService(alerting.Options{
		DB: f.d, PublicURL: "https://klaxon.example", Now: f.clock.Now, Log: slog.New(slog.NewTextHandler(f.t.Output(), nil)),
		Config: config, Channels: f.channels, RateLimits: f.rateLimits,
	})
}

func (f *engineFixture) insert(model any) {
	f.t.Helper()
	if _, err := f.d.NewInsert().Model(model).Exec(f.ctx); err != nil {
		f.t.Fatalf("insert %T: %v", model, err)
	}
}

// user creates a user whose notification rules post to the inbox at
// /<name>/<delay>, one per delay.
func (f *engineFixture) user(name string, delays ...int) int {
	now := f.clock.Now()
	u := &db.User{Email: name + "@example.com", Name: name, Role: db.RoleResponder, CreatedAt: now, UpdatedAt: now}
	f.insert(u)
	for _, delay := range delays {
		cm := &db.ContactMethod{UserID: u.ID, Type: db.ContactWebhook, Value: fmt.Sprintf("%s/%s/%d", f.inbox.server.URL, name, delay), CreatedAt: now}
		f.insert(cm)
		f.insert(&db.NotificationRule{UserID: u.ID, ContactMethodID: cm.ID, DelayMinutes: delay, CreatedAt: now})
	}
	f.users[name] = u.ID
	return u.ID
}

func (f *engineFixture) policy(repeat int, steps ...*db.EscalationStep) {
	now := f.clock.Now()
	p := &db.EscalationPolicy{Name: fmt.Sprintf("policy %d", len(steps)), Repeat: repeat, CreatedAt: now, UpdatedAt: now}
	f.insert(p)
	for i, step := range steps {
		step.PolicyID, step.Position = p.ID, i
		f.insert(step)
	}
	f.integ.EscalationPolicyID = &p.ID
	if _, err := f.d.NewUpdate().Model(f.integ).Column("escalation_policy_id").WherePK().Exec(f.ctx); err != nil {
		f.t.Fatal(err)
	}
}

func step(delay int, targets ...db.Target) *db.EscalationStep {
	return &db.EscalationStep{DelayMinutes: delay, Targets: targets}
}

// open opens a new alert through the ingest path, as a webhook would.
func (f *engineFixture) open() int {
	f.t.Helper()
	f.nextID++
	body := fmt.Sprintf(`{"event_type":"finding","finding":{"uuid":"finding-%d","title":"SQL Injection","severity":"high"}}`, f.nextID)
	res, err := f.svc.Ingest(f.ctx, alerting.Inbound{Token: f.integ.Token, Body: []byte(body)})
	if err != nil || res.Status != db.InboundOpened {
		f.t.Fatalf("open alert: %+v %v", res, err)
	}
	return *res.AlertID
}

// at moves the clock to minutes after the start and runs what is due.
func (f *engineFixture) at(minutes int) []string {
	f.t.Helper()
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	f.clock.mu.Lock()
	f.clock.now = start.Add(time.Duration(minutes) * time.Minute)
	f.clock.mu.Unlock()
	if _, err := f.svc.RunDueJobs(f.ctx); err != nil {
		f.t.Fatalf("run due jobs at +%dm: %v", minutes, err)
	}
	return f.inbox.take()
}

func (f *engineFixture) timeline(alertID int) []string {
	entries, err := f.svc.Timeline(f.ctx, alertID)
	if err != nil {
		f.t.Fatal(err)
	}
	var lines []string
	for _, e := range entries {
		lines = append(lines, string(e.Type)+": "+e.Message)
	}
	return lines
}

func expectPaths(t *testing.T, when string, got []string, want ...string) {
	t.Helper()
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s: notified %v, want %v", when, got, want)
	}
}
