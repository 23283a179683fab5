package alerting

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/rules"
)

// The ingest path each database takes (prepared statements on SQLite, one
// statement per message on PostgreSQL) must leave exactly the rows the
// generic path leaves: the same story told to both, row for row.
func TestFastIngestMatchesGenericPath(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, fast *db.DB) {
		generic := dbtest.SQLite(t)
		if fast.Kind == db.Postgres {
			generic = dbtest.Postgres(t)
		}
		ctx := context.Background()
		clock := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
		newSvc := func(d *db.DB) *Service {
			// Acknowledging reads the alert's policy for its timeout.
			return NewService(Options{DB: d, PublicURL: "https://klaxon.example", Now: func() time.Time { return clock }, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: Config{
				Integrations: integrations.NewStore(d, "https://klaxon.example", time.Now, nil), Policies: policies.NewStore(d, time.Now, nil)}})
		}
		fastSvc, genericSvc := newSvc(fast), newSvc(generic)
		fastTokens, genericTokens := storyIntegrations(t, fastSvc), storyIntegrations(t, genericSvc)

		// The medium finding comes back as critical while open, which
		// raises it; the SQL injection is closed and comes back, a
		// regression.
		bodies := []string{
			"scan_started.json", "new_finding_high.json", "new_finding_high_repeat.json",
			"legacy_event_finding_high.json", "new_finding_medium.json", "new_finding_medium.json critical", "finding_low.json",
			"finding_low_unmatched.json", "new_finding_high.json", "scan_completed.json", "not json", "scan_completed.json",
		}
		for i := range fastTokens {
			for _, name := range bodies {
				body := []byte(name)
				if name != "not json" {
					file, severity, raised := strings.Cut(name, " ")
					var err error
					if body, err = os.ReadFile(filepath.Join("..", "rules", "testdata", "detectify", file)); err != nil {
						t.Fatal(err)
					}
					if raised {
						body = bytes.Replace(body, []byte(`"severity": "medium"`), []byte(`"severity": "`+severity+`"`), 1)
					}
				}
				clock = clock.Add(time.Second)
				in := Inbound{Token: fastTokens[i], Body: body, Headers: map[string]string{"User-Agent": "detectify"}, RemoteAddr: "192.0.2.1"}
				if _, err := fastSvc.Ingest(ctx, in); err != nil {
					t.Fatalf("fast ingest of %s: %v", name, err)
				}
				in.Token = genericTokens[i]
				if err := ingestGeneric(ctx, genericSvc, in); err != nil {
					t.Fatalf("generic ingest of %s: %v", name, err)
				}
			}
		}
		// PagerDuty and Opsgenie stories: the fast paths hand
		// acknowledgements and notes to the generic executor, and must
		// leave what it leaves.
		for _, st := range []struct {
			typ   rules.IntegrationType
			story []string
		}{{rules.TypePagerDuty, pagerDutyStory}, {rules.TypeOpsgenie, opsgenieStory}, {rules.TypeEmail, emailStory}} {
			typ, story := st.typ, st.story
			fastToken, genericToken := dropInStoryIntegration(t, fastSvc, typ), dropInStoryIntegration(t, genericSvc, typ)
			for _, body := range story {
				clock = clock.Add(time.Second)
				in := Inbound{Token: fastToken, Body: []byte(body), Headers: map[string]string{"User-Agent": string(typ)}, RemoteAddr: "192.0.2.1"}
				if _, err := fastSvc.Ingest(ctx, in); err != nil {
					t.Fatalf("fast ingest of %s: %v", body, err)
				}
				in.Token = genericToken
				if err := ingestGeneric(ctx, genericSvc, in); err != nil {
					t.Fatalf("generic ingest of %s: %v", body, err)
				}
			}
		}
		for _, table := range []string{"inbound_messages", "alerts", "alert_log", "events", "alert_jobs", "scan_heartbeats"} {
			got, want := tableRows(t, fast, table), tableRows(t, generic, table)
			if len(got) != len(want) {
				t.Fatalf("%s: %d rows, the generic path leaves %d", table, len(got), len(want))
			}
			if table == "events" && fast.Kind == db.SQLite && len(got) == 0 {
				t.Fatal("no events: SQLite records them numbered at once")
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s row %d:\n got %s\nwant %s", table, i, got[i], want[i])
				}
			}
		}
		// The story reaches the paging delay and auto-close.
		for _, want := range []struct{ table, column, value string }{
			{"alert_log", "type", string(db.LogPagingDelayed)},
			{"alert_log", "type", string(db.LogNotPaged)},
			{"alert_jobs", "kind", jobAutoClose},
			{"alert_log", "type", string(db.LogGrouped)},
			{"inbound_messages", "status", string(db.InboundPulse)},
			{"alert_jobs", "kind", jobScanHeartbeat},
			{"alert_log", "type", string(db.LogRegression)},
			{"alert_jobs", "kind", jobOverdue},
			{"alert_log", "type", string(db.LogAcknowledged)},
			{"inbound_messages", "status", string(db.InboundAcknowledged)},
			{"alert_log", "type", string(db.LogNote)},
			{"inbound_messages", "status", string(db.InboundNoteAdded)},
		} {
			n, err := fast.NewSelect().Table(want.table).Where("? = ?", bun.Ident(want.column), want.value).Count(ctx)
			if err != nil || n == 0 {
				t.Fatalf("no %s row with %s %s: %v", want.table, want.column, want.value, err)
			}
		}
		// The raised finding is due two days after it opened, by the one
		// overdue job it has left.
		var due []time.Time
		err := fast.NewRaw(`SELECT j.run_at FROM alerts a JOIN alert_jobs j ON j.alert_id = a.id AND j.kind = ?
			WHERE a.source_id = 'a71e4d90-2c3b-4f8e-b6d5-0e9f8a7c6b51' AND a.severity = 'critical' AND a.due_at = j.run_at`, jobOverdue).Scan(ctx, &due)
		if err != nil || len(due) != 1 {
			t.Fatalf("overdue jobs of the raised finding: %v, %v", due, err)
		}
	})
}

// storyIntegrations creates, in order, a Detectify integration that pages
// nobody, one with recipients, one with an escalation policy, one with
// the policy, a paging delay, auto-close and scan heartbeats, one with
// the policy that groups what it opens, and one with remediation
// deadlines.
func storyIntegrations(t *testing.T, svc *Service) []string {
	t.Helper()
	ctx := context.Background()
	name, typ := "Detectify", rules.TypeDetectify
	policyName := "Security"
	policy, err := policies.NewStore(svc.db, svc.now, svc.RoutesChanged).CreateEscalationPolicy(ctx, policies.PolicyInput{Name: &policyName, Steps: []policies.StepInput{{Targets: []db.Target{{Type: db.TargetRecipients}}}}})
	if err != nil {
		t.Fatalf("create policy: %v", err)
	}
	var tokens []string
	store := integrations.NewStore(svc.db, svc.publicURL, svc.now, svc.RoutesChanged)
	for _, in := range []integrations.IntegrationInput{
		{Name: &name, Type: &typ},
		{Name: &name, Type: &typ},
		{Name: &name, Type: &typ, EscalationPolicyID: &policy.ID},
		{Name: &name, Type: &typ, EscalationPolicyID: &policy.ID},
		{Name: &name, Type: &typ, EscalationPolicyID: &policy.ID, Grouping: &rules.Grouping{WindowMinutes: 5}},
		{Name: &name, Type: &typ, EscalationPolicyID: &policy.ID, Remediation: &rules.Remediation{{Severity: "critical", Days: 2}, {Severity: "high", Days: 7}, {Severity: "medium", Days: 30}}},
	} {
		integ, err := store.CreateIntegration(ctx, in)
		if err != nil {
			t.Fatalf("create integration: %v", err)
		}
		tokens = append(tokens, integ.Token)
	}
	if _, err := svc.db.NewRaw("INSERT INTO integration_recipients (integration_id, kind, target_id) SELECT id, ?, 7 FROM integrations WHERE token = ?",
		db.TargetUser, tokens[1]).Exec(ctx); err != nil {
		t.Fatalf("add recipient: %v", err)
	}
	if _, err := svc.db.NewRaw("UPDATE integrations SET page_delay_minutes = 5, auto_close_after_minutes = 30, scan_heartbeat_hours = 24 WHERE token = ?", tokens[3]).Exec(ctx); err != nil {
		t.Fatalf("set flap control: %v", err)
	}
	return tokens
}

// pagerDutyStory opens an alert, acknowledges it (twice: the second
// changes nothing), appends to it while acknowledged, closes it, and
// acknowledges a source with no open alert.
var pagerDutyStory = []string{
	`{"event_action":"trigger","dedup_key":"disk","payload":{"summary":"Disk full","source":"db-1","severity":"critical"}}`,
	`{"event_action":"acknowledge","dedup_key":"disk"}`,
	`{"event_action":"acknowledge","dedup_key":"disk"}`,
	`{"event_action":"trigger","dedup_key":"disk","payload":{"summary":"Disk full","source":"db-1","severity":"critical"}}`,
	`{"event_action":"resolve","dedup_key":"disk"}`,
	`{"event_action":"acknowledge","dedup_key":"disk"}`,
}

// opsgenieStory opens an alert, adds a note to it, closes it, and adds a
// note to a source with no open alert.
var opsgenieStory = []string{
	`{"action":"create","alias":"backup","message":"Backup failed","severity":"high"}`,
	`{"action":"addNote","alias":"backup","note":"Retrying tonight"}`,
	`{"action":"close","alias":"backup"}`,
	`{"action":"addNote","alias":"backup","note":"Too late"}`,
}

// emailStory is mail as the SMTP listener stores it: a job's failure
// opens, its next night's failure (another job number) appends, another
// subject opens a second alert.
var emailStory = []string{
	`{"from":"cron@db-1","to":["k@alerts.example"],"subject":"Job 41 failed","subjectKey":"Job failed","text":"exit 1","headers":{},"attachments":[]}`,
	`{"from":"cron@db-1","to":["k@alerts.example"],"subject":"Job 42 failed","subjectKey":"Job failed","text":"exit 2","headers":{},"attachments":[{"name":"log","type":"text/plain","size":10}]}`,
	`{"from":"ups@rack-2","to":["k@alerts.example"],"subject":"On battery","subjectKey":"On battery","text":"","headers":{},"attachments":[]}`,
}

// dropInStoryIntegration is an integration of typ with an escalation
// policy, so that acknowledging stops paging.
func dropInStoryIntegration(t *testing.T, svc *Service, typ rules.IntegrationType) string {
	t.Helper()
	ctx := context.Background()
	name, policyName := string(typ), "Database "+string(typ)
	policy, err := policies.NewStore(svc.db, svc.now, svc.RoutesChanged).CreateEscalationPolicy(ctx, policies.PolicyInput{Name: &policyName, Steps: []policies.StepInput{{Targets: []db.Target{{Type: db.TargetRecipients}}}}})
	if err != nil {
		t.Fatalf("create policy: %v", err)
	}
	integ, err := integrations.NewStore(svc.db, svc.publicURL, svc.now, svc.RoutesChanged).CreateIntegration(ctx, integrations.IntegrationInput{Name: &name, Type: &typ, EscalationPolicyID: &policy.ID})
	if err != nil {
		t.Fatalf("create integration: %v", err)
	}
	return integ.Token
}

// ingestGeneric is Ingest by way of apply, one transaction per message.
func ingestGeneric(ctx context.Context, s *Service, in Inbound) error {
	r, err := s.routeFor(ctx, in.Token)
	if err != nil {
		return err
	}
	msg := &db.InboundMessage{IntegrationID: r.integ.ID, ReceivedAt: s.clock(), RemoteAddr: in.RemoteAddr, Headers: in.Headers, Body: in.Body}
	decision, failure, err := s.decideBody(ctx, r, in.Body, s.clock())
	if err != nil {
		return err
	}
	msg.SourceID = decision.Fields.SourceID
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if failure != "" {
			msg.Status, msg.Detail = db.InboundMappingFailed, failure
			return insertMessage(ctx, tx, msg)
		}
		return s.apply(ctx, tx, r.integ, msg, decision)
	})
}

// tableRows prints every row but the tokens, which differ by design.
//
// "events" is the stream subscribers will see: the numbered events, then
// the outbox in the order the relay will number it, neither with its
// number. The paths may number events at different times, but never in
// a different order.
func tableRows(t *testing.T, d *db.DB, table string) []string {
	t.Helper()
	var rows []map[string]any
	query := "SELECT * FROM " + table + " ORDER BY id"
	if table == "events" {
		const columns = "kind, type, alert_id, integration_id, inbound_message_id, at"
		query = "SELECT " + columns + " FROM (SELECT 0 AS part, seq AS n, " + columns + " FROM events UNION ALL SELECT 1, id, " + columns + " FROM event_outbox) AS stream ORDER BY part, n"
	}
	if err := d.NewRaw(query).Scan(context.Background(), &rows); err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	out := make([]string, len(rows))
	for i, row := range rows {
		delete(row, "token")
		for k, v := range row {
			if b, ok := v.([]byte); ok {
				row[k] = string(b)
			}
		}
		out[i] = fmt.Sprint(row)
	}
	return out
}

// A batch that mixes messages stored by the one-statement paths with
// messages left to the generic path (a rule's route that names
// recipients) numbers their events in the order of the batch, on either
// database, though on PostgreSQL the generic path's events wait in the
// outbox meanwhile. All four messages are about one finding: one alert's
// opening and appends, in order.
//
// Without the generic path, the same batch takes the pipelined path on
// PostgreSQL, with the same outcome.
//
// Each message must also get its own inbound row back, in batches small
// and large.
func TestBatchNumbersEventsInBatchOrder(t *testing.T) {
	for _, size := range []int{4, 40} {
		for _, mixed := range []bool{true, false} {
			t.Run(fmt.Sprintf("size=%d/mixed=%v", size, mixed), func(t *testing.T) { testBatchEventOrder(t, size, mixed) })
		}
	}
}

func testBatchEventOrder(t *testing.T, size int, mixed bool) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		svc := NewService(Options{DB: d, PublicURL: "https://klaxon.example", Now: func() time.Time { return clock }, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: Config{Integrations: integrations.NewStore(d, "https://klaxon.example", time.Now, nil)}})
		tokens := storyIntegrations(t, svc)
		body, err := os.ReadFile(filepath.Join("..", "rules", "testdata", "detectify", "new_finding_high.json"))
		if err != nil {
			t.Fatal(err)
		}
		var batch []*pendingIngest
		var msgs []*db.InboundMessage
		for i := range size {
			// Unmixed, the batch takes the pipeline on PostgreSQL, with
			// the remediation deadlines of the last integration.
			token := tokens[0]
			if !mixed {
				token = tokens[len(tokens)-1]
			}
			r, err := svc.routeFor(ctx, token)
			if err != nil {
				t.Fatal(err)
			}
			msg := &db.InboundMessage{IntegrationID: r.integ.ID, ReceivedAt: clock, Headers: map[string]string{}, Body: body,
				RemoteAddr: fmt.Sprintf("192.0.2.%d", i+1)}
			decision, failure, err := svc.decideBody(ctx, r, body, clock)
			if err != nil || failure != "" {
				t.Fatal(err, failure)
			}
			msg.SourceID = decision.Fields.SourceID
			if mixed && i%2 == 1 {
				decision.Route.RecipientUserIDs = []int{7}
			}
			p := &pendingIngest{integ: r.integ, msg: msg, decision: decision, failStatus: db.InboundMappingFailed}
			p.original = *msg
			batch = append(batch, p)
			msgs = append(msgs, msg)
		}
		if d.Kind == db.SQLite {
			// Directly, because commitBatch would hide a failed batch by
			// storing its messages one by one.
			if err := svc.sqlite.prepare(ctx, d); err != nil {
				t.Fatal(err)
			}
			if err := svc.storeInTx(ctx, batch); err != nil {
				t.Fatalf("batch: %v", err)
			}
		} else {
			svc.commitBatch(ctx, batch)
		}
		for i, p := range batch {
			if p.err != nil {
				t.Fatalf("message %d: %v", i, p.err)
			}
		}
		// What the relay would do next.
		if _, err := d.NewRaw(`INSERT INTO events (kind, type, alert_id, integration_id, inbound_message_id, at)
			SELECT kind, type, alert_id, integration_id, inbound_message_id, at FROM event_outbox ORDER BY id`).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		var got []string
		if err := d.NewRaw("SELECT kind || ' ' || type || ' ' || coalesce(inbound_message_id, 0) FROM events ORDER BY seq").Scan(ctx, &got); err != nil {
			t.Fatal(err)
		}
		var want []string
		for i, m := range msgs {
			change := db.LogAppended
			if i == 0 {
				change = db.LogOpened
			}
			want = append(want, fmt.Sprintf("inbound %s %d", m.Status, m.ID), fmt.Sprintf("alert %s 0", change))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("events in the order\n%q\nwant\n%q", got, want)
		}
		if !mixed {
			// new_finding_high.json: due in the high deadline's 7 days.
			n, err := d.NewSelect().Table("alert_jobs").Where("kind = ? AND alert_id = ? AND run_at = ?", jobOverdue, *msgs[0].AlertID, clock.Add(7*24*time.Hour)).Count(ctx)
			if err != nil || n != 1 {
				t.Fatalf("%d overdue jobs due in 7 days: %v", n, err)
			}
		}
		for i, m := range msgs {
			var addr string
			if err := d.NewRaw("SELECT remote_addr FROM inbound_messages WHERE id = ?", m.ID).Scan(ctx, &addr); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("192.0.2.%d", i+1); addr != want {
				t.Fatalf("message %d got row %d, which came from %s, not %s", i, m.ID, addr, want)
			}
		}
	})
}
