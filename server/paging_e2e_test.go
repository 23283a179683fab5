package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/resolvers"
	"github.com/klaxonhq/klaxon/rules"
	"github.com/klaxonhq/klaxon/schedules"
	"github.com/klaxonhq/klaxon/server"
)

// TestDetectifyFindingPagesByEmailAndSMSUntilAckedByReply is the whole
// paging story over real protocols: a Detectify webhook opens an alert,
// the on-call person gets an email (SMTP) and an SMS (Twilio's API),
// replies "ack" by SMS, and the next escalation step never fires.
func TestDetectifyFindingPagesByEmailAndSMSUntilAckedByReply(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		mail := startMailServer(t)
		twilio := startTwilioAPI(t)
		clock := &testClock{now: time.Now().UTC().Truncate(time.Second)}

		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		var svc *alerting.Service
		policyStore := policies.NewStore(d, clock.Now, func() { svc.RoutesChanged() })
		scheduleStore := schedules.NewStore(d, clock.Now, policyStore)
		email, err := notifiers.NewEmail(notifiers.EmailConfig{Host: mail.host, Port: mail.port, TLS: notifiers.SMTPNoTLS, From: "Klaxon <klaxon@example.com>"})
		if err != nil {
			t.Fatal(err)
		}
		sms, err := notifiers.NewTwilioSMS(notifiers.TwilioConfig{AccountSID: twilioSID, AuthToken: twilioToken, From: "+15005550006", APIURL: twilio.URL})
		if err != nil {
			t.Fatal(err)
		}
		key, _ := auth.SigningKey(ctx, d, clock.Now())
		tokens, _ := auth.NewTokens(key, time.Hour, clock.Now)
		authSvc, _ := auth.NewService(d, tokens, clock.Now)
		integrationStore := integrations.NewStore(d, twilioPublic, clock.Now, func() { svc.RoutesChanged() })
		channels := notifiers.NewChannels(notifiers.Senders{db.ContactEmail: email, db.ContactSMS: sms}, nil)
		contactStore := contacts.NewStore(d, clock.Now, log, channels)
		bus := events.NewBus(d, log)
		svc = alerting.NewService(alerting.Options{DB: d, PublicURL: twilioPublic, Now: clock.Now, Log: log, Config: alerting.Config{
			OnCall: scheduleStore, Policies: policyStore, Integrations: integrationStore, Contacts: contactStore, Groups: authSvc,
		}, Channels: channels, Events: bus})
		authSvc.SetPasswordCost(bcrypt.MinCost)
		ts := httptest.NewServer(server.New(server.Config{PublicURL: twilioPublic, TwilioAuthToken: twilioToken}, d, svc, authSvc, bus, &resolvers.Resolver{Alerting: svc, Auth: authSvc, Events: bus, Audit: audit.NewLog(d), ScheduleStore: scheduleStore, PolicyStore: policyStore, ContactStore: contactStore, IntegrationStore: integrationStore}, log).Handler())
		t.Cleanup(ts.Close)

		insert := func(model any) {
			t.Helper()
			if _, err := d.NewInsert().Model(model).Exec(ctx); err != nil {
				t.Fatalf("insert %T: %v", model, err)
			}
		}
		now := clock.Now()
		alice := &db.User{Email: "alice@example.com", Name: "Alice", Role: db.RoleResponder, CreatedAt: now, UpdatedAt: now}
		bob := &db.User{Email: "bob@example.com", Name: "Bob", Role: db.RoleResponder, CreatedAt: now, UpdatedAt: now}
		insert(alice)
		insert(bob)
		contact := func(u *db.User, typ db.ContactType, value string) {
			cm := &db.ContactMethod{UserID: u.ID, Name: string(typ), Type: typ, Value: value, Verified: true, CreatedAt: now}
			insert(cm)
			insert(&db.NotificationRule{UserID: u.ID, ContactMethodID: cm.ID, CreatedAt: now})
		}
		contact(alice, db.ContactEmail, "alice@example.com")
		contact(alice, db.ContactSMS, "+15551230001")
		contact(bob, db.ContactSMS, "+15551230002")
		policy := &db.EscalationPolicy{Name: "security", CreatedAt: now, UpdatedAt: now}
		insert(policy)
		insert(&db.EscalationStep{PolicyID: policy.ID, Position: 0, DelayMinutes: 5, Targets: []db.Target{{Type: db.TargetUser, ID: alice.ID}}})
		insert(&db.EscalationStep{PolicyID: policy.ID, Position: 1, DelayMinutes: 5, Targets: []db.Target{{Type: db.TargetUser, ID: bob.ID}}})
		name, typ := "Detectify", rules.TypeDetectify
		integ, err := integrationStore.CreateIntegration(ctx, integrations.IntegrationInput{Name: &name, Type: &typ})
		if err != nil {
			t.Fatal(err)
		}
		integ.EscalationPolicyID = &policy.ID
		if _, err := d.NewUpdate().Model(integ).Column("escalation_policy_id").WherePK().Exec(ctx); err != nil {
			t.Fatal(err)
		}

		sample, err := os.ReadFile(filepath.Join("..", "rules", "testdata", "detectify", "new_finding_high.json"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(ts.URL+"/webhooks/"+integ.Token, "application/json", strings.NewReader(string(sample)))
		if err != nil {
			t.Fatal(err)
		}
		var opened struct {
			Status  string `json:"status"`
			AlertID string `json:"alertId"`
		}
		json.NewDecoder(resp.Body).Decode(&opened)
		resp.Body.Close()
		if opened.Status != "MAPPED_OPENED" {
			t.Fatalf("webhook: %+v", opened)
		}
		alertID, _ := strconv.Atoi(opened.AlertID)

		if _, err := svc.RunDueJobs(ctx); err != nil {
			t.Fatal(err)
		}
		got := mail.next(t)
		msg, err := netmail.ReadMessage(strings.NewReader(string(got.data)))
		if err != nil {
			t.Fatal(err)
		}
		subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if want := fmt.Sprintf("[Klaxon #%d] HIGH: SQL Injection", alertID); !strings.HasPrefix(subject, want) || got.to[0] != "alice@example.com" {
			t.Fatalf("email to %v: subject %q, want %q", got.to, subject, want)
		}
		text, html := mailBodies(t, msg)
		if !strings.Contains(text, "/actions/") || !strings.Contains(html, "/actions/") {
			t.Fatalf("email bodies lack action links:\n%s\n%s", text, html)
		}
		page := twilio.next(t)
		if page.Get("To") != "+15551230001" || !strings.Contains(page.Get("Body"), "SQL Injection") {
			t.Fatalf("SMS: %v", page)
		}

		reply := url.Values{"From": {"+15551230001"}, "To": {"+15005550006"}, "Body": {"ack"}, "MessageSid": {"SMreply"}}
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/twilio/sms", strings.NewReader(reply.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", twilioSign(twilioPublic+"/twilio/sms", reply))
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(answer), fmt.Sprintf("Acknowledged #%d", alertID)) {
			t.Fatalf("reply answer: %s", answer)
		}

		clock.Advance(30 * time.Minute)
		if _, err := svc.RunDueJobs(ctx); err != nil {
			t.Fatal(err)
		}
		if extra := twilio.drain(); len(extra) > 0 {
			t.Fatalf("paged after the acknowledge: %v", extra)
		}
		var bobs int
		if err := d.NewSelect().Model((*db.Notification)(nil)).ColumnExpr("count(*)").Where("user_id = ?", bob.ID).Scan(ctx, &bobs); err != nil || bobs != 0 {
			t.Fatalf("the second step fired: %d notifications for bob (%v)", bobs, err)
		}
	})
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// mailServer is a real SMTP server on loopback that keeps what it gets.
type mailServer struct {
	host string
	port int
	got  chan receivedMail
}

type receivedMail struct {
	from string
	to   []string
	data []byte
}

func startMailServer(t *testing.T) *mailServer {
	m := &mailServer{got: make(chan receivedMail, 8)}
	srv := smtp.NewServer(smtpBackendFunc(func() smtp.Session { return &mailSession{m: m} }))
	srv.Domain = "mx.test"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().(*net.TCPAddr)
	m.host, m.port = addr.IP.String(), addr.Port
	return m
}

func (m *mailServer) next(t *testing.T) receivedMail {
	t.Helper()
	select {
	case got := <-m.got:
		return got
	case <-time.After(10 * time.Second):
		t.Fatal("no email arrived")
		return receivedMail{}
	}
}

type smtpBackendFunc func() smtp.Session

func (f smtpBackendFunc) NewSession(*smtp.Conn) (smtp.Session, error) { return f(), nil }

type mailSession struct {
	m *mailServer
	r receivedMail
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error { s.r.from = from; return nil }
func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.r.to = append(s.r.to, to)
	return nil
}
func (s *mailSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.data = data
	s.m.got <- s.r
	return nil
}
func (s *mailSession) Reset()        { s.r = receivedMail{} }
func (s *mailSession) Logout() error { return nil }

// mailBodies returns the plain-text and HTML parts of a multipart message.
func mailBodies(t *testing.T, msg *netmail.Message) (text, html string) {
	t.Helper()
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	parts := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := parts.NextPart()
		if err == io.EOF {
			return text, html
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p) // NextPart decodes quoted-printable
		switch ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct {
		case "text/plain":
			text = string(body)
		case "text/html":
			html = string(body)
		}
	}
}

const twilioSID = "AC00000000000000000000000000000001"

// twilioAPI speaks the part of Twilio's REST API that sends messages:
// Basic auth with the account, a form body, Twilio's JSON answer.
type twilioAPI struct {
	*httptest.Server
	mu   sync.Mutex
	seq  int
	sent chan url.Values
}

func startTwilioAPI(t *testing.T) *twilioAPI {
	a := &twilioAPI{sent: make(chan url.Values, 8)}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if r.URL.Path != "/2010-04-01/Accounts/"+twilioSID+"/Messages.json" || !ok || user != twilioSID || pass != twilioToken {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"code": 20003, "message": "Authenticate", "status": 401}`)
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("To") == "" || r.PostForm.Get("Body") == "" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"code": 21602, "message": "Message body is required.", "status": 400}`)
			return
		}
		a.mu.Lock()
		a.seq++
		sid := fmt.Sprintf("SM%032d", a.seq)
		a.mu.Unlock()
		a.sent <- r.PostForm
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"sid": sid, "status": "queued", "to": r.PostForm.Get("To")})
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *twilioAPI) next(t *testing.T) url.Values {
	t.Helper()
	select {
	case v := <-a.sent:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("no SMS was sent")
		return nil
	}
}

func (a *twilioAPI) drain() []url.Values {
	var out []url.Values
	for {
		select {
		case v := <-a.sent:
			out = append(out, v)
		default:
			return out
		}
	}
}
