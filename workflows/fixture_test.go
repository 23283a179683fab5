package workflows_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/egress"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/rules"
	"github.com/klaxonhq/klaxon/schedules"
	"github.com/klaxonhq/klaxon/workflows"
)

const secret = "workflow-test-secret"

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

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// receiver is a real HTTP endpoint workflows send to. It answers with
// the statuses in answers, in turn, then 200; hold, when set, keeps each
// request until it is closed, after saying so on arrived.
type receiver struct {
	mu       sync.Mutex
	requests []received
	answers  []int
	hold     chan struct{}
	arrived  chan struct{}
	// during, when set, runs while a request is being answered.
	during func()
	server *httptest.Server
}

type received struct {
	Method, Path, Body string
	Header             http.Header
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.requests = append(r.requests, received{Method: req.Method, Path: req.URL.Path, Body: string(body), Header: req.Header.Clone()})
		status := http.StatusOK
		if len(r.answers) > 0 {
			status, r.answers = r.answers[0], r.answers[1:]
		}
		hold, arrived, during := r.hold, r.arrived, r.during
		r.mu.Unlock()
		if during != nil {
			during()
		}
		if hold != nil {
			arrived <- struct{}{}
			<-hold
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.server.Close)
	return r
}

func (r *receiver) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.requests...)
}

// fixture is one Klaxon instance over a database: alerting with the
// workflows, and two generic integrations.
type fixture struct {
	t       *testing.T
	ctx     context.Context
	d       *db.DB
	clock   *clock
	store   *workflows.Store
	svc     *alerting.Service
	integ   *db.Integration
	other   *db.Integration
	userID  int
	receive *receiver
}

func newFixture(t *testing.T, d *db.DB) *fixture {
	start := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	f := &fixture{t: t, ctx: context.Background(), d: d, clock: &clock{now: start}, receive: newReceiver(t)}
	f.store, f.svc = f.instance()
	u := &db.User{Email: "ada@example.com", Name: "Ada", Role: db.RoleResponder, CreatedAt: start, UpdatedAt: start}
	if _, err := d.NewInsert().Model(u).Exec(f.ctx); err != nil {
		t.Fatalf("insert user: %v", err)
	}
	f.userID = u.ID
	integs := integrations.NewStore(d, "https://klaxon.example", f.clock.Now, nil)
	for _, p := range []struct {
		name string
		into **db.Integration
	}{{"checks", &f.integ}, {"other", &f.other}} {
		typ := rules.TypeGeneric
		integ, err := integs.CreateIntegration(f.ctx, integrations.IntegrationInput{Name: &p.name, Type: &typ})
		if err != nil {
			t.Fatalf("create integration: %v", err)
		}
		*p.into = integ
	}
	return f
}

// instance is another server over the same database and clock: a restart,
// or a second instance.
func (f *fixture) instance() (*workflows.Store, *alerting.Service) {
	var svc *alerting.Service
	guard := egress.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, nil)
	store := workflows.NewStore(f.d, f.clock.Now, guard, func() { svc.RoutesChanged() })
	pol := policies.NewStore(f.d, f.clock.Now, nil)
	sched := schedules.NewStore(f.d, f.clock.Now, pol)
	integs := integrations.NewStore(f.d, "https://klaxon.example", f.clock.Now, func() { svc.RoutesChanged() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	groups, err := auth.NewService(f.d, nil, f.clock.Now)
	if err != nil {
		f.t.Fatalf("auth service: %v", err)
	}
	channels := notifiers.NewChannels(notifiers.Senders{db.ContactWebhook: notifiers.NewSignedWebhook(guard, secret)}, guard)
	svc = alerting.NewService(alerting.Options{DB: f.d, PublicURL: "https://klaxon.example", Now: f.clock.Now, Log: log,
		Channels: channels,
		Config: alerting.Config{OnCall: sched, Policies: pol, Integrations: integs, Groups: groups,
			Contacts: contacts.NewStore(f.d, f.clock.Now, log, channels), Workflows: store}})
	return store, svc
}

// workflow creates a workflow posting to the receiver's path.
func (f *fixture) workflow(name string, integrationID *int, on []db.WorkflowEvent, conds []rules.Condition, body string) *db.Workflow {
	f.t.Helper()
	w, err := f.store.CreateWorkflow(f.ctx, workflows.Input{Name: name, IntegrationID: integrationID, On: on, Conditions: conds,
		Method: "POST", URL: f.receive.server.URL + "/" + name, Body: body,
		Headers: []db.WorkflowHeader{{Name: "X-Alert", Value: "{{.Alert.ID}} {{.Event}}"}}})
	if err != nil {
		f.t.Fatalf("create workflow %s: %v", name, err)
	}
	return w
}

// open sends a message opening the alert of key with severity on integ.
func (f *fixture) open(integ *db.Integration, key, severity string) int {
	f.t.Helper()
	res, err := f.svc.Ingest(f.ctx, alerting.Inbound{Token: integ.Token,
		Body: fmt.Appendf(nil, `{"dedup_key":%q,"summary":"disk full on %s","severity":%q}`, key, key, severity)})
	if err != nil {
		f.t.Fatalf("ingest %s: %v", key, err)
	}
	if res.AlertID == nil {
		f.t.Fatalf("ingest %s: %s (%s), no alert", key, res.Status, res.Detail)
	}
	return *res.AlertID
}

func (f *fixture) run(svc *alerting.Service) int {
	f.t.Helper()
	n, err := svc.RunDueJobs(f.ctx)
	if err != nil {
		f.t.Fatalf("run due jobs: %v", err)
	}
	return n
}

// entries returns the messages of the alert's WORKFLOW timeline entries.
func (f *fixture) entries(alertID int) []string {
	f.t.Helper()
	list, err := f.svc.Timeline(f.ctx, alertID)
	if err != nil {
		f.t.Fatalf("timeline: %v", err)
	}
	var out []string
	for _, e := range list {
		if e.Type == db.LogWorkflow {
			out = append(out, e.Message)
		}
	}
	return out
}

// jobs counts the queued workflow requests.
func (f *fixture) jobs() int {
	f.t.Helper()
	n, err := f.d.NewSelect().Table("alert_jobs").Where("kind = 'workflow'").Count(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return int(n)
}

func ptr[T any](v T) *T { return &v }

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
