package retention_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/retention"
)

// defaults are the settings Klaxon starts with.
var defaults = retention.Settings{Bodies: 90 * day, ClosedAlerts: 365 * day, Events: 7 * day}

// Each kind goes at its own age and not an hour before; an open alert
// never goes, and the audit log is kept by default.
func TestEachKindPrunedAtItsAge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d)
		user := w.addUser("oncall@example.com")
		closed := *w.send("disk-a", "").AlertID
		w.send("disk-a", "")
		w.hangOff(closed, user)
		w.send("disk-a", "close")
		open := *w.send("disk-b", "").AlertID
		if err := audit.Record(w.ctx, d, w.clock.Now(), audit.Integration, w.integ.ID, audit.Updated, map[string]any{"name": "a"}, map[string]any{"name": "b"}); err != nil {
			t.Fatal(err)
		}
		w.waitRelayed()
		messages, eventCount, auditEntries := w.count("inbound_messages", "1 = 1"), w.count("events", "1 = 1"), w.count("audit_log", "1 = 1")
		if messages != 4 || eventCount < 4 {
			t.Fatalf("set-up: %d messages, %d events", messages, eventCount)
		}
		p := w.pruner(defaults)

		w.clock.advance(7*day - time.Hour)
		if pruned := w.run(p); total(pruned) != 0 {
			t.Fatalf("an hour before the events' age: pruned %v", pruned)
		}
		w.clock.advance(2 * time.Hour)
		if pruned := w.run(p); pruned["events"] != eventCount-1 || total(pruned) != eventCount-1 {
			t.Fatalf("at the events' age: pruned %v, want all %d events but the newest", pruned, eventCount)
		}
		if n := w.count("events", "1 = 1"); n != 1 {
			t.Fatalf("%d events left, want the newest", n)
		}

		w.clock.advance(90*day - 7*day - 2*time.Hour)
		if pruned := w.run(p); total(pruned) != 0 {
			t.Fatalf("an hour before the bodies' age: pruned %v", pruned)
		}
		w.clock.advance(2 * time.Hour)
		if pruned := w.run(p); pruned["bodies"] != messages || total(pruned) != messages {
			t.Fatalf("at the bodies' age: pruned %v, want %d bodies", pruned, messages)
		}
		if n := w.count("inbound_messages", "body_pruned_at IS NOT NULL AND length(body) = 0"); n != messages {
			t.Fatalf("%d of %d messages marked pruned and emptied", n, messages)
		}

		w.clock.advance(365*day - 90*day - 2*time.Hour)
		if pruned := w.run(p); total(pruned) != 0 {
			t.Fatalf("an hour before the closed alerts' age: pruned %v", pruned)
		}
		w.clock.advance(2 * time.Hour)
		if pruned := w.run(p); pruned["closed_alerts"] != 1 || total(pruned) != 1 {
			t.Fatalf("at the closed alerts' age: pruned %v, want the one closed alert", pruned)
		}
		for _, table := range []string{"alert_log", "notifications", "alert_recipients", "action_links", "alerts"} {
			column := "alert_id"
			if table == "alerts" {
				column = "id"
			}
			if n := w.count(table, column+" = ?", closed); n != 0 {
				t.Errorf("%d rows of %s left for the pruned alert", n, table)
			}
		}
		if n := w.count("alerts", "id = ?", open); n != 1 {
			t.Fatal("the open alert was pruned")
		}
		if n := w.count("alert_log", "alert_id = ?", open); n == 0 {
			t.Fatal("the open alert's timeline was pruned")
		}
		if n := w.count("inbound_messages", "1 = 1"); n != messages {
			t.Fatalf("%d messages left of %d: rows must stay", n, messages)
		}
		if n := w.count("inbound_messages", "alert_id = ?", closed); n != 0 {
			t.Fatalf("%d messages still point at the pruned alert", n)
		}

		w.clock.advance(10 * 365 * day)
		w.run(p)
		if n := w.count("audit_log", "1 = 1"); n != auditEntries {
			t.Fatalf("the audit log has %d entries after ten years, want its %d kept", n, auditEntries)
		}
		if n := w.count("alerts", "id = ?", open); n != 1 {
			t.Fatal("the open alert was pruned after ten years")
		}
	})
}

// 0 keeps for ever; an age on the audit log prunes it.
func TestZeroKeepsForEver(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d)
		w.send("disk-a", "")
		w.send("disk-a", "close")
		if err := audit.Record(w.ctx, d, w.clock.Now(), audit.Integration, w.integ.ID, audit.Updated, map[string]any{"name": "a"}, map[string]any{"name": "b"}); err != nil {
			t.Fatal(err)
		}
		w.waitRelayed()
		before := map[string]int{}
		for _, table := range []string{"inbound_messages", "alerts", "alert_log", "events", "audit_log"} {
			before[table] = w.count(table, "1 = 1")
		}
		w.clock.advance(20 * 365 * day)
		if pruned := w.run(w.pruner(retention.Settings{})); total(pruned) != 0 {
			t.Fatalf("everything at 0 pruned %v", pruned)
		}
		for table, n := range before {
			if got := w.count(table, "1 = 1"); got != n {
				t.Errorf("%s: %d rows, had %d", table, got, n)
			}
		}
		if n := w.count("inbound_messages", "body_pruned_at IS NOT NULL"); n != 0 {
			t.Fatalf("%d bodies pruned with retention 0", n)
		}

		w.clock.advance(retention.DefaultInterval)
		if pruned := w.run(w.pruner(retention.Settings{Audit: 30 * day})); pruned["audit"] != before["audit_log"] || total(pruned) != before["audit_log"] {
			t.Fatalf("audit at 30d: pruned %v, want its %d entries", pruned, before["audit_log"])
		}
	})
}

// A closed alert that an alert within its age depends on stays; links
// from alerts that stay to one that goes are cleared.
func TestClosedAlertKeptWhileDependedOn(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d)
		leader := *w.send("leader", "").AlertID
		w.send("leader", "close")
		withJob := *w.send("with-job", "").AlertID
		w.send("with-job", "close")
		// A finding that came back twice: first <- second <- third.
		first := *w.send("finding", "").AlertID
		w.send("finding", "close")
		second := *w.send("finding", "").AlertID
		w.send("finding", "close")
		w.clock.advance(400 * day)
		member := *w.send("member", "").AlertID
		third := *w.send("finding", "").AlertID
		w.exec("UPDATE alerts SET group_id = ? WHERE id = ?", leader, member)
		w.exec("UPDATE alerts SET previous_alert_id = ? WHERE id = ?", first, second)
		w.exec("UPDATE alerts SET previous_alert_id = ? WHERE id = ?", second, third)
		now := w.clock.Now()
		w.exec(`INSERT INTO alert_jobs (kind, alert_id, run_at, args, dedup_key, created_at) VALUES ('workflow', ?, ?, '{}', 'w-1', ?)`, withJob, now.Add(time.Hour), now)

		if pruned := w.run(w.pruner(defaults)); pruned["closed_alerts"] != 1 {
			t.Fatalf("pruned %v, want only the first of the finding", pruned)
		}
		if w.count("alerts", "id = ?", first) != 0 {
			t.Fatal("the first alert of the finding, named only by an alert past its age, was kept")
		}
		if w.count("alerts", "id = ? AND previous_alert_id IS NULL", second) != 1 {
			t.Fatal("the predecessor of an open alert was pruned, or still names its pruned predecessor")
		}
		if w.count("alerts", "id = ? AND previous_alert_id = ?", third, second) != 1 {
			t.Fatal("the open alert lost its predecessor")
		}
		if w.count("alerts", "id IN (?, ?)", leader, withJob) != 2 {
			t.Fatal("the leader of an open member, or an alert with a job, was pruned")
		}

		w.exec("DELETE FROM alert_jobs WHERE alert_id = ?", withJob)
		w.send("member", "close")
		w.send("finding", "close")
		w.clock.advance(retention.DefaultInterval)
		if pruned := w.run(w.pruner(defaults)); pruned["closed_alerts"] != 1 {
			t.Fatalf("pruned %v, want the alert whose job ended while the others are named by alerts within their age", pruned)
		}
		w.clock.advance(366 * day)
		if pruned := w.run(w.pruner(defaults)); pruned["closed_alerts"] != 4 {
			t.Fatalf("pruned %v a year on, want the leader, its member and the rest of the finding", pruned)
		}
		if n := w.count("alerts", "1 = 1"); n != 0 {
			t.Fatalf("%d alerts left", n)
		}
	})
}

// An age shorter than an integration's regression window does not cut
// the window short: the closed alert stays until the window passes, so
// the finding back within it is still a regression; an integration
// without a window loses its closed alerts at the age.
func TestClosedAlertKeptForItsIntegrationsRegressionWindow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d)
		w.exec("UPDATE integrations SET regression_window_days = 200 WHERE id = ?", w.integ.ID)
		w.svc.RoutesChanged()
		other := w.otherIntegration("no window")
		w.exec("UPDATE integrations SET regression_window_days = 0 WHERE id = ?", other.ID)
		w.svc.RoutesChanged()

		first := *w.send("finding", "").AlertID
		w.send("finding", "close")
		unwatched := *w.sendTo(other, "finding", "").AlertID
		w.sendTo(other, "finding", "close")
		short := retention.Settings{ClosedAlerts: 30 * day}

		w.clock.advance(31 * day)
		if pruned := w.run(w.pruner(short)); pruned["closed_alerts"] != 1 {
			t.Fatalf("past the age: pruned %v, want only the alert of the integration without a window", pruned)
		}
		if w.count("alerts", "id = ?", unwatched) != 0 || w.count("alerts", "id = ?", first) != 1 {
			t.Fatal("the age pruned inside a regression window, or not at all outside one")
		}

		w.clock.advance(150 * day)
		back := *w.send("finding", "").AlertID
		if w.count("alerts", "id = ? AND previous_alert_id = ?", back, first) != 1 {
			t.Fatal("the finding back within its window, past the age, is not a regression of the alert before")
		}
		w.send("finding", "close")

		// Past the first alert's window it stays while the regression
		// that names it is within its age; then it goes, and the
		// regression, within its own window, stays.
		w.clock.advance(20 * day)
		if pruned := w.run(w.pruner(short)); pruned["closed_alerts"] != 0 {
			t.Fatalf("while the regression is within its age: pruned %v", pruned)
		}
		w.clock.advance(11 * day)
		if pruned := w.run(w.pruner(short)); pruned["closed_alerts"] != 1 || w.count("alerts", "id = ?", first) != 0 {
			t.Fatalf("past the window: pruned %v, want the first alert", pruned)
		}
		if w.count("alerts", "id = ?", back) != 1 {
			t.Fatal("the regression was pruned inside its own window")
		}
	})
}

// Two instances asking at once: one prunes, the other finds the turn
// taken, and neither fails.
func TestTwoInstancesPruneOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d)
		for i := range 30 {
			w.send("disk-"+string(rune('a'+i%26))+string(rune('a'+i/26)), "")
		}
		w.clock.advance(91 * day)
		first, second := w.pruner(defaults), w.pruner(defaults)
		reports := make(chan retention.Report, 2)
		errs := make(chan error, 2)
		for _, p := range []*retention.Pruner{first, second} {
			go func() {
				r, err := p.RunOnce(context.Background())
				reports <- r
				errs <- err
			}()
		}
		ran, bodies := 0, 0
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
			r := <-reports
			if r.Ran {
				ran++
			}
			bodies += r.Pruned["bodies"]
		}
		if ran != 1 || bodies != 30 {
			t.Fatalf("%d instances ran, pruning %d bodies; want one, pruning 30", ran, bodies)
		}
		// The turn is due again one interval after the run, for either.
		if r, err := second.RunOnce(w.ctx); err != nil || r.Ran {
			t.Fatalf("right after a run: ran %v, %v", r.Ran, err)
		}
		w.clock.advance(retention.DefaultInterval)
		if r, err := second.RunOnce(w.ctx); err != nil || !r.Ran {
			t.Fatalf("an interval later: ran %v, %v", r.Ran, err)
		}
	})
}

// A stop ends a run between two batches and hands the turn back, due at
// once, so another instance carries on.
func TestStopEndsARunAndHandsTheTurnBack(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d)
		ctx, stop := context.WithCancel(context.Background())
		batches := 0
		endless := retention.Kind{Name: "endless", Age: day, Batch: 10,
			Prune: func(context.Context, time.Time, int) (int, error) {
				batches++
				if batches == 3 {
					stop()
				}
				return 10, nil
			},
			Backlog: func(context.Context, time.Time) (int64, error) { return 1000, nil }}
		p := retention.New(retention.Options{Turns: w.svc, Kinds: []retention.Kind{endless}, Now: w.clock.Now})
		report, err := p.RunOnce(ctx)
		if err != nil || !report.Ran || batches != 3 || report.Pruned["endless"] != 30 {
			t.Fatalf("stopped run: %+v after %d batches, %v", report, batches, err)
		}
		other := w.pruner(defaults)
		if r, err := other.RunOnce(w.ctx); err != nil || !r.Ran {
			t.Fatalf("another instance after the stop: ran %v, %v", r.Ran, err)
		}
	})
}

// A subscriber resuming from before the resume horizon is refused with
// ErrCursorTooOld, at once or when pruning overtakes it; from after it, it
// misses nothing.
func TestResumeBeforeTheHorizonIsRefused(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d)
		w.send("disk-a", "")
		w.waitRelayed()
		oldest := w.lastSeq()
		w.clock.advance(8 * day)
		w.send("disk-b", "")
		w.waitRelayed()
		kept := w.lastSeq()
		w.send("disk-c", "")
		w.waitRelayed()

		overtaken, err := w.bus.Subscribe(w.ctx, oldest, nil)
		if err != nil {
			t.Fatalf("resume from a kept cursor: %v", err)
		}
		defer overtaken.Close()
		if pruned := w.run(w.pruner(defaults)); pruned["events"] == 0 {
			t.Fatalf("pruned %v, want the old events", pruned)
		}
		if _, err := w.bus.Subscribe(w.ctx, oldest, nil); !errors.Is(err, events.ErrCursorTooOld) {
			t.Fatalf("resume from a pruned cursor: %v, want ErrCursorTooOld", err)
		}
		// The subscription reads on from the database, where its next
		// events are gone, and must say so; or the bus still holds them in
		// memory and hands over the very next one. Either way, no gap.
		switch next, err := overtaken.TryNext(w.ctx); {
		case errors.Is(err, events.ErrCursorTooOld):
		case err == nil && next != nil && next.Seq == oldest+1:
		default:
			t.Fatalf("a resume overtaken by pruning: %+v, %v; want ErrCursorTooOld or event %d", next, err, oldest+1)
		}
		sub, err := w.bus.Subscribe(w.ctx, kept, nil)
		if err != nil {
			t.Fatalf("resume from within the horizon: %v", err)
		}
		defer sub.Close()
		ev, err := sub.TryNext(w.ctx)
		if err != nil || ev == nil || ev.Seq <= kept || ev.Alert == nil || ev.Alert.SourceID != "disk-c" {
			t.Fatalf("first event after the kept cursor: %+v, %v", ev, err)
		}
	})
}

func (w *world) lastSeq() int64 {
	w.t.Helper()
	var seq int64
	if err := w.d.NewRaw("SELECT max(seq) FROM events").Scan(w.ctx, &seq); err != nil {
		w.t.Fatal(err)
	}
	return seq
}

// The metrics say what was pruned, by kind, and when the last run ended.
func TestProgressIsAMetric(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newWorld(t, d)
		for _, key := range []string{"a", "b", "c"} {
			w.send(key, "")
		}
		p := w.pruner(defaults)
		reg := prometheus.NewRegistry()
		reg.MustRegister(p.Collectors()...)
		w.clock.advance(91 * day)
		w.run(p)
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				name := f.GetName()
				for _, l := range m.GetLabel() {
					name += "/" + l.GetValue()
				}
				switch {
				case m.Counter != nil:
					got[name] = m.Counter.GetValue()
				case m.Gauge != nil:
					got[name] = m.Gauge.GetValue()
				}
			}
		}
		if got["klaxon_retention_pruned_total/bodies"] != 3 || got["klaxon_retention_backlog/bodies"] != 0 ||
			got["klaxon_retention_last_run_timestamp_seconds"] != float64(w.clock.Now().Unix()) {
			t.Fatalf("metrics: %v", got)
		}
	})
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
