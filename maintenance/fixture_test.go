package maintenance_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/maintenance"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/rules"
	"github.com/klaxonhq/klaxon/schedules"
)

// clock is the injected clock every service of a test shares.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// fixture is one Klaxon instance (alerting with the maintenance windows)
// over a database, with a generic integration whose alerts follow a
// one-step policy paging a user.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	d      *db.DB
	clock  *clock
	store  *maintenance.Store
	integs *integrations.Store
	svc    *alerting.Service
	integ  *db.Integration
	userID int
}

func newFixture(t *testing.T, d *db.DB, start time.Time) *fixture {
	f := &fixture{t: t, ctx: context.Background(), d: d, clock: &clock{now: start}}
	f.store, f.svc = f.instance()
	u := &db.User{Email: "ops@example.com", Name: "Ops", Role: db.RoleResponder, CreatedAt: start, UpdatedAt: start}
	if _, err := d.NewInsert().Model(u).Exec(f.ctx); err != nil {
		t.Fatalf("insert user: %v", err)
	}
	f.userID = u.ID
	pol := policies.NewStore(d, f.clock.Now, nil)
	name := "ops"
	policy, err := pol.CreateEscalationPolicy(f.ctx, policies.PolicyInput{Name: &name,
		Steps: []policies.StepInput{{DelayMinutes: 10, Targets: []db.Target{{Type: db.TargetUser, ID: u.ID}}}}})
	if err != nil {
		t.Fatalf("create policy: %v", err)
	}
	integName, typ := "checks", rules.TypeGeneric
	f.integ, err = f.integs.CreateIntegration(f.ctx, integrations.IntegrationInput{Name: &integName, Type: &typ, EscalationPolicyID: &policy.ID})
	if err != nil {
		t.Fatalf("create integration: %v", err)
	}
	return f
}

// instance is another server over the same database and clock: a restart,
// or a second instance.
func (f *fixture) instance() (*maintenance.Store, *alerting.Service) {
	var svc *alerting.Service
	store := maintenance.NewStore(f.d, f.clock.Now)
	pol := policies.NewStore(f.d, f.clock.Now, nil)
	sched := schedules.NewStore(f.d, f.clock.Now, pol)
	integs := integrations.NewStore(f.d, "https://klaxon.example", f.clock.Now, func() { svc.RoutesChanged() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	groups, err := auth.NewService(f.d, nil, f.clock.Now)
	if err != nil {
		f.t.Fatalf("auth service: %v", err)
	}
	svc = alerting.NewService(alerting.Options{DB: f.d, PublicURL: "https://klaxon.example", Now: f.clock.Now, Log: log,
		Config: alerting.Config{OnCall: sched, Policies: pol, Integrations: integs, Groups: groups,
			Contacts: contacts.NewStore(f.d, f.clock.Now, log, nil), Maintenance: store}})
	store.SetPaging(svc)
	if f.integs == nil {
		f.integs = integs
	}
	return store, svc
}

// window creates a window over the fixture's integration.
func (f *fixture) window(in maintenance.Input) *db.MaintenanceWindow {
	f.t.Helper()
	if in.IntegrationIDs == nil {
		in.IntegrationIDs = []int{f.integ.ID}
	}
	w, err := f.store.CreateWindow(f.ctx, in)
	if err != nil {
		f.t.Fatalf("create window: %v", err)
	}
	return w
}

// open sends a message opening (or appending to) the alert of key and
// returns its id.
func (f *fixture) open(svc *alerting.Service, key string) int {
	f.t.Helper()
	res, err := svc.Ingest(f.ctx, alerting.Inbound{Token: f.integ.Token,
		Body: fmt.Appendf(nil, `{"dedup_key":%q,"summary":"disk full on %s","severity":"high"}`, key, key)})
	if err != nil {
		f.t.Fatalf("ingest %s: %v", key, err)
	}
	if res.AlertID == nil {
		f.t.Fatalf("ingest %s: %s (%s), no alert", key, res.Status, res.Detail)
	}
	return *res.AlertID
}

func (f *fixture) run(svc *alerting.Service) {
	f.t.Helper()
	if _, err := svc.RunDueJobs(f.ctx); err != nil {
		f.t.Fatalf("run due jobs: %v", err)
	}
}

func (f *fixture) alert(id int) *db.Alert {
	f.t.Helper()
	a, err := f.svc.Alert(f.ctx, id)
	if err != nil {
		f.t.Fatalf("load alert %d: %v", id, err)
	}
	return a
}

// entries returns the messages of the alert's timeline entries of typ.
func (f *fixture) entries(alertID int, typ db.AlertLogType) []string {
	f.t.Helper()
	list, err := f.svc.Timeline(f.ctx, alertID)
	if err != nil {
		f.t.Fatalf("timeline: %v", err)
	}
	var out []string
	for _, e := range list {
		if e.Type == typ {
			out = append(out, e.Message)
		}
	}
	return out
}

// paged is how many escalation steps ran for the alert.
func (f *fixture) paged(alertID int) int { return len(f.entries(alertID, db.LogEscalated)) }

// events counts the alert's recorded events of typ, numbered or not yet.
func (f *fixture) events(alertID int, typ db.AlertLogType) int {
	f.t.Helper()
	table := "events"
	if f.d.Kind == db.Postgres {
		table = "(SELECT type, alert_id FROM events UNION ALL SELECT type, alert_id FROM event_outbox)"
	}
	var n int
	err := f.d.QueryRowContext(f.ctx, "SELECT count(*) FROM "+table+" AS e WHERE e.type = ? AND e.alert_id = ?", string(typ), alertID).Scan(&n)
	if err != nil {
		f.t.Fatalf("count events: %v", err)
	}
	return n
}

func ptr[T any](v T) *T { return &v }

// wantFieldError fails unless err is invalid input naming field.
func wantFieldError(t *testing.T, err error, field string) {
	t.Helper()
	var fe *invalid.Field
	if !errors.As(err, &fe) || fe.Name != field {
		t.Fatalf("want invalid %s, got %v", field, err)
	}
}

func contains(list []string, part string) bool {
	for _, s := range list {
		if strings.Contains(s, part) {
			return true
		}
	}
	return false
}
