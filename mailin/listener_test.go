package mailin_test

import (
	"context"
	"encoding/json"
	"net"
	"net/smtp"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/rules"
)

const plainMail = `From: Cron Daemon <cron@db-1.ops.example>
To: disk <%s>
Subject: Disk 91% full on /var
Message-ID: <1@db-1.ops.example>
Content-Type: text/plain; charset=utf-8

Only 9% left on /var.
`

// htmlMail is what a monitoring tool sends: an HTML-only alternative in
// quoted-printable Latin-1, with a base64 attachment.
const htmlMail = `From: =?utf-8?q?Z=C3=BCrich_Monitor?= <monitor@zrh.ops.example>
To: %s
Subject: =?iso-8859-1?q?Backup_fehlgeschlagen_f=FCr_db-2?=
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/html; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

<html><head><title>ignored</title><style>p {color: red}</style></head><body>
<h1>Backup f=FCr db-2</h1><p>Status: <b>failed</b>&nbsp;at 03:00</p>
<ul><li>disk full</li><li>see <a href=3D"https://ops.example/b/2">the log</a></li></ul>
<script>alert(1)</script></body></html>
--inner--

--outer
Content-Type: application/gzip; name="backup.log.gz"
Content-Disposition: attachment; filename="backup.log.gz"
Content-Transfer-Encoding: base64

H4sIAAAAAAAAA8tIzcnJBwCGphA2BgAAAA==
--outer--
`

func TestMailOpensAlert(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, 0)
		integ := f.createIntegration()
		if err := f.send(address(integ), strings.Replace(plainMail, "%s", address(integ), 1)); err != nil {
			t.Fatalf("send: %v", err)
		}
		as := f.alerts(integ)
		if len(as) != 1 || as[0].Status != db.AlertOpen || as[0].Subject != "Disk 91% full on /var" ||
			as[0].SourceID != "Disk % full on /var" || as[0].SourceName != "cron@db-1.ops.example" || as[0].Details != "Only 9% left on /var." {
			t.Fatalf("alerts %+v", as)
		}
		ms := f.inbound(integ)
		if len(ms) != 1 || ms[0].Status != db.InboundOpened || ms[0].Headers["Mail-From"] != "monitor@ops.example" || ms[0].RemoteAddr != "127.0.0.1" {
			t.Fatalf("inbound log %+v", ms)
		}
		// The address is a credential: the To header keeps the domain only.
		if body := string(ms[0].Body); strings.Contains(strings.ToLower(body), integ.RoutingKey) || !strings.Contains(body, "[address key]@"+domain) {
			t.Errorf("stored body %s keeps the routing key or lost the To header", body)
		}

		// The same subject with other numbers appends to the alert.
		second := strings.NewReplacer("91%", "97%", "9%", "3%").Replace(strings.Replace(plainMail, "%s", address(integ), 1))
		if err := f.send(strings.ToUpper(integ.RoutingKey)+"@"+strings.ToUpper(domain), second); err != nil {
			t.Fatalf("send again: %v", err)
		}
		if as := f.alerts(integ); len(as) != 1 || as[0].AppendCount != 1 {
			t.Fatalf("after the second mail: %+v; want one alert appended to", as)
		}
	})
}

func TestHTMLMailWithAttachment(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, 0)
		integ := f.createIntegration()
		if err := f.send(address(integ), strings.Replace(htmlMail, "%s", address(integ), 1)); err != nil {
			t.Fatalf("send: %v", err)
		}
		ms := f.inbound(integ)
		if len(ms) != 1 || ms[0].Status != db.InboundOpened {
			t.Fatalf("inbound log %+v", ms)
		}
		var got rules.EmailMessage
		if err := json.Unmarshal(ms[0].Body, &got); err != nil {
			t.Fatal(err)
		}
		want := rules.EmailMessage{
			From: "monitor@zrh.ops.example", To: []string{"[address key]@" + domain},
			Subject: "Backup fehlgeschlagen für db-2", SubjectKey: "Backup fehlgeschlagen für db-",
			Text:        "Backup für db-2\nStatus: failed at 03:00\n- disk full\n- see the log (https://ops.example/b/2)",
			Attachments: []rules.EmailAttachment{{Name: "backup.log.gz", Type: "application/gzip", Size: 25}},
		}
		if got.Headers["Mime-Version"] != "1.0" || got.Headers["From"] != "Zürich Monitor <monitor@zrh.ops.example>" {
			t.Errorf("headers %v", got.Headers)
		}
		got.Headers = nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("stored body\n got %+v\nwant %+v", got, want)
		}
		if as := f.alerts(integ); len(as) != 1 || as[0].Subject != want.Subject || as[0].Details != want.Text {
			t.Errorf("alerts %+v", as)
		}
	})
}

func TestMailRefused(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, 4096)
		integ := f.createIntegration()
		mail := strings.Replace(plainMail, "%s", address(integ), 1)

		wantCode(t, "unknown address", f.send("0123456789abcdef0123456789abcdef@"+domain, mail), "550")
		wantCode(t, "token instead of key", f.send(integ.Token+"@"+domain, mail), "550")
		wantCode(t, "another domain", f.send(integ.RoutingKey+"@elsewhere.example", mail), "550")
		name, pagerDuty := "pd", rules.TypePagerDuty
		pd, err := f.integrations.CreateIntegration(context.Background(), integrations.IntegrationInput{Name: &name, Type: &pagerDuty})
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, "key of a PAGERDUTY integration", f.send(address(pd), mail), "550")

		huge := mail + strings.Repeat("filler line of the log that goes on and on\n", 200)
		wantCode(t, "oversized", f.send(address(integ), huge), "552")

		// A second integration's address in the same transaction is
		// deferred: each message goes to one integration, whole.
		other := f.createIntegration()
		err = smtp.SendMail(f.addr, nil, "monitor@ops.example", []string{address(integ), address(other)}, []byte(mail))
		wantCode(t, "second recipient", err, "452")

		disabled := false
		if _, err := f.integrations.UpdateIntegration(context.Background(), integ.ID, integrations.IntegrationInput{Enabled: &disabled}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "disabled", f.send(address(integ), mail), "550")

		if as, ms := f.alerts(integ), f.inbound(integ); len(as) != 0 || len(ms) != 0 {
			t.Fatalf("refused mail left %d alerts and %d messages", len(as), len(ms))
		}
	})
}

// TestUnreadableMailStored checks that a mail whose MIME does not parse
// is kept in the inbound log, opens nothing, and is refused for good.
func TestUnreadableMailStored(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, 0)
		integ := f.createIntegration()
		broken := "From: a@ops.example\nSubject: Broken 1\nContent-Type: multipart/mixed\n\nno boundary\n"
		wantCode(t, "broken MIME", f.send(address(integ), broken), "554")
		ms := f.inbound(integ)
		if len(ms) != 1 || ms[0].Status != db.InboundMappingFailed || !strings.Contains(ms[0].Detail, "no boundary") {
			t.Fatalf("inbound log %+v", ms)
		}
		if as := f.alerts(integ); len(as) != 0 {
			t.Fatalf("alerts %+v", as)
		}
	})
}

// TestMailWhileTheDatabaseIsAway checks that a mail the database could
// not take is answered 451, so the sending server keeps it and retries,
// and that the retry is stored once.
func TestMailWhileTheDatabaseIsAway(t *testing.T) {
	d, relay := dbtest.PostgresBehindRelay(t)
	f := newFixture(t, d, 0)
	integ := f.createIntegration()
	mail := strings.Replace(plainMail, "%s", address(integ), 1)

	c, err := smtp.Dial(f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("monitor@ops.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(address(integ)); err != nil {
		t.Fatal(err)
	}
	relay.Cut()
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(strings.ReplaceAll(mail, "\n", "\r\n"))); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "data while away", w.Close(), "451")
	wantCode(t, "recipient while away", f.send(address(integ), mail), "451")

	relay.Restore()
	if err := f.send(address(integ), mail); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if ms, as := f.inbound(integ), f.alerts(integ); len(ms) != 1 || len(as) != 1 {
		t.Fatalf("%d messages and %d alerts after the retry; want 1 and 1", len(ms), len(as))
	}
}

func TestMailRateLimited(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, 0)
		integ := f.createIntegration()
		one := 1
		if _, err := f.integrations.UpdateIntegration(context.Background(), integ.ID, integrations.IntegrationInput{RateLimitPerMinute: &one}); err != nil {
			t.Fatal(err)
		}
		mail := strings.Replace(plainMail, "%s", address(integ), 1)
		if err := f.send(address(integ), mail); err != nil {
			t.Fatalf("first mail: %v", err)
		}
		err := f.send(address(integ), mail)
		wantCode(t, "second mail in the minute", err, "451")
		if err == nil || !strings.Contains(err.Error(), "4.7.0") {
			t.Errorf("second mail: %v; want enhanced code 4.7.0", err)
		}
		if ms := f.inbound(integ); len(ms) != 1 {
			t.Fatalf("%d messages stored; want 1", len(ms))
		}
	})
}

func TestMailLongLines(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, 0)
		integ := f.createIntegration()
		mail := strings.Replace(plainMail, "%s", address(integ), 1)
		// Longer than RFC 5322's 998, as 8bit HTML often is: taken.
		if err := f.send(address(integ), mail+strings.Repeat("x", 5000)+"\n"); err != nil {
			t.Fatalf("a 5000-byte line: %v", err)
		}
		wantCode(t, "a 70 KiB line", f.send(address(integ), mail+strings.Repeat("x", 70<<10)+"\n"), "552")
		if ms := f.inbound(integ); len(ms) != 1 {
			t.Fatalf("%d messages stored; want 1", len(ms))
		}
	})
}

// TestMailAfterRotation checks that rotating the token replaces the
// address: the old one is refused at once, the new one takes mail.
func TestMailAfterRotation(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, 0)
		integ := f.createIntegration()
		mail := strings.Replace(plainMail, "%s", address(integ), 1)
		if err := f.send(address(integ), mail); err != nil {
			t.Fatalf("before rotation: %v", err)
		}
		rotated, err := f.integrations.RotateIntegrationToken(context.Background(), integ.ID)
		if err != nil {
			t.Fatal(err)
		}
		if address(rotated) == address(integ) {
			t.Fatal("rotation kept the address")
		}
		wantCode(t, "old address", f.send(address(integ), mail), "550")
		if err := f.send(address(rotated), mail); err != nil {
			t.Fatalf("new address: %v", err)
		}
		if ms := f.inbound(integ); len(ms) != 2 {
			t.Fatalf("%d messages stored; want 2", len(ms))
		}
	})
}

// TestShutdownFinishesMessageInHand stops the listener while a mail is
// being sent: new connections are refused at once, the mail in hand is
// stored and answered 250, then the stop ends.
func TestShutdownFinishesMessageInHand(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d, 0)
		integ := f.createIntegration()
		mail := strings.ReplaceAll(strings.Replace(plainMail, "%s", address(integ), 1), "\n", "\r\n")
		c, err := smtp.Dial(f.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Mail("monitor@ops.example"); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt(address(integ)); err != nil {
			t.Fatal(err)
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		half := len(mail) / 2
		if _, err := w.Write([]byte(mail[:half])); err != nil {
			t.Fatal(err)
		}

		stopped := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stopped <- f.listener.Shutdown(ctx)
		}()
		// Once a new connection is refused, the stop has begun.
		for deadline := time.Now().Add(5 * time.Second); ; {
			conn, err := net.Dial("tcp", f.addr)
			if err != nil {
				break
			}
			conn.Close()
			if time.Now().After(deadline) {
				t.Fatal("the listener still takes connections after Shutdown")
			}
			time.Sleep(5 * time.Millisecond)
		}
		select {
		case err := <-stopped:
			t.Fatalf("Shutdown returned (%v) with a mail in hand", err)
		default:
		}

		if _, err := w.Write([]byte(mail[half:])); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("the mail in hand: %v; want 250", err)
		}
		if err := <-stopped; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if ms := f.inbound(integ); len(ms) != 1 || ms[0].Status != db.InboundOpened {
			t.Fatalf("inbound log %+v", ms)
		}
	})
}
