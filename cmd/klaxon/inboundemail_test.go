package main

import (
	"io"
	"net/smtp"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

var takingMailAddr = regexp.MustCompile(`msg="klaxon taking mail" addr=(\S+)`)

// TestServeTakesMail runs the binary with the SMTP listener: an EMAIL
// integration shows its address, a mail to it opens an alert, and a stop
// with an idle SMTP connection open still ends cleanly and promptly.
func TestServeTakesMail(t *testing.T) {
	bin := buildKlaxon(t)
	for _, kind := range []db.Kind{db.SQLite, db.Postgres} {
		t.Run(string(kind), func(t *testing.T) {
			p := startKlaxon(t, bin, []string{"serve", "--addr", "127.0.0.1:0", "--database-url", dbtest.URL(t, kind),
				"--smtp-listen", "127.0.0.1:0", "--inbound-email-domain", "Alerts.Example"})
			base := "http://" + p.addr
			var smtpAddr string
			waitUntil(t, "the SMTP listener", func() bool {
				m := takingMailAddr.FindStringSubmatch(p.logs())
				if m != nil {
					smtpAddr = m[1]
				}
				return m != nil
			})

			var login struct{ Login struct{ Token string } }
			decode(t, gqlData(t, base, "", `mutation { login(email: "admin@example.com", password: "change-me-now") { token } }`, nil), &login)
			token := login.Login.Token
			var created struct {
				CreateIntegration struct{ EmailAddress, RoutingKey string }
			}
			decode(t, gqlData(t, base, token, `mutation { createIntegration(input: {name: "mail", type: EMAIL}) { emailAddress routingKey } }`, nil), &created)
			address := created.CreateIntegration.EmailAddress
			if address != created.CreateIntegration.RoutingKey+"@alerts.example" {
				t.Fatalf("emailAddress %q, routing key %q", address, created.CreateIntegration.RoutingKey)
			}
			var other struct {
				CreateIntegration struct{ EmailAddress *string }
			}
			decode(t, gqlData(t, base, token, `mutation { createIntegration(input: {name: "generic", type: GENERIC}) { emailAddress } }`, nil), &other)
			if other.CreateIntegration.EmailAddress != nil {
				t.Fatalf("a GENERIC integration has emailAddress %q", *other.CreateIntegration.EmailAddress)
			}

			mail := "From: cron@db-1.example\r\nTo: " + address + "\r\nSubject: Nightly job 42 failed\r\n\r\nexit status 1\r\n"
			if err := smtp.SendMail(smtpAddr, nil, "cron@db-1.example", []string{address}, []byte(mail)); err != nil {
				t.Fatalf("send: %v", err)
			}
			var alerts struct {
				Alerts struct {
					Nodes []struct{ Subject, Details string }
				}
			}
			decode(t, gqlData(t, base, token, `{ alerts { nodes { subject details } } }`, nil), &alerts)
			if n := alerts.Alerts.Nodes; len(n) != 1 || n[0].Subject != "Nightly job 42 failed" || n[0].Details != "exit status 1" {
				t.Fatalf("alerts %+v", n)
			}

			idle, err := smtp.Dial(smtpAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			if err := idle.Hello("sender.example"); err != nil {
				t.Fatal(err)
			}
			stopped := time.Now()
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-p.exited:
				if err != nil {
					t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("no exit after SIGTERM\n%s", p.logs())
			}
			// The default shutdown timeout is 30 s: an idle session must not
			// hold the stop until then.
			if waited := time.Since(stopped); waited > 10*time.Second || !strings.Contains(p.logs(), "klaxon stopped") {
				t.Fatalf("stopped after %s:\n%s", waited, p.logs())
			}
			if err := idle.Noop(); err == nil {
				t.Fatalf("the idle SMTP connection is still served after the stop")
			}
		})
	}
}

func TestInboundEmailSettings(t *testing.T) {
	if _, err := parseConfig("serve", []string{"--smtp-listen", ":2525"}, io.Discard, false, nil); err == nil || !strings.Contains(err.Error(), "KLAXON_INBOUND_EMAIL_DOMAIN") {
		t.Errorf("a listener without a domain: %v", err)
	}
	t.Setenv("KLAXON_SMTP_LISTEN", ":2525")
	t.Setenv("KLAXON_INBOUND_EMAIL_DOMAIN", " Alerts.Example ")
	cfg, err := parseConfig("serve", nil, io.Discard, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m := cfg.InboundEmail; m.Listen != ":2525" || m.Domain != "alerts.example" || m.MaxBytes != 10<<20 {
		t.Errorf("settings %+v", m)
	}
	if _, err := parseConfig("serve", []string{"--inbound-email-max-bytes", "0"}, io.Discard, false, nil); err == nil {
		t.Error("a max size of 0 was taken")
	}
	off, err := parseConfig("serve", []string{"--smtp-listen", ""}, io.Discard, false, nil)
	if err != nil || off.InboundEmail.Listen != "" {
		t.Errorf("listener off: %+v %v", off.InboundEmail, err)
	}
}
