package server_test

import (
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// The findings settings, the alert fields they fill and findingStats, end
// to end over GraphQL and the webhook.
func TestFindingsOverGraphQL(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("DETECTIFY")
		viewer := h.newUser(db.RoleViewer)
		var policy struct {
			CreateEscalationPolicy struct{ ID string } `json:"createEscalationPolicy"`
		}
		h.mustGQL(h.admin.Token, `mutation($name: String!) {
			createEscalationPolicy(input: {name: $name, steps: [{delayMinutes: 5, targets: [{type: RECIPIENTS}]}]}) { id } }`,
			map[string]any{"name": h.unique("fixers")}, &policy)
		fixers := policy.CreateEscalationPolicy.ID

		const settings = `regressionWindowDays remediation { severity days } overduePolicy { id } overdueAlertCount`
		var updated struct {
			UpdateIntegration struct {
				RegressionWindowDays int
				Remediation          []struct {
					Severity string
					Days     int
				}
				OverduePolicy     *struct{ ID string }
				OverdueAlertCount int
			}
		}
		h.mustGQL(h.admin.Token, `mutation($id: ID!, $policy: ID!) {
			updateIntegration(id: $id, input: {regressionWindowDays: 30, remediation: [{severity: " High ", days: 7}], overduePolicyId: $policy}) { `+settings+` } }`,
			map[string]any{"id": integ.ID, "policy": fixers}, &updated)
		u := updated.UpdateIntegration
		if u.RegressionWindowDays != 30 || len(u.Remediation) != 1 || u.Remediation[0].Severity != "high" || u.Remediation[0].Days != 7 ||
			u.OverduePolicy == nil || u.OverduePolicy.ID != fixers || u.OverdueAlertCount != 0 {
			t.Fatalf("updated %+v", u)
		}
		for input, field := range map[string]string{
			`{remediation: [{severity: "urgent", days: 1}]}`: "remediation[0].severity",
			`{remediation: [{severity: "low", days: 0}]}`:    "remediation[0].days",
			`{regressionWindowDays: -1}`:                     "regressionWindowDays",
			`{overduePolicyId: 99999}`:                       "overduePolicyId",
		} {
			e := h.wantGQLError(h.admin.Token, `mutation($id: ID!) { updateIntegration(id: $id, input: `+input+`) { id } }`, map[string]any{"id": integ.ID}, "BAD_USER_INPUT")
			if e.Extensions.Field != field {
				t.Fatalf("%s: field %q, want %q", input, e.Extensions.Field, field)
			}
		}
		h.wantGQLError(viewer.Token, `mutation($id: ID!) { updateIntegration(id: $id, input: {regressionWindowDays: 1}) { id } }`, map[string]any{"id": integ.ID}, "FORBIDDEN")

		var ruleset struct {
			CreateRuleset struct {
				Rules []struct {
					Conditions []struct{ Field string }
					Route      *struct{ Severity string }
				}
			}
		}
		h.mustGQL(h.admin.Token, `mutation($name: String!) { createRuleset(input: {name: $name, rules: [
			{action: OPEN, conditions: [{field: "regression", op: EQUALS, value: "true"}], route: {severity: " Critical "}}]}) {
			rules { conditions { field } route { severity } } } }`, map[string]any{"name": h.unique("rules")}, &ruleset)
		if r := ruleset.CreateRuleset.Rules; len(r) != 1 || r[0].Route == nil || r[0].Route.Severity != "critical" || r[0].Conditions[0].Field != "regression" {
			t.Fatalf("ruleset %+v", r)
		}
		e := h.wantGQLError(h.admin.Token, `mutation($name: String!) { createRuleset(input: {name: $name, rules: [
			{action: OPEN, conditions: [{field: "regression", op: CONTAINS, value: "tr"}]}]}) { id } }`, map[string]any{"name": h.unique("rules")}, "BAD_USER_INPUT")
		if e.Extensions.Field != "rules[0].conditions[0].op" {
			t.Fatalf("a regression condition with CONTAINS is refused on %q", e.Extensions.Field)
		}

		token := integ.Token(t)
		first := h.postWebhook(token, finding("sqli", "high")).alert()
		h.postWebhook(token, finding("sqli", "low"))
		back := h.postWebhook(token, finding("sqli", "high")).alert()
		var got struct {
			Alert struct {
				Regression         bool
				EarlierOccurrences int
				Previous           *struct{ ID string }
				DueAt              *time.Time
				Overdue            bool
				OverdueAt          *time.Time
				OpenedAt           time.Time
			}
		}
		h.mustGQL(viewer.Token, `query($id: ID!) { alert(id: $id) { regression earlierOccurrences previous { id } dueAt overdue overdueAt openedAt } }`,
			map[string]any{"id": back}, &got)
		a := got.Alert
		if !a.Regression || a.EarlierOccurrences != 1 || a.Previous == nil || a.Previous.ID != first ||
			a.DueAt == nil || !a.DueAt.Equal(a.OpenedAt.Add(7*24*time.Hour)) || a.Overdue || a.OverdueAt != nil {
			t.Fatalf("the finding back: %+v", a)
		}

		var stats struct {
			FindingStats struct {
				Severities []struct {
					Severity                             string
					Opened, Closed, Regressions, Overdue int
					MedianSecondsToClose                 *int
				}
			}
		}
		now := time.Now().UTC()
		h.mustGQL(viewer.Token, `query($id: ID!, $from: Time!, $to: Time!) { findingStats(integrationId: $id, from: $from, to: $to) {
			severities { severity opened closed regressions overdue medianSecondsToClose } } }`,
			map[string]any{"id": integ.ID, "from": now.Add(-time.Hour), "to": now.Add(time.Hour)}, &stats)
		s := stats.FindingStats.Severities
		if len(s) != 1 || s[0].Severity != "high" || s[0].Opened != 2 || s[0].Closed != 1 || s[0].Regressions != 1 || s[0].Overdue != 0 || s[0].MedianSecondsToClose == nil {
			t.Fatalf("stats %+v", s)
		}
		e = h.wantGQLError(viewer.Token, `query($id: ID!) { findingStats(integrationId: $id, from: "2026-02-01T00:00:00Z", to: "2026-01-01T00:00:00Z") { from } }`,
			map[string]any{"id": integ.ID}, "BAD_USER_INPUT")
		if e.Extensions.Field != "to" {
			t.Fatalf("a reversed range is refused on %q", e.Extensions.Field)
		}
		var overdue struct {
			Alerts struct{ TotalCount int }
		}
		h.mustGQL(viewer.Token, `{ alerts(filter: {overdue: true}) { totalCount } }`, nil, &overdue)
		if overdue.Alerts.TotalCount != 0 {
			t.Fatalf("%d overdue alerts", overdue.Alerts.TotalCount)
		}

		h.mustGQL(h.admin.Token, `mutation($id: ID!) { updateIntegration(id: $id, input: {remediation: [], overduePolicyId: null}) { `+settings+` } }`,
			map[string]any{"id": integ.ID}, &updated)
		if u := updated.UpdateIntegration; len(u.Remediation) != 0 || u.OverduePolicy != nil || u.RegressionWindowDays != 30 {
			t.Fatalf("cleared %+v", u)
		}
	})
}
