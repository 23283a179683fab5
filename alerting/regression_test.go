package alerting_test

import (
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/rules"
)

// ingestSample posts a Detectify sample to the fixture's integration and
// checks what it became.
func (f *engineFixture) ingestSample(name string, want db.InboundStatus) *alerting.IngestResult {
	f.t.Helper()
	res, err := f.svc.Ingest(f.ctx, alerting.Inbound{Token: f.integ.Token, Body: sample(f.t, name)})
	if err != nil {
		f.t.Fatalf("ingest %s: %v", name, err)
	}
	if res.Status != want {
		f.t.Fatalf("ingest %s: %s (%s), want %s", name, res.Status, res.Detail, want)
	}
	return res
}

// A Detectify finding that was fixed (its alert closed by the low-severity
// update) and is then found again opens a new alert that links to the
// closed one, says so on its timeline and counts the earlier occurrence.
// Past the integration's window, or with the window at 0, it is a new
// alert with no link.
func TestDetectifyFindingBackIsARegression(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		first := *f.ingestSample("new_finding_high.json", db.InboundOpened).AlertID
		f.clock.Advance(5 * 24 * time.Hour)
		f.ingestSample("finding_low.json", db.InboundClosed)
		closedAt := f.alert(first).ClosedAt
		if first := f.alert(first); first.Regression() || first.PreviousAlertID != nil {
			t.Fatalf("the first alert of a finding is a regression of %v", first.PreviousAlertID)
		}

		f.clock.Advance(20 * 24 * time.Hour)
		back := *f.ingestSample("finding_high_regressed.json", db.InboundOpened).AlertID
		a := f.alert(back)
		if back == first || a.PreviousAlertID == nil || *a.PreviousAlertID != first || !a.Regression() {
			t.Fatalf("alert %d brings back %v, want %d", back, a.PreviousAlertID, first)
		}
		expectTimeline(t, f, back, "REGRESSION: Regression: finding #"+itoa(first)+" was closed on "+closedAt.UTC().Format(time.RFC3339)+" and is back")
		if n, err := f.svc.EarlierOccurrences(f.ctx, a); err != nil || n != 1 {
			t.Fatalf("earlier occurrences %d, %v; want 1", n, err)
		}
		if n := f.countTimeline(back, db.LogRegression); n != 1 {
			t.Fatalf("%d regression entries", n)
		}
		// Appends to the regression are no regression of their own.
		f.ingestSample("new_finding_high_repeat.json", db.InboundAppended)
		if n := f.countTimeline(back, db.LogRegression); n != 1 {
			t.Fatalf("%d regression entries after an append", n)
		}

		f.ingestSample("finding_low.json", db.InboundClosed)
		f.clock.Advance(91 * 24 * time.Hour)
		late := *f.ingestSample("new_finding_high.json", db.InboundOpened).AlertID
		if a := f.alert(late); a.PreviousAlertID != nil || f.countTimeline(late, db.LogRegression) != 0 {
			t.Fatalf("a finding back after 91 days of a 90-day window links to %v", a.PreviousAlertID)
		}
		if n, err := f.svc.EarlierOccurrences(f.ctx, f.alert(late)); err != nil || n != 2 {
			t.Fatalf("earlier occurrences %d, %v; want 2", n, err)
		}

		off := 0
		if _, err := f.integrations().UpdateIntegration(f.ctx, f.integ.ID, integrations.IntegrationInput{RegressionWindowDays: &off}); err != nil {
			t.Fatal(err)
		}
		f.ingestSample("finding_low.json", db.InboundClosed)
		f.clock.Advance(time.Hour)
		unlinked := *f.ingestSample("new_finding_high.json", db.InboundOpened).AlertID
		if a := f.alert(unlinked); a.PreviousAlertID != nil {
			t.Fatalf("with the window off, alert %d links to %d", unlinked, *a.PreviousAlertID)
		}
	})
}

func TestRegressionWindowIsValidated(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		if f.integ.RegressionWindowDays != integrations.DefaultRegressionWindowDays {
			t.Fatalf("a new integration looks back %d days", f.integ.RegressionWindowDays)
		}
		for _, days := range []int{-1, 3651} {
			_, err := f.integrations().UpdateIntegration(f.ctx, f.integ.ID, integrations.IntegrationInput{RegressionWindowDays: &days})
			wantFieldError(t, err, "regressionWindowDays")
		}
		name, typ, days := "Scanner", rules.TypeDetectify, 4000
		_, err := f.integrations().CreateIntegration(f.ctx, integrations.IntegrationInput{Name: &name, Type: &typ, RegressionWindowDays: &days})
		wantFieldError(t, err, "regressionWindowDays")
		if n, err := d.NewSelect().Model((*db.Integration)(nil)).Count(f.ctx); err != nil || n != 1 {
			t.Fatalf("%d integrations after a refused create", n)
		}
	})
}

// A ruleset can send regressions to another policy, at a higher severity,
// with a condition on the regression fact; the dry run sees the same fact.
func TestRuleRoutesRegressionsElsewhere(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice, bob := f.user("alice", 0), f.user("bob", 0)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: bob}), step(10, db.Target{Type: db.TargetUser, ID: bob}))
		fixers := *f.integ.EscalationPolicyID
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: alice}))
		nightShift := *f.integ.EscalationPolicyID
		_, preset, _ := rules.Preset(rules.TypeDetectify)
		back := rules.Rule{Name: "Regressions go to the fixers", Conditions: []rules.Condition{
			{Field: "regression", Op: rules.OpEquals, Value: "true"},
			{Field: "severity", Op: rules.OpIn, Values: []string{"critical", "high", "medium"}},
		}, Action: rules.ActionOpen, Route: rules.Route{EscalationPolicyID: fixers, Severity: "critical"}}
		name := "Detectify with regressions"
		rs, err := f.integrations().CreateRuleset(f.ctx, integrations.RulesetInput{Name: &name, Rules: append([]rules.Rule{back}, preset...)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.integrations().UpdateIntegration(f.ctx, f.integ.ID, integrations.IntegrationInput{RulesetID: &rs.ID}); err != nil {
			t.Fatal(err)
		}

		first := *f.ingestSample("new_finding_high.json", db.InboundOpened).AlertID
		if a := f.alert(first); a.EscalationPolicyID == nil || *a.EscalationPolicyID != nightShift || a.Severity != "high" {
			t.Fatalf("a new finding follows policy %v at %s, want the integration's %d at high", a.EscalationPolicyID, a.Severity, nightShift)
		}
		f.ingestSample("finding_low.json", db.InboundClosed)
		f.clock.Advance(24 * time.Hour)
		run, err := f.svc.TestIntegration(f.ctx, f.integ.ID, sample(t, "finding_high_regressed.json"))
		if err != nil {
			t.Fatal(err)
		}
		if run.Decision.RuleName != back.Name || run.Status != db.InboundOpened {
			t.Fatalf("dry run of a regression: rule %q, %s", run.Decision.RuleName, run.Status)
		}
		res := f.ingestSample("finding_high_regressed.json", db.InboundOpened)
		if !strings.Contains(res.Detail, back.Name) {
			t.Fatalf("the regression was decided by %s", res.Detail)
		}
		a := f.alert(*res.AlertID)
		if p := a.EscalationPolicyID; p == nil || *p != fixers || !a.Regression() || a.Severity != "critical" {
			t.Fatalf("the regression follows policy %v (regression %v, %s), want the fixers' %d, critical", p, a.Regression(), a.Severity, fixers)
		}
		// While it is open, the finding is no regression: a repeat appends.
		f.ingestSample("new_finding_high_repeat.json", db.InboundAppended)
	})
}
