package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/heartbeats"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/maintenance"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/resolvers"
	"github.com/klaxonhq/klaxon/schedules"
	"github.com/klaxonhq/klaxon/server"
	"github.com/klaxonhq/klaxon/workflows"
)

// harness is one real Klaxon server on a random port over one database.
type harness struct {
	t        testing.TB
	db       *db.DB
	auth     *auth.Service
	alerting *alerting.Service
	// channels are the senders the engine pages through and contacts
	// verifies through; tests swap them to reach their own fakes.
	channels *notifiers.Channels
	contacts *contacts.Store
	bus      *events.Bus
	srv      *httptest.Server
	server   *server.Server
	client   *http.Client
	// admin is a signed-in ADMIN, created with the harness.
	admin session
	seq   *atomic.Int64
}

// with returns the harness reporting to t, for use inside a subtest (a
// subtest must not call FailNow on its parent).
func (h *harness) with(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

// session is a user created through the auth service and signed in over
// GraphQL.
type session struct {
	ID       string
	Email    string
	Password string
	Role     db.Role
	Token    string
}

const testPassword = "correct horse battery"

func newHarness(t testing.TB, d *db.DB, cfg server.Config) *harness {
	t.Helper()
	return newHarnessLogging(t, d, cfg, io.Discard)
}

// newHarnessLogging is newHarness with the server's log, at info, written
// to logs.
func newHarnessLogging(t testing.TB, d *db.DB, cfg server.Config, logs io.Writer) *harness {
	t.Helper()
	ctx := context.Background()
	key, err := auth.SigningKey(ctx, d, time.Now().UTC())
	if err != nil {
		t.Fatalf("signing key: %v", err)
	}
	tokens, err := auth.NewTokens(key, time.Hour, time.Now)
	if err != nil {
		t.Fatalf("tokens: %v", err)
	}
	authSvc, err := auth.NewService(d, tokens, time.Now)
	if err != nil {
		t.Fatalf("auth service: %v", err)
	}
	// Many users sign in; the default cost would make that the
	// slowest part of the tests, the more so under the race detector.
	authSvc.SetPasswordCost(bcrypt.MinCost)
	log := slog.New(slog.NewTextHandler(logs, nil))
	var alertingSvc *alerting.Service
	policyStore := policies.NewStore(d, time.Now, func() { alertingSvc.RoutesChanged() })
	scheduleStore := schedules.NewStore(d, time.Now, policyStore)
	integrationStore := integrations.NewStore(d, "https://klaxon.example", time.Now, func() { alertingSvc.RoutesChanged() })
	maintenanceStore := maintenance.NewStore(d, time.Now)
	channels := notifiers.NewChannels(nil, nil)
	contactStore := contacts.NewStore(d, time.Now, log, channels)
	workflowStore := workflows.NewStore(d, time.Now, nil, func() { alertingSvc.RoutesChanged() })
	heartbeatStore := heartbeats.NewStore(d, "https://klaxon.example", time.Now)
	bus := events.NewBus(d, log)
	alertingSvc = alerting.NewService(alerting.Options{DB: d, PublicURL: "https://klaxon.example", Now: time.Now, Log: log, Config: alerting.Config{
		OnCall: scheduleStore, Policies: policyStore, Integrations: integrationStore, Contacts: contactStore, Groups: authSvc, Heartbeats: heartbeatStore,
		Maintenance: maintenanceStore, Workflows: workflowStore,
	}, Channels: channels, Events: bus})
	heartbeatStore.UsePaging(alertingSvc)
	integrationStore.UseScanHeartbeats(alertingSvc)
	maintenanceStore.SetPaging(alertingSvc)
	scheduleStore.UseNotices(alertingSvc)
	busCtx, stopBus := context.WithCancel(context.Background())
	busDone := make(chan struct{})
	go func() { defer close(busDone); bus.Run(busCtx) }()
	srv := server.New(cfg, d, alertingSvc, authSvc, bus, &resolvers.Resolver{Alerting: alertingSvc, Auth: authSvc, Events: bus, Audit: audit.NewLog(d), ScheduleStore: scheduleStore, PolicyStore: policyStore, ContactStore: contactStore, IntegrationStore: integrationStore, HeartbeatStore: heartbeatStore, MaintenanceStore: maintenanceStore, InboundEmailDomain: harnessEmailDomain, WorkflowStore: workflowStore}, log)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		stopBus()
		<-busDone
	})
	h := &harness{t: t, db: d, auth: authSvc, alerting: alertingSvc, channels: channels, contacts: contactStore, bus: bus, srv: ts, server: srv, client: ts.Client(), seq: new(atomic.Int64)}
	h.admin = h.newUser(db.RoleAdmin)
	return h
}

// unique returns a string not returned before by this harness.
func (h *harness) unique(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, h.seq.Add(1))
}

// createUser makes a user through the auth service, without signing in.
func (h *harness) createUser(role db.Role) session {
	h.t.Helper()
	email := h.unique(strings.ToLower(string(role))) + "@example.com"
	password := testPassword
	name := "User " + email
	u, err := h.auth.CreateUser(context.Background(), auth.UserInput{Email: &email, Name: &name, Password: &password, Role: &role})
	if err != nil {
		h.t.Fatalf("create %s user: %v", role, err)
	}
	return session{ID: fmt.Sprint(u.ID), Email: email, Password: password, Role: role}
}

// newUser makes a user of role and signs them in over GraphQL.
func (h *harness) newUser(role db.Role) session {
	h.t.Helper()
	s := h.createUser(role)
	s.Token = h.login(s.Email, s.Password)
	return s
}

func (h *harness) login(email, password string) string {
	h.t.Helper()
	var data struct {
		Login struct {
			Token string `json:"token"`
		} `json:"login"`
	}
	h.mustGQL("", `mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }`,
		map[string]any{"email": email, "password": password}, &data)
	if data.Login.Token == "" {
		h.t.Fatalf("login %s: empty token", email)
	}
	return data.Login.Token
}

type gqlError struct {
	Message    string   `json:"message"`
	Path       []any    `json:"path"`
	Extensions gqlErrEx `json:"extensions"`
}

type gqlErrEx struct {
	Code  string `json:"code"`
	Field string `json:"field"`
}

type gqlResponse struct {
	HTTPStatus int
	Raw        []byte
	Data       json.RawMessage `json:"data"`
	Errors     []gqlError      `json:"errors"`
}

// dataIsNull reports whether data is absent or null.
func (r *gqlResponse) dataIsNull() bool {
	return len(r.Data) == 0 || string(r.Data) == "null"
}

// gql runs a GraphQL operation with token as bearer ("" for anonymous) and
// decodes the reply, whatever it says.
func (h *harness) gql(token, query string, vars map[string]any) *gqlResponse {
	h.t.Helper()
	payload, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		h.t.Fatalf("encode graphql request: %v", err)
	}
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql", bytes.NewReader(payload))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return h.doGQL(req)
}

func (h *harness) doGQL(req *http.Request) *gqlResponse {
	h.t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("graphql request: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read graphql reply: %v", err)
	}
	out := &gqlResponse{HTTPStatus: resp.StatusCode, Raw: raw}
	if err := json.Unmarshal(raw, out); err != nil {
		h.t.Fatalf("graphql reply (HTTP %d) is not JSON: %v: %s", resp.StatusCode, err, raw)
	}
	return out
}

// mustGQL runs an operation that must succeed and decodes data into out
// (which may be nil).
func (h *harness) mustGQL(token, query string, vars map[string]any, out any) {
	h.t.Helper()
	r := h.gql(token, query, vars)
	if r.HTTPStatus != http.StatusOK || len(r.Errors) > 0 {
		h.t.Fatalf("graphql failed (HTTP %d): %s\nquery: %s", r.HTTPStatus, r.Raw, query)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			h.t.Fatalf("decode graphql data: %v: %s", err, r.Data)
		}
	}
}

// wantGQLError runs an operation that must fail with one error of code.
func (h *harness) wantGQLError(token, query string, vars map[string]any, code string) gqlError {
	h.t.Helper()
	r := h.gql(token, query, vars)
	if len(r.Errors) == 0 {
		h.t.Fatalf("want error %s, got success: %s", code, r.Raw)
	}
	if got := r.Errors[0].Extensions.Code; got != code {
		h.t.Fatalf("want error code %s, got %q: %s", code, got, r.Raw)
	}
	return r.Errors[0]
}

type integration struct {
	ID      string `json:"id"`
	URL     string `json:"url"`
	Enabled bool   `json:"enabled"`
}

// Token is the webhook token: the last segment of the URL's path.
func (i integration) Token(t testing.TB) string {
	t.Helper()
	u, err := url.Parse(i.URL)
	if err != nil {
		t.Fatalf("integration url %q: %v", i.URL, err)
	}
	token, ok := strings.CutPrefix(u.Path, "/webhooks/")
	if !ok || token == "" || strings.Contains(token, "/") {
		t.Fatalf("integration url %q has no /webhooks/{token} path", i.URL)
	}
	return token
}

// createIntegration creates an integration of typ over GraphQL as admin.
func (h *harness) createIntegration(typ string) integration {
	h.t.Helper()
	var data struct {
		CreateIntegration integration `json:"createIntegration"`
	}
	h.mustGQL(h.admin.Token, `mutation($name: String!, $type: IntegrationType!) {
		createIntegration(input: {name: $name, type: $type}) { id url enabled } }`,
		map[string]any{"name": h.unique(typ), "type": typ}, &data)
	if data.CreateIntegration.URL == "" {
		h.t.Fatalf("createIntegration returned no url to an admin")
	}
	return data.CreateIntegration
}

type webhookReply struct {
	HTTPStatus  int
	ContentType string
	Allow       string
	RetryAfter  string
	Raw         []byte
	MessageID   string  `json:"messageId"`
	Status      string  `json:"status"`
	AlertID     *string `json:"alertId"`
	Error       string  `json:"error"`
}

func (r *webhookReply) alert() string {
	if r.AlertID == nil {
		return ""
	}
	return *r.AlertID
}

// postWebhook posts body to /webhooks/{token} as application/json.
func (h *harness) postWebhook(token string, body []byte) *webhookReply {
	h.t.Helper()
	return h.webhook(http.MethodPost, token, body, map[string]string{"Content-Type": "application/json"})
}

// webhook sends any request to the webhook route. It only reports
// failures with t.Errorf, so it may run on other goroutines; a failed
// request gives a zero reply.
func (h *harness) webhook(method, token string, body []byte, headers map[string]string) *webhookReply {
	req, err := http.NewRequest(method, h.srv.URL+"/webhooks/"+token, bytes.NewReader(body))
	if err != nil {
		h.t.Errorf("webhook request: %v", err)
		return &webhookReply{}
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Errorf("webhook request: %v", err)
		return &webhookReply{}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Errorf("read webhook reply: %v", err)
		return &webhookReply{}
	}
	out := &webhookReply{HTTPStatus: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Allow: resp.Header.Get("Allow"),
		RetryAfter: resp.Header.Get("Retry-After"), Raw: raw}
	if strings.HasPrefix(out.ContentType, "application/json") {
		if err := json.Unmarshal(raw, out); err != nil {
			h.t.Errorf("webhook reply is not JSON: %v: %s", err, raw)
		}
	}
	return out
}

// counts is how many rows of each kind the API reports.
type counts struct {
	Integrations, Rulesets, Users, Groups, Alerts, Inbound int
}

func (h *harness) counts() counts {
	h.t.Helper()
	var data struct {
		Integrations []struct{ ID string }    `json:"integrations"`
		Rulesets     []struct{ ID string }    `json:"rulesets"`
		Users        []struct{ ID string }    `json:"users"`
		Groups       []struct{ ID string }    `json:"groups"`
		Alerts       struct{ TotalCount int } `json:"alerts"`
		Inbound      struct{ TotalCount int } `json:"inboundMessages"`
	}
	h.mustGQL(h.admin.Token, `{ integrations { id } rulesets { id } users { id } groups { id }
		alerts { totalCount } inboundMessages { totalCount } }`, nil, &data)
	return counts{
		Integrations: len(data.Integrations), Rulesets: len(data.Rulesets), Users: len(data.Users),
		Groups: len(data.Groups), Alerts: data.Alerts.TotalCount, Inbound: data.Inbound.TotalCount,
	}
}

// inboundCount is the total in the inbound log, straight from the database.
func (h *harness) inboundCount() int {
	h.t.Helper()
	n, err := h.db.NewSelect().Model((*db.InboundMessage)(nil)).Count(context.Background())
	if err != nil {
		h.t.Fatalf("count inbound messages: %v", err)
	}
	return int(n)
}

func sample(t testing.TB, name string) []byte {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "rules", "testdata", "detectify", name))
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// finding is a current-format Detectify finding with its own uuid.
func finding(uuid, severity string) []byte {
	b, _ := json.Marshal(map[string]any{
		"event_type": "finding",
		"finding": map[string]any{
			"uuid": uuid, "title": "Finding " + uuid, "severity": severity, "asset": "app.example.com",
		},
	})
	return b
}
