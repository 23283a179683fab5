package alerting_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/oncall"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/rules"
	"github.com/klaxonhq/klaxon/schedules"
)

// auditTrail reads the entries recorded since it last looked.
type auditTrail struct {
	t    *testing.T
	log  *audit.Log
	seen int
}

func (a *auditTrail) next() []*audit.Entry {
	a.t.Helper()
	fresh, err := a.log.Since(context.Background(), a.seen)
	if err != nil {
		a.t.Fatal(err)
	}
	if len(fresh) > 0 {
		a.seen = fresh[len(fresh)-1].ID
	}
	return fresh
}

// one reads the single entry recorded since it last looked, and checks
// what it is about and who made it.
func (a *auditTrail) one(typ audit.EntityType, id int, action audit.Action, actor string) *audit.Entry {
	a.t.Helper()
	fresh := a.next()
	if len(fresh) != 1 {
		a.t.Fatalf("%d new entries, want one %s of %s %d: %+v", len(fresh), action, typ, id, fresh)
	}
	e := fresh[0]
	if e.EntityType != typ || e.EntityID != id || e.Action != action || e.Actor != actor {
		a.t.Fatalf("entry %+v, want %s of %s %d by %s", e, action, typ, id, actor)
	}
	return e
}

func (a *auditTrail) none(what string) {
	a.t.Helper()
	if fresh := a.next(); len(fresh) > 0 {
		a.t.Fatalf("%s: recorded %+v, want nothing", what, fresh[0])
	}
}

// wantChanges checks that e recorded exactly the fields of want, each
// with the given {"from","to"} JSON (objects within with their keys
// sorted), or anything for "*".
func wantChanges(t *testing.T, e *audit.Entry, want map[string]string) {
	t.Helper()
	var got map[string]json.RawMessage
	if err := json.Unmarshal([]byte(e.Changes), &got); err != nil {
		t.Fatalf("changes %q: %v", e.Changes, err)
	}
	for field, w := range want {
		g, ok := got[field]
		if !ok {
			t.Errorf("%s %s: %s missing from %s", e.Action, e.EntityType, field, e.Changes)
			continue
		}
		if w != "*" && string(g) != w {
			t.Errorf("%s %s: %s is %s, want %s", e.Action, e.EntityType, field, g, w)
		}
	}
	for field := range got {
		if _, ok := want[field]; !ok {
			t.Errorf("%s %s: %s recorded, but it did not change: %s", e.Action, e.EntityType, field, e.Changes)
		}
	}
}

// jan is 2026-01-<day> at hh:mm UTC.
func jan(day, hh, mm int) time.Time {
	return time.Date(2026, time.January, day, hh, mm, 0, 0, time.UTC)
}

func daily(handoff time.Time, participants ...int) oncall.Layer {
	return oncall.Layer{Name: "daily", ShiftLength: 1, ShiftUnit: oncall.UnitDays, HandoffAt: handoff, ParticipantIDs: participants}
}

func TestAuditOfConfiguration(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		a := c.addUser("a")
		b := c.addUser("b")
		ctx := audit.WithActor(context.Background(), a, "a@example.com")
		trail := &auditTrail{t: t, log: audit.NewLog(d)}
		recipients := []policies.StepInput{{Targets: []db.Target{{Type: db.TargetRecipients}}}}

		// Escalation policies.
		p, err := c.policies.CreateEscalationPolicy(ctx, policies.PolicyInput{Name: ptr("Primary"), Steps: recipients})
		if err != nil {
			t.Fatal(err)
		}
		e := trail.one(audit.EscalationPolicy, p.ID, audit.Created, "a@example.com")
		if e.ActorUserID == nil || *e.ActorUserID != a {
			t.Errorf("actor user %v, want %d", e.ActorUserID, a)
		}
		wantChanges(t, e, map[string]string{
			"name": `{"to":"Primary"}`, "description": `{"to":""}`, "repeat": `{"to":0}`,
			"steps": `{"to":[{"delayMinutes":0,"targets":[{"type":"RECIPIENTS"}]}]}`, "ackTimeoutMinutes": `{"to":null}`,
		})
		if _, err := c.policies.UpdateEscalationPolicy(ctx, p.ID, policies.PolicyInput{Repeat: ptr(2), Steps: recipients}); err != nil {
			t.Fatal(err)
		}
		wantChanges(t, trail.one(audit.EscalationPolicy, p.ID, audit.Updated, "a@example.com"), map[string]string{"repeat": `{"from":0,"to":2}`})
		if _, err := c.policies.UpdateEscalationPolicy(ctx, p.ID, policies.PolicyInput{AckTimeoutMinutes: ptr(30)}); err != nil {
			t.Fatal(err)
		}
		wantChanges(t, trail.one(audit.EscalationPolicy, p.ID, audit.Updated, "a@example.com"), map[string]string{"ackTimeoutMinutes": `{"from":null,"to":30}`})
		if _, err := c.policies.CreateEscalationPolicy(ctx, policies.PolicyInput{Name: ptr("Primary"), Steps: recipients}); err == nil {
			t.Fatal("a second policy named Primary was created")
		}
		trail.none("a policy refused by the unique name")
		if _, err := c.policies.UpdateEscalationPolicy(ctx, p.ID, policies.PolicyInput{Name: ptr("Renamed"), Steps: []policies.StepInput{
			{Targets: []db.Target{{Type: db.TargetUser, ID: 9999}}},
		}}); err == nil {
			t.Fatal("a step targeting a missing user was stored")
		}
		trail.none("a policy update refused inside its transaction")

		// Integrations, with the ruleset made from the preset.
		integ, err := c.integrations.CreateIntegration(ctx, integrations.IntegrationInput{
			Name: ptr("Scanner"), Type: ptr(rules.TypeDetectify), EscalationPolicyID: &p.ID,
			SignatureSecret: ptr("first-secret-0123456789"), RecipientUserIDs: []int{b},
		})
		if err != nil {
			t.Fatal(err)
		}
		created := trail.next()
		if len(created) != 2 || created[0].EntityType != audit.Ruleset || created[0].EntityID != *integ.RulesetID || created[0].Action != audit.Created {
			t.Fatalf("creating an integration recorded %+v, want its ruleset then itself", created)
		}
		e = created[1]
		if e.EntityType != audit.Integration || e.EntityID != integ.ID || e.Action != audit.Created {
			t.Fatalf("entry %+v, want the integration created", e)
		}
		wantChanges(t, e, map[string]string{
			"name": `{"to":"Scanner"}`, "type": `{"to":"DETECTIFY"}`, "enabled": `{"to":true}`,
			"token": `{"to":"[redacted]"}`, "signatureSecret": `{"to":"[redacted]"}`,
			"rulesetId": "*", "escalationPolicyId": `{"to":` + itoa(p.ID) + `}`, "mapping": "*",
			"rateLimitPerMinute": `{"to":null}`, "recipientUserIds": `{"to":[` + itoa(b) + `]}`, "recipientGroupIds": `{"to":[]}`,
			"pageDelayMinutes": `{"to":0}`, "autoCloseAfterMinutes": `{"to":null}`, "regressionWindowDays": `{"to":90}`,
			"routingKey": `{"to":"[redacted]"}`,
		})
		for _, secret := range []string{integ.Token, "first-secret-0123456789"} {
			if containsText(trail, secret) {
				t.Errorf("the audit log holds a secret %q", secret)
			}
		}

		if _, err := c.integrations.UpdateIntegration(ctx, integ.ID, integrations.IntegrationInput{
			Name: ptr("Web scanner"), SignatureSecret: ptr("second-secret-0123456789"), RecipientUserIDs: []int{b},
		}); err != nil {
			t.Fatal(err)
		}
		wantChanges(t, trail.one(audit.Integration, integ.ID, audit.Updated, "a@example.com"), map[string]string{
			"name": `{"from":"Scanner","to":"Web scanner"}`, "signatureSecret": `{"from":"[redacted]","to":"[changed]"}`,
		})
		if _, err := c.integrations.UpdateIntegration(ctx, integ.ID, integrations.IntegrationInput{Name: ptr("Lost"), RulesetID: ptr(9999)}); err == nil {
			t.Fatal("an integration was pointed at a missing ruleset")
		}
		trail.none("an integration update refused inside its transaction")
		if _, err := c.integrations.UpdateIntegration(ctx, integ.ID, integrations.IntegrationInput{SignatureSecret: ptr("")}); err != nil {
			t.Fatal(err)
		}
		wantChanges(t, trail.one(audit.Integration, integ.ID, audit.Updated, "a@example.com"), map[string]string{
			"signatureSecret": `{"from":"[redacted]","to":""}`,
		})
		if _, err := c.integrations.UpdateIntegration(ctx, integ.ID, integrations.IntegrationInput{PageDelayMinutes: ptr(5), AutoCloseAfterMinutes: ptr(60)}); err != nil {
			t.Fatal(err)
		}
		wantChanges(t, trail.one(audit.Integration, integ.ID, audit.Updated, "a@example.com"), map[string]string{
			"pageDelayMinutes": `{"from":0,"to":5}`, "autoCloseAfterMinutes": `{"from":null,"to":60}`,
		})
		if _, err := c.integrations.UpdateIntegration(ctx, integ.ID, integrations.IntegrationInput{ScanHeartbeatHours: ptr(24)}); err != nil {
			t.Fatal(err)
		}
		wantChanges(t, trail.one(audit.Integration, integ.ID, audit.Updated, "a@example.com"), map[string]string{
			"scanHeartbeatHours": `{"to":24}`,
		})
		if _, err := c.integrations.UpdateIntegration(ctx, integ.ID, integrations.IntegrationInput{ScanHeartbeatHours: ptr(0)}); err == nil {
			t.Fatal("scanHeartbeatHours 0 was taken")
		}
		trail.none("a refused scanHeartbeatHours")
		if _, err := c.integrations.UpdateIntegration(ctx, integ.ID, integrations.IntegrationInput{ClearScanHeartbeat: true}); err != nil {
			t.Fatal(err)
		}
		wantChanges(t, trail.one(audit.Integration, integ.ID, audit.Updated, "a@example.com"), map[string]string{
			"scanHeartbeatHours": `{"from":24}`,
		})
		rotated, err := c.integrations.RotateIntegrationToken(ctx, integ.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rotated.Token == integ.Token {
			t.Fatal("the token did not change")
		}
		wantChanges(t, trail.one(audit.Integration, integ.ID, audit.TokenRotated, "a@example.com"), map[string]string{
			"token": `{"from":"[redacted]","to":"[changed]"}`, "routingKey": `{"from":"[redacted]","to":"[changed]"}`,
		})
		if containsText(trail, rotated.Token) {
			t.Error("the audit log holds the new token")
		}
		if rotated.RoutingKey == integ.RoutingKey || len(rotated.RoutingKey) != 32 {
			t.Fatalf("routing key %q rotated to %q, want a new one of 32 characters", integ.RoutingKey, rotated.RoutingKey)
		}
		if containsText(trail, rotated.RoutingKey) || containsText(trail, integ.RoutingKey) {
			t.Error("the audit log holds a routing key")
		}

		// Rulesets: replacing the rules with equal ones changes nothing.
		rs, err := c.integrations.Ruleset(ctx, *integ.RulesetID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.integrations.UpdateRuleset(ctx, rs.ID, integrations.RulesetInput{Rules: rs.RuleSpecs()}); err != nil {
			t.Fatal(err)
		}
		trail.none("rules replaced by equal ones")
		if _, err := c.integrations.UpdateRuleset(ctx, rs.ID, integrations.RulesetInput{Description: ptr("Edited."), Rules: rs.RuleSpecs()[:1]}); err != nil {
			t.Fatal(err)
		}
		e = trail.one(audit.Ruleset, rs.ID, audit.Updated, "a@example.com")
		wantChanges(t, e, map[string]string{"description": "*", "rules": "*"})
		var rulesChange struct{ From, To []rules.Rule }
		if err := json.Unmarshal(changeOf(t, e, "rules"), &rulesChange); err != nil {
			t.Fatal(err)
		}
		if len(rulesChange.From) != len(rs.Rules) || len(rulesChange.To) != 1 || rulesChange.To[0].Name != rs.Rules[0].Name {
			t.Errorf("rules change %+v", rulesChange)
		}

		// Schedules, and their overrides recorded on them.
		sched, err := c.schedules.CreateSchedule(ctx, schedules.ScheduleInput{Name: ptr("Week"), TimeZone: ptr("UTC"), Layers: []oncall.Layer{daily(jan(5, 9, 0), a, b)}})
		if err != nil {
			t.Fatal(err)
		}
		wantChanges(t, trail.one(audit.Schedule, sched.ID, audit.Created, "a@example.com"), map[string]string{
			"name": `{"to":"Week"}`, "description": `{"to":""}`, "timeZone": `{"to":"UTC"}`,
			"layers": `{"to":[{"handoffAt":"2026-01-05T09:00:00Z","name":"daily","participantIds":[` +
				itoa(a) + `,` + itoa(b) + `],"restrictions":[],"shiftLength":1,"shiftUnit":"DAYS"}]}`,
		})
		if _, err := c.schedules.UpdateSchedule(ctx, sched.ID, schedules.ScheduleInput{TimeZone: ptr("Europe/Berlin")}); err != nil {
			t.Fatal(err)
		}
		wantChanges(t, trail.one(audit.Schedule, sched.ID, audit.Updated, "a@example.com"), map[string]string{
			"timeZone": `{"from":"UTC","to":"Europe/Berlin"}`,
		})
		if _, err := c.schedules.UpdateSchedule(ctx, sched.ID, schedules.ScheduleInput{TimeZone: ptr("Mars/Olympus")}); err == nil {
			t.Fatal("an unknown time zone was stored")
		}
		trail.none("a schedule update refused")
		o, err := c.schedules.CreateOverride(ctx, schedules.OverrideInput{ScheduleID: sched.ID, UserID: b, ReplaceUserID: &a, Start: jan(6, 9, 0), End: jan(7, 9, 0)})
		if err != nil {
			t.Fatal(err)
		}
		override := `{"end":"2026-01-07T09:00:00Z","id":` + itoa(o.ID) + `,"replaceUserId":` + itoa(a) + `,"start":"2026-01-06T09:00:00Z","userId":` + itoa(b) + `}`
		wantChanges(t, trail.one(audit.Schedule, sched.ID, audit.OverrideCreated, "a@example.com"), map[string]string{"override": `{"to":` + override + `}`})
		if err := c.schedules.DeleteOverride(ctx, o.ID); err != nil {
			t.Fatal(err)
		}
		wantChanges(t, trail.one(audit.Schedule, sched.ID, audit.OverrideDeleted, "a@example.com"), map[string]string{"override": `{"from":` + override + `}`})

		// Deletions keep the whole entity as it was; changes without an
		// actor in the context are the system's.
		if err := c.integrations.DeleteIntegration(context.Background(), integ.ID); err != nil {
			t.Fatal(err)
		}
		e = trail.one(audit.Integration, integ.ID, audit.Deleted, audit.SystemName)
		if e.ActorUserID != nil {
			t.Errorf("system change recorded against user %d", *e.ActorUserID)
		}
		wantChanges(t, e, map[string]string{
			"name": `{"from":"Web scanner"}`, "type": "*", "enabled": "*", "token": `{"from":"[redacted]"}`, "signatureSecret": `{"from":""}`,
			"rulesetId": "*", "escalationPolicyId": "*", "mapping": "*", "rateLimitPerMinute": "*",
			"recipientUserIds": `{"from":[` + itoa(b) + `]}`, "recipientGroupIds": "*",
			"pageDelayMinutes": `{"from":5}`, "autoCloseAfterMinutes": `{"from":60}`, "regressionWindowDays": `{"from":90}`,
			"routingKey": `{"from":"[redacted]"}`,
		})
		if err := c.integrations.DeleteIntegration(ctx, integ.ID); err == nil {
			t.Fatal("deleted an integration twice")
		}
		trail.none("deleting a missing integration")
		if err := c.integrations.DeleteRuleset(ctx, rs.ID); err != nil {
			t.Fatal(err)
		}
		trail.one(audit.Ruleset, rs.ID, audit.Deleted, "a@example.com")
		if err := c.policies.DeleteEscalationPolicy(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		trail.one(audit.EscalationPolicy, p.ID, audit.Deleted, "a@example.com")
		if err := c.schedules.DeleteSchedule(ctx, sched.ID); err != nil {
			t.Fatal(err)
		}
		wantChanges(t, trail.one(audit.Schedule, sched.ID, audit.Deleted, "a@example.com"), map[string]string{
			"name": `{"from":"Week"}`, "description": "*", "timeZone": `{"from":"Europe/Berlin"}`, "layers": "*",
		})
	})
}

func changeOf(t *testing.T, e *audit.Entry, field string) json.RawMessage {
	t.Helper()
	var got map[string]json.RawMessage
	if err := json.Unmarshal([]byte(e.Changes), &got); err != nil {
		t.Fatal(err)
	}
	return got[field]
}

// containsText reports whether any entry so far mentions s.
func containsText(a *auditTrail, s string) bool {
	a.t.Helper()
	entries, _, _, err := a.log.List(context.Background(), audit.Filter{}, db.PageRequest{First: 500})
	if err != nil {
		a.t.Fatal(err)
	}
	return slices.ContainsFunc(entries, func(e *audit.Entry) bool { return strings.Contains(e.Changes, s) })
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestAuditEntryAndChangeCommitTogether breaks one table or the other in
// the middle of a change: neither the change nor its entry may stay.
func TestAuditEntryAndChangeCommitTogether(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		u := c.addUser("u")
		ctx := audit.WithActor(context.Background(), u, "u@example.com")
		trail := &auditTrail{t: t, log: audit.NewLog(d)}
		rename := func(from, to string) {
			t.Helper()
			if _, err := d.ExecContext(ctx, "ALTER TABLE "+from+" RENAME TO "+to); err != nil {
				t.Fatal(err)
			}
		}

		// The entry cannot be written: the change is not kept.
		rename("audit_log", "audit_log_away")
		_, err := c.policies.CreateEscalationPolicy(ctx, policies.PolicyInput{Name: ptr("Unrecorded"), Steps: []policies.StepInput{
			{Targets: []db.Target{{Type: db.TargetRecipients}}},
		}})
		rename("audit_log_away", "audit_log")
		if err == nil {
			t.Fatal("a policy was created with no audit log to record it in")
		}
		if n := c.rows((*db.EscalationPolicy)(nil)); n != 0 {
			t.Fatalf("%d policies stored without their audit entry", n)
		}

		// The change fails after an entry was written (the preset ruleset
		// is recorded before the integration's recipients are stored):
		// the entry is not kept.
		rename("integration_recipients", "recipients_away")
		_, err = c.integrations.CreateIntegration(ctx, integrations.IntegrationInput{Name: ptr("Half"), Type: ptr(rules.TypeGeneric), RecipientUserIDs: []int{u}})
		rename("recipients_away", "integration_recipients")
		if err == nil {
			t.Fatal("an integration was created without its recipients")
		}
		if n := c.rows((*db.Ruleset)(nil)); n != 0 {
			t.Fatalf("%d rulesets left by a failed integration", n)
		}
		trail.none("a change that failed after recording")
	})
}

func (c *config) schedule(name string, layers ...oncall.Layer) *db.Schedule {
	c.t.Helper()
	sched, err := c.schedules.CreateSchedule(c.ctx, schedules.ScheduleInput{Name: &name, TimeZone: ptr("UTC"), Layers: layers})
	if err != nil {
		c.t.Fatalf("create schedule %s: %v", name, err)
	}
	return sched
}
