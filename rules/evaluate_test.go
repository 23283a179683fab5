package rules

import (
	"reflect"
	"testing"
)

const opBody = `{
	"title": "Disk Full on DB-1",
	"sev": "High",
	"tags": ["prod", "DB"],
	"n": 42,
	"z": null,
	"empty": "",
	"b": true,
	"obj": {"k": "V"}
}`

var opMapping = Mapping{Subject: []string{"$.title"}, Severity: []string{"$.sev"}}

var negation = map[Op]Op{
	OpEquals: OpNotEquals, OpContains: OpNotContains, OpMatches: OpNotMatches,
	OpExists: OpNotExists, OpIn: OpNotIn,
}

// conditionHolds compiles a one-rule program around c and reports whether the
// rule fired on body.
func conditionHolds(t *testing.T, m Mapping, c Condition, body string) bool {
	t.Helper()
	p, err := Compile(m, []Rule{{Name: "r", Conditions: []Condition{c}, Action: ActionOpen}})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p.Evaluate(mustParse(t, body)).Action == ActionOpen
}

func mustParse(t testing.TB, body string) *Message {
	t.Helper()
	msg, err := Parse([]byte(body))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return msg
}

// TestOperators lists positive operators only; each case is also run with
// the negated operator, which must give the opposite answer.
func TestOperators(t *testing.T) {
	tests := []struct {
		name string
		c    Condition
		want bool
	}{
		// Field conditions use mapped, normalized values: severity "High" → "high".
		{"field equals normalized", Condition{Field: "severity", Op: OpEquals, Value: "high"}, true},
		{"field equals folds case", Condition{Field: "subject", Op: OpEquals, Value: "disk full on db-1"}, true},
		{"field equals case-sensitive miss", Condition{Field: "subject", Op: OpEquals, Value: "disk full on db-1", CaseSensitive: true}, false},
		{"field equals case-sensitive hit", Condition{Field: "subject", Op: OpEquals, Value: "Disk Full on DB-1", CaseSensitive: true}, true},
		{"field equals is not contains", Condition{Field: "subject", Op: OpEquals, Value: "disk"}, false},
		{"field contains", Condition{Field: "subject", Op: OpContains, Value: "FULL"}, true},
		{"field contains case-sensitive miss", Condition{Field: "subject", Op: OpContains, Value: "FULL", CaseSensitive: true}, false},
		{"field contains case-sensitive hit", Condition{Field: "subject", Op: OpContains, Value: "Full", CaseSensitive: true}, true},
		{"field contains miss", Condition{Field: "subject", Op: OpContains, Value: "cpu"}, false},
		{"field matches", Condition{Field: "subject", Op: OpMatches, Value: `^disk .* db-\d$`}, true},
		{"field matches case-sensitive miss", Condition{Field: "subject", Op: OpMatches, Value: `^disk`, CaseSensitive: true}, false},
		{"field matches case-sensitive hit", Condition{Field: "subject", Op: OpMatches, Value: `^Disk`, CaseSensitive: true}, true},
		{"field matches miss", Condition{Field: "subject", Op: OpMatches, Value: `^cpu`}, false},
		{"field exists", Condition{Field: "severity", Op: OpExists}, true},
		{"field exists empty", Condition{Field: "url", Op: OpExists}, false},
		{"field in", Condition{Field: "severity", Op: OpIn, Values: []string{"critical", "HIGH"}}, true},
		{"field in case-sensitive miss", Condition{Field: "severity", Op: OpIn, Values: []string{"HIGH"}, CaseSensitive: true}, false},
		{"field in case-sensitive hit", Condition{Field: "severity", Op: OpIn, Values: []string{"HIGH", "high"}, CaseSensitive: true}, true},
		{"field in miss", Condition{Field: "severity", Op: OpIn, Values: []string{"low"}}, false},
		{"empty field equals empty", Condition{Field: "details", Op: OpEquals, Value: ""}, true},

		// Path conditions see the raw body, before normalization.
		{"path equals raw", Condition{Path: "$.sev", Op: OpEquals, Value: "high"}, true},
		{"path equals raw case-sensitive", Condition{Path: "$.sev", Op: OpEquals, Value: "high", CaseSensitive: true}, false},
		{"path equals number text", Condition{Path: "$.n", Op: OpEquals, Value: "42"}, true},
		{"path equals bool", Condition{Path: "$.b", Op: OpEquals, Value: "TRUE"}, true},
		{"path equals object JSON", Condition{Path: "$.obj", Op: OpEquals, Value: `{"k":"V"}`, CaseSensitive: true}, true},
		{"path equals any node", Condition{Path: "$.tags[*]", Op: OpEquals, Value: "db"}, true},
		{"path equals missing", Condition{Path: "$.nope", Op: OpEquals, Value: ""}, false},
		{"path equals null as empty", Condition{Path: "$.z", Op: OpEquals, Value: ""}, true},
		{"path contains any node", Condition{Path: "$.tags[*]", Op: OpContains, Value: "ro"}, true},
		{"path contains miss", Condition{Path: "$.tags[*]", Op: OpContains, Value: "staging"}, false},
		{"path contains in array JSON", Condition{Path: "$.tags", Op: OpContains, Value: `"prod"`}, true},
		{"path matches any node", Condition{Path: "$.tags[*]", Op: OpMatches, Value: `^d`}, true},
		{"path matches case-sensitive", Condition{Path: "$.tags[*]", Op: OpMatches, Value: `^d`, CaseSensitive: true}, false},
		{"path matches missing", Condition{Path: "$.nope", Op: OpMatches, Value: `.*`}, false},
		{"path exists", Condition{Path: "$.title", Op: OpExists}, true},
		{"path exists empty string", Condition{Path: "$.empty", Op: OpExists}, true},
		{"path exists null", Condition{Path: "$.z", Op: OpExists}, false},
		{"path exists missing", Condition{Path: "$.nope", Op: OpExists}, false},
		{"path exists filter", Condition{Path: "$.tags[?@ == 'DB']", Op: OpExists}, true},
		{"path in", Condition{Path: "$.tags[*]", Op: OpIn, Values: []string{"staging", "db"}}, true},
		{"path in miss", Condition{Path: "$.tags[*]", Op: OpIn, Values: []string{"staging"}}, false},
		{"path in missing", Condition{Path: "$.nope", Op: OpIn, Values: []string{""}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := conditionHolds(t, opMapping, tt.c, opBody); got != tt.want {
				t.Errorf("%s %+v = %v; want %v", tt.c.Op, tt.c, got, tt.want)
			}
			neg := tt.c
			neg.Op = negation[tt.c.Op]
			if got := conditionHolds(t, opMapping, neg, opBody); got != !tt.want {
				t.Errorf("%s %+v = %v; want %v", neg.Op, neg, got, !tt.want)
			}
		})
	}
}

func TestMatchModes(t *testing.T) {
	yes := Condition{Field: "severity", Op: OpEquals, Value: "high"}
	no := Condition{Field: "severity", Op: OpEquals, Value: "low"}
	tests := []struct {
		name  string
		match MatchMode
		conds []Condition
		want  bool
	}{
		{"default is ALL, all hold", "", []Condition{yes, yes}, true},
		{"default is ALL, one fails", "", []Condition{yes, no}, false},
		{"ALL all hold", MatchAll, []Condition{yes, yes, yes}, true},
		{"ALL one fails", MatchAll, []Condition{no, yes}, false},
		{"ANY one holds", MatchAny, []Condition{no, no, yes}, true},
		{"ANY none holds", MatchAny, []Condition{no, no}, false},
		{"ALL no conditions", MatchAll, nil, true},
		{"ANY no conditions", MatchAny, nil, true},
	}
	msg := mustParse(t, opBody)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(opMapping, []Rule{{Name: "r", Match: tt.match, Conditions: tt.conds, Action: ActionOpen}})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Evaluate(msg).Action == ActionOpen; got != tt.want {
				t.Errorf("matched = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestFirstMatchWins(t *testing.T) {
	rs := []Rule{
		{Name: "never", Conditions: []Condition{{Field: "severity", Op: OpEquals, Value: "low"}}, Action: ActionClose},
		{Name: "ignore prod", Conditions: []Condition{{Path: "$.tags[*]", Op: OpEquals, Value: "prod"}}, Action: ActionIgnore},
		{Name: "open high", Conditions: []Condition{{Field: "severity", Op: OpEquals, Value: "high"}}, Action: ActionOpen},
		{Name: "catch-all", Action: ActionClose},
	}
	p, err := Compile(opMapping, rs)
	if err != nil {
		t.Fatal(err)
	}
	d := p.Evaluate(mustParse(t, opBody))
	want := Decision{
		Fields:    Fields{Subject: "Disk Full on DB-1", Severity: "high", SourceID: fallbackSourceID("", "Disk Full on DB-1", "")},
		Action:    ActionIgnore,
		RuleIndex: 1,
		RuleName:  "ignore prod",
		Detail:    `rule 2 "ignore prod" matched: IGNORE`,
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("Evaluate = %+v\nwant %+v", d, want)
	}

	// Without the rule at index 1, the next matching rule takes over.
	p, err = Compile(opMapping, append(rs[:1:1], rs[2:]...))
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Evaluate(mustParse(t, opBody)); d.RuleIndex != 1 || d.Action != ActionOpen || d.RuleName != "open high" {
		t.Errorf("Evaluate = %+v; want rule 1 open high", d)
	}
}

func TestNoRuleMatched(t *testing.T) {
	p, err := Compile(opMapping, []Rule{{Name: "low", Conditions: []Condition{{Field: "severity", Op: OpEquals, Value: "low"}}, Action: ActionClose}})
	if err != nil {
		t.Fatal(err)
	}
	for name, msg := range map[string]*Message{"body": mustParse(t, opBody), "nil message": nil, "scalar": {root: "x"}} {
		t.Run(name, func(t *testing.T) {
			d := p.Evaluate(msg)
			if d.Action != "" || d.RuleIndex != -1 || d.RuleName != "" || d.Detail != "no rule matched" {
				t.Errorf("Evaluate = %+v; want no match", d)
			}
		})
	}
	var nilProg *Program
	if d := nilProg.Evaluate(mustParse(t, opBody)); d.RuleIndex != -1 || d.Action != "" {
		t.Errorf("nil Program Evaluate = %+v; want no match", d)
	}
}

// TestProgramIsReusable guards against state leaking between evaluations,
// which would break the per-integration cache.
func TestProgramIsReusable(t *testing.T) {
	p, err := Compile(opMapping, []Rule{{Name: "high", Conditions: []Condition{{Field: "severity", Op: OpEquals, Value: "high"}}, Action: ActionOpen}})
	if err != nil {
		t.Fatal(err)
	}
	high, low := mustParse(t, `{"sev":"high"}`), mustParse(t, `{"sev":"low"}`)
	done := make(chan bool)
	for i := 0; i < 8; i++ {
		go func() {
			ok := true
			for j := 0; j < 200; j++ {
				ok = ok && p.Evaluate(high).Action == ActionOpen && p.Evaluate(low).Action == ""
			}
			done <- ok
		}()
	}
	for i := 0; i < 8; i++ {
		if !<-done {
			t.Error("concurrent evaluation gave a wrong answer")
		}
	}
}
