package server_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// badBodySizes are bodies at and past the limits on size, nesting
// and the work of mapping them.
func badBodySizes() []badInput {
	return []badInput{
		{
			name:        "empty body",
			body:        func(*testing.T) []byte { return nil },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "invalid JSON: empty body",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name:        "body exactly at the size limit",
			body:        func(t *testing.T) []byte { return paddedFinding(t, "at-limit", badInputLimit) },
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
		},
		{
			name:      "body one byte over the size limit",
			body:      func(t *testing.T) []byte { return paddedFinding(t, "over-limit", badInputLimit+1) },
			wantHTTP:  http.StatusRequestEntityTooLarge,
			wantError: "body exceeds " + strconv.Itoa(badInputLimit) + " bytes",
		},
		{
			name:        "JSON nested 1,000 levels deep (the limit)",
			body:        func(*testing.T) []byte { return deepJSON(rules.MaxDepth) },
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_IGNORED",
			wantInbound: map[string]int{"MAPPED_IGNORED": 1},
		},
		{
			name:        "JSON nested 1,001 levels deep",
			body:        func(*testing.T) []byte { return deepJSON(rules.MaxDepth + 1) },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "invalid JSON: nested deeper than 1000 levels",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name:        "JSON nested 10,000 levels deep",
			body:        func(*testing.T) []byte { return deepJSON(10_000) },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "invalid JSON: nested deeper than 1000 levels",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			// Past encoding/json's own limit, so the error must still be ours.
			name:        "JSON nested 100,000 levels deep",
			body:        func(*testing.T) []byte { return deepJSON(100_000) },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "invalid JSON: nested deeper than 1000 levels",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			// The work of mapping one message is bounded in steps
			// (rules.MaxSteps): a descendant of a descendant over a deep
			// body would otherwise hold a worker for minutes.
			name: "JSONPath too costly for the body",
			setup: func(t *testing.T, h *harness) (string, string) {
				var data struct {
					Create integration `json:"createIntegration"`
				}
				h.mustGQL(h.admin.Token, `mutation($name: String!) {
					createIntegration(input: {name: $name, type: GENERIC, mapping: {sourceId: ["$.id"], subject: ["$..*..*"]}}) { id url } }`,
					map[string]any{"name": h.unique("costly")}, &data)
				return data.Create.Token(t), ""
			},
			body:        func(*testing.T) []byte { return deepJSON(rules.MaxDepth) },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "mapping failed: the mapping and rules need more than 500000 steps",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
	}
}

// badEncodings are bodies whose bytes are not plain UTF-8.
func badEncodings() []badInput {
	return []badInput{
		{
			name: "invalid UTF-8 inside strings",
			body: func(*testing.T) []byte {
				return []byte("{\"finding\":{\"uuid\":\"utf8\",\"severity\":\"high\",\"title\":\"Caf\xe9 \xff\xfe\"}}")
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
			check: func(t *testing.T, _ *harness, _ string, _ *webhookReply, _ *db.InboundMessage, a *db.Alert) {
				if a.Subject != "Caf\uFFFD \uFFFD\uFFFD" {
					t.Errorf("subject %q, want the bad bytes as U+FFFD", a.Subject)
				}
			},
		},
		{
			name:        "UTF-16 body (invalid UTF-8 outside strings)",
			body:        func(*testing.T) []byte { return []byte("\xff\xfe{\x00}\x00") },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "invalid JSON: invalid character",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name: "UTF-8 byte order mark",
			body: func(*testing.T) []byte {
				return append([]byte("\xef\xbb\xbf"), finding("with-bom", "high")...)
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
			check: func(t *testing.T, _ *harness, _ string, _ *webhookReply, _ *db.InboundMessage, a *db.Alert) {
				if a.SourceID != "with-bom" {
					t.Errorf("source id %q, want with-bom", a.SourceID)
				}
			},
		},
		{
			name: "NUL characters in strings",
			body: func(*testing.T) []byte {
				return []byte(`{"finding":{"uuid":"nul\u0000id","severity":"high","title":"a\u0000b","description":"\u0000"}}`)
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
			check: func(t *testing.T, _ *harness, _ string, _ *webhookReply, _ *db.InboundMessage, a *db.Alert) {
				if a.SourceID != "nul\uFFFDid" || a.Subject != "a\uFFFDb" || a.Details != "\uFFFD" {
					t.Errorf("alert %q/%q/%q, want each NUL as U+FFFD", a.SourceID, a.Subject, a.Details)
				}
			},
		},
	}
}

// badJSONShapes are bodies that are not the JSON object a mapping
// expects, or hold values of unexpected types.
func badJSONShapes() []badInput {
	return []badInput{
		{
			name:        "JSON array at top level",
			body:        func(*testing.T) []byte { return []byte("[" + string(finding("in-array", "high")) + "]") },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "not a JSON object: the body is an array",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name:        "JSON string at top level",
			body:        func(*testing.T) []byte { return []byte(`"severity high"`) },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "not a JSON object: the body is a string",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name:        "not JSON",
			body:        func(*testing.T) []byte { return []byte("severity=high&uuid=1") },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "invalid JSON: invalid character 's'",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name:        "trailing data after the JSON",
			body:        func(*testing.T) []byte { return []byte(`{"a":1} {"b":2}`) },
			wantHTTP:    http.StatusBadRequest,
			wantStatus:  "MAPPING_FAILED",
			wantError:   "invalid JSON: trailing data after offset 7",
			wantInbound: map[string]int{"MAPPING_FAILED": 1},
		},
		{
			name: "numbers where strings are expected",
			body: func(*testing.T) []byte {
				return []byte(`{"finding":{"uuid":12345,"severity":"high","title":404,"asset":true}}`)
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
			check: func(t *testing.T, _ *harness, _ string, _ *webhookReply, _ *db.InboundMessage, a *db.Alert) {
				if a.SourceID != "12345" || a.Subject != "404" || a.SourceName != "true" {
					t.Errorf("alert %q/%q/%q, want the values' JSON text", a.SourceID, a.Subject, a.SourceName)
				}
			},
		},
		{
			name: "number where the severity is expected",
			body: func(*testing.T) []byte {
				return []byte(`{"finding":{"uuid":"numeric-severity","severity":3,"title":"Scored"}}`)
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_IGNORED",
			wantInbound: map[string]int{"MAPPED_IGNORED": 1},
		},
		{
			name: "huge numbers",
			body: func(*testing.T) []byte {
				return []byte(`{"finding":{"uuid":` + hundredDigits + `,"severity":"high","title":1e400,"score":-1e-400}}`)
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
			check: func(t *testing.T, _ *harness, _ string, _ *webhookReply, _ *db.InboundMessage, a *db.Alert) {
				if a.SourceID != hundredDigits || a.Subject != "1e400" {
					t.Errorf("alert %q/%q, want the numbers' exact text", a.SourceID, a.Subject)
				}
			},
		},
		{
			name: "duplicate keys",
			body: func(*testing.T) []byte {
				return []byte(`{"finding":{"uuid":"dup","severity":"low","title":"First","severity":"high","title":"Last"}}`)
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
			check: func(t *testing.T, _ *harness, _ string, _ *webhookReply, _ *db.InboundMessage, a *db.Alert) {
				if a.Severity != "high" || a.Subject != "Last" {
					t.Errorf("alert %q/%q, want the last of each duplicate key", a.Severity, a.Subject)
				}
			},
		},
		{
			name: "JSON sent as text/plain",
			body: func(*testing.T) []byte { return finding("sent-as-text", "high") },
			headers: func([]byte) map[string]string {
				return map[string]string{"Content-Type": "text/plain"}
			},
			wantHTTP:    http.StatusOK,
			wantStatus:  "MAPPED_OPENED",
			wantInbound: map[string]int{"MAPPED_OPENED": 1},
			wantAlerts:  1,
		},
	}
}

// hundredDigits is an integer no float64 or int64 holds exactly.
const hundredDigits = "1234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890"

// deepJSON returns an object holding arrays nested depth levels deep in
// all, the object included.
func deepJSON(depth int) []byte {
	return []byte(`{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`)
}

// paddedFinding returns a valid Detectify finding of exactly size bytes.
func paddedFinding(t *testing.T, uuid string, size int) []byte {
	t.Helper()
	base := finding(uuid, "high")
	pad := size - len(base) - len(`,"pad":""`)
	if pad < 0 {
		t.Fatalf("a finding needs %d bytes", len(base))
	}
	body := append(base[:len(base)-1:len(base)-1], []byte(`,"pad":"`+strings.Repeat("x", pad)+`"}`)...)
	if len(body) != size || !json.Valid(body) {
		t.Fatalf("padded body: %d bytes, valid %v", len(body), json.Valid(body))
	}
	return body
}
