package contacts_test

import (
	"errors"
	"testing"

	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// What the escalation engine reads: the rules of enabled methods by delay,
// and the one user who verified a number.
func TestEngineReads(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		userID := c.addUser("gil")
		create := func(typ db.ContactType, value string) *db.ContactMethod {
			t.Helper()
			cm, err := c.store.CreateContactMethod(c.ctx, contacts.ContactMethodInput{UserID: &userID, Type: &typ, Value: &value})
			if err != nil {
				t.Fatal(err)
			}
			return cm
		}
		phone, hook := create(db.ContactSMS, "+15551230100"), create(db.ContactWebhook, "https://hooks.example.com/gil")
		for _, r := range []contacts.NotificationRuleInput{{ContactMethodID: hook.ID, DelayMinutes: 5}, {ContactMethodID: phone.ID}} {
			if _, err := c.store.CreateNotificationRule(c.ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		rules, err := c.store.RulesToQueue(c.ctx, d, userID)
		if err != nil {
			t.Fatal(err)
		}
		if len(rules) != 2 || rules[0].ContactMethodID != phone.ID || rules[0].Type != db.ContactSMS ||
			rules[1].DelayMinutes != 5 || rules[1].Email != "gil@example.com" {
			t.Fatalf("rules to queue: %+v", rules)
		}
		if _, err := c.store.UpdateContactMethod(c.ctx, hook.ID, contacts.ContactMethodInput{Disabled: ptr(true)}); err != nil {
			t.Fatal(err)
		}
		if rules, _ := c.store.RulesToQueue(c.ctx, d, userID); len(rules) != 1 {
			t.Fatalf("a disabled method's rule is queued: %+v", rules)
		}

		if _, err := c.store.VerifiedOwner(c.ctx, db.ContactSMS, phone.Value); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("owner of an unverified number: %v, want not found", err)
		}
		if _, err := d.NewUpdate().Model(phone).Set("verified = ?", true).WherePK().Exec(c.ctx); err != nil {
			t.Fatal(err)
		}
		if owner, err := c.store.VerifiedOwner(c.ctx, db.ContactSMS, phone.Value); err != nil || owner != userID {
			t.Fatalf("owner %d (%v), want %d", owner, err, userID)
		}
		if err := c.store.LockContactMethod(c.ctx, d, phone.ID+1000); err != nil {
			t.Fatalf("locking a missing method: %v", err)
		}
	})
}
