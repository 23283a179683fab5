package rules

import (
	"errors"
	"github.com/klaxonhq/klaxon/invalid"
	"strings"
	"testing"
)

func TestMappingValidate(t *testing.T) {
	tests := []struct {
		name      string
		m         Mapping
		wantField string // "" means valid
	}{
		{"empty mapping", Mapping{}, ""},
		{"valid", Mapping{Subject: []string{"$.a", "$.b[0]", "$..c", "$.d[?@.e == 'x'].f"}}, ""},
		{"bad sourceId", Mapping{SourceID: []string{"$.ok", "not a path"}}, "mapping.sourceId[1]"},
		{"bad sourceName", Mapping{SourceName: []string{"$["}}, "mapping.sourceName[0]"},
		{"bad subject", Mapping{Subject: []string{"$.a", "$.b", "$$"}}, "mapping.subject[2]"},
		{"bad severity", Mapping{Severity: []string{"severity"}}, "mapping.severity[0]"},
		{"bad url", Mapping{URL: []string{"$.a.."}}, "mapping.url[0]"},
		{"empty details", Mapping{Details: []string{""}}, "mapping.details[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFieldError(t, tt.m.Validate(), tt.wantField)
		})
	}
}

func TestValidateRules(t *testing.T) {
	ok := Condition{Field: "severity", Op: OpEquals, Value: "high"}
	tests := []struct {
		name      string
		rs        []Rule
		wantField string
	}{
		{"nil", nil, ""},
		{"catch-all", []Rule{{Name: "all", Action: ActionOpen}}, ""},
		{"every op", []Rule{{Name: "x", Match: MatchAny, Action: ActionIgnore, Conditions: []Condition{
			{Field: "sourceId", Op: OpEquals}, {Field: "sourceName", Op: OpNotEquals},
			{Field: "subject", Op: OpContains}, {Field: "severity", Op: OpNotContains},
			{Field: "url", Op: OpMatches, Value: "^https?://"}, {Field: "details", Op: OpNotMatches, Value: "(?s).*"},
			{Path: "$.a", Op: OpExists}, {Path: "$.b", Op: OpNotExists},
			{Path: "$.c", Op: OpIn, Values: []string{"x"}}, {Path: "$.d", Op: OpNotIn, Values: []string{"y", "z"}},
		}}}, ""},
		{"match ALL", []Rule{{Name: "x", Match: MatchAll, Action: ActionClose}}, ""},
		{"unknown match", []Rule{{Name: "x", Action: ActionOpen}, {Name: "y", Match: "SOME", Action: ActionOpen}}, "rules[1].match"},
		{"lower-case match", []Rule{{Name: "x", Match: "all", Action: ActionOpen}}, "rules[0].match"},
		{"pulse", []Rule{{Name: "x", Action: ActionPulse, Conditions: []Condition{{Path: "$.event_type", Op: OpEquals, Value: "scan_completed"}}}}, ""},
		{"pulse with a route", []Rule{{Name: "x", Action: ActionOpen}, {Name: "y", Action: ActionPulse, Route: Route{EscalationPolicyID: 3}}}, "rules[1].route"},
		{"missing action", []Rule{{Name: "x"}}, "rules[0].action"},
		{"unknown action", []Rule{{Name: "x", Action: "DELETE"}}, "rules[0].action"},
		{"neither field nor path", []Rule{{Name: "x", Action: ActionOpen, Conditions: []Condition{ok, {Op: OpExists}}}}, "rules[0].conditions[1].field"},
		{"both field and path", []Rule{{Name: "x", Action: ActionOpen, Conditions: []Condition{{Field: "subject", Path: "$.a", Op: OpExists}}}}, "rules[0].conditions[0].path"},
		{"unknown field", []Rule{{Name: "x", Action: ActionOpen, Conditions: []Condition{{Field: "Severity", Op: OpExists}}}}, "rules[0].conditions[0].field"},
		{"bad path", []Rule{{Name: "x", Action: ActionOpen}, {Name: "y", Action: ActionOpen, Conditions: []Condition{{Path: "$[?", Op: OpExists}}}}, "rules[1].conditions[0].path"},
		{"missing op", []Rule{{Name: "x", Action: ActionOpen, Conditions: []Condition{{Field: "subject"}}}}, "rules[0].conditions[0].op"},
		{"unknown op", []Rule{{Name: "x", Action: ActionOpen, Conditions: []Condition{{Field: "subject", Op: "LIKE"}}}}, "rules[0].conditions[0].op"},
		{"bad regexp", []Rule{{Name: "x", Action: ActionOpen, Conditions: []Condition{ok, ok, {Field: "subject", Op: OpMatches, Value: "("}}}}, "rules[0].conditions[2].value"},
		{"bad negated regexp", []Rule{{Name: "x", Action: ActionOpen, Conditions: []Condition{{Field: "subject", Op: OpNotMatches, Value: "a{2000}"}}}}, "rules[0].conditions[0].value"},
		{"IN without values", []Rule{{Name: "x", Action: ActionOpen, Conditions: []Condition{{Field: "subject", Op: OpIn, Value: "a"}}}}, "rules[0].conditions[0].values"},
		{"NOT_IN without values", []Rule{{Name: "x", Action: ActionOpen, Conditions: []Condition{{Path: "$.a", Op: OpNotIn}}}}, "rules[0].conditions[0].values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFieldError(t, ValidateRules(tt.rs), tt.wantField)
		})
	}
}

func TestCompileReportsFieldErrors(t *testing.T) {
	_, err := Compile(Mapping{Severity: []string{"$["}}, nil)
	checkFieldError(t, err, "mapping.severity[0]")

	_, err = Compile(Mapping{}, []Rule{{Name: "x", Action: "NOPE"}})
	checkFieldError(t, err, "rules[0].action")

	p, err := Compile(Mapping{}, nil)
	if err != nil || p == nil {
		t.Fatalf("Compile(empty) = %v, %v", p, err)
	}
}

func checkFieldError(t *testing.T, err error, wantField string) {
	t.Helper()
	if wantField == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var fe *invalid.Field
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v (%T); want *invalid.Field for %q", err, err, wantField)
	}
	if fe.Name != wantField {
		t.Fatalf("error field = %q (%v); want %q", fe.Name, err, wantField)
	}
	if fe.Reason == "" || !strings.HasPrefix(err.Error(), wantField+": ") {
		t.Fatalf("error message %q should start with %q and give a reason", err, wantField+": ")
	}
}
