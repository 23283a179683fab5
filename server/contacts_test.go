package server_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"regexp"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/server"
)

// TestContactVerificationOverGraphQL verifies a number the way a person
// does: ask for a code, read it off the SMS that reaches Twilio's API,
// type it in.
func TestContactVerificationOverGraphQL(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		twilio := startTwilioAPI(t)
		sms, err := notifiers.NewTwilioSMS(notifiers.TwilioConfig{AccountSID: twilioSID, AuthToken: twilioToken, From: "+15005550006", APIURL: twilio.URL})
		if err != nil {
			t.Fatal(err)
		}
		h.channels.SetSenders(notifiers.Senders{db.ContactSMS: sms})
		owner, other := h.newUser(db.RoleResponder), h.newUser(db.RoleResponder)

		var created struct {
			CM struct {
				ID       string `json:"id"`
				Verified bool   `json:"verified"`
			} `json:"createContactMethod"`
		}
		h.mustGQL(owner.Token, `mutation($user: ID!) { createContactMethod(input: {userId: $user, type: SMS, value: "+15551239876"}) { id verified } }`,
			map[string]any{"user": owner.ID}, &created)
		if created.CM.Verified {
			t.Fatal("a new number starts verified")
		}
		id := map[string]any{"id": created.CM.ID}
		const send = `mutation($id: ID!) { sendContactMethodVerification(id: $id) }`
		const verify = `mutation($id: ID!, $code: String!) { verifyContactMethod(id: $id, code: $code) { verified } }`

		h.wantGQLError(other.Token, send, id, "FORBIDDEN")
		if got := twilio.drain(); len(got) != 0 {
			t.Fatalf("someone else's request sent %d messages", len(got))
		}

		h.mustGQL(owner.Token, send, id, nil)
		text := twilio.next(t)
		code := regexp.MustCompile(`^[0-9]{6}`).FindString(text.Get("Body"))
		if text.Get("To") != "+15551239876" || code == "" {
			t.Fatalf("verification SMS %v carries no code first", text)
		}
		limited := h.wantGQLError(owner.Token, send, id, "RATE_LIMITED")
		if limited.Message == "" {
			t.Fatal("a rate-limited request says nothing")
		}

		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		h.wantGQLError(owner.Token, verify, map[string]any{"id": created.CM.ID, "code": wrong}, "BAD_USER_INPUT")
		h.wantGQLError(other.Token, verify, map[string]any{"id": created.CM.ID, "code": code}, "FORBIDDEN")
		var verified struct {
			CM struct{ Verified bool } `json:"verifyContactMethod"`
		}
		h.mustGQL(owner.Token, verify, map[string]any{"id": created.CM.ID, "code": code}, &verified)
		if !verified.CM.Verified {
			t.Fatal("the right code did not verify the number")
		}
	})
}

// TestRegisterPushSubscription stores a browser's subscription, and moves
// it to whoever signs in on that browser next.
func TestRegisterPushSubscription(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		h := newHarness(t, d, server.Config{})
		const keyQuery = `{ pushPublicKey }`
		var key struct{ PushPublicKey *string }
		h.mustGQL(h.admin.Token, keyQuery, nil, &key)
		if key.PushPublicKey != nil {
			t.Fatalf("push public key %q without Web Push configured", *key.PushPublicKey)
		}
		public, private, err := notifiers.StoredVAPIDKeys(ctx, d, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		push, err := notifiers.NewWebPush(notifiers.WebPushConfig{VAPIDPublicKey: public, VAPIDPrivateKey: private, Subscriber: "mailto:ops@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		h.channels.SetSenders(notifiers.Senders{db.ContactPush: push})
		h.mustGQL(h.admin.Token, keyQuery, nil, &key)
		if key.PushPublicKey == nil || *key.PushPublicKey != public {
			t.Fatalf("push public key %v, want the stored VAPID key", key.PushPublicKey)
		}

		browser, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		vars := map[string]any{
			"endpoint": "https://push.example/send/abc",
			"p256dh":   base64.RawURLEncoding.EncodeToString(browser.PublicKey().Bytes()),
			"auth":     base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef")),
		}
		const register = `mutation($endpoint: String!, $p256dh: String!, $auth: String!) {
			registerPushSubscription(input: {endpoint: $endpoint, p256dh: $p256dh, auth: $auth}) { id type name verified user { id } } }`
		type registered struct {
			CM struct {
				ID, Type, Name string
				Verified       bool
				User           struct{ ID string }
			} `json:"registerPushSubscription"`
		}
		alice, bob := h.newUser(db.RoleResponder), h.newUser(db.RoleResponder)
		var first, again, moved registered
		h.mustGQL(alice.Token, register, vars, &first)
		if first.CM.Type != "PUSH" || first.CM.Name != "Browser" || !first.CM.Verified || first.CM.User.ID != alice.ID {
			t.Fatalf("registered %+v", first.CM)
		}
		h.mustGQL(alice.Token, register, vars, &again)
		if again.CM.ID != first.CM.ID {
			t.Fatalf("registering the same browser twice made two methods: %s and %s", first.CM.ID, again.CM.ID)
		}
		h.mustGQL(bob.Token, register, vars, &moved)
		if moved.CM.User.ID != bob.ID {
			t.Fatalf("moved to user %s, want %s", moved.CM.User.ID, bob.ID)
		}
		n, err := d.NewSelect().Model((*db.ContactMethod)(nil)).Where("type = ?", db.ContactPush).Count(ctx)
		if err != nil || n != 1 {
			t.Fatalf("%d push methods (%v), want only bob's", n, err)
		}

		bad := map[string]any{"endpoint": "https://push.example/send/x", "p256dh": "not a key", "auth": vars["auth"]}
		h.wantGQLError(alice.Token, register, bad, "BAD_USER_INPUT")
		h.wantGQLError("", register, vars, "UNAUTHENTICATED")
	})
}
