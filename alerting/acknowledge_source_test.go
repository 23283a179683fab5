package alerting_test

import (
	"testing"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/rules"
)

// An integration's acknowledgement (a PagerDuty acknowledge event, sent
// by routing key) stops paging and starts the policy's acknowledgement
// timeout as a person's does, names no user, and reaches subscribers; a
// second one changes nothing.
func TestIntegrationAcknowledgesLikeAPerson(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		bob := f.user("bob", 0)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: alice}), step(10, db.Target{Type: db.TargetUser, ID: bob}))
		f.ackTimeout(15)
		name, typ := "PagerDuty", rules.TypePagerDuty
		pd, err := f.integrations().CreateIntegration(f.ctx, integrations.IntegrationInput{Name: &name, Type: &typ, EscalationPolicyID: f.integ.EscalationPolicyID})
		if err != nil {
			t.Fatal(err)
		}
		send := func(body string) *alerting.IngestResult {
			t.Helper()
			res, err := f.svc.Ingest(f.ctx, alerting.Inbound{Type: rules.TypePagerDuty, RoutingKey: pd.RoutingKey, Body: []byte(body)})
			if err != nil {
				t.Fatalf("ingest %s: %v", body, err)
			}
			return res
		}
		opened := send(`{"event_action":"trigger","dedup_key":"disk","payload":{"summary":"Disk full","source":"db-1","severity":"critical"}}`)
		if opened.Status != db.InboundOpened {
			t.Fatalf("trigger: %+v", opened)
		}
		alertID := *opened.AlertID
		expectPaths(t, "step 1", f.at(0), "/alice/0")

		f.at(5)
		acked := send(`{"event_action":"acknowledge","dedup_key":"disk"}`)
		if acked.Status != db.InboundAcknowledged || acked.AlertID == nil || *acked.AlertID != alertID {
			t.Fatalf("acknowledge: %+v", acked)
		}
		a := f.alert(alertID)
		if a.Status != db.AlertAcknowledged || a.AcknowledgedBy != nil || a.AcknowledgedAt == nil {
			t.Fatalf("acknowledged alert: %s by %v at %v", a.Status, a.AcknowledgedBy, a.AcknowledgedAt)
		}
		if n := f.countEvents(alertID, db.LogAcknowledged); n != 1 {
			t.Fatalf("%d ACKNOWLEDGED events, want 1", n)
		}
		if again := send(`{"event_action":"acknowledge","dedup_key":"disk"}`); again.Status != db.InboundIgnored || again.AlertID != nil {
			t.Fatalf("second acknowledge: %+v", again)
		}
		expectPaths(t, "step 2 is not paged while acknowledged", f.at(19))
		expectPaths(t, "the timeout pages step 1 again", f.at(20), "/alice/0")
		expectTimeline(t, f, alertID, "ACK_TIMED_OUT: Acknowledgement timed out after 15 minutes; paging again from step 1")

		if closed := send(`{"event_action":"resolve","dedup_key":"disk"}`); closed.Status != db.InboundClosed {
			t.Fatalf("resolve: %+v", closed)
		}
		if late := send(`{"event_action":"acknowledge","dedup_key":"disk"}`); late.Status != db.InboundIgnored {
			t.Fatalf("acknowledge after resolve: %+v", late)
		}
		expectNoJobs(t, f)
	})
}
