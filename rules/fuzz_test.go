package rules

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

var allTypes = []IntegrationType{TypeDetectify, TypeGeneric, TypeAlertmanager, TypePagerDuty}

func FuzzEvaluate(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "detectify", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
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
	} {
		f.Add([]byte(s))
	}

	progs := make([]*Program, len(allTypes))
	for i, typ := range allTypes {
		progs[i] = mustPreset(f, typ)
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		msg, err := Parse(body)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid JSON: ") {
				t.Fatalf("Parse error %q lacks the prefix", err)
			}
			return
		}
		for i, p := range progs {
			d := p.Evaluate(msg)
			if (d.RuleIndex == -1) != (d.Action == "") {
				t.Fatalf("%s: RuleIndex %d with Action %q", allTypes[i], d.RuleIndex, d.Action)
			}
			if d.Action != "" && d.Action != ActionOpen && d.Action != ActionClose && d.Action != ActionIgnore {
				t.Fatalf("%s: unknown action %q", allTypes[i], d.Action)
			}
			fl := d.Fields
			if fl.Severity != strings.ToLower(fl.Severity) {
				t.Fatalf("%s: severity %q is not lower-case", allTypes[i], fl.Severity)
			}
			if utf8.RuneCountInString(fl.Subject) > maxSubjectRunes || len(fl.Details) > maxDetailsBytes ||
				utf8.RuneCountInString(fl.SourceID) > maxShortRunes || utf8.RuneCountInString(fl.SourceName) > maxShortRunes ||
				utf8.RuneCountInString(fl.URL) > maxShortRunes || utf8.RuneCountInString(fl.Severity) > maxShortRunes {
				t.Fatalf("%s: a field exceeds its cap: %d/%d/%d/%d/%d/%d", allTypes[i],
					len(fl.SourceID), len(fl.SourceName), len(fl.Subject), len(fl.Severity), len(fl.URL), len(fl.Details))
			}
			for _, v := range fieldValues(&fl) {
				if v != strings.TrimSpace(v) {
					t.Fatalf("%s: untrimmed field %q", allTypes[i], v)
				}
			}
			if fl.SourceID == "" && (fl.SourceName != "" || fl.Subject != "" || fl.URL != "") {
				t.Fatalf("%s: no SourceID despite fallback inputs: %+v", allTypes[i], fl)
			}
			// The same message must give the same decision: evaluation is pure.
			if again := p.Evaluate(msg); !reflect.DeepEqual(again, d) {
				t.Fatalf("%s: second evaluation differs", allTypes[i])
			}
		}
	})
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
