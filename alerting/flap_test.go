package alerting_test

import (
	"fmt"
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
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/rules"
)

// flapIntegration sets the fixture integration's paging delay and
// auto-close (0 for off).
func (f *engineFixture) flapIntegration(delay, autoClose int) {
	f.t.Helper()
	in := integrations.IntegrationInput{PageDelayMinutes: &delay, AutoCloseAfterMinutes: &autoClose}
	if autoClose == 0 {
		in.AutoCloseAfterMinutes, in.ClearAutoClose = nil, true
	}
	if _, err := f.integrations().UpdateIntegration(f.ctx, f.integ.ID, in); err != nil {
		f.t.Fatal(err)
	}
}

// ackTimeout sets the fixture integration's policy's acknowledgement
// timeout.
func (f *engineFixture) ackTimeout(minutes int) {
	f.t.Helper()
	_, err := policies.NewStore(f.d, f.clock.Now, nil).UpdateEscalationPolicy(f.ctx, *f.integ.EscalationPolicyID, policies.PolicyInput{AckTimeoutMinutes: &minutes})
	if err != nil {
		f.t.Fatal(err)
	}
}

// send posts a Detectify finding for alert number n of the fixture (see
// open); a low severity closes it.
func (f *engineFixture) send(n int, severity string) *alerting.IngestResult {
	f.t.Helper()
	body := fmt.Sprintf(`{"event_type":"finding","finding":{"uuid":"finding-%d","title":"SQL Injection","severity":"%s"}}`, n, severity)
	res, err := f.svc.Ingest(f.ctx, alerting.Inbound{Token: f.integ.Token, Body: []byte(body)})
	if err != nil {
		f.t.Fatalf("send finding %d: %v", n, err)
	}
	return res
}

// countTimeline counts an alert's timeline entries of typ.
func (f *engineFixture) countTimeline(alertID int, typ db.AlertLogType) int {
	f.t.Helper()
	n, err := f.d.NewSelect().Model((*db.AlertLog)(nil)).Where("alert_id = ? AND type = ?", alertID, typ).Count(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return int(n)
}

// countEvents counts the alert events of typ recorded for subscribers,
// numbered or still in the outbox.
func (f *engineFixture) countEvents(alertID int, typ db.AlertLogType) int {
	f.t.Helper()
	var n int
	err := f.d.NewRaw(`SELECT (SELECT COUNT(*) FROM events WHERE kind = 'alert' AND alert_id = ? AND type = ?)
		+ (SELECT COUNT(*) FROM event_outbox WHERE kind = 'alert' AND alert_id = ? AND type = ?)`,
		alertID, typ, alertID, typ).Scan(f.ctx, &n)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func expectTimeline(t *testing.T, f *engineFixture, alertID int, want ...string) {
	t.Helper()
	timeline := strings.Join(f.timeline(alertID), "\n")
	for _, w := range want {
		if !strings.Contains(timeline, w) {
			t.Fatalf("timeline lacks %q:\n%s", w, timeline)
		}
	}
}

func TestPagingDelayHoldsTheFirstStep(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		bob := f.user("bob", 0)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: alice}), step(10, db.Target{Type: db.TargetUser, ID: bob}))
		f.flapIntegration(5, 0)
		alertID := f.open()
		expectPaths(t, "when it opens", f.at(0))
		expectPaths(t, "within the delay", f.at(4))
		expectPaths(t, "after the delay", f.at(5), "/alice/0")
		expectPaths(t, "step 2 counts from step 1", f.at(14))
		expectPaths(t, "step 2", f.at(15), "/bob/0")
		expectTimeline(t, f, alertID, "PAGING_DELAYED: Paging in 5 minutes")
		if n := f.countTimeline(alertID, db.LogNotPaged); n != 0 {
			t.Fatalf("%d closed-before-paging entries on an alert that paged", n)
		}
	})
}

func TestBlipShorterThanThePagingDelayPagesNoOne(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: alice}))
		f.flapIntegration(5, 0)
		byMessage := f.open()
		byHand := f.open()
		expectPaths(t, "when they open", f.at(2))
		if res := f.send(1, "low"); res.Status != db.InboundClosed {
			t.Fatalf("close by message: %+v", res)
		}
		if _, err := f.svc.Close(f.ctx, byHand, alice); err != nil {
			t.Fatal(err)
		}
		expectPaths(t, "after the delay", f.at(60))
		for _, id := range []int{byMessage, byHand} {
			expectTimeline(t, f, id, "CLOSED_BEFORE_PAGING: Closed before paging")
			if n := f.countTimeline(id, db.LogEscalated); n != 0 {
				t.Fatalf("alert %d escalated %d times", id, n)
			}
		}

		// Without a delay, a close before the engine ran is no held page.
		f.flapIntegration(0, 0)
		quick := f.open()
		f.send(3, "low")
		if n := f.countTimeline(quick, db.LogNotPaged); n != 0 {
			t.Fatalf("closed-before-paging without a delay: %v", f.timeline(quick))
		}
	})
}

// A rule that routes alerts to their own recipients takes the generic
// path on every database; its page waits all the same.
func TestPagingDelayHoldsARoutedAlert(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		carol := f.user("carol", 0)
		name := "routed"
		rs, err := f.integrations().CreateRuleset(f.ctx, integrations.RulesetInput{Name: &name, Rules: []rules.Rule{
			{Action: rules.ActionOpen, Route: rules.Route{RecipientUserIDs: []int{carol}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.integrations().UpdateIntegration(f.ctx, f.integ.ID, integrations.IntegrationInput{RulesetID: &rs.ID}); err != nil {
			t.Fatal(err)
		}
		f.flapIntegration(3, 0)
		alertID := f.open()
		expectPaths(t, "within the delay", f.at(2))
		expectPaths(t, "after the delay", f.at(3), "/carol/0")
		expectTimeline(t, f, alertID, "PAGING_DELAYED: Paging in 3 minutes")
	})
}

func TestAutoCloseFiresOnceAfterTheLastMessage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		f.policy(0, step(60, db.Target{Type: db.TargetUser, ID: alice}))
		f.flapIntegration(0, 30)
		quiet := f.open()
		noisy := f.open()
		acked := f.open()
		expectPaths(t, "step 1", f.at(0), "/alice/0", "/alice/0", "/alice/0")
		if _, err := f.svc.Acknowledge(f.ctx, acked, alice); err != nil {
			t.Fatal(err)
		}
		f.at(20)
		for range 3 {
			if res := f.send(2, "high"); res.Status != db.InboundAppended {
				t.Fatalf("append: %+v", res)
			}
		}
		f.at(30)
		for id, want := range map[int]db.AlertStatus{quiet: db.AlertClosed, acked: db.AlertClosed, noisy: db.AlertOpen} {
			if got := f.alert(id).Status; got != want {
				t.Fatalf("alert %d at +30m: %s, want %s", id, got, want)
			}
		}
		f.at(49)
		if got := f.alert(noisy).Status; got != db.AlertOpen {
			t.Fatalf("a message at +20m did not hold the close back: %s", got)
		}
		f.at(50)
		f.at(120)
		for _, id := range []int{quiet, noisy, acked} {
			a := f.alert(id)
			if a.Status != db.AlertClosed || a.ClosedBy != nil {
				t.Fatalf("alert %d: %s closed by %v", id, a.Status, a.ClosedBy)
			}
			if n := f.countTimeline(id, db.LogClosed); n != 1 {
				t.Fatalf("alert %d closed %d times:\n%s", id, n, strings.Join(f.timeline(id), "\n"))
			}
			expectTimeline(t, f, id, "CLOSED: Closed: no message for 30 minutes")
			if n := f.countEvents(id, db.LogClosed); n != 1 {
				t.Fatalf("alert %d: %d CLOSED events", id, n)
			}
		}
		if at := f.alert(noisy).ClosedAt; at == nil || !at.Equal(time.Date(2026, 3, 2, 9, 50, 0, 0, time.UTC)) {
			t.Fatalf("noisy alert closed at %v, want 09:50", at)
		}
		expectNoJobs(t, f)
	})
}

func expectNoJobs(t *testing.T, f *engineFixture) {
	t.Helper()
	var jobs []*db.AlertJob
	if err := f.d.NewSelect().Model(&jobs).Scan(f.ctx); err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 0 {
		t.Fatalf("%d jobs left, first %+v", len(jobs), jobs[0])
	}
}

func TestAckTimeoutPagesAgainFromStepOne(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		bob := f.user("bob", 0)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: alice}), step(10, db.Target{Type: db.TargetUser, ID: bob}))
		f.ackTimeout(15)
		alertID := f.open()
		expectPaths(t, "step 1", f.at(0), "/alice/0")
		expectPaths(t, "step 2", f.at(10), "/bob/0")
		f.at(12)
		if _, err := f.svc.Acknowledge(f.ctx, alertID, bob); err != nil {
			t.Fatal(err)
		}
		expectPaths(t, "while acknowledged", f.at(26))
		if got := f.alert(alertID).Status; got != db.AlertAcknowledged {
			t.Fatalf("before the timeout: %s", got)
		}
		expectPaths(t, "the timeout pages step 1", f.at(27), "/alice/0")
		a := f.alert(alertID)
		if a.Status != db.AlertOpen || a.AcknowledgedAt != nil || a.AcknowledgedBy != nil {
			t.Fatalf("after the timeout: %s acknowledged %v by %v", a.Status, a.AcknowledgedAt, a.AcknowledgedBy)
		}
		expectTimeline(t, f, alertID, "ACK_TIMED_OUT: Acknowledgement timed out after 15 minutes; paging again from step 1")
		expectPaths(t, "step 2 again", f.at(37), "/bob/0")

		// Acknowledging again starts a new timeout, and acknowledging an
		// acknowledged alert starts it over.
		if _, err := f.svc.Acknowledge(f.ctx, alertID, bob); err != nil {
			t.Fatal(err)
		}
		f.at(45)
		if _, err := f.svc.Acknowledge(f.ctx, alertID, alice); err != nil {
			t.Fatal(err)
		}
		if a := f.alert(alertID); a.AcknowledgedBy == nil || *a.AcknowledgedBy != alice {
			t.Fatalf("acknowledged again by %v, want alice", a.AcknowledgedBy)
		}
		expectPaths(t, "within the restarted timeout", f.at(59))
		expectPaths(t, "the second timeout", f.at(60), "/alice/0")
		expectTimeline(t, f, alertID, "ACKNOWLEDGED: Acknowledged again; the acknowledgement timeout starts over")
		if n, e := f.countTimeline(alertID, db.LogAckTimedOut), f.countEvents(alertID, db.LogAckTimedOut); n != 2 || e != 2 {
			t.Fatalf("%d timeouts on the timeline, %d events; want 2 each", n, e)
		}

		// Closing cancels the timeout.
		if _, err := f.svc.Acknowledge(f.ctx, alertID, bob); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Close(f.ctx, alertID, bob); err != nil {
			t.Fatal(err)
		}
		expectPaths(t, "after close", f.at(200))
		if n := f.countTimeline(alertID, db.LogAckTimedOut); n != 2 {
			t.Fatalf("timed out after close: %d", n)
		}
		expectNoJobs(t, f)
	})
}

// A restart between the acknowledgement and its timeout, and between the
// last message and the auto-close, loses neither and repeats neither.
func TestAckTimeoutAndAutoCloseSurviveARestart(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		f.policy(0, step(60, db.Target{Type: db.TargetUser, ID: alice}))
		f.ackTimeout(10)
		f.flapIntegration(0, 45)
		acked := f.open()
		quiet := f.open()
		expectPaths(t, "step 1", f.at(0), "/alice/0", "/alice/0")
		if _, err := f.svc.Acknowledge(f.ctx, acked, alice); err != nil {
			t.Fatal(err)
		}

		reopened, err := db.Open(f.ctx, d.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer reopened.Close()
		f.d = reopened
		f.svc = f.newService()
		expectPaths(t, "timeout after the restart", f.at(30), "/alice/0")
		expectPaths(t, "once only", f.at(31))
		f.at(46)
		f.at(47)
		for _, id := range []int{acked, quiet} {
			if n := f.countTimeline(id, db.LogClosed); n != 1 || f.alert(id).Status != db.AlertClosed {
				t.Fatalf("alert %d closed %d times, status %s", id, n, f.alert(id).Status)
			}
		}
		if n := f.countTimeline(acked, db.LogAckTimedOut); n != 1 {
			t.Fatalf("timed out %d times", n)
		}
	})
}

// TestTwoInstancesTimeOutAndCloseOnce runs two engines on one PostgreSQL
// database at once: every acknowledgement times out once and every alert
// auto-closes once.
func TestTwoInstancesTimeOutAndCloseOnce(t *testing.T) {
	d := dbtest.Postgres(t)
	f := newEngineFixture(t, d)
	alice := f.user("alice", 0)
	f.policy(0, step(600, db.Target{Type: db.TargetUser, ID: alice}))
	f.ackTimeout(10)
	f.flapIntegration(0, 30)
	const alerts = 20
	var ids []int
	for range alerts {
		ids = append(ids, f.open())
	}
	f.at(0)
	f.inbox.take()
	for _, id := range ids {
		if _, err := f.svc.Acknowledge(f.ctx, id, alice); err != nil {
			t.Fatal(err)
		}
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
	f.clock.Advance(10 * time.Minute)
	runBoth()
	if got := len(f.inbox.take()); got != alerts {
		t.Fatalf("%d pages after the timeouts, want %d", got, alerts)
	}
	f.clock.Advance(20 * time.Minute)
	runBoth()
	for _, id := range ids {
		if n, e := f.countTimeline(id, db.LogAckTimedOut), f.countEvents(id, db.LogAckTimedOut); n != 1 || e != 1 {
			t.Fatalf("alert %d timed out %d times with %d events", id, n, e)
		}
		if n, e := f.countTimeline(id, db.LogClosed), f.countEvents(id, db.LogClosed); n != 1 || e != 1 {
			t.Fatalf("alert %d closed %d times with %d events", id, n, e)
		}
	}
	expectNoJobs(t, f)
}

// A snooze replaces the acknowledgement's timeout: the alert opens again
// when the snooze ends, not when the timeout would have.
func TestSnoozeReplacesTheAckTimeout(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		f.policy(0, step(600, db.Target{Type: db.TargetUser, ID: alice}))
		f.ackTimeout(15)
		f.flapIntegration(0, 1000)
		alertID := f.open()
		expectPaths(t, "step 1", f.at(0), "/alice/0")
		if _, err := f.svc.Acknowledge(f.ctx, alertID, alice); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Snooze(f.ctx, alertID, alice, 60); err != nil {
			t.Fatal(err)
		}
		expectPaths(t, "when the timeout would have run", f.at(30))
		if n := f.countTimeline(alertID, db.LogAckTimedOut); n != 0 {
			t.Fatalf("the timeout ran during the snooze: %v", f.timeline(alertID))
		}
		expectPaths(t, "when the snooze ends", f.at(60), "/alice/0")
		n, err := d.NewSelect().Model((*db.AlertJob)(nil)).Where("alert_id = ? AND kind = 'autoclose'", alertID).Count(f.ctx)
		if err != nil || n != 1 {
			t.Fatalf("auto-close jobs: %d %v", n, err)
		}
	})
}
