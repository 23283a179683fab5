package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// nested is an operation whose fields nest exactly depth levels, through
// the alert ↔ inbound message cycle of the schema.
func nested(depth int) string {
	// alerts(1) nodes(2), then messages nodes alert per three levels,
	// then as many single levels as remain.
	var b strings.Builder
	// Pages of one keep the operation's cost low: this measures depth.
	b.WriteString("{ alerts(first: 1) { nodes { ")
	closing, level := 3, 2
	for level+3 < depth {
		b.WriteString("messages(first: 1) { nodes { alert { ")
		closing += 3
		level += 3
	}
	switch depth - level {
	case 1:
		b.WriteString("id ")
	case 2:
		b.WriteString("messages { totalCount } ")
	case 3:
		b.WriteString("messages { pageInfo { hasNextPage } } ")
	}
	b.WriteString(strings.Repeat("} ", closing))
	return b.String()
}

func TestGraphQLDepthLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	limit := server.DefaultGraphQLMaxDepth
	t.Run("at the limit", func(t *testing.T) {
		h.with(t).mustGQL(h.admin.Token, nested(limit), nil, nil)
	})
	t.Run("one past the limit", func(t *testing.T) {
		r := h.with(t).gql(h.admin.Token, nested(limit+1), nil)
		if len(r.Errors) != 1 || r.Errors[0].Extensions.Code != "DEPTH_LIMIT_EXCEEDED" || !r.dataIsNull() {
			t.Fatalf("want one DEPTH_LIMIT_EXCEEDED and no data: %s", r.Raw)
		}
	})
	t.Run("deep through fragments", func(t *testing.T) {
		// Named and inline fragments add no depth of their own, but the
		// fields inside them do: 2 + 3*4 + 2 = 16 levels.
		query := `query { ...Root }
			fragment Root on Query { alerts(first: 1) { nodes { ...Hop } } }
			fragment Hop on Alert { messages(first: 1) { nodes { alert { ... on Alert { ...Hop2 } } } } }
			fragment Hop2 on Alert { messages(first: 1) { nodes { alert { ...Hop3 } } } }
			fragment Hop3 on Alert { messages(first: 1) { nodes { alert { ...Hop4 } } } }
			fragment Hop4 on Alert { messages(first: 1) { nodes { alert { messages { totalCount } } } } }`
		h.with(t).wantGQLError(h.admin.Token, query, nil, "DEPTH_LIMIT_EXCEEDED")
		// The same fragments one level shallower pass.
		h.with(t).mustGQL(h.admin.Token, strings.Replace(query, "messages { totalCount }", "id", 1), nil, nil)
	})
	t.Run("a fragment spread twice side by side is no deeper", func(t *testing.T) {
		query := `{ alerts { nodes { ...F ...F } } } fragment F on Alert { id subject }`
		h.with(t).mustGQL(h.admin.Token, query, nil, nil)
	})
	t.Run("introspection as GraphiQL sends it", func(t *testing.T) {
		h.with(t).mustGQL("", graphiQLIntrospection, nil, nil)
	})
	t.Run("a configured limit", func(t *testing.T) {
		h := newHarness(t, dbtest.SQLite(t), server.Config{GraphQLMaxDepth: 4})
		h.mustGQL(h.admin.Token, nested(4), nil, nil)
		e := h.wantGQLError(h.admin.Token, nested(5), nil, "DEPTH_LIMIT_EXCEEDED")
		if !strings.Contains(e.Message, "4") {
			t.Errorf("message does not give the limit: %q", e.Message)
		}
	})
}

func TestGraphQLComplexityLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dbtest.SQLite(t), server.Config{GraphQLMaxComplexity: 10})
	// me and id count one each.
	wide := func(n int) string {
		var b strings.Builder
		b.WriteString("{ ")
		for i := range n {
			b.WriteString("a" + string(rune('a'+i)) + ": me { id } ")
		}
		return b.String() + "}"
	}
	h.mustGQL(h.admin.Token, wide(5), nil, nil)
	r := h.gql(h.admin.Token, wide(6), nil)
	if len(r.Errors) != 1 || r.Errors[0].Extensions.Code != "COMPLEXITY_LIMIT_EXCEEDED" || !r.dataIsNull() {
		t.Fatalf("want one COMPLEXITY_LIMIT_EXCEEDED and no data: %s", r.Raw)
	}
}

func TestGraphQLBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 2048
	h := newHarness(t, dbtest.SQLite(t), server.Config{GraphQLMaxBodyBytes: limit})
	// body is a valid request of exactly size bytes.
	body := func(size int) []byte {
		head, tail := `{"query":"{ me { id } }`, `"}`
		return []byte(head + strings.Repeat(" ", size-len(head)-len(tail)) + tail)
	}
	post := func(t *testing.T, payload io.Reader, contentType string) *gqlResponse {
		req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql", payload)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+h.admin.Token)
		return h.with(t).doGQL(req)
	}
	t.Run("at the limit", func(t *testing.T) {
		r := post(t, bytes.NewReader(body(limit)), "application/json")
		if r.HTTPStatus != http.StatusOK || len(r.Errors) != 0 {
			t.Fatalf("HTTP %d: %s", r.HTTPStatus, r.Raw)
		}
	})
	for name, payload := range map[string]func() io.Reader{
		// With Content-Length, refused before reading.
		"declared length": func() io.Reader { return bytes.NewReader(body(limit + 1)) },
		// Chunked, with no length: refused once the limit is read.
		"chunked": func() io.Reader { return io.MultiReader(bytes.NewReader(body(limit + 1))) },
	} {
		t.Run("over the limit, "+name, func(t *testing.T) {
			r := post(t, payload(), "application/json")
			if r.HTTPStatus != http.StatusRequestEntityTooLarge || len(r.Errors) != 1 || r.Errors[0].Extensions.Code != "REQUEST_TOO_LARGE" {
				t.Fatalf("want 413 REQUEST_TOO_LARGE, got HTTP %d: %s", r.HTTPStatus, r.Raw)
			}
		})
	}
	t.Run("not JSON", func(t *testing.T) {
		r := post(t, strings.NewReader("{ me { id } }"), "application/graphql")
		if r.HTTPStatus != http.StatusUnsupportedMediaType || len(r.Errors) != 1 || r.Errors[0].Extensions.Code != "BAD_REQUEST" {
			t.Fatalf("want 415 BAD_REQUEST, got HTTP %d: %s", r.HTTPStatus, r.Raw)
		}
	})
}

func TestGraphQLIntrospectionSetting(t *testing.T) {
	t.Parallel()
	on := newHarness(t, dbtest.SQLite(t), server.Config{})
	off := newHarness(t, dbtest.SQLite(t), server.Config{GraphQLNoIntrospection: true})
	introspect := []string{
		`{ __schema { queryType { name } } }`,
		`{ __type(name: "Alert") { name } }`,
		`query { ...Q } fragment Q on Query { ... on Query { __type(name: "Alert") { fields { name } } } }`,
	}
	for _, q := range introspect {
		on.mustGQL("", q, nil, nil)
		r := off.gql("", q, nil)
		if len(r.Errors) != 1 || r.Errors[0].Extensions.Code != "GRAPHQL_VALIDATION_FAILED" || !r.dataIsNull() {
			t.Errorf("introspection off: want one GRAPHQL_VALIDATION_FAILED and no data for %s: %s", q, r.Raw)
		}
	}
	// __typename is not introspection: clients need it to tell types apart.
	off.mustGQL(off.admin.Token, `{ __typename me { __typename id } }`, nil, nil)
	for h, want := range map[*harness]int{on: http.StatusOK, off: http.StatusNotFound} {
		resp, err := h.client.Get(h.srv.URL + "/playground")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET /playground: HTTP %d, want %d", resp.StatusCode, want)
		}
	}
}

// TestGraphQLNoSuggestionsWithoutIntrospection holds that introspection
// off means the schema is not disclosed by other means either: the
// validator's "Did you mean …?" hints would let a client spell the schema
// out one guess at a time.
func TestGraphQLNoSuggestionsWithoutIntrospection(t *testing.T) {
	t.Parallel()
	on := newHarness(t, dbtest.SQLite(t), server.Config{})
	off := newHarness(t, dbtest.SQLite(t), server.Config{GraphQLNoIntrospection: true})
	cases := []struct {
		name, query string
		vars        map[string]any
	}{
		{name: "misspelt field", query: `{ me { emial } }`},
		{name: "misspelt argument", query: `{ alerts(frist: 5) { totalCount } }`},
		{name: "misspelt type of a variable", query: `query($f: AlertFiltr) { alerts(filter: $f) { totalCount } }`},
		{name: "misspelt enum value", query: `{ alerts(filter: {status: [OPN]}) { totalCount } }`},
		{name: "misspelt input field", query: `{ alerts(filter: {statuss: [OPEN]}) { totalCount } }`},
		{name: "object without a selection", query: `{ me }`},
		{name: "misspelt variable input field", query: `query($f: AlertFilter) { alerts(filter: $f) { totalCount } }`,
			vars: map[string]any{"f": map[string]any{"statuss": []string{"OPEN"}}}},
	}
	suggested := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if r := on.with(t).gql(on.admin.Token, c.query, c.vars); strings.Contains(string(r.Raw), "Did you mean") {
				suggested++
			}
			r := off.with(t).gql(off.admin.Token, c.query, c.vars)
			if len(r.Errors) == 0 {
				t.Fatalf("want an error: %s", r.Raw)
			}
			for _, e := range r.Errors {
				if e.Extensions.Code != "GRAPHQL_VALIDATION_FAILED" || strings.Contains(e.Message, "Did you mean") || strings.Contains(e.Message, "?") {
					t.Errorf("introspection off: want GRAPHQL_VALIDATION_FAILED without a suggestion, got %s", r.Raw)
				}
			}
		})
	}
	// With introspection on the hints help people, and show the cases above
	// are ones that would make them.
	if suggested < 5 {
		t.Errorf("only %d of %d cases suggested anything with introspection on", suggested, len(cases))
	}
}

// TestGraphQLErrorsCarryACode sends what a careless or hostile client
// might: every error must come back with a code, and none as an internal
// error.
func TestGraphQLErrorsCarryACode(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	cases := []struct {
		name, query string
		vars        map[string]any
		token       string
		want        string
	}{
		{name: "syntax error", query: `{ me { id }`, want: "GRAPHQL_PARSE_FAILED"},
		{name: "unknown field", query: `{ me { id password } }`, want: "GRAPHQL_VALIDATION_FAILED"},
		{name: "unknown argument", query: `{ alerts(colour: "red") { totalCount } }`, want: "GRAPHQL_VALIDATION_FAILED"},
		{name: "argument of the wrong type", query: `{ alert(id: true) { id } }`, want: "GRAPHQL_VALIDATION_FAILED"},
		{name: "missing argument", query: `{ alert { id } }`, want: "GRAPHQL_VALIDATION_FAILED"},
		{name: "unknown enum value", query: `{ alerts(filter: {status: [SNOOZED]}) { totalCount } }`, want: "GRAPHQL_VALIDATION_FAILED"},
		{name: "variable of the wrong type", query: `query($first: Int) { alerts(first: $first) { totalCount } }`,
			vars: map[string]any{"first": "ten"}, want: "GRAPHQL_VALIDATION_FAILED"},
		{name: "missing variable", query: `query($id: ID!) { alert(id: $id) { id } }`, want: "GRAPHQL_VALIDATION_FAILED"},
		{name: "an id that is not a number", query: `{ alert(id: "abc") { id } }`, want: "BAD_USER_INPUT"},
		{name: "an id variable that is not a number", query: `query($id: ID!) { alert(id: $id) { id } }`,
			vars: map[string]any{"id": "abc"}, want: "BAD_USER_INPUT"},
		{name: "a missing alert", query: `mutation { acknowledgeAlert(id: 999999) { id } }`, want: "NOT_FOUND"},
		{name: "a time that is not one", query: `query($id: ID!) { shifts(scheduleId: $id, from: "yesterday", to: "2026-01-02T00:00:00Z") { start } }`,
			vars: map[string]any{"id": "1"}, want: "BAD_USER_INPUT"},
		{name: "anonymous", query: `{ me { id } }`, token: "-", want: "UNAUTHENTICATED"},
		{name: "unknown operation name", query: `query A { me { id } }`, want: "GRAPHQL_VALIDATION_FAILED"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			token := h.admin.Token
			if c.token == "-" {
				token = ""
			}
			query := c.query
			var r *gqlResponse
			if c.name == "unknown operation name" {
				payload, _ := json.Marshal(map[string]any{"query": query, "operationName": "B"})
				req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql", bytes.NewReader(payload))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+token)
				r = h.with(t).doGQL(req)
			} else {
				r = h.with(t).gql(token, query, c.vars)
			}
			if len(r.Errors) == 0 {
				t.Fatalf("want an error, got success: %s", r.Raw)
			}
			for _, e := range r.Errors {
				if e.Extensions.Code != c.want || e.Message == "" || e.Message == "internal error" {
					t.Errorf("want code %s with a message for the caller, got %s", c.want, r.Raw)
				}
			}
		})
	}
	t.Run("malformed JSON body", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql", strings.NewReader(`{"query": "{ me { id } }"`))
		req.Header.Set("Content-Type", "application/json")
		r := h.with(t).doGQL(req)
		if r.HTTPStatus != http.StatusBadRequest || len(r.Errors) != 1 || r.Errors[0].Extensions.Code == "" || r.Errors[0].Extensions.Code == "INTERNAL_SERVER_ERROR" {
			t.Fatalf("want 400 with a code for the caller: HTTP %d: %s", r.HTTPStatus, r.Raw)
		}
	})
}

// graphiQLIntrospection is the introspection query GraphiQL sends, with
// type references nine levels deep.
const graphiQLIntrospection = `query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description
    args { ...InputValue }
    type { ...TypeRef }
    isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name
    ofType { kind name
      ofType { kind name
        ofType { kind name
          ofType { kind name
            ofType { kind name
              ofType { kind name
                ofType { kind name
                  ofType { kind name }
                }
              }
            }
          }
        }
      }
    }
  }
}`

// TestGraphQLComplexityCountsListFanOut holds that the complexity limit
// bounds what an operation makes the server do: a list's fields count once
// per item it yields (its first, its page size without one, an assumed
// length for lists that are not paged), and an operation over the limit is
// refused before any resolver runs.
func TestGraphQLComplexityCountsListFanOut(t *testing.T) {
	t.Parallel()
	d := dbtest.SQLite(t)
	h := newHarness(t, d, server.Config{})
	// Reads of the inbound log, counted at the database: a refused
	// operation must cause none.
	reads := &queryCounter{match: "inbound_messages"}
	d.AddQueryHook(reads)
	refused := func(t *testing.T, query string, vars map[string]any) {
		t.Helper()
		before := reads.n.Load()
		r := h.with(t).gql(h.admin.Token, query, vars)
		if len(r.Errors) != 1 || r.Errors[0].Extensions.Code != "COMPLEXITY_LIMIT_EXCEEDED" || !r.dataIsNull() {
			t.Fatalf("want one COMPLEXITY_LIMIT_EXCEEDED and no data: %.500s", r.Raw)
		}
		if n := reads.n.Load() - before; n != 0 {
			t.Errorf("the refused operation read the inbound log %d times", n)
		}
	}
	aliases := func(n int, field string) string {
		var b strings.Builder
		b.WriteString("{ ")
		for i := range n {
			fmt.Fprintf(&b, "a%d: %s ", i, field)
		}
		return b.String() + "}"
	}

	t.Run("a page of the inbound log is counted", func(t *testing.T) {
		before := reads.n.Load()
		h.with(t).mustGQL(h.admin.Token, `{ inboundMessages(first: 500) { nodes { body } } }`, nil, nil)
		if reads.n.Load() == before {
			t.Fatal("the query counter saw no read of the inbound log; it cannot show a refusal read nothing")
		}
	})
	t.Run("many aliases of a large page", func(t *testing.T) {
		refused(t, aliases(666, `inboundMessages(first: 500) { nodes { body } }`), nil)
		// Under the limit of top-level fields, the pages still add up.
		refused(t, aliases(11, `inboundMessages(first: 500) { nodes { body } }`), nil)
		h.with(t).mustGQL(h.admin.Token, aliases(9, `inboundMessages(first: 500) { nodes { body } }`), nil, nil)
	})
	t.Run("too many top-level fields", func(t *testing.T) {
		h.with(t).mustGQL(h.admin.Token, aliases(server.MaxRootFields, "me { id }"), nil, nil)
		refused(t, aliases(server.MaxRootFields+1, "me { id }"), nil)
		// Fragments are looked through: 30 fields in each of two.
		thirty := aliases(30, "me { id }")
		refused(t, `{ ...A ...B } fragment A on Query `+thirty+` fragment B on Query `+strings.ReplaceAll(thirty, "a", "b"), nil)
	})
	t.Run("nested unpaged lists multiply", func(t *testing.T) {
		nest := func(levels int) string {
			return "{ me { " + strings.Repeat("contactMethods { user { ", levels) + "id" + strings.Repeat(" } }", levels) + " } }"
		}
		h.with(t).mustGQL(h.admin.Token, nest(2), nil, nil)
		refused(t, nest(4), nil)
		// The deepest the depth limit allows: ten million contact methods
		// by the count.
		refused(t, strings.Replace(nest(6), "id", "contactMethods { id }", 1), nil)
	})
	t.Run("a page size in a variable", func(t *testing.T) {
		query := `query($n: Int) { inboundMessages(first: $n) { nodes { body headers { name } } } }`
		h.with(t).mustGQL(h.admin.Token, query, map[string]any{"n": 100}, nil)
		refused(t, query, map[string]any{"n": 500})
		// Without first, the default page of 50.
		h.with(t).mustGQL(h.admin.Token, query, nil, nil)
	})
	t.Run("nested pages multiply", func(t *testing.T) {
		query := `{ alerts(first: 100) { nodes { id messages(first: 100) { nodes { id } } } } }`
		refused(t, query, nil)
		h.with(t).mustGQL(h.admin.Token, strings.Replace(query, "first: 100", "first: 10", 1), nil, nil)
	})
}

// TestGraphQLDefaultLimitsAllowRealQueries holds that the default depth and
// complexity limits admit what clients really send: GraphiQL's
// introspection query, every query in README.md (read from the README
// itself, so an example added there is checked too) and the queries of
// klaxon-bench, with its largest pages.
func TestGraphQLDefaultLimitsAllowRealQueries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	h.createIntegration("DETECTIFY")
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var queries []string
	for _, m := range regexp.MustCompile(`"query":"((?:[^"\\]|\\.)*)"`).FindAllSubmatch(readme, -1) {
		var q string
		if err := json.Unmarshal([]byte(`"`+string(m[1])+`"`), &q); err != nil {
			t.Fatalf("README query %s: %v", m[1], err)
		}
		queries = append(queries, q)
	}
	for _, m := range regexp.MustCompile("(?s)```graphql\n(.*?)```").FindAllSubmatch(readme, -1) {
		queries = append(queries, string(m[1]))
	}
	if len(queries) < 3 {
		t.Fatalf("found %d queries in README.md; has the way they are written changed?", len(queries))
	}
	bench, err := os.ReadFile("../cmd/klaxon-bench/graphql.go")
	if err != nil {
		t.Fatal(err)
	}
	var benchQueries []string
	for _, m := range regexp.MustCompile("(?s)a\\.do\\(ctx, `(.*?)`").FindAllSubmatch(bench, -1) {
		benchQueries = append(benchQueries, string(m[1]))
	}
	if len(benchQueries) < 4 {
		t.Fatalf("found %d queries in klaxon-bench; has the way they are written changed?", len(benchQueries))
	}
	vars := map[string]any{
		"email": h.admin.Email, "password": h.admin.Password, "name": h.unique("bench"),
		"id": "1", "first": 500, "after": nil,
	}
	for i, q := range append(append(queries, benchQueries...), graphiQLIntrospection) {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			r := h.with(t).gql(h.admin.Token, q, vars)
			for _, e := range r.Errors {
				if strings.HasSuffix(e.Extensions.Code, "LIMIT_EXCEEDED") || e.Extensions.Code == "GRAPHQL_VALIDATION_FAILED" {
					t.Errorf("refused: %s\nquery: %s", r.Raw, q)
				}
			}
		})
	}
}

// queryCounter counts the statements sent to the database that mention
// match.
type queryCounter struct {
	match string
	n     atomic.Int64
}

func (c *queryCounter) BeforeQuery(ctx context.Context, e *bun.QueryEvent) context.Context {
	if strings.Contains(e.Query, c.match) {
		c.n.Add(1)
	}
	return ctx
}

func (c *queryCounter) AfterQuery(context.Context, *bun.QueryEvent) {}
