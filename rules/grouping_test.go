package rules

import "testing"

func TestGroupKey(t *testing.T) {
	g, err := CompileGrouping(Grouping{By: []string{"severity", "$.labels.service"}, WindowMinutes: 5})
	if err != nil {
		t.Fatal(err)
	}
	key := func(body string, f Fields) string {
		t.Helper()
		msg, err := Parse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return g.Key(msg, f)
	}
	a := key(`{"labels":{"service":"shop"},"id":1}`, Fields{SourceID: "1", Severity: "high"})
	if b := key(`{"labels":{"service":"shop"},"id":2}`, Fields{SourceID: "2", Severity: "high"}); a != b || a == "" {
		t.Fatalf("same severity and service: keys %q and %q, want one non-empty key", a, b)
	}
	if b := key(`{"labels":{"service":"api"}}`, Fields{Severity: "high"}); a == b {
		t.Fatal("another service gave the same key")
	}
	if b := key(`{"labels":{"service":"shop"}}`, Fields{Severity: "low"}); a == b {
		t.Fatal("another severity gave the same key")
	}
	// Values must not run together: ("ab", "c") is not ("a", "bc").
	two, _ := CompileGrouping(Grouping{By: []string{"$.x", "$.y"}, WindowMinutes: 5})
	m1, _ := Parse([]byte(`{"x":"ab","y":"c"}`))
	m2, _ := Parse([]byte(`{"x":"a","y":"bc"}`))
	if two.Key(m1, Fields{}) == two.Key(m2, Fields{}) {
		t.Fatal("values ran together into one key")
	}
	everything, _ := CompileGrouping(Grouping{WindowMinutes: 5})
	if k := everything.Key(m1, Fields{Severity: "high"}); k != "" {
		t.Fatalf("empty by: key %q, want the one key of everything", k)
	}
}
