package alerting_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/rules"
)

func TestCreateEscalationPolicy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		a := c.addUser("a")
		g := c.addGroup("ops", a)
		sched := c.schedule("Rotation", daily(jan(5, 9, 0), a))
		if _, err := c.svc.CreateEscalationPolicy(c.ctx, alerting.PolicyInput{Name: ptr("Taken"), Steps: []alerting.StepInput{
			{Targets: []db.Target{{Type: db.TargetRecipients}}},
		}}); err != nil {
			t.Fatal(err)
		}

		steps := []alerting.StepInput{
			{DelayMinutes: 5, Targets: []db.Target{{Type: db.TargetSchedule, ID: sched.ID}, {Type: db.TargetRecipients}}},
			{DelayMinutes: 15, Targets: []db.Target{{Type: db.TargetUser, ID: a}, {Type: db.TargetGroup, ID: g}}},
		}
		withStep := func(i int, edit func(s *alerting.StepInput)) []alerting.StepInput {
			out := make([]alerting.StepInput, len(steps))
			for j, s := range steps {
				out[j] = alerting.StepInput{DelayMinutes: s.DelayMinutes, Targets: slices.Clone(s.Targets)}
			}
			edit(&out[i])
			return out
		}
		cases := []struct {
			name      string
			in        alerting.PolicyInput
			wantField string
		}{
			{"no name", alerting.PolicyInput{Steps: steps}, "name"},
			{"name in use", alerting.PolicyInput{Name: ptr("Taken"), Steps: steps}, "name"},
			{"repeat too high", alerting.PolicyInput{Name: ptr("x"), Repeat: ptr(11), Steps: steps}, "repeat"},
			{"negative repeat", alerting.PolicyInput{Name: ptr("x"), Repeat: ptr(-1), Steps: steps}, "repeat"},
			{"no steps", alerting.PolicyInput{Name: ptr("x")}, "steps"},
			{"empty steps", alerting.PolicyInput{Name: ptr("x"), Steps: []alerting.StepInput{}}, "steps"},
			{"step without targets", alerting.PolicyInput{Name: ptr("x"),
				Steps: withStep(1, func(s *alerting.StepInput) { s.Targets = nil })}, "steps[1].targets"},
			{"delay over a day", alerting.PolicyInput{Name: ptr("x"),
				Steps: withStep(1, func(s *alerting.StepInput) { s.DelayMinutes = 1441 })}, "steps[1].delayMinutes"},
			{"negative delay", alerting.PolicyInput{Name: ptr("x"),
				Steps: withStep(0, func(s *alerting.StepInput) { s.DelayMinutes = -1 })}, "steps[0].delayMinutes"},
			{"unknown target type", alerting.PolicyInput{Name: ptr("x"),
				Steps: withStep(0, func(s *alerting.StepInput) { s.Targets[1].Type = "TEAM" })}, "steps[0].targets[1].type"},
			{"user without id", alerting.PolicyInput{Name: ptr("x"),
				Steps: withStep(1, func(s *alerting.StepInput) { s.Targets[0].ID = 0 })}, "steps[1].targets[0].id"},
			{"recipients with an id", alerting.PolicyInput{Name: ptr("x"),
				Steps: withStep(0, func(s *alerting.StepInput) { s.Targets[1].ID = 3 })}, "steps[0].targets[1].id"},
			{"unknown user", alerting.PolicyInput{Name: ptr("x"),
				Steps: withStep(1, func(s *alerting.StepInput) { s.Targets[0].ID = a + 1000 })}, "steps[1].targets[0].id"},
			{"unknown group", alerting.PolicyInput{Name: ptr("x"),
				Steps: withStep(1, func(s *alerting.StepInput) { s.Targets[1].ID = g + 1000 })}, "steps[1].targets[1].id"},
			{"unknown schedule", alerting.PolicyInput{Name: ptr("x"),
				Steps: withStep(0, func(s *alerting.StepInput) { s.Targets[0].ID = sched.ID + 1000 })}, "steps[0].targets[0].id"},
			{"repeated target", alerting.PolicyInput{Name: ptr("x"),
				Steps: withStep(1, func(s *alerting.StepInput) { s.Targets[1] = s.Targets[0] })}, "steps[1].targets[1]"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				policies, stored := c.rows((*db.EscalationPolicy)(nil)), c.rows((*db.EscalationStep)(nil))
				_, err := c.svc.CreateEscalationPolicy(c.ctx, tc.in)
				wantFieldError(t, err, tc.wantField)
				if c.rows((*db.EscalationPolicy)(nil)) != policies || c.rows((*db.EscalationStep)(nil)) != stored {
					t.Fatal("a refused create stored rows")
				}
			})
		}

		created, err := c.svc.CreateEscalationPolicy(c.ctx, alerting.PolicyInput{Name: ptr(" Default "), Description: ptr("Business hours first"), Repeat: ptr(2), Steps: steps})
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.svc.EscalationPolicy(c.ctx, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != "Default" || p.Description != "Business hours first" || p.Repeat != 2 || len(p.Steps) != 2 {
			t.Fatalf("stored %+v", p)
		}
		for i, s := range p.Steps {
			if s.Position != i || s.DelayMinutes != steps[i].DelayMinutes || !slices.Equal(s.Targets, steps[i].Targets) {
				t.Fatalf("step %d read back as %+v", i, s)
			}
		}
		infos, err := c.svc.DescribeTargets(c.ctx, append(slices.Clone(p.Steps[0].Targets), p.Steps[1].Targets...))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, info := range infos {
			names = append(names, info.Name)
		}
		if want := []string{"Rotation", "Integration recipients", "a", "ops"}; !slices.Equal(names, want) {
			t.Fatalf("target names %q, want %q", names, want)
		}
	})
}

func TestUpdateAndDeleteEscalationPolicy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		a, b := c.addUser("a"), c.addUser("b")
		p, err := c.svc.CreateEscalationPolicy(c.ctx, alerting.PolicyInput{Name: ptr("Policy"), Steps: []alerting.StepInput{
			{DelayMinutes: 5, Targets: []db.Target{{Type: db.TargetUser, ID: a}}},
			{DelayMinutes: 10, Targets: []db.Target{{Type: db.TargetUser, ID: b}}},
		}})
		if err != nil {
			t.Fatal(err)
		}

		_, err = c.svc.UpdateEscalationPolicy(c.ctx, p.ID, alerting.PolicyInput{Name: ptr("Renamed"), Steps: []alerting.StepInput{
			{DelayMinutes: 1, Targets: []db.Target{{Type: db.TargetUser, ID: b + 1000}}},
		}})
		wantFieldError(t, err, "steps[0].targets[0].id")
		_, err = c.svc.UpdateEscalationPolicy(c.ctx, p.ID, alerting.PolicyInput{Steps: []alerting.StepInput{}})
		wantFieldError(t, err, "steps")
		if kept, _ := c.svc.EscalationPolicy(c.ctx, p.ID); kept.Name != "Policy" || len(kept.Steps) != 2 {
			t.Fatalf("a refused update changed the policy: %+v", kept)
		}

		renamed, err := c.svc.UpdateEscalationPolicy(c.ctx, p.ID, alerting.PolicyInput{Name: ptr("Renamed"), Repeat: ptr(1)})
		if err != nil {
			t.Fatal(err)
		}
		if renamed.Name != "Renamed" || renamed.Repeat != 1 || len(renamed.Steps) != 2 {
			t.Fatalf("renamed %+v", renamed)
		}
		if _, err := c.svc.UpdateEscalationPolicy(c.ctx, p.ID, alerting.PolicyInput{Steps: []alerting.StepInput{
			{DelayMinutes: 30, Targets: []db.Target{{Type: db.TargetRecipients}}},
		}}); err != nil {
			t.Fatal(err)
		}
		replaced, err := c.svc.EscalationPolicy(c.ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(replaced.Steps) != 1 || replaced.Steps[0].DelayMinutes != 30 || replaced.Steps[0].Targets[0].Type != db.TargetRecipients {
			t.Fatalf("replaced steps %+v", replaced.Steps)
		}
		if _, err := c.svc.UpdateEscalationPolicy(c.ctx, p.ID+1000, alerting.PolicyInput{Name: ptr("x")}); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("update of an unknown policy: %v, want not found", err)
		}

		name, typ := "Uses the policy", rules.TypeGeneric
		integ, err := c.svc.CreateIntegration(c.ctx, alerting.IntegrationInput{Name: &name, Type: &typ, EscalationPolicyID: &p.ID})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.svc.DeleteEscalationPolicy(c.ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		if c.rows((*db.EscalationStep)(nil)) != 0 {
			t.Fatal("steps outlived their policy")
		}
		if after, err := c.svc.Integration(c.ctx, integ.ID); err != nil || after.EscalationPolicyID != nil {
			t.Fatalf("integration after its policy was deleted: %+v, %v", after, err)
		}
		if err := c.svc.DeleteEscalationPolicy(c.ctx, p.ID); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("second delete: %v, want not found", err)
		}
	})
}

func TestIntegrationPolicyAndRecipients(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		a, b := c.addUser("a"), c.addUser("b")
		g := c.addGroup("ops", a)
		p, err := c.svc.CreateEscalationPolicy(c.ctx, alerting.PolicyInput{Name: ptr("Policy"), Steps: []alerting.StepInput{
			{Targets: []db.Target{{Type: db.TargetRecipients}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		typ := rules.TypeDetectify
		cases := []struct {
			name      string
			in        alerting.IntegrationInput
			wantField string
		}{
			{"unknown policy", alerting.IntegrationInput{EscalationPolicyID: ptr(p.ID + 1000)}, "escalationPolicyId"},
			{"unknown user", alerting.IntegrationInput{RecipientUserIDs: []int{a, b + 1000}}, "recipientUserIds[1]"},
			{"unknown group", alerting.IntegrationInput{RecipientGroupIDs: []int{g + 1000}}, "recipientGroupIds[0]"},
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

		integ, err := c.svc.CreateIntegration(c.ctx, alerting.IntegrationInput{
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
		_, err = c.svc.UpdateIntegration(c.ctx, integ.ID, alerting.IntegrationInput{Name: ptr("Renamed"), RecipientUserIDs: []int{b + 1000}})
		wantFieldError(t, err, "recipientUserIds[0]")
		if u, _ := recipients(); !slices.Equal(u, []int{a, b}) {
			t.Fatalf("a refused update changed recipients: %v", u)
		}

		// Nil lists keep the recipients; an empty list clears its kind.
		if _, err := c.svc.UpdateIntegration(c.ctx, integ.ID, alerting.IntegrationInput{Name: ptr("Renamed")}); err != nil {
			t.Fatal(err)
		}
		if u, gs := recipients(); len(u) != 2 || len(gs) != 1 {
			t.Fatalf("an update without recipients changed them: %v %v", u, gs)
		}
		updated, err := c.svc.UpdateIntegration(c.ctx, integ.ID, alerting.IntegrationInput{
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
