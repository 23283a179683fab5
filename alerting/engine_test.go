package alerting_test

import (
	"errors"
	"fmt"
	"github.com/klaxonhq/klaxon/invalid"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/oncall"
	"github.com/klaxonhq/klaxon/rules"
)

func TestEscalationClimbsUntilAcknowledged(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		bob := f.user("bob", 0, 5)
		carol := f.user("carol", 0)
		f.policy(0,
			step(10, db.Target{Type: db.TargetUser, ID: alice}),
			step(10, db.Target{Type: db.TargetUser, ID: bob}),
			step(10, db.Target{Type: db.TargetUser, ID: carol}),
		)
		alertID := f.open()
		expectPaths(t, "step 1", f.at(0), "/alice/0")
		expectPaths(t, "before step 2", f.at(9))
		expectPaths(t, "step 2", f.at(10), "/bob/0")
		expectPaths(t, "bob's second rule", f.at(15), "/bob/5")
		if _, err := f.svc.Acknowledge(f.ctx, alertID, bob); err != nil {
			t.Fatal(err)
		}
		expectPaths(t, "after acknowledge", f.at(60))
		n, err := d.NewSelect().Model((*db.AlertJob)(nil)).Count(f.ctx)
		if err != nil || n != 0 {
			t.Fatalf("jobs left after acknowledge: %d %v", n, err)
		}
		var notes []*db.Notification
		if err := d.NewSelect().Model(&notes).Where("alert_id = ?", alertID).Order("id").Scan(f.ctx); err != nil {
			t.Fatal(err)
		}
		if len(notes) != 3 {
			t.Fatalf("notifications: %d, want 3", len(notes))
		}
		for _, n := range notes {
			if n.Status != db.NotificationSent || n.Attempts != 1 {
				t.Fatalf("notification %+v", n)
			}
		}
		timeline := strings.Join(f.timeline(alertID), "\n")
		for _, want := range []string{"step 1 of 3", "step 2 of 3", "Notified alice by WEBHOOK", "Notified bob by WEBHOOK", "ACKNOWLEDGED"} {
			if !strings.Contains(timeline, want) {
				t.Fatalf("timeline lacks %q:\n%s", want, timeline)
			}
		}
		if strings.Contains(timeline, "step 3 of 3") {
			t.Fatalf("step 3 ran after acknowledge:\n%s", timeline)
		}
	})
}

func TestEscalationRepeatsThePolicy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		f.policy(2, step(5, db.Target{Type: db.TargetUser, ID: alice}))
		alertID := f.open()
		expectPaths(t, "round 1", f.at(0), "/alice/0")
		expectPaths(t, "round 2", f.at(5), "/alice/0")
		expectPaths(t, "round 3", f.at(10), "/alice/0")
		expectPaths(t, "after the last round", f.at(60))
		timeline := strings.Join(f.timeline(alertID), "\n")
		if !strings.Contains(timeline, "round 3 of 3") || !strings.Contains(timeline, "POLICY_FINISHED") {
			t.Fatalf("timeline:\n%s", timeline)
		}
	})
}

func TestCloseStopsEverything(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0, 3)
		f.policy(5, step(5, db.Target{Type: db.TargetUser, ID: alice}))
		f.open()
		expectPaths(t, "step 1", f.at(0), "/alice/0")
		// The finding comes back as low: the webhook closes the alert.
		body := `{"event_type":"finding","finding":{"uuid":"finding-1","title":"SQL Injection","severity":"low"}}`
		if res, err := f.svc.Ingest(f.ctx, alerting.Inbound{Token: f.integ.Token, Body: []byte(body)}); err != nil || res.Status != db.InboundClosed {
			t.Fatalf("close: %+v %v", res, err)
		}
		expectPaths(t, "after close", f.at(120))
	})
}

func TestScheduleHandoffBetweenSteps(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		bob := f.user("bob", 0)
		carol := f.user("carol", 0)
		now := f.clock.Now()
		// Daily hand-off at 09:15 New York time (14:15 UTC in March before DST):
		// bob has the shift that ends then, carol the next one.
		sched := &db.Schedule{Name: "primary", TimeZone: "America/New_York", CreatedAt: now, UpdatedAt: now}
		f.insert(sched)
		handoff := time.Date(2026, 3, 2, 14, 15, 0, 0, time.UTC)
		f.insert(&db.ScheduleLayer{ScheduleID: sched.ID, Name: "primary", ShiftLength: 1, ShiftUnit: oncall.UnitDays,
			HandoffAt: handoff, ParticipantIDs: []int{carol, bob}, Restrictions: []oncall.Restriction{}})
		f.policy(0,
			step(20, db.Target{Type: db.TargetSchedule, ID: sched.ID}),
			step(20, db.Target{Type: db.TargetSchedule, ID: sched.ID}, db.Target{Type: db.TargetUser, ID: alice}),
		)
		f.clock.Advance(5 * time.Hour) // 14:00 UTC, bob on call until 14:15
		f.open()
		expectPaths(t, "step 1 before the hand-off", f.at(300), "/bob/0")
		expectPaths(t, "step 2 after the hand-off", f.at(320), "/carol/0", "/alice/0")
	})
}

func TestNoOneOnCallIsRecordedAndTheStepGoesOn(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		now := f.clock.Now()
		empty := &db.Schedule{Name: "empty", TimeZone: "Europe/Berlin", CreatedAt: now, UpdatedAt: now}
		f.insert(empty)
		f.policy(0, step(5, db.Target{Type: db.TargetSchedule, ID: empty.ID}, db.Target{Type: db.TargetUser, ID: alice}))
		alertID := f.open()
		expectPaths(t, "step 1", f.at(0), "/alice/0")
		timeline := strings.Join(f.timeline(alertID), "\n")
		if !strings.Contains(timeline, fmt.Sprintf("NO_ONE_ON_CALL: No one on call for schedule %d", empty.ID)) {
			t.Fatalf("timeline:\n%s", timeline)
		}
	})
}

func TestRecipientsWithoutPolicyAreNotifiedAtOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		f.user("bob", 0)
		now := f.clock.Now()
		group := &db.Group{Name: "secops", CreatedAt: now}
		f.insert(group)
		f.insert(&db.GroupMember{GroupID: group.ID, UserID: f.users["bob"]})
		f.insert(&db.IntegrationRecipient{IntegrationID: f.integ.ID, Kind: db.TargetUser, TargetID: alice})
		f.insert(&db.IntegrationRecipient{IntegrationID: f.integ.ID, Kind: db.TargetGroup, TargetID: group.ID})
		f.open()
		expectPaths(t, "recipients", f.at(0), "/alice/0", "/bob/0")
		expectPaths(t, "later", f.at(60))
	})
}

func TestUnconfiguredChannelFailsVisibly(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		now := f.clock.Now()
		u := &db.User{Email: "dave@example.com", Role: db.RoleViewer, CreatedAt: now, UpdatedAt: now}
		f.insert(u)
		cm := &db.ContactMethod{UserID: u.ID, Type: db.ContactSMS, Value: "+15551234567", Verified: true, CreatedAt: now}
		f.insert(cm)
		f.insert(&db.NotificationRule{UserID: u.ID, ContactMethodID: cm.ID, CreatedAt: now})
		f.policy(0, step(5, db.Target{Type: db.TargetUser, ID: u.ID}))
		alertID := f.open()
		f.at(0)
		var note db.Notification
		if err := d.NewSelect().Model(&note).Where("alert_id = ?", alertID).Scan(f.ctx); err != nil {
			t.Fatal(err)
		}
		if note.Status != db.NotificationFailed || note.Error != "channel not configured" || note.Channel != db.ContactSMS {
			t.Fatalf("notification %+v", note)
		}
	})
}

func TestRestartBetweenStepsFiresTheNextStepOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		bob := f.user("bob", 0)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: alice}), step(10, db.Target{Type: db.TargetUser, ID: bob}))
		f.open()
		expectPaths(t, "step 1", f.at(0), "/alice/0")

		// The instance stops; while it is down step 2 falls due. A new
		// instance, with a connection of its own, takes over.
		reopened, err := db.Open(f.ctx, d.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer reopened.Close()
		f.d = reopened
		f.svc = f.newService()
		expectPaths(t, "after restart", f.at(25), "/bob/0")
		expectPaths(t, "once only", f.at(26))
	})
}

func TestExpiredLeaseIsTakenOver(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: alice}))
		f.open()
		// Another instance took the job and died holding it.
		lockedUntil := f.clock.Now().Add(2 * time.Minute)
		if _, err := d.NewUpdate().Model((*db.AlertJob)(nil)).Set("locked_by = 'dead'").Set("locked_until = ?", lockedUntil).Where("1 = 1").Exec(f.ctx); err != nil {
			t.Fatal(err)
		}
		expectPaths(t, "while the lease holds", f.at(1))
		expectPaths(t, "after the lease ends", f.at(3), "/alice/0")
	})
}

// TestTwoInstancesPageOnce runs two engines, each with its own
// connections as a second server would have, on one database at once,
// with a few hundred first steps due together and then as many second
// steps: every alert's notification of each step must reach its channel
// exactly once.
func TestTwoInstancesPageOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		bob := f.user("bob", 0)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: alice}), step(10, db.Target{Type: db.TargetUser, ID: bob}))
		const alerts = 300
		opened := map[string]bool{}
		for range alerts {
			opened[fmt.Sprint(f.open())] = true
		}
		second, err := db.Open(f.ctx, d.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer second.Close()
		instances := []*alerting.Service{f.svc, alerting.NewService(alerting.Options{DB: second, PublicURL: "https://klaxon.example", Now: f.clock.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: stores(second, f.clock.Now),
			Channels: notifiers.NewChannels(notifiers.Senders{db.ContactWebhook: notifiers.NewWebhook(localSinks)}, nil)})}

		runBoth := func() {
			var wg sync.WaitGroup
			for _, svc := range instances {
				wg.Go(func() {
					for range 5 {
						if _, err := svc.RunDueJobs(f.ctx); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
		}
		check := func(step string, path string) {
			t.Helper()
			got := map[string]int{}
			for _, d := range f.inbox.takeDeliveries() {
				if d.Path != path || !opened[d.AlertID] {
					t.Errorf("%s: delivery to %s for alert %s", step, d.Path, d.AlertID)
					continue
				}
				got[d.AlertID]++
			}
			for id := range opened {
				if got[id] != 1 {
					t.Errorf("%s: alert %s notified %d times, want once", step, id, got[id])
				}
			}
		}
		runBoth()
		check("step 1", "/alice/0")
		f.clock.Advance(10 * time.Minute)
		runBoth()
		check("step 2", "/bob/0")
	})
}

func TestRuleRouteOverridesPolicyAndRecipients(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		carol := f.user("carol", 0)
		now := f.clock.Now()
		urgent := &db.EscalationPolicy{Name: "urgent", CreatedAt: now, UpdatedAt: now}
		f.insert(urgent)
		f.insert(&db.EscalationStep{PolicyID: urgent.ID, DelayMinutes: 5, Targets: []db.Target{{Type: db.TargetRecipients}}})
		f.policy(0, step(5, db.Target{Type: db.TargetUser, ID: alice}))

		name := "routed"
		routed := []rules.Rule{
			{Name: "critical to the urgent policy", Action: rules.ActionOpen,
				Conditions: []rules.Condition{{Field: "severity", Op: rules.OpEquals, Value: "critical"}},
				Route:      rules.Route{EscalationPolicyID: urgent.ID, RecipientUserIDs: []int{carol}}},
			{Name: "the rest", Action: rules.ActionOpen},
		}
		rs, err := f.integrations().CreateRuleset(f.ctx, integrations.RulesetInput{Name: &name, Rules: routed})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.integrations().UpdateIntegration(f.ctx, f.integ.ID, integrations.IntegrationInput{RulesetID: &rs.ID}); err != nil {
			t.Fatal(err)
		}
		for _, severity := range []string{"critical", "high"} {
			body := fmt.Sprintf(`{"finding":{"uuid":"%s","title":"x","severity":"%s"}}`, severity, severity)
			if res, err := f.svc.Ingest(f.ctx, alerting.Inbound{Token: f.integ.Token, Body: []byte(body)}); err != nil || res.Status != db.InboundOpened {
				t.Fatalf("open %s: %+v %v", severity, res, err)
			}
		}
		expectPaths(t, "routed and default", f.at(0), "/carol/0", "/alice/0")

		bad := []rules.Rule{{Action: rules.ActionOpen, Route: rules.Route{EscalationPolicyID: 9999}}}
		var fe *invalid.Field
		if _, err := f.integrations().CreateRuleset(f.ctx, integrations.RulesetInput{Name: &name, Rules: bad}); !errors.As(err, &fe) || fe.Name != "rules[0].route.escalationPolicyId" {
			t.Fatalf("route to a missing policy: %v", err)
		}
		closeRoute := []rules.Rule{{Action: rules.ActionClose, Route: rules.Route{RecipientUserIDs: []int{carol}}}}
		var ruleErr *invalid.Field
		if _, err := f.integrations().CreateRuleset(f.ctx, integrations.RulesetInput{Name: &name, Rules: closeRoute}); !errors.As(err, &ruleErr) || ruleErr.Name != "rules[0].route" {
			t.Fatalf("route on a CLOSE rule: %v", err)
		}
	})
}
