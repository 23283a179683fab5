package mailin_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/heartbeats"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/mailin"
	"github.com/klaxonhq/klaxon/maintenance"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/rules"
	"github.com/klaxonhq/klaxon/schedules"
)

const domain = "alerts.klaxon.example"

// fixture is a listener on a random port over d, with the services it
// feeds.
type fixture struct {
	t            testing.TB
	db           *db.DB
	integrations *integrations.Store
	addr         string
	listener     *mailin.Listener
}

func newFixture(t testing.TB, d *db.DB, maxBytes int64) *fixture {
	t.Helper()
	key, err := auth.SigningKey(context.Background(), d, time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens(key, time.Hour, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	authSvc, err := auth.NewService(d, tokens, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var svc *alerting.Service
	policyStore := policies.NewStore(d, time.Now, func() { svc.RoutesChanged() })
	integrationStore := integrations.NewStore(d, "https://klaxon.example", time.Now, func() { svc.RoutesChanged() })
	channels := notifiers.NewChannels(nil, nil)
	svc = alerting.NewService(alerting.Options{DB: d, PublicURL: "https://klaxon.example", Now: time.Now, Log: log, Config: alerting.Config{
		OnCall: schedules.NewStore(d, time.Now, policyStore), Policies: policyStore, Integrations: integrationStore,
		Contacts: contacts.NewStore(d, time.Now, log, channels), Groups: authSvc,
		Heartbeats: heartbeats.NewStore(d, "https://klaxon.example", time.Now), Maintenance: maintenance.NewStore(d, time.Now),
	}, Channels: channels, Events: events.NewBus(d, log)})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := mailin.New(mailin.Config{Domain: domain, MaxBytes: maxBytes, Timeout: 30 * time.Second}, svc, log)
	served := make(chan error, 1)
	go func() { served <- l.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &fixture{t: t, db: d, integrations: integrationStore, addr: ln.Addr().String(), listener: l}
}

// createIntegration makes an EMAIL integration and returns it.
func (f *fixture) createIntegration() *db.Integration {
	f.t.Helper()
	name, typ := "mail-"+f.t.Name(), rules.TypeEmail
	integ, err := f.integrations.CreateIntegration(context.Background(), integrations.IntegrationInput{Name: &name, Type: &typ})
	if err != nil {
		f.t.Fatal(err)
	}
	return integ
}

func address(integ *db.Integration) string { return integ.RoutingKey + "@" + domain }

// send sends raw (CRLF line ends added) from sender to rcpt with net/smtp,
// and returns the server's refusal, if any.
func (f *fixture) send(rcpt, raw string) error {
	return smtp.SendMail(f.addr, nil, "monitor@ops.example", []string{rcpt}, []byte(strings.ReplaceAll(raw, "\n", "\r\n")))
}

func (f *fixture) alerts(integ *db.Integration) []db.Alert {
	f.t.Helper()
	var as []db.Alert
	if err := f.db.NewSelect().Model(&as).Where("integration_id = ?", integ.ID).Order("id").Scan(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	return as
}

func (f *fixture) inbound(integ *db.Integration) []db.InboundMessage {
	f.t.Helper()
	var ms []db.InboundMessage
	if err := f.db.NewSelect().Model(&ms).Where("integration_id = ?", integ.ID).Order("id").Scan(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	return ms
}

// wantCode checks that err is the SMTP reply code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if err == nil || !strings.HasPrefix(err.Error(), code+" ") {
		t.Errorf("%s: %v; want a %s reply", what, err, code)
	}
}
