package policies_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/rules"
)

func TestCreateEscalationPolicy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		a := c.addUser("a")
		g := c.addGroup("ops", a)
		sched := c.schedule("Rotation", daily(jan(5, 9, 0), a))
		if _, err := c.svc.CreateEscalationPolicy(c.ctx, policies.PolicyInput{Name: ptr("Taken"), Steps: []policies.StepInput{
			{Targets: []db.Target{{Type: db.TargetRecipients}}},
		}}); err != nil {
			t.Fatal(err)
		}

		steps := []policies.StepInput{
			{DelayMinutes: 5, Targets: []db.Target{{Type: db.TargetSchedule, ID: sched.ID}, {Type: db.TargetRecipients}}},
			{DelayMinutes: 15, Targets: []db.Target{{Type: db.TargetUser, ID: a}, {Type: db.TargetGroup, ID: g}}},
		}
		withStep := func(i int, edit func(s *policies.StepInput)) []policies.StepInput {
			out := make([]policies.StepInput, len(steps))
			for j, s := range steps {
				out[j] = policies.StepInput{DelayMinutes: s.DelayMinutes, Targets: slices.Clone(s.Targets)}
			}
			edit(&out[i])
			return out
		}
		cases := []struct {
			name      string
			in        policies.PolicyInput
			wantField string
		}{
			{"no name", policies.PolicyInput{Steps: steps}, "name"},
			{"name in use", policies.PolicyInput{Name: ptr("Taken"), Steps: steps}, "name"},
			{"repeat too high", policies.PolicyInput{Name: ptr("x"), Repeat: ptr(11), Steps: steps}, "repeat"},
			{"negative repeat", policies.PolicyInput{Name: ptr("x"), Repeat: ptr(-1), Steps: steps}, "repeat"},
			{"no steps", policies.PolicyInput{Name: ptr("x")}, "steps"},
			{"ack timeout of zero", policies.PolicyInput{Name: ptr("x"), AckTimeoutMinutes: ptr(0), Steps: steps}, "ackTimeoutMinutes"},
			{"ack timeout over a day", policies.PolicyInput{Name: ptr("x"), AckTimeoutMinutes: ptr(1441), Steps: steps}, "ackTimeoutMinutes"},
			{"empty steps", policies.PolicyInput{Name: ptr("x"), Steps: []policies.StepInput{}}, "steps"},
			{"step without targets", policies.PolicyInput{Name: ptr("x"),
				Steps: withStep(1, func(s *policies.StepInput) { s.Targets = nil })}, "steps[1].targets"},
			{"delay over a day", policies.PolicyInput{Name: ptr("x"),
				Steps: withStep(1, func(s *policies.StepInput) { s.DelayMinutes = 1441 })}, "steps[1].delayMinutes"},
			{"negative delay", policies.PolicyInput{Name: ptr("x"),
				Steps: withStep(0, func(s *policies.StepInput) { s.DelayMinutes = -1 })}, "steps[0].delayMinutes"},
			{"unknown target type", policies.PolicyInput{Name: ptr("x"),
				Steps: withStep(0, func(s *policies.StepInput) { s.Targets[1].Type = "TEAM" })}, "steps[0].targets[1].type"},
			{"user without id", policies.PolicyInput{Name: ptr("x"),
				Steps: withStep(1, func(s *policies.StepInput) { s.Targets[0].ID = 0 })}, "steps[1].targets[0].id"},
			{"recipients with an id", policies.PolicyInput{Name: ptr("x"),
				Steps: withStep(0, func(s *policies.StepInput) { s.Targets[1].ID = 3 })}, "steps[0].targets[1].id"},
			{"unknown user", policies.PolicyInput{Name: ptr("x"),
				Steps: withStep(1, func(s *policies.StepInput) { s.Targets[0].ID = a + 1000 })}, "steps[1].targets[0].id"},
			{"unknown group", policies.PolicyInput{Name: ptr("x"),
				Steps: withStep(1, func(s *policies.StepInput) { s.Targets[1].ID = g + 1000 })}, "steps[1].targets[1].id"},
			{"unknown schedule", policies.PolicyInput{Name: ptr("x"),
				Steps: withStep(0, func(s *policies.StepInput) { s.Targets[0].ID = sched.ID + 1000 })}, "steps[0].targets[0].id"},
			{"repeated target", policies.PolicyInput{Name: ptr("x"),
				Steps: withStep(1, func(s *policies.StepInput) { s.Targets[1] = s.Targets[0] })}, "steps[1].targets[1]"},
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

		created, err := c.svc.CreateEscalationPolicy(c.ctx, policies.PolicyInput{Name: ptr(" Default "), Description: ptr("Business hours first"), Repeat: ptr(2), Steps: steps})
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
		p, err := c.svc.CreateEscalationPolicy(c.ctx, policies.PolicyInput{Name: ptr("Policy"), Steps: []policies.StepInput{
			{DelayMinutes: 5, Targets: []db.Target{{Type: db.TargetUser, ID: a}}},
			{DelayMinutes: 10, Targets: []db.Target{{Type: db.TargetUser, ID: b}}},
		}})
		if err != nil {
			t.Fatal(err)
		}

		_, err = c.svc.UpdateEscalationPolicy(c.ctx, p.ID, policies.PolicyInput{Name: ptr("Renamed"), Steps: []policies.StepInput{
			{DelayMinutes: 1, Targets: []db.Target{{Type: db.TargetUser, ID: b + 1000}}},
		}})
		wantFieldError(t, err, "steps[0].targets[0].id")
		_, err = c.svc.UpdateEscalationPolicy(c.ctx, p.ID, policies.PolicyInput{Steps: []policies.StepInput{}})
		wantFieldError(t, err, "steps")
		if kept, _ := c.svc.EscalationPolicy(c.ctx, p.ID); kept.Name != "Policy" || len(kept.Steps) != 2 {
			t.Fatalf("a refused update changed the policy: %+v", kept)
		}

		renamed, err := c.svc.UpdateEscalationPolicy(c.ctx, p.ID, policies.PolicyInput{Name: ptr("Renamed"), Repeat: ptr(1)})
		if err != nil {
			t.Fatal(err)
		}
		if renamed.Name != "Renamed" || renamed.Repeat != 1 || len(renamed.Steps) != 2 {
			t.Fatalf("renamed %+v", renamed)
		}
		if _, err := c.svc.UpdateEscalationPolicy(c.ctx, p.ID, policies.PolicyInput{Steps: []policies.StepInput{
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
		if _, err := c.svc.UpdateEscalationPolicy(c.ctx, p.ID+1000, policies.PolicyInput{Name: ptr("x")}); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("update of an unknown policy: %v, want not found", err)
		}

		name, typ := "Uses the policy", rules.TypeGeneric
		integ, err := c.integrations.CreateIntegration(c.ctx, integrations.IntegrationInput{Name: &name, Type: &typ, EscalationPolicyID: &p.ID})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.svc.DeleteEscalationPolicy(c.ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		if c.rows((*db.EscalationStep)(nil)) != 0 {
			t.Fatal("steps outlived their policy")
		}
		if after, err := c.integrations.Integration(c.ctx, integ.ID); err != nil || after.EscalationPolicyID != nil {
			t.Fatalf("integration after its policy was deleted: %+v, %v", after, err)
		}
		if err := c.svc.DeleteEscalationPolicy(c.ctx, p.ID); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("second delete: %v, want not found", err)
		}
	})
}
