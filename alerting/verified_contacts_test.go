package alerting_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

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

// TestUnverifiedMethodIsLoggedNotPaged shows that an unverified number is
// never paged, and that the delivery log says why.
func TestUnverifiedMethodIsLoggedNotPaged(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		sms := &outbox{}
		f.channels.SetSenders(notifiers.Senders{db.ContactSMS: sms})
		now := f.clock.Now()
		u := &db.User{Email: "fay@example.com", Name: "Fay", Role: db.RoleResponder, CreatedAt: now, UpdatedAt: now}
		f.insert(u)
		cm := &db.ContactMethod{UserID: u.ID, Type: db.ContactSMS, Value: "+15551234500", CreatedAt: now}
		f.insert(cm)
		f.insert(&db.NotificationRule{UserID: u.ID, ContactMethodID: cm.ID, CreatedAt: now})
		f.policy(0, step(5, db.Target{Type: db.TargetUser, ID: u.ID}))
		alertID := f.open()
		f.at(0)
		if sms.count() != 0 {
			t.Fatalf("an unverified number got %d messages", sms.count())
		}
		var note db.Notification
		if err := d.NewSelect().Model(&note).Where("alert_id = ?", alertID).Scan(f.ctx); err != nil {
			t.Fatal(err)
		}
		if note.Status != db.NotificationFailed || note.Error != "contact method not verified" {
			t.Fatalf("delivery log: %+v", note)
		}
		jobs, err := d.NewSelect().Model((*db.AlertJob)(nil)).Where("kind = 'notify'").Count(f.ctx)
		if err != nil || jobs != 0 {
			t.Fatalf("%d notify jobs left (%v); an unverified method must not be retried", jobs, err)
		}
	})
}

// A phone number is verified by one user at a time, and an SMS reply acts
// only for the user who verified the number it comes from: adding
// someone else's number to one's own profile gains nothing.
func TestVerifiedNumberHasOneOwner(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		sms := &outbox{}
		f.channels.SetSenders(notifiers.Senders{db.ContactSMS: sms})
		const number = "+15551230001"
		alice, bob := f.user("alice"), f.user("bob")
		add := func(userID int, typ db.ContactType, value string) int {
			t.Helper()
			cm, err := f.contacts.CreateContactMethod(f.ctx, contacts.ContactMethodInput{UserID: &userID, Type: &typ, Value: ptr(value)})
			if err != nil {
				t.Fatal(err)
			}
			return cm.ID
		}
		sendCode := func(id int) string {
			t.Helper()
			if err := f.contacts.SendContactVerification(f.ctx, id); err != nil {
				t.Fatal(err)
			}
			return sms.last(t).VerificationCode
		}
		verified := func(id int) bool {
			t.Helper()
			cm, err := f.contacts.ContactMethod(f.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return cm.Verified
		}
		alertID := f.open()
		reply := func(body string) string {
			t.Helper()
			answer, err := f.svc.ReplyToSMS(f.ctx, number, body)
			if err != nil {
				t.Fatal(err)
			}
			return answer
		}

		// Bob adds the number first but cannot verify it: it does not
		// speak for him, although his method is the oldest with it.
		bobs := add(bob, db.ContactSMS, number)
		if got := reply("ack " + strconv.Itoa(alertID)); !strings.Contains(got, "not a Klaxon contact method") {
			t.Fatalf("reply from an unverified number: %q", got)
		}
		if a, _ := f.svc.Alert(f.ctx, alertID); a.Status != db.AlertOpen {
			t.Fatalf("an unverified number acted: %s", a.Status)
		}

		alices := add(alice, db.ContactSMS, number)
		if _, err := f.contacts.VerifyContactMethod(f.ctx, alices, sendCode(alices)); err != nil {
			t.Fatal(err)
		}
		if got := reply("ack " + strconv.Itoa(alertID)); !strings.HasPrefix(got, "Acknowledged #") {
			t.Fatalf("reply from alice's verified number: %q", got)
		}
		if a, _ := f.svc.Alert(f.ctx, alertID); a.AcknowledgedBy == nil || *a.AcknowledgedBy != alice {
			t.Fatalf("the reply acted for %v, want alice (%d)", a.AcknowledgedBy, alice)
		}

		// Verified by alice, the number cannot be verified by bob, even
		// with the right code.
		bobsCode := sendCode(bobs)
		_, err := f.contacts.VerifyContactMethod(f.ctx, bobs, bobsCode)
		wantFieldError(t, err, "id")
		if !strings.Contains(err.Error(), "already verified by another Klaxon user") || verified(bobs) || !verified(alices) {
			t.Fatalf("second verification: %v; bob %v, alice %v", err, verified(bobs), verified(alices))
		}
		// The database holds the rule, whoever writes.
		carol := f.user("carol")
		if _, err := d.NewInsert().Model(&db.ContactMethod{UserID: carol, Type: db.ContactSMS, Value: number, Verified: true, CreatedAt: f.clock.Now()}).Exec(f.ctx); !db.IsConstraint(err) {
			t.Fatalf("a second verified row for the number: %v", err)
		}
		// The same number for calls is another method, and an email
		// address may be shared (a team mailbox): neither is refused.
		if _, err := d.NewInsert().Model(&db.ContactMethod{UserID: bob, Type: db.ContactVoice, Value: number, Verified: true, CreatedAt: f.clock.Now()}).Exec(f.ctx); err != nil {
			t.Fatalf("the number verified for calls: %v", err)
		}
		for _, u := range []int{alice, bob} {
			if _, err := d.NewInsert().Model(&db.ContactMethod{UserID: u, Type: db.ContactEmail, Value: "team@example.com", Verified: true, CreatedAt: f.clock.Now()}).Exec(f.ctx); err != nil {
				t.Fatalf("a shared mailbox: %v", err)
			}
		}

		// Once alice removes it, bob's code works, and replies act for him.
		if err := f.contacts.DeleteContactMethod(f.ctx, alices); err != nil {
			t.Fatal(err)
		}
		if _, err := f.contacts.VerifyContactMethod(f.ctx, bobs, bobsCode); err != nil {
			t.Fatalf("verify after the other user removed the number: %v", err)
		}
		if got := reply("close " + strconv.Itoa(alertID)); !strings.HasPrefix(got, "Closed #") {
			t.Fatalf("reply from bob's verified number: %q", got)
		}
		if a, _ := f.svc.Alert(f.ctx, alertID); a.ClosedBy == nil || *a.ClosedBy != bob {
			t.Fatalf("the reply acted for %v, want bob (%d)", a.ClosedBy, bob)
		}
	})
}
