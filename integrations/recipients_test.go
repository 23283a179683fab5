package integrations_test

import (
	"slices"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/rules"
)

func TestIntegrationPolicyAndRecipients(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		a, b := c.addUser("a"), c.addUser("b")
		g := c.addGroup("ops", a)
		p, err := c.policies.CreateEscalationPolicy(c.ctx, policies.PolicyInput{Name: ptr("Policy"), Steps: []policies.StepInput{
			{Targets: []db.Target{{Type: db.TargetRecipients}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		typ := rules.TypeDetectify
		cases := []struct {
			name      string
			in        integrations.IntegrationInput
			wantField string
		}{
			{"unknown policy", integrations.IntegrationInput{EscalationPolicyID: ptr(p.ID + 1000)}, "escalationPolicyId"},
			{"unknown user", integrations.IntegrationInput{RecipientUserIDs: []int{a, b + 1000}}, "recipientUserIds[1]"},
			{"unknown group", integrations.IntegrationInput{RecipientGroupIDs: []int{g + 1000}}, "recipientGroupIds[0]"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				integrations, rulesets := c.rows((*db.Integration)(nil)), c.rows((*db.Ruleset)(nil))
				in := tc.in
				in.Name, in.Type = ptr("Refused"), &typ
				_, err := c.svc.CreateIntegration(c.ctx, in)
				wantFieldError(t, err, tc.wantField)
				if c.rows((*db.Integration)(nil)) != integrations || c.rows((*db.Ruleset)(nil)) != rulesets || c.rows((*db.IntegrationRecipient)(nil)) != 0 {
					t.Fatal("a refused create stored rows")
				}
			})
		}

		integ, err := c.svc.CreateIntegration(c.ctx, integrations.IntegrationInput{
			Name: ptr("Detectify"), Type: &typ, EscalationPolicyID: &p.ID,
			RecipientUserIDs: []int{b, a, b}, RecipientGroupIDs: []int{g},
		})
		if err != nil {
			t.Fatal(err)
		}
		if integ.EscalationPolicyID == nil || *integ.EscalationPolicyID != p.ID {
			t.Fatalf("policy %v, want %d", integ.EscalationPolicyID, p.ID)
		}
		recipients := func() ([]int, []int) {
			t.Helper()
			users, groups, err := c.svc.IntegrationRecipients(c.ctx, integ.ID)
			if err != nil {
				t.Fatal(err)
			}
			var u, g []int
			for _, x := range users {
				u = append(u, x.ID)
			}
			for _, x := range groups {
				g = append(g, x.ID)
			}
			return u, g
		}
		if u, gs := recipients(); !slices.Equal(u, []int{a, b}) || !slices.Equal(gs, []int{g}) {
			t.Fatalf("recipients %v %v", u, gs)
		}

		// A refused update keeps everything.
		_, err = c.svc.UpdateIntegration(c.ctx, integ.ID, integrations.IntegrationInput{Name: ptr("Renamed"), RecipientUserIDs: []int{b + 1000}})
		wantFieldError(t, err, "recipientUserIds[0]")
		if u, _ := recipients(); !slices.Equal(u, []int{a, b}) {
			t.Fatalf("a refused update changed recipients: %v", u)
		}

		// Nil lists keep the recipients; an empty list clears its kind.
		if _, err := c.svc.UpdateIntegration(c.ctx, integ.ID, integrations.IntegrationInput{Name: ptr("Renamed")}); err != nil {
			t.Fatal(err)
		}
		if u, gs := recipients(); len(u) != 2 || len(gs) != 1 {
			t.Fatalf("an update without recipients changed them: %v %v", u, gs)
		}
		updated, err := c.svc.UpdateIntegration(c.ctx, integ.ID, integrations.IntegrationInput{
			ClearEscalationPolicy: true, RecipientUserIDs: []int{b}, RecipientGroupIDs: []int{},
		})
		if err != nil {
			t.Fatal(err)
		}
		if u, gs := recipients(); !slices.Equal(u, []int{b}) || len(gs) != 0 {
			t.Fatalf("recipients after replace: %v %v", u, gs)
		}
		if updated.EscalationPolicyID != nil {
			t.Fatalf("policy not cleared: %v", *updated.EscalationPolicyID)
		}
		if err := c.svc.DeleteIntegration(c.ctx, integ.ID); err != nil {
			t.Fatal(err)
		}
		if n := c.rows((*db.IntegrationRecipient)(nil)); n != 0 {
			t.Fatalf("%d recipients outlived their integration", n)
		}
	})
}
