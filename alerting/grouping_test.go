package alerting_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/rules"
)

// group turns grouping on for the fixture's integration.
func (f *engineFixture) group(windowMinutes int, by ...string) {
	f.t.Helper()
	integ, err := f.integrations().UpdateIntegration(f.ctx, f.integ.ID, integrations.IntegrationInput{
		Grouping: &rules.Grouping{By: by, WindowMinutes: windowMinutes}})
	if err != nil {
		f.t.Fatalf("turn grouping on: %v", err)
	}
	f.integ = integ
}

// finding sends one Detectify finding and returns the alert it touched.
func (f *engineFixture) finding(uuid, asset, severity string) (*alerting.IngestResult, int) {
	f.t.Helper()
	body := fmt.Sprintf(`{"event_type":"finding","finding":{"uuid":%q,"asset":%q,"title":"SQL Injection","severity":%q}}`, uuid, asset, severity)
	res, err := f.svc.Ingest(f.ctx, alerting.Inbound{Token: f.integ.Token, Body: []byte(body)})
	if err != nil {
		f.t.Fatalf("ingest %s: %v", uuid, err)
	}
	if res.AlertID == nil {
		f.t.Fatalf("ingest %s: no alert: %+v", uuid, res)
	}
	return res, *res.AlertID
}

// setClock moves the clock to seconds after the fixture's start without
// running jobs.
func (f *engineFixture) setClock(seconds int) {
	f.clock.mu.Lock()
	f.clock.now = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC).Add(time.Duration(seconds) * time.Second)
	f.clock.mu.Unlock()
}

// runAt moves the clock to minutes after the start, runs what is due and
// returns what was delivered.
func (f *engineFixture) runAt(minutes int) []delivery {
	f.t.Helper()
	f.setClock(minutes * 60)
	if _, err := f.svc.RunDueJobs(f.ctx); err != nil {
		f.t.Fatalf("run due jobs at +%dm: %v", minutes, err)
	}
	return f.inbox.takeDeliveries()
}

func TestGroupOfFiftyPagesOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		bob := f.user("bob", 0)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: alice}), step(10, db.Target{Type: db.TargetUser, ID: bob}))
		f.group(10, "sourceName")

		var ids []int
		for i := range 50 {
			f.setClock(i * 5) // all within the first 5 minutes
			_, id := f.finding(fmt.Sprintf("storm-%d", i), "shop.example", "high")
			ids = append(ids, id)
		}
		leader := ids[0]
		deliveries := f.runAt(5)
		if len(deliveries) != 1 || deliveries[0].Path != "/alice/0" || deliveries[0].AlertID != fmt.Sprint(leader) || deliveries[0].Grouped != 49 {
			t.Fatalf("step 1 of a group of 50: %+v, want one page to alice about #%d with 49 grouped", deliveries, leader)
		}
		// Step 1 ran late, at +5m: step 2 follows ten minutes on.
		expectPaths(t, "before step 2", f.at(14))
		expectPaths(t, "step 2", f.at(15), "/bob/0")
		for _, id := range ids[1:] {
			a := f.alert(id)
			if a.GroupID == nil || *a.GroupID != leader || a.Status != db.AlertOpen {
				t.Fatalf("alert %d: group %v status %s, want in #%d's group and open", id, a.GroupID, a.Status, leader)
			}
			if tl := strings.Join(f.timeline(id), "\n"); !strings.Contains(tl, fmt.Sprintf("joined the group of #%d", leader)) {
				t.Fatalf("member %d's timeline:\n%s", id, tl)
			}
		}
		if tl := strings.Join(f.timeline(leader), "\n"); strings.Count(tl, "joined the group") != 49 || !strings.Contains(tl, fmt.Sprintf("GROUPED: #%d joined the group", ids[1])) {
			t.Fatalf("leader's timeline:\n%s", tl)
		}
		members, err := f.svc.GroupedAlerts(f.ctx, leader)
		if err != nil || len(members) != 49 {
			t.Fatalf("grouped alerts of the leader: %d %v", len(members), err)
		}
		yes := true
		firsts, total, _, err := f.svc.Alerts(f.ctx, alerting.AlertFilter{Grouped: &yes}, db.PageRequest{})
		if err != nil || total != 1 || firsts[0].ID != leader {
			t.Fatalf("alerts(grouped: true): %d %v", total, err)
		}

		// The window is ten minutes from the first alert: a later alert
		// for the same key starts a new group and pages; so does an alert
		// with another key.
		_, late := f.finding("storm-late", "shop.example", "high")
		if a := f.alert(late); a.GroupID == nil || *a.GroupID != late {
			t.Fatalf("an alert after the window: group %v, want a group of its own", a.GroupID)
		}
		_, other := f.finding("other-1", "api.example", "high")
		if a := f.alert(other); a.GroupID == nil || *a.GroupID != other {
			t.Fatalf("an alert with another key: group %v, want its own", a.GroupID)
		}
		deliveries = f.runAt(16)
		if len(deliveries) != 2 || deliveries[0].Grouped+deliveries[1].Grouped != 0 {
			t.Fatalf("the new groups' step 1: %+v, want a page to alice about each of #%d and #%d", deliveries, late, other)
		}
	})
}

func TestGroupLeaderActsOnItsMembers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: alice}))
		f.group(30, "sourceName")
		_, leader := f.finding("a", "shop.example", "high")
		_, m1 := f.finding("b", "shop.example", "high")
		_, m2 := f.finding("c", "shop.example", "high")
		_, m3 := f.finding("d", "shop.example", "high")
		// A member closes by its own message, the others stay.
		if res, id := f.finding("d", "shop.example", "low"); res.Status != db.InboundClosed || id != m3 {
			t.Fatalf("close of a member by message: %+v", res)
		}
		if a := f.alert(leader); a.Status != db.AlertOpen {
			t.Fatalf("a member's close closed the leader: %s", a.Status)
		}

		if _, err := f.svc.Acknowledge(f.ctx, leader, alice); err != nil {
			t.Fatal(err)
		}
		for _, id := range []int{m1, m2} {
			if a := f.alert(id); a.Status != db.AlertAcknowledged || a.AcknowledgedBy == nil || *a.AcknowledgedBy != alice {
				t.Fatalf("member %d after the leader's acknowledgement: %s", id, a.Status)
			}
			if tl := strings.Join(f.timeline(id), "\n"); !strings.Contains(tl, fmt.Sprintf("ACKNOWLEDGED: Acknowledged with the group's first alert #%d", leader)) {
				t.Fatalf("member %d's timeline:\n%s", id, tl)
			}
		}
		if _, err := f.svc.Close(f.ctx, leader, alice); err != nil {
			t.Fatal(err)
		}
		for _, id := range []int{m1, m2} {
			if a := f.alert(id); a.Status != db.AlertClosed || a.ClosedBy == nil || *a.ClosedBy != alice {
				t.Fatalf("member %d after the leader's close: %s", id, a.Status)
			}
		}
		if a := f.alert(m3); a.ClosedBy != nil {
			t.Fatalf("the member closed by its message was closed again by the leader")
		}
		if tl := strings.Join(f.timeline(m3), "\n"); strings.Contains(tl, "with the group's first alert") {
			t.Fatalf("closed member's timeline:\n%s", tl)
		}
		// The group is over: within its window still, the next alert for
		// the key leads a new one rather than joining a closed group.
		_, next := f.finding("e", "shop.example", "high")
		if a := f.alert(next); a.GroupID == nil || *a.GroupID != next {
			t.Fatalf("an alert after the leader closed: group %v, want its own", a.GroupID)
		}
		// The first group was acknowledged before it paged; the new one
		// pages.
		expectPaths(t, "the new group pages", f.at(0), "/alice/0")
	})
}

// Snoozing a group's first alert snoozes its open members; when the snooze
// ends they open again with it, and the first alert alone pages.
func TestGroupLeaderSnoozesItsMembers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: alice}))
		f.group(30, "sourceName")
		_, leader := f.finding("a", "shop.example", "high")
		_, member := f.finding("b", "shop.example", "high")
		_, acked := f.finding("c", "shop.example", "high")
		expectPaths(t, "the group's first page", f.at(0), "/alice/0")
		if _, err := f.svc.Acknowledge(f.ctx, acked, alice); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Snooze(f.ctx, leader, alice, 30); err != nil {
			t.Fatal(err)
		}
		if a := f.alert(member); a.Status != db.AlertAcknowledged || a.SnoozedUntil == nil {
			t.Fatalf("member after the leader's snooze: %s, snoozed until %v", a.Status, a.SnoozedUntil)
		}
		if a := f.alert(acked); a.SnoozedUntil != nil {
			t.Fatalf("a member acknowledged on its own was snoozed with the group")
		}
		expectPaths(t, "during the snooze", f.at(20))
		expectPaths(t, "the snooze ends: the first alert pages again", f.at(31), "/alice/0")
		if a := f.alert(member); a.Status != db.AlertOpen || a.SnoozedUntil != nil || a.AcknowledgedBy != nil {
			t.Fatalf("member after the snooze ended: %s", a.Status)
		}
		if a := f.alert(acked); a.Status != db.AlertAcknowledged {
			t.Fatalf("the member acknowledged on its own opened again: %s", a.Status)
		}
		tl := strings.Join(f.timeline(member), "\n")
		for _, want := range []string{
			fmt.Sprintf("SNOOZED: Snoozed with the group's first alert #%d", leader),
			fmt.Sprintf("SNOOZE_ENDED: Snooze ended with the group's first alert #%d", leader),
		} {
			if !strings.Contains(tl, want) {
				t.Fatalf("member's timeline lacks %q:\n%s", want, tl)
			}
		}
	})
}

func TestGroupLeaderClosedByMessageEndsTheGroup(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		f.group(30)
		_, leader := f.finding("a", "shop.example", "high")
		_, member := f.finding("b", "api.example", "critical")
		if a := f.alert(member); a.GroupID == nil || *a.GroupID != leader {
			t.Fatalf("empty by: an alert of another asset and severity: group %v, want #%d's", a.GroupID, leader)
		}
		f.finding("a", "shop.example", "low")
		if a := f.alert(member); a.Status != db.AlertOpen {
			t.Fatalf("the leader's close by message closed member: %s", a.Status)
		}
		_, next := f.finding("c", "shop.example", "high")
		if a := f.alert(next); a.GroupID == nil || *a.GroupID != next {
			t.Fatalf("an alert after the leader closed: group %v, want its own", a.GroupID)
		}
	})
}

func TestConcurrentOpensMakeOneGroupLeader(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		f.group(10)
		// Two instances of the server, as behind a load balancer.
		other := f.newService()
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			svc := f.svc
			if i%2 == 1 {
				svc = other
			}
			wg.Go(func() {
				body := fmt.Sprintf(`{"finding":{"uuid":"race-%d","asset":"shop.example","title":"x","severity":"high"}}`, i)
				if _, err := svc.Ingest(f.ctx, alerting.Inbound{Token: f.integ.Token, Body: []byte(body)}); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		var alerts []*db.Alert
		if err := d.NewSelect().Model(&alerts).Scan(f.ctx); err != nil {
			t.Fatal(err)
		}
		leaders := 0
		for _, a := range alerts {
			if a.GroupID == nil {
				t.Fatalf("alert %d is in no group", a.ID)
			}
			if *a.GroupID == a.ID {
				leaders++
			}
		}
		if len(alerts) != 40 || leaders != 1 {
			t.Fatalf("%d alerts with %d group leaders, want 40 with 1", len(alerts), leaders)
		}
	})
}

// A group's first alert waits out the paging delay like any alert, its
// members page nobody, and the integration's auto-close closes members
// and first alert alike.
func TestGroupWithPagingDelayAndAutoClose(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		f.policy(0, step(60, db.Target{Type: db.TargetUser, ID: alice}))
		f.group(10, "sourceName")
		f.flapIntegration(3, 30)
		_, leader := f.finding("delay-1", "shop.example", "high")
		f.setClock(60)
		_, member := f.finding("delay-2", "shop.example", "high")
		if a := f.alert(member); a.GroupID == nil || *a.GroupID != leader {
			t.Fatalf("second alert: group %v, want #%d's", a.GroupID, leader)
		}
		if got := f.countTimeline(member, db.LogPagingDelayed); got != 0 {
			t.Fatalf("member has %d paging-delay entries, want none: it pages nobody", got)
		}
		if got := f.runAt(2); len(got) != 0 {
			t.Fatalf("within the paging delay: %+v, want nobody paged", got)
		}
		got := f.runAt(3)
		if len(got) != 1 || got[0].AlertID != fmt.Sprint(leader) || got[0].Grouped != 1 {
			t.Fatalf("after the paging delay: %+v, want one page about #%d with 1 grouped", got, leader)
		}
		if got := f.runAt(40); len(got) != 0 {
			t.Fatalf("after the auto-close: %+v, want no page", got)
		}
		for _, id := range []int{leader, member} {
			if a := f.alert(id); a.Status != db.AlertClosed {
				t.Fatalf("alert %d after 30 quiet minutes: %s, want closed", id, a.Status)
			}
		}
	})
}
