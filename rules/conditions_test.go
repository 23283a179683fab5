package rules

import (
	"errors"
	"testing"

	"github.com/klaxonhq/klaxon/invalid"
)

func TestFilterMatchesAlertFields(t *testing.T) {
	f, err := CompileFilter("conditions", []Condition{
		{Field: "severity", Op: OpIn, Values: []string{"critical", "high"}},
		{Field: "subject", Op: OpContains, Value: "sql"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		fields Fields
		want   bool
	}{
		{Fields{Severity: "Critical", Subject: "SQL injection"}, true},
		{Fields{Severity: "low", Subject: "SQL injection"}, false},
		{Fields{Severity: "high", Subject: "XSS"}, false},
	}
	for _, c := range cases {
		if got := f.Matches(c.fields); got != c.want {
			t.Errorf("Matches(%+v) = %v, want %v", c.fields, got, c.want)
		}
	}
	var empty *Filter
	if !empty.Matches(Fields{}) {
		t.Error("an empty filter must match")
	}
}

func TestFilterRefusesPathsAndFacts(t *testing.T) {
	for _, c := range []struct {
		cond  Condition
		field string
	}{
		{Condition{Path: "$.x", Op: OpExists}, "conditions[0].path"},
		{Condition{Field: "regression", Op: OpEquals, Value: "true"}, "conditions[0].field"},
		{Condition{Field: "nope", Op: OpEquals}, "conditions[0].field"},
	} {
		_, err := CompileFilter("conditions", []Condition{c.cond})
		var fe *invalid.Field
		if !errors.As(err, &fe) || fe.Name != c.field {
			t.Errorf("CompileFilter(%+v) = %v, want a field error on %s", c.cond, err, c.field)
		}
	}
}
