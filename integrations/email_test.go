package integrations_test

import (
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/rules"
)

// TestEmailIntegrationTakesNoSignature checks that an EMAIL integration
// cannot be made to require a webhook signature, which no mail carries,
// on create or update, and that nothing is stored by the refusal.
func TestEmailIntegrationTakesNoSignature(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		name, typ, secret := "mail", rules.TypeEmail, "a-secret-long-enough-for-hmac"
		_, err := c.svc.CreateIntegration(c.ctx, integrations.IntegrationInput{Name: &name, Type: &typ, SignatureSecret: &secret})
		wantFieldError(t, err, "signatureSecret")
		if n := c.rows((*db.Integration)(nil)); n != 0 {
			t.Fatalf("%d integrations after the refused create", n)
		}
		integ, err := c.svc.CreateIntegration(c.ctx, integrations.IntegrationInput{Name: &name, Type: &typ})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.svc.UpdateIntegration(c.ctx, integ.ID, integrations.IntegrationInput{SignatureSecret: &secret})
		wantFieldError(t, err, "signatureSecret")
		stored, err := c.svc.Integration(c.ctx, integ.ID)
		if err != nil || stored.SignatureSecret != "" {
			t.Fatalf("after the refused update: %+v, %v", stored, err)
		}
	})
}
