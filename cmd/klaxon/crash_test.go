package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// crashJobLease is the job lease the crashed process runs with: the jobs
// it held when it died wait this long before the next start runs them.
const crashJobLease = "3s"

// TestCrash kills the real binary with SIGKILL under webhook load, while
// notifications are being sent, and starts it again on the same database.
// Every message answered 2xx must be in the inbound log with its final
// status; no finding may have two unclosed alerts; every open alert must
// have been escalated once and notified once, including those whose step
// or send was due, or under way, when the process died; and no job may
// be left behind.
func TestCrash(t *testing.T) {
	bin := buildKlaxon(t)
	for _, kind := range []db.Kind{db.SQLite, db.Postgres} {
		t.Run(string(kind), func(t *testing.T) {
			args, databaseURL := serveArgs(t, kind)
			testCrash(t, bin, append(args, "--engine-job-lease", crashJobLease), databaseURL)
		})
	}
}

// reply is the answer to one webhook that got a 2xx.
type reply struct {
	MessageID string
	Status    string
	AlertID   string
}

// deliveries is the outbound-webhook receiver: it counts the messages
// each alert got and, once told to hold, keeps every send hanging, as a
// slow receiver would, so the process dies with sends under way.
type deliveries struct {
	mu      sync.Mutex
	byAlert map[string]int
	// heldAlerts are the alerts a held send was about.
	heldAlerts map[string]bool
	hold       atomic.Bool
}

func (d *deliveries) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct{ AlertID string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.AlertID == "" {
		http.Error(w, "no alertId", http.StatusBadRequest)
		return
	}
	held := d.hold.Load()
	d.mu.Lock()
	d.byAlert[body.AlertID]++
	if held {
		d.heldAlerts[body.AlertID] = true
	}
	d.mu.Unlock()
	if held {
		// Until the sender goes away: the process is killed meanwhile.
		<-r.Context().Done()
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (d *deliveries) snapshot() (byAlert map[string]int, held map[string]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.byAlert), maps.Clone(d.heldAlerts)
}

// webhookLoad posts Detectify findings from several senders: new
// findings, repeats of earlier ones and closes, so alerts open, take
// duplicates, close and open again for the same finding.
type webhookLoad struct {
	url     string
	client  *http.Client
	stop    atomic.Bool
	ok      atomic.Int64
	opened  atomic.Int64
	next    atomic.Int64 // findings used so far
	mu      sync.Mutex
	replies []reply
	// unsure counts requests that got no answer: in flight when the
	// process died, they may or may not have been stored.
	unsure int
	// refused are definite non-2xx answers, which the load never
	// deserves.
	refused []string
	// retryable allows 503 with Retry-After, the answer while the
	// database is unavailable; such a message counts as unsure (its
	// commit may have gone through unseen) and in unavailable.
	retryable   bool
	unavailable atomic.Int64
}

func (l *webhookLoad) run(senders int) (wait func()) {
	var wg sync.WaitGroup
	for i := range senders {
		rng := rand.New(rand.NewPCG(uint64(i), 42))
		wg.Go(func() {
			for !l.stop.Load() {
				l.send(rng)
			}
		})
	}
	return wg.Wait
}

func (l *webhookLoad) send(rng *rand.Rand) {
	var body []byte
	switch n, r := l.next.Load(), rng.IntN(100); {
	case n == 0 || r < 35:
		body = detectifyFinding(fmt.Sprintf("finding-%d", l.next.Add(1)), "high")
	case r < 80:
		body = detectifyFinding(fmt.Sprintf("finding-%d", 1+rng.Int64N(n)), "medium")
	default:
		body = detectifyFinding(fmt.Sprintf("finding-%d", 1+rng.Int64N(n)), "low")
	}
	resp, err := l.client.Post(l.url, "application/json", bytes.NewReader(body))
	if err != nil {
		l.mu.Lock()
		l.unsure++
		l.mu.Unlock()
		return
	}
	defer resp.Body.Close()
	var rep reply
	err = json.NewDecoder(resp.Body).Decode(&rep)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.retryable && resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" && err == nil:
		l.unsure++
		l.unavailable.Add(1)
		// A sender backs off before retrying; a short pause is enough
		// to keep the load from spinning on refusals.
		time.Sleep(10 * time.Millisecond)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		l.refused = append(l.refused, resp.Status)
	case err != nil:
		// The answer began but was cut off: as unsure as no answer.
		l.unsure++
	default:
		l.replies = append(l.replies, rep)
		l.ok.Add(1)
		if rep.Status == string(db.InboundOpened) {
			l.opened.Add(1)
		}
	}
}

func testCrash(t *testing.T, bin string, args []string, databaseURL string) {
	ctx := context.Background()
	recv := &deliveries{byAlert: map[string]int{}, heldAlerts: map[string]bool{}}
	receiver := httptest.NewServer(recv)
	t.Cleanup(receiver.Close)

	p := startKlaxon(t, bin, args)
	logTailOnFailure(t, "before the crash", p)
	base := "http://" + p.addr
	setup := setUpPaging(t, base, receiver.URL, 0)

	load := &webhookLoad{url: base + setup.hookPath, client: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 8},
	}}
	waitLoad := load.run(8)
	t.Cleanup(func() { load.stop.Store(true); waitLoad() })
	waitFor(t, "300 webhooks answered", 60*time.Second, func() bool { return load.ok.Load() >= 300 })
	// From now on sends hang, so the process dies with sends under way,
	// and the engine, waiting on them, leaves the steps of the alerts
	// opened meanwhile due but not run.
	recv.hold.Store(true)
	waitUntil(t, "a send to be under way", func() bool { _, held := recv.snapshot(); return len(held) > 0 })
	// The engine waits on that send before it takes more jobs, so the
	// steps of alerts opened from now on are due and not run.
	openedAt := load.opened.Load()
	waitUntil(t, "alerts to open while sends hang", func() bool { return load.opened.Load() >= openedAt+10 })

	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	load.stop.Store(true)
	waitLoad()
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGKILL")
	}
	_, heldBeforeKill := recv.snapshot()
	recv.hold.Store(false)
	t.Logf("killed after %d webhooks answered 2xx, %d unanswered; %d sends under way", len(load.replies), load.unsure, len(heldBeforeKill))
	if len(load.refused) > 0 {
		t.Errorf("webhooks refused under load: %v", load.refused)
	}

	d, err := db.Open(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	left := crashLeftovers(t, d)
	t.Logf("left by the crash: %d open alerts, %d steps and %d sends due, %d jobs leased, %d sends under way",
		left.openAlerts, left.dueSteps, left.dueSends, left.leased, len(left.sending))
	// Without these the restart would have nothing to recover.
	if left.dueSteps == 0 || len(left.sending) == 0 {
		t.Fatalf("the crash left no step due (%d) or no send under way (%d): the test did not crash where it means to", left.dueSteps, len(left.sending))
	}
	// The delivery log shows every send that was made.
	for id := range heldBeforeKill {
		if !left.sending[id] {
			t.Errorf("alert %s was being sent when the process died, but its notification is not SENDING", id)
		}
	}

	p = startKlaxon(t, bin, args)
	logTailOnFailure(t, "after the restart", p)
	base = "http://" + p.addr
	waitUntil(t, "the restarted server to be ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// The restarted server pages every open alert: each alert's send, held
	// or never made, is recorded SENT, and no job is left. The crashed
	// process's leases must end for its jobs to run at all.
	waitFor(t, "every open alert to be notified after the restart", 60*time.Second, func() bool {
		unsent, err := d.NewSelect().Model((*db.Alert)(nil)).
			Where("status = ?", db.AlertOpen).
			Where("NOT EXISTS (SELECT 1 FROM notifications n WHERE n.alert_id = alert.id AND n.status = ?)", db.NotificationSent).
			Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The pruning turn's row stays for good; it is no alert's work.
		jobs, err := d.NewSelect().Model((*db.AlertJob)(nil)).Where("kind <> 'prune'").Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return unsent == 0 && jobs == 0
	})

	checkInboundLog(t, d, load)
	checkOneUnclosedAlertPerFinding(t, d)
	checkPagedOnce(t, d, recv, left.sending)

	// The restarted server still appends a repeat to the finding's open
	// alert rather than opening a second one.
	var open []db.Alert
	if err := d.NewSelect().Model(&open).Where("status = ?", db.AlertOpen).Order("id").Limit(20).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for _, a := range open {
		resp, err := http.Post(base+setup.hookPath, "application/json", bytes.NewReader(detectifyFinding(a.SourceID, "high")))
		if err != nil {
			t.Fatal(err)
		}
		var rep reply
		err = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if err != nil || rep.Status != string(db.InboundAppended) || rep.AlertID != strconv.Itoa(a.ID) {
			t.Errorf("repeat of %s after the restart: HTTP %d %+v (%v), want MAPPED_APPENDED to alert %d", a.SourceID, resp.StatusCode, rep, err, a.ID)
		}
	}
}

// logTailOnFailure shows the end of the process's logs if the test fails.
func logTailOnFailure(t *testing.T, when string, p *klaxonProcess) {
	t.Cleanup(func() {
		if t.Failed() {
			logs := p.logs()
			t.Logf("server logs %s, last part:\n%s", when, logs[max(0, len(logs)-8000):])
		}
	})
}

// leftovers is what the crash left in the database for the next start.
type leftovers struct {
	dueSteps   int64 // escalation steps due but not run
	dueSends   int64 // notifications due but not sent
	leased     int64 // jobs still leased to the dead process
	openAlerts int64
	// sending are the alerts whose send was under way.
	sending map[string]bool
}

func crashLeftovers(t *testing.T, d *db.DB) leftovers {
	t.Helper()
	ctx := context.Background()
	count := func(q *bun.SelectQuery) int64 {
		n, err := q.Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	jobs := func() *bun.SelectQuery { return d.NewSelect().Model((*db.AlertJob)(nil)) }
	left := leftovers{
		dueSteps:   count(jobs().Where("kind = 'escalate'")),
		dueSends:   count(jobs().Where("kind = 'notify'")),
		leased:     count(jobs().Where("locked_until IS NOT NULL")),
		openAlerts: count(d.NewSelect().Model((*db.Alert)(nil)).Where("status = ?", db.AlertOpen)),
		sending:    map[string]bool{},
	}
	var sending []int
	err := d.NewSelect().Model((*db.Notification)(nil)).Column("alert_id").Where("status = ?", db.NotificationSending).Scan(ctx, &sending)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range sending {
		left.sending[strconv.Itoa(id)] = true
	}
	return left
}

// checkInboundLog holds "accepted means stored": every message answered
// 2xx is in the log as answered, and no message is left without a final
// status.
func checkInboundLog(t *testing.T, d *db.DB, load *webhookLoad) {
	t.Helper()
	var stored []db.InboundMessage
	if err := d.NewSelect().Model(&stored).Column("id", "status", "alert_id").Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	byID := make(map[string]db.InboundMessage, len(stored))
	for _, m := range stored {
		byID[strconv.Itoa(m.ID)] = m
		if m.Status == db.InboundPending || m.Status == "" {
			t.Errorf("inbound message %d has no final status: %q", m.ID, m.Status)
		}
	}
	lost := 0
	for _, rep := range load.replies {
		m, ok := byID[rep.MessageID]
		if !ok {
			lost++
			if lost <= 10 {
				t.Errorf("message %s was answered %s but is not in the inbound log", rep.MessageID, rep.Status)
			}
			continue
		}
		alertID := ""
		if m.AlertID != nil {
			alertID = strconv.Itoa(*m.AlertID)
		}
		if string(m.Status) != rep.Status || alertID != rep.AlertID {
			t.Errorf("message %s: stored as %s for alert %q, answered %s for alert %q", rep.MessageID, m.Status, alertID, rep.Status, rep.AlertID)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d messages answered 2xx are lost", lost, len(load.replies))
	}
	// Nothing is stored that was not sent: at most the unanswered ones
	// beside those answered.
	if n := len(stored); n < len(load.replies) || n > len(load.replies)+load.unsure {
		t.Errorf("inbound log holds %d messages; %d were answered 2xx and %d unanswered", n, len(load.replies), load.unsure)
	}
}

// checkOneUnclosedAlertPerFinding checks what the unique index over
// unclosed alerts promises.
func checkOneUnclosedAlertPerFinding(t *testing.T, d *db.DB) {
	t.Helper()
	var doubled []struct {
		SourceID string `bun:"source_id"`
		N        int    `bun:"n"`
	}
	err := d.NewRaw(`SELECT source_id, COUNT(*) AS n FROM alerts WHERE status <> ? GROUP BY integration_id, source_id HAVING COUNT(*) > 1`, db.AlertClosed).
		Scan(context.Background(), &doubled)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range doubled {
		t.Errorf("finding %s has %d unclosed alerts", s.SourceID, s.N)
	}
}

// checkPagedOnce checks every alert was escalated and notified once: an
// open alert exactly once, a closed one at most once (it may have closed
// before its step ran). The receiver sees each alert once, except that a
// send under way when the process died is made again after the restart:
// the process cannot know whether the receiver got it, so it sends again
// rather than risk nobody being paged (at least once to the outside
// world, exactly once in the delivery log).
func checkPagedOnce(t *testing.T, d *db.DB, recv *deliveries, sendingAtKill map[string]bool) {
	t.Helper()
	ctx := context.Background()
	var alerts []db.Alert
	if err := d.NewSelect().Model(&alerts).Column("id", "status", "source_id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	var steps []struct {
		AlertID int `bun:"alert_id"`
		N       int `bun:"n"`
	}
	// The step's own entry, not the "no one to notify" entries that share
	// its type.
	err := d.NewRaw(`SELECT alert_id, COUNT(*) AS n FROM alert_log WHERE type = ? AND message LIKE 'Escalated to step 1 of %' GROUP BY alert_id`, db.LogEscalated).
		Scan(ctx, &steps)
	if err != nil {
		t.Fatal(err)
	}
	escalated := map[int]int{}
	for _, s := range steps {
		escalated[s.AlertID] = s.N
	}
	var notes []db.Notification
	if err := d.NewSelect().Model(&notes).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	notified := map[int][]db.Notification{}
	for _, n := range notes {
		notified[n.AlertID] = append(notified[n.AlertID], n)
	}
	received, _ := recv.snapshot()
	known := map[string]bool{}
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, a := range alerts {
		id := strconv.Itoa(a.ID)
		known[id] = true
		steps, notes, got := escalated[a.ID], notified[a.ID], received[id]
		most := 1
		if sendingAtKill[id] {
			most = 2
		}
		if a.Status == db.AlertOpen {
			if steps != 1 {
				report("open alert %d (%s) escalated %d times, want once", a.ID, a.SourceID, steps)
			}
			if len(notes) != 1 || notes[0].Status != db.NotificationSent || notes[0].Step != 0 || notes[0].Round != 0 {
				report("open alert %d (%s) notifications: %+v, want one SENT for step 1", a.ID, a.SourceID, notes)
			}
			if got < 1 || got > most {
				report("open alert %d (%s) reached the receiver %d times, want 1 to %d", a.ID, a.SourceID, got, most)
			}
			continue
		}
		if steps > 1 || len(notes) > 1 || got > most {
			report("%s alert %d (%s): escalated %d times, %d notifications, reached the receiver %d times; want at most 1, 1, %d",
				a.Status, a.ID, a.SourceID, steps, len(notes), got, most)
		}
		// A closed alert is not paged again, so a send the crash cut off
		// keeps the one status that does not claim an outcome.
		for _, n := range notes {
			if n.Status != db.NotificationSent && n.Status != db.NotificationFailed && (n.Status != db.NotificationSending || !sendingAtKill[id]) {
				report("%s alert %d (%s): notification left %s", a.Status, a.ID, a.SourceID, n.Status)
			}
		}
	}
	for id := range received {
		if !known[id] {
			report("the receiver was sent unknown alert %s", id)
		}
	}
	if bad > 20 {
		t.Errorf("… and %d more", bad-20)
	}
}
