package integrations_test

import (
	"errors"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/rules"
)

// Webhook routes are cached by whoever ingests: every change a cached
// route depends on must call the store's change hook.
func TestChangesCallTheHook(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		changed := func(what string, err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if c.changes != 1 {
				t.Fatalf("%s called the change hook %d times, want once", what, c.changes)
			}
			c.changes = 0
		}
		integ, err := c.svc.CreateIntegration(c.ctx, integrations.IntegrationInput{Name: ptr("Scanner"), Type: ptr(rules.TypeGeneric)})
		if err != nil {
			t.Fatal(err)
		}
		c.changes = 0
		_, err = c.svc.UpdateIntegration(c.ctx, integ.ID, integrations.IntegrationInput{Enabled: ptr(false)})
		changed("update integration", err)
		_, err = c.svc.RotateIntegrationToken(c.ctx, integ.ID)
		changed("rotate token", err)
		_, err = c.svc.UpdateRuleset(c.ctx, *integ.RulesetID, integrations.RulesetInput{Description: ptr("Edited.")})
		changed("update ruleset", err)
		changed("delete integration", c.svc.DeleteIntegration(c.ctx, integ.ID))
		changed("delete ruleset", c.svc.DeleteRuleset(c.ctx, *integ.RulesetID))
	})
}

func TestReadsForIngest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		u := c.addUser("u")
		g := c.addGroup("ops", u)
		integ, err := c.svc.CreateIntegration(c.ctx, integrations.IntegrationInput{
			Name: ptr("Scanner"), Type: ptr(rules.TypeDetectify), RecipientUserIDs: []int{u}, RecipientGroupIDs: []int{g},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := c.svc.URL(integ), "https://klaxon.example/webhooks/"+integ.Token; got != want {
			t.Fatalf("URL %q, want %q", got, want)
		}
		found, err := c.svc.IntegrationByToken(c.ctx, integ.Token)
		if err != nil || found.ID != integ.ID {
			t.Fatalf("by token: %v, %v", found, err)
		}
		if _, err := c.svc.IntegrationByToken(c.ctx, "no-such-token"); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("unknown token: %v, want not found", err)
		}
		rs, err := c.svc.RulesetByID(c.ctx, d, *integ.RulesetID)
		if err != nil || len(rs.Rules) == 0 {
			t.Fatalf("preset ruleset %v: %v", rs, err)
		}
		recipients, err := c.svc.RecipientsOf(c.ctx, d, integ.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(recipients) != 2 || recipients[0].Kind != db.TargetGroup || recipients[0].TargetID != g || recipients[1].Kind != db.TargetUser || recipients[1].TargetID != u {
			t.Fatalf("recipients %+v, want group %d and user %d", recipients, g, u)
		}
	})
}
