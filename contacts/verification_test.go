package contacts_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/notifiers"
)

// outbox is a sender that keeps what it was asked to send; the protocols
// themselves are tested in package notifiers.
type outbox struct {
	mu   sync.Mutex
	sent []notifiers.Message
	fail error
}

func (o *outbox) Send(_ context.Context, msg notifiers.Message) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail != nil {
		return "", o.fail
	}
	o.sent = append(o.sent, msg)
	return "id-1", nil
}

func (o *outbox) last(t *testing.T) notifiers.Message {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.sent) == 0 {
		t.Fatal("nothing was sent")
	}
	return o.sent[len(o.sent)-1]
}

func (o *outbox) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.sent)
}

var sixDigits = regexp.MustCompile(`^[0-9]{6}$`)

func TestContactVerification(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clk := &clock{now: time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)}
		sms := &outbox{}
		svc := contacts.NewStore(d, clk.Now, slog.New(slog.NewTextHandler(io.Discard, nil)), notifiers.NewChannels(notifiers.Senders{db.ContactSMS: sms}, nil))
		c := &config{t: t, ctx: ctx, d: d, store: svc}
		userID := c.addUser("erin")
		create := func(typ db.ContactType, value string) *db.ContactMethod {
			t.Helper()
			cm, err := svc.CreateContactMethod(ctx, contacts.ContactMethodInput{UserID: &userID, Type: &typ, Value: &value})
			if err != nil {
				t.Fatal(err)
			}
			return cm
		}
		verified := func(id int) bool {
			t.Helper()
			cm, err := svc.ContactMethod(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return cm.Verified
		}

		phone := create(db.ContactSMS, "+15551230009")
		if phone.Verified {
			t.Fatal("a new number starts verified")
		}
		if err := svc.SendContactVerification(ctx, phone.ID); err != nil {
			t.Fatal(err)
		}
		msg := sms.last(t)
		if msg.Destination != "+15551230009" || !sixDigits.MatchString(msg.VerificationCode) {
			t.Fatalf("sent %+v, want a six-digit code to the number", msg)
		}
		code := msg.VerificationCode

		// Asking again at once is refused and sends nothing.
		var limited *db.RateLimitError
		if err := svc.SendContactVerification(ctx, phone.ID); !errors.As(err, &limited) || limited.Wait != time.Minute {
			t.Fatalf("second code at once: %v, want a rate limit of a minute", err)
		}
		if sms.count() != 1 {
			t.Fatalf("%d messages sent, want 1", sms.count())
		}

		wrong := "000000"
		if code == wrong {
			wrong = "111111"
		}
		_, err := svc.VerifyContactMethod(ctx, phone.ID, wrong)
		wantFieldError(t, err, "code")
		if verified(phone.ID) {
			t.Fatal("a wrong code verified the method")
		}

		// The code expires after 15 minutes; a new one replaces it.
		clk.Advance(15 * time.Minute)
		_, err = svc.VerifyContactMethod(ctx, phone.ID, code)
		wantFieldError(t, err, "code")
		if err := svc.SendContactVerification(ctx, phone.ID); err != nil {
			t.Fatal(err)
		}
		fresh := sms.last(t).VerificationCode
		if cm, err := svc.VerifyContactMethod(ctx, phone.ID, " "+fresh+" "); err != nil || !cm.Verified {
			t.Fatalf("right code: %v", err)
		}
		if !verified(phone.ID) {
			t.Fatal("verification was not stored")
		}
		if err := svc.SendContactVerification(ctx, phone.ID); err == nil {
			t.Fatal("a code was sent to a verified method")
		}

		// Changing the number makes it unverified again and voids its code.
		if _, err := svc.UpdateContactMethod(ctx, phone.ID, contacts.ContactMethodInput{Value: ptr("+15551230010")}); err != nil {
			t.Fatal(err)
		}
		if verified(phone.ID) {
			t.Fatal("a changed number stayed verified")
		}

		t.Run("five wrong codes use the code up", func(t *testing.T) {
			cm := create(db.ContactSMS, "+15551230011")
			if err := svc.SendContactVerification(ctx, cm.ID); err != nil {
				t.Fatal(err)
			}
			code := sms.last(t).VerificationCode
			for i := range 5 {
				guess := "99999" + string(rune('0'+i))
				if guess == code {
					guess = "888888"
				}
				_, err := svc.VerifyContactMethod(ctx, cm.ID, guess)
				wantFieldError(t, err, "code")
			}
			_, err := svc.VerifyContactMethod(ctx, cm.ID, code)
			wantFieldError(t, err, "code")
			if verified(cm.ID) {
				t.Fatal("the right code worked after five wrong ones")
			}
		})

		t.Run("no code sent", func(t *testing.T) {
			cm := create(db.ContactSMS, "+15551230012")
			_, err := svc.VerifyContactMethod(ctx, cm.ID, "123456")
			wantFieldError(t, err, "code")
		})

		t.Run("methods that need no code", func(t *testing.T) {
			hook := create(db.ContactWebhook, "https://hooks.example/ops")
			if !hook.Verified {
				t.Fatal("a webhook needs no verification but starts unverified")
			}
			wantFieldError(t, svc.SendContactVerification(ctx, hook.ID), "id")
		})

		t.Run("unconfigured channel", func(t *testing.T) {
			mail := create(db.ContactEmail, "erin@example.com")
			wantFieldError(t, svc.SendContactVerification(ctx, mail.ID), "id")
		})

		t.Run("undeliverable code", func(t *testing.T) {
			cm := create(db.ContactSMS, "+15551230013")
			sms.fail = notifiers.Permanent(errors.New("not a mobile number"))
			defer func() { sms.fail = nil }()
			wantFieldError(t, svc.SendContactVerification(ctx, cm.ID), "id")
		})
	})
}
