package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalizeSeverity(t *testing.T) {
	tests := []struct{ in, want string }{
		{"HIGH", "high"},
		{"high", "high"},
		{"event_finding_high", "high"},
		{"event_finding_medium", "medium"},
		{"Information", "info"},
		{"informational", "info"},
		{"INFO", "info"},
		{"Critical", "critical"},
		{"critical-high", "critical"}, // checked in order: critical first
		{"low", "low"},
		{"below", "low"},
		{"Warning", "warning"},
		{"P1", "p1"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := normalizeSeverity(tt.in); got != tt.want {
				t.Errorf("normalizeSeverity(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMappingOrderAndValues(t *testing.T) {
	m := Mapping{
		SourceID:   []string{"$.missing", "$.nul", "$.blank", "$.id"},
		SourceName: []string{"$.num"},
		Subject:    []string{"$.arr[*]", "$.title"},
		Severity:   []string{"$.flag"},
		URL:        []string{"$.url"},
		Details:    []string{"$.obj"},
	}
	body := `{"nul":null,"blank":"   ","id":"  abc  ","num":1.0e3,"arr":["","second"],"title":"T",
		"flag":true,"url":"\thttps://x.example/\n","obj":{"b":[1,2],"a":"<&>"}}`
	p, err := Compile(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := p.Evaluate(mustParse(t, body)).Fields
	want := Fields{
		SourceID:   "abc",   // null and blank values are skipped, the winner is trimmed
		SourceName: "1.0e3", // numbers keep their JSON text
		Subject:    "T",     // only the first node of an expression counts
		Severity:   "true",
		URL:        "https://x.example/",
		Details:    `{"a":"<&>","b":[1,2]}`,
	}
	if got != want {
		t.Errorf("Fields = %+v\nwant %+v", got, want)
	}
}

func TestSourceIDFallback(t *testing.T) {
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "sha256:" + hex.EncodeToString(sum[:])[:32]
	}
	m := Mapping{
		SourceID:   []string{"$.id"},
		SourceName: []string{"$.name"},
		Subject:    []string{"$.subject"},
		URL:        []string{"$.url"},
	}
	p, err := Compile(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, body, want string
	}{
		{"explicit id wins", `{"id":"x1","name":"n","subject":"s","url":"u"}`, "x1"},
		{"all three", `{"name":"n","subject":"s","url":"u"}`, hash("n\x00s\x00u")},
		{"subject only", `{"subject":"s"}`, hash("\x00s\x00")},
		{"url only", `{"url":"u"}`, hash("\x00\x00u")},
		{"blank id falls back", `{"id":"  ","name":"n"}`, hash("n\x00\x00")},
		{"uses trimmed values", `{"name":" n ","subject":"s\n","url":"u"}`, hash("n\x00s\x00u")},
		{"nothing to hash", `{"other":"x"}`, ""},
		{"NUL is replaced", `{"id":"a\u0000b"}`, "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Evaluate(mustParse(t, tt.body)).Fields.SourceID
			if got != tt.want {
				t.Errorf("SourceID = %q; want %q", got, tt.want)
			}
			if strings.HasPrefix(got, "sha256:") && len(got) != len("sha256:")+32 {
				t.Errorf("hash key %q has wrong length", got)
			}
		})
	}
	// The separator keeps ("ab","c") and ("a","bc") apart.
	a := p.Evaluate(mustParse(t, `{"name":"ab","subject":"c"}`)).Fields.SourceID
	b := p.Evaluate(mustParse(t, `{"name":"a","subject":"bc"}`)).Fields.SourceID
	if a == b {
		t.Errorf("fallback keys collide: %q", a)
	}
}

func TestCaps(t *testing.T) {
	m := Mapping{
		SourceID: []string{"$.v"}, SourceName: []string{"$.v"}, Subject: []string{"$.v"},
		Severity: []string{"$.v"}, URL: []string{"$.v"}, Details: []string{"$.v"},
	}
	p, err := Compile(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		value string
	}{
		{"ascii", strings.Repeat("x", 100000)},
		{"multi-byte", strings.Repeat("é", 40000)}, // 2 bytes each: details cut on a boundary
		{"three-byte", strings.Repeat("€", 30000)}, // 65536 is not a multiple of 3
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]string{"v": tt.value})
			f := p.Evaluate(mustParse(t, string(body))).Fields
			for name, c := range map[string]struct {
				v   string
				max int
			}{"sourceId": {f.SourceID, 1000}, "sourceName": {f.SourceName, 1000}, "subject": {f.Subject, 500},
				"severity": {f.Severity, 1000}, "url": {f.URL, 1000}} {
				if n := utf8.RuneCountInString(c.v); n > c.max || n < c.max-2 {
					t.Errorf("%s has %d runes; want at most %d and not much less", name, n, c.max)
				}
				if !strings.HasPrefix(tt.value, c.v) && name != "severity" {
					t.Errorf("%s is not a prefix of the input", name)
				}
			}
			if len(f.Details) > maxDetailsBytes || len(f.Details) < maxDetailsBytes-3 {
				t.Errorf("details has %d bytes; want at most %d", len(f.Details), maxDetailsBytes)
			}
			if !utf8.ValidString(f.Details) || !strings.HasPrefix(tt.value, f.Details) {
				t.Errorf("details is not a valid UTF-8 prefix of the input")
			}
		})
	}
	// A cut that ends in spaces is trimmed again.
	body, _ := json.Marshal(map[string]string{"v": strings.Repeat("a", 498) + "   b"})
	if f := p.Evaluate(mustParse(t, string(body))).Fields; f.Subject != strings.Repeat("a", 498) {
		t.Errorf("subject cut = %q...; want 498 a's", f.Subject[490:])
	}
	// Values under the caps pass through untouched.
	f := p.Evaluate(mustParse(t, `{"v":"short"}`)).Fields
	if f.Subject != "short" || f.Details != "short" || f.URL != "short" {
		t.Errorf("short values changed: %+v", f)
	}
}

// TestWildcardMapsInDocumentOrder guards against Go's random map order
// deciding which member of an object a wildcard maps.
func TestWildcardMapsInDocumentOrder(t *testing.T) {
	p, err := Compile(Mapping{Subject: []string{"$.*"}, SourceID: []string{"$..id"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := mustParse(t, `{"c":"3","z":{"id":"last"},"b":{"id":"first"},"a":"1","d":"4","e":"5"}`)
	for range 50 {
		if f := p.Evaluate(msg).Fields; f.Subject != "1" || f.SourceID != "first" {
			t.Fatalf("subject %q, source id %q; want the first by member name, 1 and first", f.Subject, f.SourceID)
		}
	}
}
