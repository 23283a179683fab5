package rules

import "testing"

// A rule on the regression fact sees the fact the caller passes; without
// one the fact is false, and a ruleset without such a rule does not ask.
func TestRegressionCondition(t *testing.T) {
	rs := []Rule{
		{Name: "back again", Conditions: []Condition{{Field: "regression", Op: OpEquals, Value: "true"}}, Action: ActionOpen,
			Route: Route{EscalationPolicyID: 9, Severity: "critical"}},
		{Name: "new", Action: ActionOpen},
	}
	p, err := Compile(opMapping, rs)
	if err != nil {
		t.Fatal(err)
	}
	if !p.NeedsFacts() {
		t.Fatal("a ruleset testing regression does not ask for facts")
	}
	msg := mustParse(t, opBody)
	if d := p.EvaluateWith(msg, Facts{Regression: true}); d.RuleName != "back again" || d.Route.EscalationPolicyID != 9 || d.Fields.Severity != "critical" {
		t.Fatalf("regression: rule %q, route %+v, severity %q", d.RuleName, d.Route, d.Fields.Severity)
	}
	if d := p.EvaluateWith(msg, Facts{}); d.RuleName != "new" || d.Fields.Severity != "high" {
		t.Fatalf("no regression: rule %q, severity %q", d.RuleName, d.Fields.Severity)
	}
	if d := p.Evaluate(msg); d.RuleName != "new" {
		t.Fatalf("no facts: rule %q", d.RuleName)
	}
	negated, err := Compile(opMapping, []Rule{{Name: "first time", Conditions: []Condition{{Field: "regression", Op: OpNotEquals, Value: "true"}}, Action: ActionOpen}})
	if err != nil {
		t.Fatal(err)
	}
	if d := negated.EvaluateWith(msg, Facts{Regression: true}); d.Action != "" {
		t.Fatalf("NOT_EQUALS true matched a regression: %q", d.RuleName)
	}
	plain, err := Compile(opMapping, []Rule{{Name: "all", Action: ActionOpen}})
	if err != nil {
		t.Fatal(err)
	}
	if plain.NeedsFacts() {
		t.Fatal("a ruleset without facts asks for them")
	}
	f, ok := p.MapFields(msg)
	if !ok || f.Subject != "Disk Full on DB-1" || f.Severity != "high" {
		t.Fatalf("MapFields: %+v, %v", f, ok)
	}
}

func TestRegressionConditionValidation(t *testing.T) {
	for _, c := range []struct {
		cond  Condition
		field string
	}{
		{Condition{Field: "regression", Op: OpContains, Value: "true"}, "rules[0].conditions[0].op"},
		{Condition{Field: "regression", Op: OpEquals, Value: "yes"}, "rules[0].conditions[0].value"},
		{Condition{Field: "regression", Op: OpExists}, "rules[0].conditions[0].op"},
	} {
		_, err := Compile(opMapping, []Rule{{Name: "r", Conditions: []Condition{c.cond}, Action: ActionOpen}})
		checkFieldError(t, err, c.field)
	}
	_, err := Compile(opMapping, []Rule{{Name: "r", Action: ActionOpen, Route: Route{Severity: "urgent"}}})
	checkFieldError(t, err, "rules[0].route.severity")
	_, err = Compile(opMapping, []Rule{{Name: "r", Action: ActionClose, Route: Route{Severity: "high"}}})
	checkFieldError(t, err, "rules[0].route")
}
