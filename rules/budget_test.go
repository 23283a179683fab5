package rules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/theory/jsonpath"
)

// deepObject is {"a":{"a":…{"a":"leaf"}…}} nested levels deep.
func deepObject(levels int) string {
	return strings.Repeat(`{"a":`, levels) + `"leaf"` + strings.Repeat("}", levels)
}

// wideArray is {"items":[{"x":"0"},{"x":"1"},…]} with n items.
func wideArray(n int) string {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"x":"%d"}`, i)
	}
	b.WriteString(`]}`)
	return b.String()
}

// TestStepBudget holds that a mapping or rule whose JSONPath would walk a
// body for too long stops when MaxSteps are spent and says so, instead of
// holding the worker: the step count, not a clock, decides.
func TestStepBudget(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Mapping
		rs   []Rule
		body string
	}{
		{
			name: "descendant of descendant in the mapping, deep body",
			m:    Mapping{Subject: []string{"$..*..*"}},
			body: deepObject(MaxDepth - 1),
		},
		{
			name: "three descendants in a rule, deep body",
			rs:   []Rule{{Name: "deep", Action: ActionOpen, Conditions: []Condition{{Path: "$..*..*..a", Op: OpEquals, Value: "nothing"}}}},
			body: deepObject(MaxDepth - 1),
		},
		{
			name: "descendant in a rule, wide body",
			rs:   []Rule{{Name: "wide", Action: ActionOpen, Conditions: []Condition{{Path: "$..x", Op: OpEquals, Value: "nothing"}}}},
			body: wideArray(200_000),
		},
		{
			// Each object's text holds every one below it: the square of
			// the body's size.
			name: "text of every node of a deep body",
			rs:   []Rule{{Name: "text", Action: ActionOpen, Conditions: []Condition{{Path: "$..*", Op: OpContains, Value: "nothing"}}}},
			body: strings.Replace(deepObject(MaxDepth-1), `{"a":`, `{"pad":"`+strings.Repeat("p", 500)+`","a":`, -1),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.m, tc.rs)
			if err != nil {
				t.Fatal(err)
			}
			msg := mustParse(t, tc.body)
			b := newBudget(MaxSteps)
			d := p.evaluate(msg, Facts{}, b)
			if !b.exhausted() {
				t.Fatalf("the budget was not spent (%d of %d steps left): %+v", b.left, MaxSteps, d)
			}
			if !errors.Is(d.Err, ErrTooCostly) || d.Action != "" || d.RuleIndex != -1 || d.Fields != (Fields{}) {
				t.Fatalf("want only ErrTooCostly, got %+v", d)
			}
			if !strings.Contains(d.Detail, "steps") {
				t.Errorf("detail %q does not say why", d.Detail)
			}
			// The same body always comes to the same end.
			if again := p.Evaluate(msg); !reflect.DeepEqual(again, d) {
				t.Errorf("second evaluation %+v, first %+v", again, d)
			}
		})
	}
	t.Run("a real message takes a few hundred steps", func(t *testing.T) {
		files, err := filepath.Glob(filepath.Join("testdata", "detectify", "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no testdata: %v", err)
		}
		for _, typ := range []IntegrationType{TypeDetectify, TypeGeneric, TypeAlertmanager, TypePagerDuty, TypeOpsgenie, TypeEmail} {
			m, rs, _ := Preset(typ)
			p := mustCompile(t, m, rs)
			for _, f := range files {
				body, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				b := newBudget(MaxSteps)
				if d := p.evaluate(mustParse(t, string(body)), Facts{}, b); d.Err != nil {
					t.Fatalf("%s on %s: %v", typ, f, d.Err)
				}
				if used := MaxSteps - b.left; used > 2000 {
					t.Errorf("%s on %s took %d steps", typ, filepath.Base(f), used)
				}
			}
		}
	})
}

// TestSelectionMatchesTheLibrary holds the budgeted evaluator to the
// JSONPath library's results: the same nodes, in any order.
func TestSelectionMatchesTheLibrary(t *testing.T) {
	body := `{"store":{"book":[{"title":"A","price":8,"tags":["x","y"]},{"title":"B","price":12,"isbn":"1"},{"title":"C","price":9}],
		"bicycle":{"color":"red","price":19}},"a b":{"c":[1,[2,[3]]]},"n":null,"e":[]}`
	msg := mustParse(t, body)
	for _, expr := range []string{
		"$", "$.store", "$.store.book[0].title", "$.store.book[-1].title", "$.store.book[5]",
		"$.store.book[*].title", "$.store.book[0:2].title", "$.store.book[::-1].title", "$.store.book[2:0:-1]",
		"$.store.book[0,2,0].title", "$..title", "$..price", "$..*", "$..[0]", "$..book[?@.price < 10].title",
		`$.store.book[?@.isbn].title`, `$.store.book[?match(@.title, "[AB]")].price`, `$..[?@.color == "red"]`,
		`$["a b"].c[1][1][0]`, "$.n", "$.e[*]", "$.missing..x", "$.store.*", `$.store.book[?@.price > $.store.bicycle.price]`,
	} {
		p, err := parsePath(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		want := textsOf(slices.Collect(jsonpath.MustParse(expr).Select(msg.root).All()))
		for _, located := range []bool{false, true} {
			b := newBudget(MaxSteps)
			var got []any
			for _, n := range b.selectAll(p.Query(), msg.root, located) {
				got = append(got, n.value)
			}
			if g := textsOf(got); !slices.Equal(g, want) {
				t.Errorf("%s (located %v): got %v, want %v", expr, located, g, want)
			}
		}
	}
}

func textsOf(nodes []any) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = stringify(n)
	}
	slices.Sort(out)
	return out
}

// TestCostlyFiltersRefused holds that a filter, which runs once for every
// node it filters, may only test single values: one that could walk the
// body itself is refused when the mapping or ruleset is saved, naming the
// field.
func TestCostlyFiltersRefused(t *testing.T) {
	for _, expr := range []string{
		`$..[?@..x]`, `$[?count(@.*) > 1]`, `$[?@[0,1]]`, `$[?@[1:2]]`, `$[?@[?@.x]]`,
		`$[?value($..x) == "y"]`, `$.a[?@.b == 1 || @..c]`, `$.a[?!@[*]]`,
	} {
		if err := ValidateRules([]Rule{{Name: "r", Action: ActionOpen, Conditions: []Condition{{Path: expr, Op: OpExists}}}}); err == nil ||
			!strings.Contains(err.Error(), "rules[0].conditions[0].path") || !strings.Contains(err.Error(), "single values") {
			t.Errorf("condition path %s: got %v, want a refusal naming the field", expr, err)
		}
		if err := (Mapping{Subject: []string{"$.x", expr}}).Validate(); err == nil || !strings.Contains(err.Error(), "mapping.subject[1]") {
			t.Errorf("mapping %s: got %v, want a refusal naming the field", expr, err)
		}
	}
	for _, expr := range []string{
		`$.a[?@.b == "x..y*" && @['c d'] > 1]`, `$[?match(@.a, 'a.*b,c:d')]`, `$[?length(@.a) > 1 || !@.b]`,
		`$.alerts[?@.labels.severity == "critical"].labels.alertname`, `$..[?@.x == $.y[0]]`, `$.a[*][?@.b]`,
	} {
		if err := ValidateRules([]Rule{{Name: "r", Action: ActionOpen, Conditions: []Condition{{Path: expr, Op: OpExists}}}}); err != nil {
			t.Errorf("condition path %s: %v", expr, err)
		}
	}
}
