package server

import (
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"

	"github.com/klaxonhq/klaxon/graph"
)

func TestShareKeyOnlyForCallerFreeSubscriptions(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	for _, tc := range []struct {
		name, query string
		shared      bool
	}{
		{"event and alert fields", `subscription { alertEvents { cursor type at alert { id number status severity subject details url openedAt regression overdue } } }`, true},
		{"typename", `subscription { alertEvents { __typename alert { __typename id } } }`, true},
		{"fragment", `subscription { alertEvents { alert { ...A } } } fragment A on Alert { id subject }`, true},
		{"inline fragment", `subscription { alertEvents { alert { ... on Alert { id } } } }`, true},
		{"include", `subscription($x: Boolean!) { alertEvents { alert { id subject @include(if: $x) } } }`, true},
		{"inbound message", `subscription { inboundLog { id cursor status detail body bodyPrunedAt headers { name value } } }`, true},
		{"a user", `subscription { alertEvents { alert { id acknowledgedBy { email } } } }`, false},
		{"contact methods", `subscription { alertEvents { alert { notifications { contactMethod { value } } } } }`, false},
		{"the timeline", `subscription { alertEvents { alert { timeline { message } } } }`, false},
		{"an integration", `subscription { inboundLog { id integration { name } } }`, false},
		{"a message's alert", `subscription { inboundLog { id alert { id } } }`, false},
		{"in a fragment", `subscription { alertEvents { alert { ...A } } } fragment A on Alert { id createdBy { name } }`, false},
		{"a query", `query { alerts(first: 1) { totalCount } }`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := gqlparser.LoadQuery(schema, tc.query)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			rc := &graphql.OperationContext{RawQuery: tc.query, Doc: doc, Operation: doc.Operations[0], Variables: map[string]any{"x": true}}
			if _, ok := shareKey(rc); ok != tc.shared {
				t.Errorf("shared %v, want %v", ok, tc.shared)
			}
		})
	}
}

func TestShareKeyTellsOperationsApart(t *testing.T) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	const query = `subscription($x: Boolean!) { alertEvents { alert { id subject @include(if: $x) } } }`
	doc, err := gqlparser.LoadQuery(schema, query)
	if err != nil {
		t.Fatal(err)
	}
	key := func(vars map[string]any, name string) string {
		rc := &graphql.OperationContext{RawQuery: query, OperationName: name, Variables: vars, Doc: doc, Operation: doc.Operations[0]}
		k, ok := shareKey(rc)
		if !ok {
			t.Fatal("not shared")
		}
		return k
	}
	if key(map[string]any{"x": true}, "") != key(map[string]any{"x": true}, "") {
		t.Error("one operation, two keys")
	}
	if key(map[string]any{"x": true}, "") == key(map[string]any{"x": false}, "") {
		t.Error("other variables, the same key")
	}
	if key(map[string]any{"x": true}, "") == key(map[string]any{"x": true}, "Named") {
		t.Error("another operation name, the same key")
	}
}
