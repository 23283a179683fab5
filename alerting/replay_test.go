package alerting_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/rules"
)

// replayFixture is a service on a clock the test moves, and the store its
// integrations and rulesets are made in.
type replayFixture struct {
	t     testing.TB
	ctx   context.Context
	d     *db.DB
	clock *clock
	svc   *alerting.Service
	integ *integrations.Store
}

func newReplayFixture(t testing.TB, d *db.DB, maxMessages int) *replayFixture {
	c := &clock{now: time.Date(2026, 5, 4, 8, 0, 0, 0, time.UTC)}
	svc := alerting.NewService(alerting.Options{DB: d, Now: c.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Config: stores(d, c.Now), ReplayMaxMessages: maxMessages})
	return &replayFixture{t: t, ctx: context.Background(), d: d, clock: c, svc: svc, integ: integrationsOf(d, c.Now, svc)}
}

// integration makes a Detectify integration, on the preset's rules when
// specs is nil and on a ruleset of specs otherwise.
func (f *replayFixture) integration(name string, specs []rules.Rule) *db.Integration {
	f.t.Helper()
	typ := rules.TypeDetectify
	in := integrations.IntegrationInput{Name: &name, Type: &typ}
	if specs != nil {
		rs, err := f.integ.CreateRuleset(f.ctx, integrations.RulesetInput{Name: &name, Rules: specs})
		if err != nil {
			f.t.Fatalf("create ruleset: %v", err)
		}
		in.RulesetID = &rs.ID
	}
	integ, err := f.integ.CreateIntegration(f.ctx, in)
	if err != nil {
		f.t.Fatalf("create integration: %v", err)
	}
	return integ
}

func (f *replayFixture) ingest(integ *db.Integration, body []byte) *alerting.IngestResult {
	f.t.Helper()
	res, err := f.svc.Ingest(f.ctx, alerting.Inbound{Token: integ.Token, Body: body})
	if err != nil {
		f.t.Fatalf("ingest: %v", err)
	}
	return res
}

// storedCounts counts the integration's stored messages by status.
func (f *replayFixture) storedCounts(integrationID int) map[db.InboundStatus]int {
	f.t.Helper()
	var rows []struct {
		Status db.InboundStatus `bun:"status"`
		N      int              `bun:"n"`
	}
	err := f.d.NewSelect().Table("inbound_messages").ColumnExpr("status, count(*) AS n").
		Where("integration_id = ?", integrationID).Group("status").Scan(f.ctx, &rows)
	if err != nil {
		f.t.Fatalf("count stored messages: %v", err)
	}
	counts := map[db.InboundStatus]int{}
	for _, r := range rows {
		counts[r.Status] = r.N
	}
	return counts
}

// finding is the Detectify sample finding with another uuid, title and
// severity.
func finding(t testing.TB, uuid, title, severity string) []byte {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(sample(t, "new_finding_high.json"), &body); err != nil {
		t.Fatal(err)
	}
	f := body["finding"].(map[string]any)
	f["uuid"], f["title"], f["severity"] = uuid, title, severity
	out, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// proposedRules differ from the Detectify preset in every way a replay
// must show: medium no longer opens but closes, informational findings
// open, and scan events are filtered.
func proposedRules() []rules.Rule {
	return []rules.Rule{
		{Name: "Open critical, high and info", Action: rules.ActionOpen,
			Conditions: []rules.Condition{{Field: "severity", Op: rules.OpMatches, Value: "^(critical|high|info)$"}}},
		{Name: "Close on low or medium", Action: rules.ActionClose,
			Conditions: []rules.Condition{{Field: "severity", Op: rules.OpIn, Values: []string{"low", "medium"}}}},
		{Name: "Drop scan events", Action: rules.ActionIgnore,
			Conditions: []rules.Condition{{Path: "$.event_type", Op: rules.OpMatches, Value: "^scan_"}}},
	}
}

// TestReplayMatchesReingesting replays a log under a proposed ruleset and
// ingests the same bodies, in order, into a fresh integration that has
// it: the two must count every outcome alike, and "before" must be what
// the log itself holds. Many messages share a receivedAt, across the
// replay's page boundary, so the walk's order and keyset are tested too.
func TestReplayMatchesReingesting(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newReplayFixture(t, d, 0)
		logged := f.integration("Detectify", nil)
		fresh := f.integration("Detectify, proposed", proposedRules())
		from := f.clock.Now()
		rng := rand.New(rand.NewPCG(20, 4))
		severities := []string{"critical", "high", "medium", "low", "low", "information"}
		var bodies [][]byte
		for i := range 1150 {
			var body []byte
			switch n := rng.IntN(40); {
			case n == 0:
				body = sample(t, "scan_completed.json")
			case n == 1:
				body = sample(t, "scan_started.json")
			case n == 2:
				body = []byte(`{"finding": `)
			default:
				id := rng.IntN(60)
				body = finding(t, fmt.Sprintf("finding-%02d", id), fmt.Sprintf("Finding %d", id), severities[rng.IntN(len(severities))])
			}
			bodies = append(bodies, body)
			f.ingest(logged, body)
			if i%7 == 6 {
				f.clock.Advance(time.Second)
			}
		}
		to := f.clock.Now().Add(time.Second)
		for _, body := range bodies {
			f.ingest(fresh, body)
		}
		got, err := f.svc.ReplayRuleset(f.ctx, alerting.ReplayRequest{IntegrationID: logged.ID, Rules: proposedRules(), From: from, To: to})
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		if got.Messages != len(bodies) {
			t.Fatalf("replayed %d messages, want %d", got.Messages, len(bodies))
		}
		if want := f.storedCounts(fresh.ID); !maps.Equal(got.After, want) {
			t.Errorf("after: %v\nre-ingesting gives %v", got.After, want)
		}
		if want := f.storedCounts(logged.ID); !maps.Equal(got.Before, want) {
			t.Errorf("before: %v\nthe log holds %v", got.Before, want)
		}
		if len(got.Changes) == 0 || got.NotOpenedTotal == 0 || got.OpenedInAdditionTotal == 0 {
			t.Errorf("the proposed rules change outcomes, but the replay shows changes %d, not opened %d, opened in addition %d",
				len(got.Changes), got.NotOpenedTotal, got.OpenedInAdditionTotal)
		}
	})
}

// TestReplayHandMadeLog checks every part of a replay's answer on a log
// small enough to work out by hand, starting from an alert that was open
// at the start of the range.
func TestReplayHandMadeLog(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newReplayFixture(t, d, 0)
		integ := f.integration("Detectify", nil)
		step := func() { f.clock.Advance(time.Minute) }
		// Before the range: F0 opens and closes, F1 opens and stays open.
		f.ingest(integ, finding(t, "F0", "Old", "high"))
		step()
		f.ingest(integ, finding(t, "F0", "Old", "low"))
		step()
		f.ingest(integ, finding(t, "F1", "SQL Injection", "high"))
		step()
		from := f.clock.Now()
		var ids []int
		for _, body := range [][]byte{
			finding(t, "F1", "SQL Injection", "medium"),      // 0: APPENDED → CLOSED
			finding(t, "F2", "XSS", "medium"),                // 1: OPENED → IGNORED
			finding(t, "F3", "Open redirect", "high"),        // 2: OPENED both
			finding(t, "F4", "Server banner", "information"), // 3: IGNORED → OPENED
			sample(t, "scan_completed.json"),                 // 4: PULSE → FILTERED
			finding(t, "F1", "SQL Injection", "low"),         // 5: CLOSED → IGNORED
			[]byte(`{"finding": `),                           // 6: MAPPING_FAILED both
		} {
			ids = append(ids, f.ingest(integ, body).MessageID)
			step()
		}
		to := f.clock.Now()
		// After the range: not replayed.
		f.ingest(integ, finding(t, "F5", "Later", "high"))

		got, err := f.svc.ReplayRuleset(f.ctx, alerting.ReplayRequest{IntegrationID: integ.ID, Rules: proposedRules(), From: from, To: to})
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		wantBefore := map[db.InboundStatus]int{db.InboundAppended: 1, db.InboundOpened: 2, db.InboundIgnored: 1, db.InboundPulse: 1, db.InboundClosed: 1, db.InboundMappingFailed: 1}
		wantAfter := map[db.InboundStatus]int{db.InboundClosed: 1, db.InboundIgnored: 2, db.InboundOpened: 2, db.InboundFiltered: 1, db.InboundMappingFailed: 1}
		if got.Messages != 7 || !maps.Equal(got.Before, wantBefore) || !maps.Equal(got.After, wantAfter) {
			t.Fatalf("messages %d\nbefore %v, want %v\nafter %v, want %v", got.Messages, got.Before, wantBefore, got.After, wantAfter)
		}
		wantNotOpened := []alerting.ReplayedAlert{{SourceID: "F2", Subject: "XSS", OpenedBefore: 1}}
		wantInAddition := []alerting.ReplayedAlert{{SourceID: "F4", Subject: "Server banner", OpenedAfter: 1}}
		if fmt.Sprint(got.NotOpened) != fmt.Sprint(wantNotOpened) || got.NotOpenedTotal != 1 {
			t.Errorf("not opened %+v (total %d), want %+v", got.NotOpened, got.NotOpenedTotal, wantNotOpened)
		}
		if fmt.Sprint(got.OpenedInAddition) != fmt.Sprint(wantInAddition) || got.OpenedInAdditionTotal != 1 {
			t.Errorf("opened in addition %+v (total %d), want %+v", got.OpenedInAddition, got.OpenedInAdditionTotal, wantInAddition)
		}
		type example struct {
			id            int
			before, after db.InboundStatus
			rule          int // 1-based, 0 for none
			name          string
		}
		want := map[example]bool{
			{ids[0], db.InboundAppended, db.InboundClosed, 2, "Close on low or medium"}:      true,
			{ids[1], db.InboundOpened, db.InboundIgnored, 2, "Close on low or medium"}:       true,
			{ids[3], db.InboundIgnored, db.InboundOpened, 1, "Open critical, high and info"}: true,
			{ids[4], db.InboundPulse, db.InboundFiltered, 3, "Drop scan events"}:             true,
			{ids[5], db.InboundClosed, db.InboundIgnored, 2, "Close on low or medium"}:       true,
		}
		if len(got.Changes) != len(want) {
			t.Fatalf("%d changed outcomes, want %d: %+v", len(got.Changes), len(want), got.Changes)
		}
		for _, c := range got.Changes {
			if c.Count != 1 || len(c.Examples) != 1 {
				t.Fatalf("change %s → %s: count %d with %d examples, want 1 and 1", c.Before, c.After, c.Count, len(c.Examples))
			}
			e := c.Examples[0]
			if e.Before != c.Before || e.After != c.After {
				t.Errorf("example %+v under change %s → %s", e, c.Before, c.After)
			}
			key := example{e.MessageID, e.Before, e.After, e.Decision.RuleIndex + 1, e.Decision.RuleName}
			if !want[key] {
				t.Errorf("unexpected example %+v", key)
			}
			if e.ReceivedAt.Before(from) || !e.ReceivedAt.Before(to) {
				t.Errorf("example received at %s, outside [%s, %s)", e.ReceivedAt, from, to)
			}
		}
	})
}

// TestReplayKeepsFixedExamples keeps at most ReplayExamples messages of a
// changed outcome while counting them all.
func TestReplayKeepsFixedExamples(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newReplayFixture(t, d, 0)
		integ := f.integration("Detectify", nil)
		from := f.clock.Now()
		for i := range alerting.ReplayExamples + 5 {
			f.ingest(integ, finding(t, fmt.Sprintf("M%02d", i), "Medium thing", "medium"))
			f.clock.Advance(time.Second)
		}
		got, err := f.svc.ReplayRuleset(f.ctx, alerting.ReplayRequest{IntegrationID: integ.ID, Rules: proposedRules(), From: from, To: f.clock.Now()})
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		if len(got.Changes) != 1 || got.Changes[0].Count != alerting.ReplayExamples+5 || len(got.Changes[0].Examples) != alerting.ReplayExamples {
			t.Fatalf("changes %+v", got.Changes)
		}
		if got.NotOpenedTotal != alerting.ReplayExamples+5 || got.NotOpened[0].SourceID != "M00" {
			t.Fatalf("not opened %d, first %+v", got.NotOpenedTotal, got.NotOpened[0])
		}
	})
}

// TestReplayAutoClosesQuietAlerts closes a simulated alert after its
// integration's quiet time, as the auto-close job would have: the next
// message of its finding opens a new one.
func TestReplayAutoClosesQuietAlerts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newReplayFixture(t, d, 0)
		name, typ, quiet := "Detectify", rules.TypeDetectify, 60
		integ, err := f.integ.CreateIntegration(f.ctx, integrations.IntegrationInput{Name: &name, Type: &typ, AutoCloseAfterMinutes: &quiet})
		if err != nil {
			t.Fatal(err)
		}
		from := f.clock.Now()
		f.ingest(integ, finding(t, "Q", "Quiet", "high"))
		f.clock.Advance(59 * time.Minute)
		f.ingest(integ, finding(t, "Q", "Quiet", "high"))
		f.clock.Advance(61 * time.Minute)
		// No engine ran here, so the stored log says APPENDED; the replay
		// knows the alert had closed by now.
		f.ingest(integ, finding(t, "Q", "Quiet", "high"))
		got, err := f.svc.ReplayRuleset(f.ctx, alerting.ReplayRequest{IntegrationID: integ.ID, Rules: proposedRules(), From: from, To: f.clock.Now().Add(time.Second)})
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		want := map[db.InboundStatus]int{db.InboundOpened: 2, db.InboundAppended: 1}
		if !maps.Equal(got.Before, want) || !maps.Equal(got.After, want) {
			t.Fatalf("before %v, after %v; want %v on both", got.Before, got.After, want)
		}
	})
}

// TestReplayRefusesLongRanges counts the range first and refuses it past
// the configured limit, naming the limit.
func TestReplayRefusesLongRanges(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newReplayFixture(t, d, 3)
		integ := f.integration("Detectify", nil)
		from := f.clock.Now()
		for i := range 4 {
			f.ingest(integ, finding(t, fmt.Sprintf("L%d", i), "Thing", "high"))
			f.clock.Advance(time.Second)
		}
		_, err := f.svc.ReplayRuleset(f.ctx, alerting.ReplayRequest{IntegrationID: integ.ID, Rules: proposedRules(), From: from, To: f.clock.Now()})
		wantFieldError(t, err, "to")
		got, err := f.svc.ReplayRuleset(f.ctx, alerting.ReplayRequest{IntegrationID: integ.ID, Rules: proposedRules(), From: from.Add(time.Second), To: f.clock.Now()})
		if err != nil || got.Messages != 3 {
			t.Fatalf("a range of 3 messages with a limit of 3: %+v, %v", got, err)
		}
	})
}

// TestReplayBadInput refuses an unknown integration, an empty range and a
// ruleset that does not compile, and writes nothing either way.
func TestReplayBadInput(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newReplayFixture(t, d, 0)
		integ := f.integration("Detectify", nil)
		f.ingest(integ, finding(t, "B", "Thing", "high"))
		now := f.clock.Now()
		counts := func() [3]int {
			var c [3]int
			for i, table := range []string{"inbound_messages", "alerts", "alert_log"} {
				n, err := f.d.NewSelect().Table(table).Count(f.ctx)
				if err != nil {
					t.Fatal(err)
				}
				c[i] = int(n)
			}
			return c
		}
		start := counts()
		_, err := f.svc.ReplayRuleset(f.ctx, alerting.ReplayRequest{IntegrationID: integ.ID + 1000, Rules: proposedRules(), From: now.Add(-time.Hour), To: now.Add(time.Hour)})
		if !errors.Is(err, db.ErrNotFound) {
			t.Errorf("unknown integration: %v, want not found", err)
		}
		_, err = f.svc.ReplayRuleset(f.ctx, alerting.ReplayRequest{IntegrationID: integ.ID, Rules: proposedRules(), From: now, To: now})
		wantFieldError(t, err, "to")
		bad := []rules.Rule{{Name: "broken", Action: rules.ActionOpen, Conditions: []rules.Condition{{Field: "severity", Op: rules.OpMatches, Value: "("}}}}
		_, err = f.svc.ReplayRuleset(f.ctx, alerting.ReplayRequest{IntegrationID: integ.ID, Rules: bad, From: now.Add(-time.Hour), To: now.Add(time.Hour)})
		wantFieldError(t, err, "ruleset.rules[0].conditions[0].value")
		if _, err := f.svc.ReplayRuleset(f.ctx, alerting.ReplayRequest{IntegrationID: integ.ID, Rules: proposedRules(), From: now.Add(-time.Hour), To: now.Add(time.Hour)}); err != nil {
			t.Fatalf("replay: %v", err)
		}
		if end := counts(); end != start {
			t.Errorf("rows before %v, after %v: a replay must write nothing", start, end)
		}
	})
}

// TestDryRunAndReplayAgreeWithIngest sends a Detectify story message by
// message: before each, testIntegration must predict what ingest then
// does; afterwards a replay under the integration's own rules must find
// every stored status again and change nothing.
func TestDryRunAndReplayAgreeWithIngest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newReplayFixture(t, d, 0)
		integ := f.integration("Detectify", nil)
		from := f.clock.Now()
		for _, file := range []string{"scan_started.json", "new_finding_high.json", "new_finding_high_repeat.json",
			"legacy_event_finding_high.json", "new_finding_medium.json", "new_finding_critical.json", "finding_low.json",
			"finding_low_unmatched.json", "scan_completed.json", "new_finding_high.json", "api_v2_vulnerability.json"} {
			body := sample(t, file)
			dry, err := f.svc.TestIntegration(f.ctx, integ.ID, body)
			if err != nil {
				t.Fatalf("%s: dry run: %v", file, err)
			}
			res := f.ingest(integ, body)
			if dry.Status != res.Status || dry.Detail != res.Detail {
				t.Fatalf("%s: dry run said %s (%s), ingest did %s (%s)", file, dry.Status, dry.Detail, res.Status, res.Detail)
			}
			if (dry.Alert != nil) != (res.Status == db.InboundAppended || res.Status == db.InboundClosed) ||
				(dry.Alert != nil && dry.Alert.ID != *res.AlertID) {
				t.Fatalf("%s: dry run names alert %+v, ingest touched %v with %s", file, dry.Alert, res.AlertID, res.Status)
			}
			f.clock.Advance(time.Minute)
		}
		rs, err := f.integ.Ruleset(f.ctx, *integ.RulesetID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.svc.ReplayRuleset(f.ctx, alerting.ReplayRequest{IntegrationID: integ.ID, Rules: rs.RuleSpecs(), From: from, To: f.clock.Now()})
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		stored := f.storedCounts(integ.ID)
		if !maps.Equal(got.Before, stored) || !maps.Equal(got.After, stored) || len(got.Changes) != 0 {
			t.Fatalf("replay under the same rules: before %v, after %v, %d changes; the log holds %v", got.Before, got.After, len(got.Changes), stored)
		}
	})
}

// TestReplayAsksRegressionFactsLikeIngest replays under rules that test
// the regression fact: each side's own simulated closes, and the closes
// stored before the range, must give the facts ingest reads from the
// alerts table, so the counts equal re-ingesting.
func TestReplayAsksRegressionFactsLikeIngest(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newReplayFixture(t, d, 0)
		regressionRules := append([]rules.Rule{{Name: "Regressions are for the day team", Action: rules.ActionIgnore,
			Conditions: []rules.Condition{{Field: "regression", Op: rules.OpEquals, Value: "true"}}}}, proposedRules()...)
		logged := f.integration("Detectify", nil)
		fresh := f.integration("Detectify, proposed", regressionRules)
		// Before the range, F0 and F1 open and close on both integrations.
		for _, body := range [][]byte{
			finding(t, "F0", "Old", "high"), finding(t, "F1", "XSS", "critical"),
			finding(t, "F0", "Old", "low"), finding(t, "F1", "XSS", "low"),
		} {
			f.ingest(logged, body)
			f.ingest(fresh, body)
			f.clock.Advance(time.Minute)
		}
		from := f.clock.Now()
		for _, body := range [][]byte{
			finding(t, "F0", "Old", "high"),     // back after a close before the range
			finding(t, "F2", "New", "high"),     // new
			finding(t, "F2", "New", "low"),      // closes
			finding(t, "F2", "New", "high"),     // back after a close within the range
			finding(t, "F1", "XSS", "critical"), // back after a close before the range
			finding(t, "F3", "Other", "high"),   // new
		} {
			f.ingest(logged, body)
			f.ingest(fresh, body)
			f.clock.Advance(time.Minute)
		}
		to := f.clock.Now()
		got, err := f.svc.ReplayRuleset(f.ctx, alerting.ReplayRequest{IntegrationID: logged.ID, Rules: regressionRules, From: from, To: to})
		if err != nil {
			t.Fatalf("replay: %v", err)
		}
		var rows []struct {
			Status db.InboundStatus `bun:"status"`
			N      int              `bun:"n"`
		}
		if err := d.NewSelect().Table("inbound_messages").ColumnExpr("status, count(*) AS n").
			Where("integration_id = ? AND received_at >= ?", fresh.ID, from).Group("status").Scan(f.ctx, &rows); err != nil {
			t.Fatal(err)
		}
		want := map[db.InboundStatus]int{}
		for _, r := range rows {
			want[r.Status] = r.N
		}
		if want[db.InboundFiltered] != 3 {
			t.Fatalf("re-ingesting filtered %d regressions, want 3: %v", want[db.InboundFiltered], want)
		}
		if !maps.Equal(got.After, want) {
			t.Errorf("after: %v\nre-ingesting gives %v", got.After, want)
		}
	})
}
