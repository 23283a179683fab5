package rules

import (
	"encoding/json"
	"errors"
	"github.com/klaxonhq/klaxon/invalid"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

var allTypes = []IntegrationType{TypeDetectify, TypeGeneric, TypeAlertmanager, TypePagerDuty, TypeOpsgenie, TypeEmail}

// samples are the Detectify bodies in testdata, the seeds of every target.
func samples(f *testing.F) [][]byte {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "detectify", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no testdata: %v", err)
	}
	var out [][]byte
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, body)
	}
	return out
}

// FuzzEvaluate feeds a webhook body through what ingest does before
// storing: Parse, then every preset's mapping and rules.
func FuzzEvaluate(f *testing.F) {
	for _, body := range samples(f) {
		f.Add(body)
	}
	for _, s := range []string{
		``, `null`, `0`, `"x"`, `[]`, `{}`, `[[[[[[[[[[]]]]]]]]]]`,
		`{"finding":{"severity":["HIGH",null]},"title":{"a":1}}`,
		`{"event":"event_finding_high","finding_uuid":null,"title":"\u0000\ud800"}`,
		`{"severity":"İNFO","summary":"   ","action":"Close"}`,
		`{"status":"resolved","groupKey":12345678901234567890,"commonLabels":{"severity":1e400}}`,
		`{"event_action":"trigger","links":[{"href":true}],"payload":{"custom_details":[1,2,{"x":"y"}]}}`,
		"{\"summary\":\"\xff\xfe\"}",
		`{"a":1} trailing`,
		"\xef\xbb\xbf{\"finding\":{\"uuid\":\"bom\",\"severity\":\"high\"}}",
		`{"finding":{"uuid":"dup","severity":"low","severity":"high"}}`,
		`{"a":"[[[[","b":"\"]]"}`,
		`{"a":` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `}`,
	} {
		f.Add([]byte(s))
	}

	progs := make([]*Program, len(allTypes))
	for i, typ := range allTypes {
		progs[i] = mustPreset(f, typ)
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		msg, err := Parse(body)
		checkParse(t, body, msg, err)
		if err != nil {
			return
		}
		for i, p := range progs {
			d := p.Evaluate(msg)
			checkDecision(t, string(allTypes[i]), d)
			if d.Action != "" && d.Action != ActionOpen && d.Action != ActionClose && d.Action != ActionIgnore && d.Action != ActionPulse {
				t.Fatalf("%s: unknown action %q", allTypes[i], d.Action)
			}
			// The same message must give the same decision: evaluation is pure.
			if again := p.Evaluate(msg); !reflect.DeepEqual(again, d) {
				t.Fatalf("%s: second evaluation differs", allTypes[i])
			}
		}
	})
}

// FuzzMapping compiles one JSONPath expression as the mapping of every
// field and maps a body with it.
func FuzzMapping(f *testing.F) {
	bodies := samples(f)
	m, _, _ := Preset(TypeDetectify)
	exprs := []string{
		"$", "$..*", "$.*", "$[*]", "$..severity", "$.finding['uuid','title']", "$.a[-1:0:-1]", "$.a[::0]",
		"$[?@.severity == 'high']", "$[?length(@) > 1]", "$..[?match(@, '[a-z]+')]", "$[?search(@.title, '(?i)sql')]",
		"$.finding.links[\"details_page\"]", "$['\\u0000']", "$[?count(@.*) > 2]", "$[?value(@..uuid) == 'x']", "@", "$.", "",
	}
	for _, list := range m.exprs() {
		exprs = append(exprs, list...)
	}
	for i, expr := range exprs {
		f.Add(expr, bodies[i%len(bodies)])
	}

	f.Fuzz(func(t *testing.T, expr string, body []byte) {
		list := []string{expr}
		m := Mapping{SourceID: list, SourceName: list, Subject: list, Severity: list, URL: list, Details: list}
		p, err := Compile(m, nil)
		if verr := m.Validate(); (verr == nil) != (err == nil) {
			t.Fatalf("Validate says %v, Compile says %v", verr, err)
		}
		if err != nil {
			var fe *invalid.Field
			if !errors.As(err, &fe) || fe.Name != "mapping.sourceId[0]" {
				t.Fatalf("Compile error %v does not name mapping.sourceId[0]", err)
			}
			return
		}
		msg, err := Parse(body)
		if err != nil {
			return
		}
		d := p.Evaluate(msg)
		checkDecision(t, expr, d)
		if d.RuleIndex != -1 || d.Action != "" {
			t.Fatalf("no rules, yet rule %d (%q) matched", d.RuleIndex, d.Action)
		}
		if again := p.Evaluate(msg); !reflect.DeepEqual(again, d) {
			t.Fatalf("second evaluation differs")
		}
		// One expression feeds every field, so they differ only by their
		// caps: each is a prefix of the longer-capped ones.
		fl := d.Fields
		if fl.URL != fl.SourceName || !strings.HasPrefix(fl.SourceName, fl.Subject) || !strings.HasPrefix(fl.Details, fl.SourceName) {
			t.Fatalf("fields of one expression disagree: %+v", fl)
		}
		if fl.SourceName != "" && fl.SourceID != fl.SourceName {
			t.Fatalf("SourceID %q, want the mapped %q", fl.SourceID, fl.SourceName)
		}
		if (fl.Details == "") != (fl.Severity == "") {
			t.Fatalf("severity %q from details %q", fl.Severity, fl.Details)
		}
	})
}

// FuzzRules compiles a ruleset given as JSON, as the API stores it, and
// evaluates a body with it.
func FuzzRules(f *testing.F) {
	bodies := samples(f)
	var rulesets [][]Rule
	for _, typ := range allTypes {
		_, rs, _ := Preset(typ)
		rulesets = append(rulesets, rs)
	}
	rulesets = append(rulesets, []Rule{
		{Name: "any", Match: MatchAny, Action: ActionOpen, Conditions: []Condition{
			{Path: "$.finding.severity", Op: OpIn, Values: []string{"HIGH", "critical"}},
			{Field: "subject", Op: OpNotContains, Value: "test", CaseSensitive: true},
			{Path: "$..uuid", Op: OpNotExists},
		}},
		{Name: "re", Action: ActionIgnore, Conditions: []Condition{
			{Field: "url", Op: OpNotMatches, Value: `^https://[^/]+\.example\.com/`},
			{Path: "$[?@.event_type == 'scan_started']", Op: OpExists},
		}},
		{Name: "everything", Action: ActionClose, Route: Route{}},
	})
	for i, rs := range rulesets {
		spec, err := json.Marshal(rs)
		if err != nil {
			f.Fatal(err)
		}
		for j := range 3 {
			f.Add(spec, bodies[(i+j)%len(bodies)])
		}
	}
	f.Add([]byte(`[{"name":"x","action":"OPEN","route":{"escalationPolicyId":3}}]`), bodies[0])
	f.Add([]byte(`[{"action":"CLOSE","match":"NONE"},{"action":"OPEN","conditions":[{"field":"severity","path":"$.a","op":"EQUALS"}]}]`), bodies[1])
	m, _, _ := Preset(TypeDetectify)

	f.Fuzz(func(t *testing.T, spec, body []byte) {
		var rs []Rule
		if err := json.Unmarshal(spec, &rs); err != nil {
			return
		}
		p, err := Compile(m, rs)
		if verr := ValidateRules(rs); (verr == nil) != (err == nil) {
			t.Fatalf("ValidateRules says %v, Compile says %v", verr, err)
		}
		if err != nil {
			var fe *invalid.Field
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Name, "rules[") {
				t.Fatalf("Compile error %v names no rule", err)
			}
			return
		}
		msg, err := Parse(body)
		if err != nil {
			return
		}
		d := p.Evaluate(msg)
		checkDecision(t, "ruleset", d)
		if again := p.Evaluate(msg); !reflect.DeepEqual(again, d) {
			t.Fatalf("second evaluation differs")
		}
		// The first matching rule wins: the chosen one matches alone, and
		// none before it does.
		for i, r := range rs {
			if i > d.RuleIndex && d.RuleIndex != -1 {
				break
			}
			alone := mustCompile(t, m, []Rule{r}).Evaluate(msg)
			if matched := alone.RuleIndex == 0; matched != (i == d.RuleIndex) {
				t.Fatalf("rule %d alone matched %v; the ruleset chose rule %d", i, matched, d.RuleIndex)
			}
			if i == d.RuleIndex && (d.Action != r.Action || d.RuleName != r.Name || !reflect.DeepEqual(d.Route, r.Route)) {
				t.Fatalf("decision %+v is not rule %d's %+v", d, i, r)
			}
			// Every NOT_ operator is the exact negation of its positive form.
			for _, c := range r.Conditions {
				neg := c
				neg.Op = opposite(c.Op)
				yes := mustCompile(t, m, []Rule{{Action: ActionOpen, Conditions: []Condition{c}}}).Evaluate(msg).RuleIndex == 0
				no := mustCompile(t, m, []Rule{{Action: ActionOpen, Conditions: []Condition{neg}}}).Evaluate(msg).RuleIndex == 0
				if yes == no {
					t.Fatalf("%s and %s both hold %v for %+v", c.Op, neg.Op, yes, c)
				}
			}
		}
	})
}

// opposite is the operator that negates op, either way round.
func opposite(op Op) Op {
	for pos, neg := range negation {
		switch op {
		case pos:
			return neg
		case neg:
			return pos
		}
	}
	return ""
}

func mustCompile(t *testing.T, m Mapping, rs []Rule) *Program {
	t.Helper()
	p, err := Compile(m, rs)
	if err != nil {
		t.Fatalf("a rule of a valid ruleset does not compile alone: %v", err)
	}
	return p
}

// checkParse holds Parse to its contract: an error says which kind it is
// and a message is always an object, read the same with or without a
// byte order mark.
func checkParse(t *testing.T, body []byte, msg *Message, err error) {
	t.Helper()
	if err != nil {
		if msg != nil {
			t.Fatalf("Parse returned a message with error %q", err)
		}
		if s := err.Error(); !strings.HasPrefix(s, "invalid JSON: ") && !strings.HasPrefix(s, "not a JSON object: ") {
			t.Fatalf("Parse error %q lacks a known prefix", err)
		}
		if json.Valid(body) && depth(body) <= MaxDepth && strings.HasPrefix(strings.TrimLeft(string(body), " \t\r\n"), "{") {
			t.Fatalf("Parse refused a valid JSON object: %v", err)
		}
		return
	}
	if _, ok := msg.root.(map[string]any); !ok {
		t.Fatalf("Parse returned a %T, not an object", msg.root)
	}
	plain := strings.TrimPrefix(string(body), "\xef\xbb\xbf")
	if !json.Valid([]byte(plain)) {
		t.Fatalf("Parse accepted what encoding/json calls invalid")
	}
	if !strings.HasPrefix(string(body), "\xef\xbb\xbf") {
		again, err := Parse(append([]byte("\xef\xbb\xbf"), body...))
		if err != nil || !reflect.DeepEqual(again, msg) {
			t.Fatalf("with a byte order mark: %v", err)
		}
	}
}

// checkDecision checks what every decision must satisfy to be stored: the
// rule index agrees with the action, and each field is trimmed, within its
// cap and text that both databases store (valid UTF-8 without NUL).
func checkDecision(t *testing.T, label string, d Decision) {
	t.Helper()
	if (d.RuleIndex == -1) != (d.Action == "") {
		t.Fatalf("%s: RuleIndex %d with Action %q", label, d.RuleIndex, d.Action)
	}
	fl := d.Fields
	if fl.Severity != strings.ToLower(fl.Severity) {
		t.Fatalf("%s: severity %q is not lower-case", label, fl.Severity)
	}
	if utf8.RuneCountInString(fl.Subject) > maxSubjectRunes || len(fl.Details) > maxDetailsBytes ||
		utf8.RuneCountInString(fl.SourceID) > maxShortRunes || utf8.RuneCountInString(fl.SourceName) > maxShortRunes ||
		utf8.RuneCountInString(fl.URL) > maxShortRunes || utf8.RuneCountInString(fl.Severity) > maxShortRunes {
		t.Fatalf("%s: a field exceeds its cap: %d/%d/%d/%d/%d/%d", label,
			len(fl.SourceID), len(fl.SourceName), len(fl.Subject), len(fl.Severity), len(fl.URL), len(fl.Details))
	}
	for _, v := range append(fieldValues(&fl), d.Detail) {
		if v != strings.TrimSpace(v) && v != d.Detail {
			t.Fatalf("%s: untrimmed field %q", label, v)
		}
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			t.Fatalf("%s: %q cannot be stored as text", label, v)
		}
	}
	if fl.SourceID == "" && (fl.SourceName != "" || fl.Subject != "" || fl.URL != "") {
		t.Fatalf("%s: no SourceID despite fallback inputs: %+v", label, fl)
	}
}

func BenchmarkEvaluateDetectify(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("testdata", "detectify", "new_finding_high.json"))
	if err != nil {
		b.Fatal(err)
	}
	p := mustPreset(b, TypeDetectify)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		msg, err := Parse(body)
		if err != nil {
			b.Fatal(err)
		}
		if d := p.Evaluate(msg); d.Action != ActionOpen {
			b.Fatalf("action %q", d.Action)
		}
	}
}
