package alerting_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/invalid"
)

// eventTypes lists the alertEvents types recorded for an alert, in order,
// whether still in the outbox (PostgreSQL) or numbered already.
func (f *engineFixture) eventTypes(alertID int) []string {
	f.t.Helper()
	var types []string
	for _, table := range []string{"event_outbox", "events"} {
		var some []string
		if err := f.d.NewSelect().Table(table).Column("type").Where("alert_id = ? AND kind = 'alert'", alertID).Scan(f.ctx, &some); err != nil {
			f.t.Fatalf("read %s: %v", table, err)
		}
		types = append(types, some...)
	}
	return types
}

func (f *engineFixture) alert(id int) *db.Alert {
	f.t.Helper()
	a, err := f.svc.Alert(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

func (f *engineFixture) jobs(alertID int) int {
	f.t.Helper()
	n, err := f.d.NewSelect().Model((*db.AlertJob)(nil)).Where("alert_id = ?", alertID).Count(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return int(n)
}

// policyOnly stores a policy without giving it to the integration.
func (f *engineFixture) policyOnly(repeat int, steps ...*db.EscalationStep) int {
	now := f.clock.Now()
	p := &db.EscalationPolicy{Name: "manual", Repeat: repeat, CreatedAt: now, UpdatedAt: now}
	f.insert(p)
	for i, s := range steps {
		s.PolicyID, s.Position = p.ID, i
		f.insert(s)
	}
	return p.ID
}

func expectInvalid(t *testing.T, what string, err error, field string) {
	t.Helper()
	var bad *invalid.Field
	if !errors.As(err, &bad) || bad.Name != field {
		t.Fatalf("%s: error %v, want invalid %s", what, err, field)
	}
}

func contains(t *testing.T, lines []string, want ...string) {
	t.Helper()
	all := strings.Join(lines, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Fatalf("lacks %q:\n%s", w, all)
		}
	}
}

func TestSnoozeEndsAndPagesAgainFromStepOne(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		bob := f.user("bob", 0)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: alice}), step(10, db.Target{Type: db.TargetUser, ID: bob}))
		alertID := f.open()
		expectPaths(t, "step 1", f.at(0), "/alice/0")
		expectPaths(t, "step 2", f.at(10), "/bob/0")

		f.at(12)
		a, err := f.svc.Snooze(f.ctx, alertID, bob, 30)
		if err != nil {
			t.Fatal(err)
		}
		until := f.clock.Now().Add(30 * time.Minute).UTC()
		if a.Status != db.AlertAcknowledged || a.SnoozedUntil == nil || !a.SnoozedUntil.Equal(until) || a.AcknowledgedBy == nil || *a.AcknowledgedBy != bob {
			t.Fatalf("snoozed alert %+v", a)
		}
		expectPaths(t, "while snoozed", f.at(41))

		// Two instances share the database; the snooze ends once.
		other := f.newService()
		f.clock.Advance(time.Minute)
		if _, err := other.RunDueJobs(f.ctx); err != nil {
			t.Fatal(err)
		}
		expectPaths(t, "snooze over: step 1 again", append(f.at(42), f.inbox.take()...), "/alice/0")
		a = f.alert(alertID)
		if a.Status != db.AlertOpen || a.SnoozedUntil != nil || a.AcknowledgedBy != nil {
			t.Fatalf("alert after the snooze %+v", a)
		}
		expectPaths(t, "step 2 again", f.at(52), "/bob/0")
		expectPaths(t, "policy done", f.at(120))
		contains(t, f.timeline(alertID), "SNOOZED: Snoozed for 30 min", "SNOOZE_ENDED: Snooze ended")
		if types := f.eventTypes(alertID); !slices.Contains(types, "SNOOZED") || !slices.Contains(types, "SNOOZE_ENDED") {
			t.Fatalf("events %v", types)
		}
	})
}

func TestSnoozeThenCloseStaysClosed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: alice}))
		alertID := f.open()
		expectPaths(t, "step 1", f.at(0), "/alice/0")
		if _, err := f.svc.Snooze(f.ctx, alertID, alice, 30); err != nil {
			t.Fatal(err)
		}
		f.at(5)
		a, err := f.svc.Close(f.ctx, alertID, alice)
		if err != nil {
			t.Fatal(err)
		}
		if a.SnoozedUntil != nil || f.jobs(alertID) != 0 {
			t.Fatalf("closing left the snooze: %+v, %d jobs", a, f.jobs(alertID))
		}
		expectPaths(t, "after the snooze would have ended", f.at(120))
		if got := f.alert(alertID).Status; got != db.AlertClosed {
			t.Fatalf("status %s", got)
		}
		if _, err := f.svc.Snooze(f.ctx, alertID, alice, 30); err == nil {
			t.Fatal("snoozed a closed alert")
		}
	})
}

func TestSnoozeIsReplacedBySnoozeAndEndedByAcknowledge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: alice}))
		alertID := f.open()
		expectPaths(t, "step 1", f.at(0), "/alice/0")
		if _, err := f.svc.Snooze(f.ctx, alertID, alice, 10); err != nil {
			t.Fatal(err)
		}
		f.at(5)
		if _, err := f.svc.Snooze(f.ctx, alertID, alice, 60); err != nil {
			t.Fatal(err)
		}
		expectPaths(t, "the first snooze's end", f.at(10))
		expectPaths(t, "the second snooze's end", f.at(65), "/alice/0")

		if _, err := f.svc.Snooze(f.ctx, alertID, alice, 10); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Acknowledge(f.ctx, alertID, alice); err != nil {
			t.Fatal(err)
		}
		expectPaths(t, "acknowledged for good", f.at(200))
		if a := f.alert(alertID); a.Status != db.AlertAcknowledged || a.SnoozedUntil != nil {
			t.Fatalf("alert %+v", a)
		}
		for _, minutes := range []int{0, -5, alerting.MaxSnoozeMinutes + 1} {
			_, err := f.svc.Snooze(f.ctx, alertID, alice, minutes)
			expectInvalid(t, "snooze minutes", err, "minutes")
		}
	})
}

func TestEscalateRunsTheNextStepAtOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		bob := f.user("bob", 0)
		f.policy(0, step(30, db.Target{Type: db.TargetUser, ID: alice}), step(30, db.Target{Type: db.TargetUser, ID: bob}))
		alertID := f.open()
		expectPaths(t, "step 1", f.at(0), "/alice/0")
		f.at(2)
		if _, err := f.svc.Escalate(f.ctx, alertID, alice); err != nil {
			t.Fatal(err)
		}
		expectPaths(t, "escalated: step 2 at once", f.at(2), "/bob/0")
		expectPaths(t, "step 2 does not run again", f.at(30))
		contains(t, f.timeline(alertID), "ESCALATED: Escalated by alice: step 2 (round 1) runs now", "step 2 of 2")
		if n := strings.Count(strings.Join(f.timeline(alertID), "\n"), "Escalated to step 2 of 2"); n != 1 {
			t.Fatalf("step 2 ran %d times", n)
		}

		_, err := f.svc.Escalate(f.ctx, alertID, alice)
		expectInvalid(t, "escalate a finished policy", err, "id")
		if _, err := f.svc.Acknowledge(f.ctx, alertID, alice); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.Escalate(f.ctx, alertID, alice)
		expectInvalid(t, "escalate an acknowledged alert", err, "id")
	})
}

func TestEscalateAtTheLastStepFollowsTheRepeat(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		bob := f.user("bob", 0)
		f.policy(1, step(30, db.Target{Type: db.TargetUser, ID: alice}), step(30, db.Target{Type: db.TargetUser, ID: bob}))
		alertID := f.open()
		expectPaths(t, "step 1", f.at(0), "/alice/0")
		expectPaths(t, "step 2", f.at(30), "/bob/0")
		if _, err := f.svc.Escalate(f.ctx, alertID, bob); err != nil {
			t.Fatal(err)
		}
		expectPaths(t, "round 2 at once", f.at(31), "/alice/0")
		contains(t, f.timeline(alertID), "step 1 (round 2) runs now")
	})
}

func TestNoteAppearsWithItsAuthor(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		alertID := f.open()
		if _, err := f.svc.AddNote(f.ctx, alertID, alice, "  Rolled back deploy 42  "); err != nil {
			t.Fatal(err)
		}
		entries, err := f.svc.Timeline(f.ctx, alertID)
		if err != nil {
			t.Fatal(err)
		}
		last := entries[len(entries)-1]
		if last.Type != db.LogNote || last.Message != "Rolled back deploy 42" || last.UserID == nil || *last.UserID != alice {
			t.Fatalf("note entry %+v", last)
		}
		if types := f.eventTypes(alertID); !slices.Contains(types, "NOTE_ADDED") {
			t.Fatalf("events %v", types)
		}
		for _, text := range []string{"", "   ", strings.Repeat("é", alerting.MaxNoteLength+1)} {
			_, err := f.svc.AddNote(f.ctx, alertID, alice, text)
			expectInvalid(t, "note text", err, "text")
		}
		if _, err := f.svc.AddNote(f.ctx, alertID, alice, strings.Repeat("é", alerting.MaxNoteLength)); err != nil {
			t.Fatalf("a note of the longest length: %v", err)
		}
		if _, err := f.svc.AddNote(f.ctx, alertID+1000, alice, "x"); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("note on a missing alert: %v", err)
		}
	})
}

func TestManualAlertPagesItsRecipients(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		bob := f.user("bob", 0)
		carol := f.user("carol")
		group := &db.Group{Name: "secops", CreatedAt: f.clock.Now()}
		f.insert(group)
		f.insert(&db.GroupMember{GroupID: group.ID, UserID: bob})

		a, err := f.svc.CreateAlert(f.ctx, alerting.ManualAlertInput{
			Subject: "Payments down", Details: "since 09:00", Severity: "High", UserIDs: []int{alice}, GroupIDs: []int{group.ID},
		}, carol)
		if err != nil {
			t.Fatal(err)
		}
		if a.IntegrationID != nil || a.CreatedBy == nil || *a.CreatedBy != carol || a.SourceName != "carol" || a.Severity != "high" || a.Status != db.AlertOpen {
			t.Fatalf("manual alert %+v", a)
		}
		expectPaths(t, "recipients at once", f.at(0), "/alice/0", "/bob/0")
		expectPaths(t, "later", f.at(60))
		contains(t, f.timeline(a.ID), "OPENED: Opened by hand by carol")
		if types := f.eventTypes(a.ID); len(types) == 0 || types[0] != "OPENED" {
			t.Fatalf("events %v", types)
		}

		// Through a policy, RECIPIENTS means the alert's own.
		policy := f.policyOnly(0, step(10, db.Target{Type: db.TargetRecipients}), step(10, db.Target{Type: db.TargetUser, ID: carol}))
		b, err := f.svc.CreateAlert(f.ctx, alerting.ManualAlertInput{Subject: "Payments down", Severity: "critical", EscalationPolicyID: &policy, UserIDs: []int{bob}}, alice)
		if err != nil {
			t.Fatal(err)
		}
		if b.SourceID == a.SourceID {
			t.Fatalf("two manual alerts share source id %q", a.SourceID)
		}
		expectPaths(t, "policy step 1", f.at(61), "/bob/0")
		if _, err := f.svc.Snooze(f.ctx, b.ID, bob, 5); err != nil {
			t.Fatal(err)
		}
		expectPaths(t, "manual alert pages again after its snooze", f.at(66), "/bob/0")
		if _, err := f.svc.Close(f.ctx, b.ID, bob); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Close(f.ctx, a.ID, alice); err != nil {
			t.Fatal(err)
		}
		// Without recipients of its own, RECIPIENTS finds nobody: there
		// is no integration to take them from.
		c, err := f.svc.CreateAlert(f.ctx, alerting.ManualAlertInput{Subject: "Payments slow", Severity: "low", EscalationPolicyID: &policy}, alice)
		if err != nil {
			t.Fatal(err)
		}
		expectPaths(t, "no recipients", f.at(67))
		contains(t, f.timeline(c.ID), "The alert has no recipients")

		bad := []struct {
			in    alerting.ManualAlertInput
			field string
		}{
			{alerting.ManualAlertInput{Subject: " ", Severity: "high", UserIDs: []int{alice}}, "subject"},
			{alerting.ManualAlertInput{Subject: "x", Severity: "urgent", UserIDs: []int{alice}}, "severity"},
			{alerting.ManualAlertInput{Subject: "x", Severity: "high"}, "escalationPolicyId"},
			{alerting.ManualAlertInput{Subject: "x", Severity: "high", UserIDs: []int{alice, 9999}}, "userIds[1]"},
			{alerting.ManualAlertInput{Subject: "x", Severity: "high", GroupIDs: []int{9999}}, "groupIds[0]"},
			{alerting.ManualAlertInput{Subject: "x", Severity: "high", EscalationPolicyID: new(9999)}, "escalationPolicyId"},
		}
		before, _, _, err := f.svc.Alerts(f.ctx, alerting.AlertFilter{}, db.PageRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range bad {
			_, err := f.svc.CreateAlert(f.ctx, tc.in, alice)
			expectInvalid(t, "manual alert "+tc.field, err, tc.field)
		}
		after, _, _, err := f.svc.Alerts(f.ctx, alerting.AlertFilter{}, db.PageRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before) {
			t.Fatalf("refused manual alerts left %d alerts behind", len(after)-len(before))
		}
	})
}

func TestAlertSearchFilter(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice")
		subjects := map[string]int{}
		for _, s := range []string{"SQL Injection in /login", "sql injection, 100% sure", "Disk full_on db1", "Disk fullXon db2", `Path C:\temp leaked`} {
			a, err := f.svc.CreateAlert(f.ctx, alerting.ManualAlertInput{Subject: s, Severity: "low", UserIDs: []int{alice}}, alice)
			if err != nil {
				t.Fatal(err)
			}
			subjects[s] = a.ID
		}
		search := func(text string) []string {
			t.Helper()
			got, total, _, err := f.svc.Alerts(f.ctx, alerting.AlertFilter{Search: text}, db.PageRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if total != len(got) {
				t.Fatalf("search %q: total %d for %d alerts", text, total, len(got))
			}
			var names []string
			for _, a := range got {
				names = append(names, a.Subject)
			}
			slices.Sort(names)
			return names
		}
		for text, want := range map[string][]string{
			"sql INJECTION": {"SQL Injection in /login", "sql injection, 100% sure"},
			"100%":          {"sql injection, 100% sure"},
			"%":             {"sql injection, 100% sure"},
			"full_on":       {"Disk full_on db1"},
			"_":             {"Disk full_on db1"},
			`c:\temp`:       {`Path C:\temp leaked`},
			`\`:             {`Path C:\temp leaked`},
			"nothing":       nil,
		} {
			if got := search(text); !slices.Equal(got, want) {
				t.Errorf("search %q: %q, want %q", text, got, want)
			}
		}
		if got := search(""); len(got) != len(subjects) {
			t.Errorf("empty search: %d alerts, want all %d", len(got), len(subjects))
		}
		_, _, _, err := f.svc.Alerts(f.ctx, alerting.AlertFilter{Search: strings.Repeat("a", alerting.MaxSearchLength+1)}, db.PageRequest{})
		expectInvalid(t, "long search", err, "filter.search")
	})
}
