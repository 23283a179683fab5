package main

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/egress"
	"github.com/klaxonhq/klaxon/notifiers"
)

func TestChannelsFollowTheirSettings(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		enabled := func(s notifiers.Senders) []string {
			var out []string
			for _, c := range db.ContactTypes {
				if _, ok := s[c]; ok {
					out = append(out, string(c))
				}
			}
			return out
		}

		bare, err := channelSettings{}.senders(ctx, d, nil, "https://klaxon.example", time.Now(), log)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(enabled(bare), ","); got != "SLACK,TEAMS,NTFY,WEBHOOK,MATTERMOST" {
			t.Fatalf("without settings: %s enabled, want only the account-less SLACK,TEAMS,NTFY,WEBHOOK,MATTERMOST", got)
		}

		t.Setenv("KLAXON_SMTP_URL", "smtp://klaxon:secret@mail.example:587?tls=starttls")
		t.Setenv("KLAXON_SMTP_FROM", "Klaxon <klaxon@example.com>")
		t.Setenv("KLAXON_TWILIO_ACCOUNT_SID", "AC0123456789abcdef0123456789abcdef")
		t.Setenv("KLAXON_TWILIO_AUTH_TOKEN", "token")
		t.Setenv("KLAXON_TWILIO_FROM", "+15005550006")
		t.Setenv("KLAXON_PUSH_SUBSCRIBER", "mailto:ops@example.com")
		t.Setenv("KLAXON_SLACK_SIGNING_SECRET", "8f742231b10e8888abcd99yyyzzz85a5")
		t.Setenv("KLAXON_SLACK_BOT_TOKEN", "xoxb-test")
		calls := make(chan url.Values, 1)
		fakeTwilio := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			calls <- r.PostForm
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"sid":"CA0123456789abcdef0123456789abcdef","status":"queued"}`)
		}))
		defer fakeTwilio.Close()
		t.Setenv("KLAXON_TWILIO_API_URL", fakeTwilio.URL)
		cfg, err := parseConfig("serve", nil, io.Discard, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		all, err := cfg.Channels.senders(ctx, d, nil, "https://klaxon.example/", time.Now(), log)
		if err != nil {
			t.Fatal(err)
		}
		if got := enabled(all); !slices.Equal(got, []string{"EMAIL", "SMS", "VOICE", "PUSH", "SLACK", "TEAMS", "NTFY", "WEBHOOK", "SLACK_APP", "MATTERMOST"}) {
			t.Fatalf("with every setting: %v enabled", got)
		}

		// Calls carry the routes Twilio reports back to, so the number
		// itself needs no voice setup.
		if _, err := all[db.ContactVoice].Send(ctx, notifiers.Message{AlertNumber: 7, Subject: "disk full", Destination: "+15551230000"}); err != nil {
			t.Fatalf("voice call: %v", err)
		}
		call := <-calls
		if twiml := call.Get("Twiml"); !strings.Contains(twiml, `<Gather numDigits="1" action="https://klaxon.example/twilio/voice" method="POST"`) ||
			call.Get("StatusCallback") != "https://klaxon.example/twilio/status" {
			t.Fatalf("voice call callbacks: %v", call)
		}

		// The VAPID key pair is made once; browsers' subscriptions depend
		// on it staying the same.
		pub1, priv1, err := notifiers.StoredVAPIDKeys(ctx, d, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		pub2, priv2, err := notifiers.StoredVAPIDKeys(ctx, d, time.Now())
		if err != nil || pub1 != pub2 || priv1 != priv2 || pub1 == "" {
			t.Fatalf("VAPID keys changed between uses: %v", err)
		}

		for name, bad := range map[string]channelSettings{
			"smtp scheme":     {SMTPURL: "http://mail.example", SMTPFrom: "klaxon@example.com"},
			"smtp sender":     {SMTPURL: "smtp://mail.example:25?tls=none", SMTPFrom: "not an address"},
			"twilio half set": {TwilioAccountSID: "AC0123456789abcdef0123456789abcdef"},
			"ntfy scheme":     {NtfyURL: "ftp://ntfy.example"},
		} {
			if _, err := bad.senders(ctx, d, nil, "https://klaxon.example", time.Now(), log); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
	})
}

// Every channel whose destination a user enters reaches only public
// addresses, unless KLAXON_OUTBOUND_ALLOW (or --outbound-allow) lists the
// range: a receiver on this machine is refused, and admitted once listed.
func TestOutboundChannelsKeepToTheAllowList(t *testing.T) {
	d := dbtest.SQLite(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var hits atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	defer receiver.Close()
	browserKey, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	destinations := map[db.ContactType]string{
		db.ContactWebhook:    receiver.URL + "/hook",
		db.ContactSlack:      receiver.URL + "/services/T/B/X",
		db.ContactTeams:      receiver.URL + "/teams",
		db.ContactNtfy:       receiver.URL + "/alerts",
		db.ContactMattermost: receiver.URL + "/hooks/x",
		db.ContactPush: fmt.Sprintf(`{"endpoint":%q,"keys":{"p256dh":%q,"auth":%q}}`, receiver.URL+"/push/1",
			base64.RawURLEncoding.EncodeToString(browserKey.PublicKey().Bytes()), base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef"))),
	}
	send := func(args []string) map[db.ContactType]error {
		t.Helper()
		cfg, err := parseConfig("serve", append(args, "--push-subscriber", "mailto:ops@example.com"), io.Discard, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		guard, err := cfg.Channels.guard()
		if err != nil {
			t.Fatal(err)
		}
		senders, err := cfg.Channels.senders(ctx, d, guard, "https://klaxon.example", time.Now(), log)
		if err != nil {
			t.Fatal(err)
		}
		out := map[db.ContactType]error{}
		for typ, dest := range destinations {
			_, out[typ] = senders.Send(ctx, typ, notifiers.Message{AlertID: 1, AlertNumber: 1, Subject: "disk full", Destination: dest})
		}
		return out
	}

	for typ, err := range send(nil) {
		var refused *egress.RefusedError
		if !errors.As(err, &refused) || !notifiers.IsPermanent(err) {
			t.Errorf("%s to this machine without an allow list: %v", typ, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("refused channels reached the receiver %d times", hits.Load())
	}
	t.Setenv("KLAXON_OUTBOUND_ALLOW", "10.0.0.0/8")
	for typ, err := range send([]string{"--outbound-allow", "127.0.0.1/32,::1/128"}) {
		if err != nil {
			t.Errorf("%s with loopback allowed: %v", typ, err)
		}
	}
	if hits.Load() != int64(len(destinations)) {
		t.Fatalf("allowed: %d of %d sends arrived", hits.Load(), len(destinations))
	}
	if _, err := parseConfig("serve", []string{"--outbound-allow", "10.0.0.0/33"}, io.Discard, false, nil); err == nil || !strings.Contains(err.Error(), "KLAXON_OUTBOUND_ALLOW") {
		t.Fatalf("a bad allow list: %v", err)
	}
}
