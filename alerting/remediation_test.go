package alerting_test

import (
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/rules"
)

const day = 24 * time.Hour

// remediation gives the fixture's integration deadlines of 2 days for
// critical, 7 for high and 30 for medium findings, and an overdue policy
// paging fixer (0 for none); the night shift's policy pages nightShift.
func (f *engineFixture) remediation(nightShift, fixer int) {
	f.t.Helper()
	in := integrations.IntegrationInput{Remediation: &rules.Remediation{{Severity: "critical", Days: 2}, {Severity: "high", Days: 7}, {Severity: "medium", Days: 30}}}
	if fixer != 0 {
		f.policy(0, step(600, db.Target{Type: db.TargetUser, ID: fixer}))
		in.OverduePolicyID = f.integ.EscalationPolicyID
	}
	f.policy(0, step(600, db.Target{Type: db.TargetUser, ID: nightShift}), step(600, db.Target{Type: db.TargetUser, ID: nightShift}))
	if _, err := f.integrations().UpdateIntegration(f.ctx, f.integ.ID, in); err != nil {
		f.t.Fatal(err)
	}
}

func (f *engineFixture) overdueJobs(alertID int) []*db.AlertJob {
	f.t.Helper()
	var jobs []*db.AlertJob
	if err := f.d.NewSelect().Model(&jobs).Where("alert_id = ? AND kind = 'overdue'", alertID).Scan(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return jobs
}

func (f *engineFixture) overdueCount() int {
	f.t.Helper()
	n, err := f.svc.OverdueAlertCount(f.ctx, f.integ.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// A high finding is due 7 days after it opened. Acknowledged and then
// left unfixed, it turns overdue at its due time, not before, also after
// a restart: marked, on its timeline, as an event, and paged to the
// overdue policy's fixer once, who is not the night shift.
func TestOverdueFindingPagesTheFixersOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice, bob := f.user("alice", 0), f.user("bob", 0)
		f.remediation(alice, bob)
		opened := f.clock.Now()
		alertID := *f.send(1, "high").AlertID
		a := f.alert(alertID)
		if a.DueAt == nil || !a.DueAt.Equal(opened.Add(7*day)) || a.Overdue() {
			t.Fatalf("a high finding opened at %s is due %v (overdue %v)", opened, a.DueAt, a.Overdue())
		}
		expectPaths(t, "when it opens", f.at(0), "/alice/0")
		if _, err := f.svc.Acknowledge(f.ctx, alertID, alice); err != nil {
			t.Fatal(err)
		}
		if n := len(f.overdueJobs(alertID)); n != 1 {
			t.Fatalf("%d overdue jobs after acknowledging", n)
		}
		// A restart: another instance on the same database takes over.
		f.svc = f.newService()
		expectPaths(t, "a minute before it is due", f.at(7*24*60-1))
		if f.alert(alertID).Overdue() || f.overdueCount() != 0 {
			t.Fatal("overdue before its due time")
		}
		expectPaths(t, "when it is due", f.at(7*24*60), "/bob/0")
		a = f.alert(alertID)
		if !a.Overdue() || !a.OverdueAt.Equal(opened.Add(7*day)) || a.Status != db.AlertOpen {
			t.Fatalf("at its due time: overdue at %v, status %s", a.OverdueAt, a.Status)
		}
		expectTimeline(t, f, alertID, `OVERDUE: Overdue: this high finding was due to be fixed by `+opened.Add(7*day).Format(time.RFC3339)+`; paging the overdue policy "policy 1", so the alert is open again`)
		if n, e := f.countTimeline(alertID, db.LogOverdue), f.countEvents(alertID, db.LogOverdue); n != 1 || e != 1 {
			t.Fatalf("%d overdue entries, %d events", n, e)
		}
		if n := f.overdueCount(); n != 1 {
			t.Fatalf("overdue count %d", n)
		}
		list, total, _, err := f.svc.Alerts(f.ctx, alerting.AlertFilter{Overdue: ptr(true)}, db.PageRequest{First: 10})
		if err != nil || total != 1 || list[0].ID != alertID {
			t.Fatalf("overdue filter: %d alerts, %v", total, err)
		}
		if _, total, _, err := f.svc.Alerts(f.ctx, alerting.AlertFilter{Overdue: ptr(false)}, db.PageRequest{First: 10}); err != nil || total != 0 {
			t.Fatalf("not-overdue filter: %d alerts, %v", total, err)
		}
		expectPaths(t, "long after", f.at(30*24*60))
		if _, err := f.svc.Close(f.ctx, alertID, bob); err != nil {
			t.Fatal(err)
		}
		if n := f.overdueCount(); n != 0 {
			t.Fatalf("overdue count %d after closing", n)
		}
		if !f.alert(alertID).Overdue() {
			t.Fatal("closing forgot that the fix came late")
		}
	})
}

// A later message of higher severity raises the alert and pulls its due
// time in to the new severity's deadline from the opening; one of lower
// severity moves nothing. Without an overdue policy the alert is only
// marked. Closing drops the overdue job.
func TestRaisedSeverityPullsTheDueTimeIn(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		f.remediation(alice, 0)
		opened := f.clock.Now()
		alertID := *f.send(1, "medium").AlertID
		if a := f.alert(alertID); !a.DueAt.Equal(opened.Add(30 * day)) {
			t.Fatalf("medium due %v", a.DueAt)
		}
		f.clock.Advance(day)
		if res := f.send(1, "high"); res.Status != db.InboundAppended {
			t.Fatalf("raise: %+v", res)
		}
		a := f.alert(alertID)
		if a.Severity != "high" || !a.DueAt.Equal(opened.Add(7*day)) {
			t.Fatalf("raised to %s, due %v; want high, due %s", a.Severity, a.DueAt, opened.Add(7*day))
		}
		jobs := f.overdueJobs(alertID)
		if len(jobs) != 1 || !jobs[0].RunAt.Equal(opened.Add(7*day)) {
			t.Fatalf("overdue jobs after the raise: %+v", jobs)
		}
		f.send(1, "medium")
		if a := f.alert(alertID); a.Severity != "high" || !a.DueAt.Equal(opened.Add(7*day)) || len(f.overdueJobs(alertID)) != 1 {
			t.Fatalf("a lower severity moved it: %s, due %v", a.Severity, a.DueAt)
		}
		f.at(7*24*60 - 1)
		if f.alert(alertID).Overdue() {
			t.Fatal("overdue before the raised due time")
		}
		expectPaths(t, "at the raised due time", f.at(7*24*60))
		if a := f.alert(alertID); !a.Overdue() || a.Status != db.AlertOpen {
			t.Fatalf("overdue %v, status %s", a.Overdue(), a.Status)
		}
		expectTimeline(t, f, alertID, "OVERDUE: Overdue: this high finding was due to be fixed by "+opened.Add(7*day).Format(time.RFC3339))

		closed := *f.send(2, "critical").AlertID
		if len(f.overdueJobs(closed)) != 1 {
			t.Fatal("no overdue job for a critical finding")
		}
		f.send(2, "low")
		if n := len(f.overdueJobs(closed)); n != 0 {
			t.Fatalf("%d overdue jobs after closing", n)
		}
		f.at(60 * 24 * 60)
		if f.alert(closed).Overdue() {
			t.Fatal("a closed finding went overdue")
		}
	})
}

func TestRemediationIsValidated(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		for _, c := range []struct {
			in    integrations.IntegrationInput
			field string
		}{
			{integrations.IntegrationInput{Remediation: &rules.Remediation{{Severity: "urgent", Days: 2}}}, "remediation[0].severity"},
			{integrations.IntegrationInput{Remediation: &rules.Remediation{{Severity: "high", Days: 2}, {Severity: "HIGH", Days: 3}}}, "remediation[1].severity"},
			{integrations.IntegrationInput{Remediation: &rules.Remediation{{Severity: "high", Days: 0}}}, "remediation[0].days"},
			{integrations.IntegrationInput{Remediation: &rules.Remediation{{Severity: "high", Days: 3651}}}, "remediation[0].days"},
			{integrations.IntegrationInput{OverduePolicyID: ptr(999)}, "overduePolicyId"},
		} {
			_, err := f.integrations().UpdateIntegration(f.ctx, f.integ.ID, c.in)
			wantFieldError(t, err, c.field)
		}
		stored, err := f.integrations().IntegrationByID(f.ctx, d, f.integ.ID)
		if err != nil || stored.Remediation != nil || stored.OverduePolicyID != nil {
			t.Fatalf("a refused update left %+v, %v", stored, err)
		}
		// The fixer's policy passes; an empty list clears the deadlines.
		fixers := f.user("fixer", 0)
		f.remediation(fixers, fixers)
		if _, err := f.integrations().UpdateIntegration(f.ctx, f.integ.ID, integrations.IntegrationInput{Remediation: &rules.Remediation{}, ClearOverduePolicy: true}); err != nil {
			t.Fatal(err)
		}
		if stored, err := f.integrations().IntegrationByID(f.ctx, d, f.integ.ID); err != nil || stored.Remediation != nil || stored.OverduePolicyID != nil {
			t.Fatalf("cleared: %+v, %v", stored, err)
		}
	})
}

// Two engines on one PostgreSQL database mark each overdue alert once and
// page its fixers once.
func TestTwoInstancesMarkOverdueOnce(t *testing.T) {
	d := dbtest.Postgres(t)
	f := newEngineFixture(t, d)
	alice, bob := f.user("alice", 0), f.user("bob", 0)
	f.remediation(alice, bob)
	const alerts = 20
	var ids []int
	for i := range alerts {
		ids = append(ids, *f.send(i+1, "critical").AlertID)
	}
	f.at(0)
	f.inbox.take()
	second, err := db.Open(f.ctx, d.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	instances := []*alerting.Service{f.svc, alerting.NewService(alerting.Options{DB: second, PublicURL: "https://klaxon.example", Now: f.clock.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: stores(second, f.clock.Now),
		Channels: notifiers.NewChannels(notifiers.Senders{db.ContactWebhook: notifiers.NewWebhook(localSinks)}, nil)})}
	f.clock.Advance(2 * day)
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
	pages := f.inbox.take()
	bobs := 0
	for _, p := range pages {
		if p == "/bob/0" {
			bobs++
		}
	}
	if bobs != alerts {
		t.Fatalf("the fixer was paged %d times for %d overdue alerts (%v)", bobs, alerts, pages)
	}
	for _, id := range ids {
		if n, e := f.countTimeline(id, db.LogOverdue), f.countEvents(id, db.LogOverdue); n != 1 || e != 1 {
			t.Fatalf("alert %d marked overdue %d times with %d events", id, n, e)
		}
	}
	if n := f.overdueCount(); n != alerts {
		t.Fatalf("overdue count %d", n)
	}
}
