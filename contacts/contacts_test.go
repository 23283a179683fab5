package contacts_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/egress"
	"github.com/klaxonhq/klaxon/notifiers"
)

func TestCreateContactMethod(t *testing.T) {
	cases := []struct {
		name      string
		typ       db.ContactType
		value     string
		noUser    bool
		wantValue string // stored value on success
		wantField string // invalid field on failure
	}{
		{name: "email", typ: db.ContactEmail, value: " ops@example.com ", wantValue: "ops@example.com"},
		{name: "email with display name", typ: db.ContactEmail, value: "Ops <ops@example.com>", wantField: "value"},
		{name: "not an email", typ: db.ContactEmail, value: "ops.example.com", wantField: "value"},
		{name: "sms with separators", typ: db.ContactSMS, value: "+1 (555) 123-4567", wantValue: "+15551234567"},
		{name: "sms without country code", typ: db.ContactSMS, value: "5551234567", wantField: "value"},
		{name: "voice", typ: db.ContactVoice, value: "+4930123456", wantValue: "+4930123456"},
		{name: "voice too short", typ: db.ContactVoice, value: "+12345", wantField: "value"},
		{name: "slack https", typ: db.ContactSlack, value: "https://hooks.slack.com/services/T/B/X", wantValue: "https://hooks.slack.com/services/T/B/X"},
		{name: "webhook to localhost over http", typ: db.ContactWebhook, value: "http://127.0.0.1:8080/hook", wantValue: "http://127.0.0.1:8080/hook"},
		{name: "webhook over http elsewhere", typ: db.ContactWebhook, value: "http://example.com/hook", wantField: "value"},
		{name: "teams https", typ: db.ContactTeams, value: "https://example.webhook.office.com/webhookb2/x", wantValue: "https://example.webhook.office.com/webhookb2/x"},
		{name: "teams over http elsewhere", typ: db.ContactTeams, value: "http://example.com/hook", wantField: "value"},
		{name: "slack app member id", typ: db.ContactSlackApp, value: " U024BE7LH ", wantValue: "U024BE7LH"},
		{name: "slack app channel id", typ: db.ContactSlackApp, value: "C0123456789", wantValue: "C0123456789"},
		{name: "slack app channel name", typ: db.ContactSlackApp, value: "#ops", wantField: "value"},
		{name: "slack app webhook url", typ: db.ContactSlackApp, value: "https://hooks.slack.com/services/T/B/X", wantField: "value"},
		{name: "mattermost https", typ: db.ContactMattermost, value: "https://chat.example.com/hooks/xyz", wantValue: "https://chat.example.com/hooks/xyz"},
		{name: "mattermost over http elsewhere", typ: db.ContactMattermost, value: "http://chat.example.com/hooks/xyz", wantField: "value"},
		{name: "ntfy bare topic", typ: db.ContactNtfy, value: "klaxon-ops_1", wantValue: "klaxon-ops_1"},
		{name: "ntfy topic url", typ: db.ContactNtfy, value: "https://ntfy.example/klaxon", wantValue: "https://ntfy.example/klaxon"},
		{name: "ntfy topic with a slash", typ: db.ContactNtfy, value: "a/b", wantField: "value"},
		{name: "push not a subscription", typ: db.ContactPush, value: "https://push.example/x", wantField: "value"},
		{name: "push subscription", typ: db.ContactPush, value: pushSubscription(t, "https://push.example/sub/1", "="), wantValue: pushSubscription(t, "https://push.example/sub/1", "")},
		{name: "push subscription over http elsewhere", typ: db.ContactPush, value: pushSubscription(t, "http://push.example/sub/1", ""), wantField: "value"},
		{name: "empty value", typ: db.ContactEmail, value: "  ", wantField: "value"},
		{name: "unknown type", typ: "FAX", value: "+15551234567", wantField: "type"},
		{name: "unknown user", typ: db.ContactEmail, value: "a@example.com", noUser: true, wantField: "userId"},
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		userID := c.addUser("alice")
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := c.rows((*db.ContactMethod)(nil))
				owner := userID
				if tc.noUser {
					owner = userID + 1000
				}
				cm, err := c.store.CreateContactMethod(c.ctx, contacts.ContactMethodInput{UserID: &owner, Type: &tc.typ, Value: &tc.value})
				if tc.wantField != "" {
					wantFieldError(t, err, tc.wantField)
					if after := c.rows((*db.ContactMethod)(nil)); after != before {
						t.Fatalf("a refused create stored a row: %d → %d", before, after)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				stored, err := c.store.ContactMethod(c.ctx, cm.ID)
				if err != nil {
					t.Fatal(err)
				}
				if stored.Value != tc.wantValue || stored.Type != tc.typ || stored.UserID != userID {
					t.Fatalf("stored %+v, want value %q", stored, tc.wantValue)
				}
				// Addresses and numbers must prove they reach their owner;
				// pasted URLs reach whoever pasted them.
				if stored.Verified != !tc.typ.NeedsVerification() {
					t.Fatalf("a new %s method stored verified=%v", tc.typ, stored.Verified)
				}
			})
		}
		t.Run("duplicate", func(t *testing.T) {
			typ, value := db.ContactEmail, "OPS@example.com"
			in := contacts.ContactMethodInput{UserID: &userID, Type: &typ, Value: &value}
			if _, err := c.store.CreateContactMethod(c.ctx, in); err != nil {
				t.Fatal(err)
			}
			_, err := c.store.CreateContactMethod(c.ctx, in)
			wantFieldError(t, err, "value")
		})
	})
}

func TestUpdateAndDeleteContactMethod(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		userID := c.addUser("bob")
		typ, value := db.ContactSMS, "+15551234567"
		cm, err := c.store.CreateContactMethod(c.ctx, contacts.ContactMethodInput{UserID: &userID, Type: &typ, Value: &value, Name: ptr("Mobile")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.NewUpdate().Model(cm).Set("verified = ?", true).WherePK().Exec(c.ctx); err != nil {
			t.Fatal(err)
		}

		_, err = c.store.UpdateContactMethod(c.ctx, cm.ID, contacts.ContactMethodInput{Type: ptr(db.ContactVoice)})
		wantFieldError(t, err, "type")
		_, err = c.store.UpdateContactMethod(c.ctx, cm.ID, contacts.ContactMethodInput{Value: ptr("not a phone")})
		wantFieldError(t, err, "value")

		renamed, err := c.store.UpdateContactMethod(c.ctx, cm.ID, contacts.ContactMethodInput{Name: ptr("Work phone"), Disabled: ptr(true)})
		if err != nil {
			t.Fatal(err)
		}
		if renamed.Name != "Work phone" || !renamed.Disabled || !renamed.Verified || renamed.Value != value {
			t.Fatalf("after rename: %+v", renamed)
		}
		changed, err := c.store.UpdateContactMethod(c.ctx, cm.ID, contacts.ContactMethodInput{Value: ptr("+15557654321")})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := c.store.ContactMethod(c.ctx, cm.ID)
		if err != nil {
			t.Fatal(err)
		}
		if changed.Verified || stored.Verified || stored.Value != "+15557654321" || stored.Name != "Work phone" {
			t.Fatalf("a new value must be verified again: %+v", stored)
		}

		if _, err := c.store.CreateNotificationRule(c.ctx, contacts.NotificationRuleInput{ContactMethodID: cm.ID, DelayMinutes: 5}); err != nil {
			t.Fatal(err)
		}
		if err := c.store.DeleteContactMethod(c.ctx, cm.ID); err != nil {
			t.Fatal(err)
		}
		if n := c.rows((*db.NotificationRule)(nil)); n != 0 {
			t.Fatalf("%d notification rules outlived their contact method", n)
		}
		if err := c.store.DeleteContactMethod(c.ctx, cm.ID); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("second delete: %v, want not found", err)
		}
		if _, err := c.store.UpdateContactMethod(c.ctx, cm.ID, contacts.ContactMethodInput{Name: ptr("x")}); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("update of a deleted method: %v, want not found", err)
		}
	})
}

func TestNotificationRules(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		userID := c.addUser("carol")
		typ, value := db.ContactEmail, "carol@example.com"
		cm, err := c.store.CreateContactMethod(c.ctx, contacts.ContactMethodInput{UserID: &userID, Type: &typ, Value: &value})
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name      string
			method    int
			delay     int
			wantField string
		}{
			{"at once", cm.ID, 0, ""},
			{"after a day", cm.ID, 1440, ""},
			{"after ten minutes", cm.ID, 10, ""},
			{"negative delay", cm.ID, -1, "delayMinutes"},
			{"over a day", cm.ID, 1441, "delayMinutes"},
			{"duplicate", cm.ID, 10, "delayMinutes"},
			{"unknown method", cm.ID + 1000, 5, "contactMethodId"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := c.rows((*db.NotificationRule)(nil))
				rule, err := c.store.CreateNotificationRule(c.ctx, contacts.NotificationRuleInput{ContactMethodID: tc.method, DelayMinutes: tc.delay})
				if tc.wantField != "" {
					wantFieldError(t, err, tc.wantField)
					if after := c.rows((*db.NotificationRule)(nil)); after != before {
						t.Fatalf("a refused create stored a row: %d → %d", before, after)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if rule.UserID != userID || rule.ContactMethodID != cm.ID || rule.DelayMinutes != tc.delay {
					t.Fatalf("rule %+v", rule)
				}
			})
		}
		rules, err := c.store.NotificationRules(c.ctx, userID)
		if err != nil {
			t.Fatal(err)
		}
		var delays []int
		for _, r := range rules {
			delays = append(delays, r.DelayMinutes)
		}
		if len(delays) != 3 || delays[0] != 0 || delays[1] != 10 || delays[2] != 1440 {
			t.Fatalf("delays %v, want [0 10 1440]", delays)
		}
		if err := c.store.DeleteNotificationRule(c.ctx, rules[1].ID); err != nil {
			t.Fatal(err)
		}
		if err := c.store.DeleteNotificationRule(c.ctx, rules[1].ID); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("second delete: %v, want not found", err)
		}
		if rules, _ := c.store.NotificationRules(c.ctx, userID); len(rules) != 2 {
			t.Fatalf("%d rules left, want 2", len(rules))
		}
	})
}

// pushSubscription is a browser's subscription JSON for endpoint with a
// fresh key pair; pad, when not empty, is added around the keys to show
// that stored values are normalised.
func pushSubscription(t *testing.T, endpoint, pad string) string {
	t.Helper()
	key := pushKeys[endpoint]
	if key == nil {
		var err error
		if key, err = ecdh.P256().GenerateKey(rand.Reader); err != nil {
			t.Fatal(err)
		}
		pushKeys[endpoint] = key
	}
	p256dh := base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes())
	auth := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef"))
	return fmt.Sprintf(`{"endpoint":%q,"keys":{"p256dh":"%s%s","auth":"%s"}}`, endpoint, p256dh, pad, auth)
}

// pushKeys keeps one key per endpoint so a test can build the same
// subscription twice.
var pushKeys = map[string]*ecdh.PrivateKey{}

// URLs that plainly point at this machine or a private network are
// refused when a contact method is saved or changed, naming the kind of
// address; an operator's allow list admits its ranges, over http too.
func TestContactURLsAreCheckedAgainstTheGuard(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		strict := contacts.NewStore(d, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		c := &config{t: t, ctx: ctx, d: d, store: strict}
		userID := c.addUser("lou")
		create := func(svc *contacts.Store, typ db.ContactType, value string) (*db.ContactMethod, error) {
			return svc.CreateContactMethod(ctx, contacts.ContactMethodInput{UserID: &userID, Type: &typ, Value: &value})
		}
		for _, tc := range []struct {
			typ          db.ContactType
			value, class string
		}{
			{db.ContactWebhook, "http://127.0.0.1:8080/hook", "loopback"},
			{db.ContactWebhook, "https://localhost/hook", "loopback"},
			{db.ContactSlack, "https://10.1.2.3/services/T/B/X", "private"},
			{db.ContactTeams, "https://[::1]/x", "loopback"},
			{db.ContactNtfy, "https://100.64.1.1/topic", "shared (carrier-grade NAT)"},
			{db.ContactWebhook, "https://169.254.169.254/latest/meta-data/", "link-local"},
			{db.ContactWebhook, "https://[::ffff:172.16.0.1]/hook", "private"},
			{db.ContactPush, pushSubscription(t, "https://192.168.0.10/push/1", ""), "private"},
		} {
			_, err := create(strict, tc.typ, tc.value)
			wantFieldError(t, err, "value")
			if !strings.Contains(err.Error(), "points at a "+tc.class+" address") {
				t.Errorf("%s %s: %v", tc.typ, tc.value, err)
			}
		}
		if n := c.rows((*db.ContactMethod)(nil)); n != 0 {
			t.Fatalf("%d refused methods stored", n)
		}
		// Changing a good URL into a local one is refused the same way.
		cm, err := create(strict, db.ContactWebhook, "https://hooks.example.com/x")
		if err != nil {
			t.Fatal(err)
		}
		_, err = strict.UpdateContactMethod(ctx, cm.ID, contacts.ContactMethodInput{Value: ptr("https://127.0.0.1/x")})
		wantFieldError(t, err, "value")

		allow, err := egress.ParseAllow("10.20.0.0/16")
		if err != nil {
			t.Fatal(err)
		}
		onPrem := contacts.NewStore(d, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)), notifiers.NewChannels(nil, egress.New(allow, nil)))
		for _, ok := range []string{"http://10.20.0.5:8080/hook", "https://10.20.9.9/hook"} {
			if _, err := create(onPrem, db.ContactWebhook, ok); err != nil {
				t.Errorf("%s, allowed: %v", ok, err)
			}
		}
		for _, refused := range []string{"http://10.21.0.5/hook", "http://hooks.example.com/hook", "https://127.0.0.1/hook"} {
			_, err := create(onPrem, db.ContactWebhook, refused)
			wantFieldError(t, err, "value")
		}
	})
}
