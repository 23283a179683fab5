package rules

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

const (
	sqliUUID   = "3f9c2a8e-6b1d-4c57-9e0a-5d2b7c41f8a3"
	sqliPage   = "https://detectify.com/dashboard/findings/" + sqliUUID
	sqliDetail = "SQL injection detected in the id parameter"
)

func TestDetectifyPreset(t *testing.T) {
	sqli := Fields{SourceID: sqliUUID, SourceName: "app.example.com", Subject: "SQL Injection", Severity: "high", URL: sqliPage, Details: sqliDetail}
	sqliLow := sqli
	sqliLow.Severity = "low"
	scanProfile := Fields{SourceID: fallbackSourceID("app.example.com", "", ""), SourceName: "app.example.com"}
	tests := map[string]struct {
		action    Action
		ruleIndex int
		fields    Fields
	}{
		"new_finding_high.json":        {ActionOpen, 0, sqli},
		"new_finding_high_repeat.json": {ActionOpen, 0, sqli},
		// The body cannot tell a regression; the stored alerts do (see
		// alerting's regression tests).
		"finding_high_regressed.json": {ActionOpen, 0, sqli},
		"new_finding_medium.json": {ActionOpen, 0, Fields{
			SourceID: "a71e4d90-2c3b-4f8e-b6d5-0e9f8a7c6b51", SourceName: "app.example.com",
			Subject: "Reflected Cross-site Scripting (XSS)", Severity: "medium",
			URL:     "https://detectify.com/dashboard/findings/a71e4d90-2c3b-4f8e-b6d5-0e9f8a7c6b51",
			Details: "User input in the q parameter is reflected without encoding",
		}},
		"new_finding_critical.json": {ActionOpen, 0, Fields{
			SourceID: "e5b2f7a1-0d3c-4e9b-a8f6-7c1d2e3f4a5b", SourceName: "app.example.com",
			Subject: "Remote Code Execution", Severity: "critical",
			URL:     "https://detectify.com/dashboard/findings/e5b2f7a1-0d3c-4e9b-a8f6-7c1d2e3f4a5b",
			Details: "Arbitrary code execution via file upload",
		}},
		// The legacy body has no asset or description; severity comes from
		// the event name and the key matches the current format's uuid.
		"legacy_event_finding_high.json": {ActionOpen, 0, Fields{
			SourceID: sqliUUID, Subject: "SQL Injection", Severity: "high",
			URL: "https://detectify.com/report/5605b488634efe810dff4276e28ca7f9/11ed472293aa5c466adc6afa3b0e7f21/" + sqliUUID + "/",
		}},
		"api_v2_vulnerability.json": {ActionOpen, 0, sqli},
		"finding_low.json":          {ActionClose, 1, sqliLow},
		"finding_low_unmatched.json": {ActionClose, 1, Fields{
			SourceID: "c0d4b6e2-91a7-4f3c-8b25-6e7d9f0a1b23", SourceName: "app.example.com",
			Subject: "Missing X-Content-Type-Options header", Severity: "low",
			URL:     "https://detectify.com/dashboard/findings/c0d4b6e2-91a7-4f3c-8b25-6e7d9f0a1b23",
			Details: "The X-Content-Type-Options header is not set",
		}},
		// Scan events name their profile: a completed scan is a pulse
		// keyed by it, a started one matches no rule.
		"scan_started.json":   {"", -1, scanProfile},
		"scan_completed.json": {ActionPulse, 2, scanProfile},
		// The legacy webhook names no profile: its pulse has the
		// integration's default key.
		"legacy_event_scan_finished.json": {ActionPulse, 2, Fields{Severity: "event_scan_finished"}},
	}

	p := mustPreset(t, TypeDetectify)
	files, err := filepath.Glob(filepath.Join("testdata", "detectify", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			want, ok := tests[name]
			if !ok {
				t.Fatalf("no expectation for %s; add one", name)
			}
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			d := p.Evaluate(msg)
			if d.Action != want.action || d.RuleIndex != want.ruleIndex {
				t.Errorf("action %q rule %d (%s); want %q rule %d", d.Action, d.RuleIndex, d.Detail, want.action, want.ruleIndex)
			}
			if d.Fields != want.fields {
				t.Errorf("fields\n got %+v\nwant %+v", d.Fields, want.fields)
			}
		})
	}
	if len(files) != len(tests) {
		t.Errorf("%d testdata files but %d expectations", len(files), len(tests))
	}
}

func TestDetectifyDetail(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "detectify", "new_finding_high.json"))
	if err != nil {
		t.Fatal(err)
	}
	d := mustPreset(t, TypeDetectify).Evaluate(mustParse(t, string(body)))
	if want := `rule 1 "Open high, medium and critical findings" matched: OPEN`; d.Detail != want {
		t.Errorf("Detail = %q; want %q", d.Detail, want)
	}
}

func TestGenericPreset(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		action Action
		fields Fields
	}{
		{"full open", `{"summary":"Disk full","details":"3% left","dedup_key":"db-1/disk","severity":"HIGH","source":"db-1","url":"https://g.example/d","action":"open"}`,
			ActionOpen, Fields{SourceID: "db-1/disk", SourceName: "db-1", Subject: "Disk full", Severity: "high", URL: "https://g.example/d", Details: "3% left"}},
		{"action defaults to open", `{"summary":"Disk full","dedup_key":"k"}`, ActionOpen, Fields{SourceID: "k", Subject: "Disk full"}},
		{"unknown action opens", `{"summary":"x","dedup_key":"k","action":"bogus"}`, ActionOpen, Fields{SourceID: "k", Subject: "x"}},
		{"close", `{"dedup_key":"k","action":"close"}`, ActionClose, Fields{SourceID: "k"}},
		{"close any case", `{"dedup_key":"k","action":"CLOSE"}`, ActionClose, Fields{SourceID: "k"}},
		{"ignore", `{"dedup_key":"k","action":"ignore"}`, ActionIgnore, Fields{SourceID: "k"}},
		{"title and description aliases", `{"title":"T","description":"D","dedup_key":"k"}`, ActionOpen, Fields{SourceID: "k", Subject: "T", Details: "D"}},
		{"summary beats title", `{"summary":"S","title":"T","dedup_key":"k"}`, ActionOpen, Fields{SourceID: "k", Subject: "S"}},
		{"structured details", `{"dedup_key":"k","details":{"disk":"/var","free":3}}`, ActionOpen, Fields{SourceID: "k", Details: `{"disk":"/var","free":3}`}},
		{"no dedup key hashes", `{"summary":"S","source":"db-1"}`, ActionOpen, Fields{SourceID: fallbackSourceID("db-1", "S", ""), SourceName: "db-1", Subject: "S"}},
	}
	p := mustPreset(t, TypeGeneric)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Evaluate(mustParse(t, tt.body))
			if d.Action != tt.action {
				t.Errorf("action %q (%s); want %q", d.Action, d.Detail, tt.action)
			}
			if d.Fields != tt.fields {
				t.Errorf("fields\n got %+v\nwant %+v", d.Fields, tt.fields)
			}
		})
	}
}

const alertmanagerFiring = `{
  "version": "4",
  "groupKey": "{}:{alertname=\"HighLatency\"}",
  "truncatedAlerts": 0,
  "status": "firing",
  "receiver": "klaxon",
  "groupLabels": {"alertname": "HighLatency"},
  "commonLabels": {"alertname": "HighLatency", "severity": "critical", "job": "api"},
  "commonAnnotations": {"summary": "API latency above 2s", "description": "p99 latency is 2.4s"},
  "externalURL": "http://alertmanager.example:9093",
  "alerts": [{"status": "firing", "labels": {"alertname": "HighLatency"}, "annotations": {},
    "startsAt": "2025-01-15T14:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prometheus.example/graph", "fingerprint": "c4b1"}]
}`

func TestAlertmanagerPreset(t *testing.T) {
	key := `{}:{alertname="HighLatency"}`
	tests := []struct {
		name   string
		body   string
		action Action
		fields Fields
	}{
		{"firing", alertmanagerFiring, ActionOpen, Fields{SourceID: key, SourceName: "api", Subject: "API latency above 2s",
			Severity: "critical", URL: "http://alertmanager.example:9093", Details: "p99 latency is 2.4s"}},
		{"resolved without summary", `{"status":"resolved","groupKey":"g1","commonLabels":{"alertname":"DiskFull","severity":"warning","instance":"db-1:9100"}}`,
			ActionClose, Fields{SourceID: "g1", SourceName: "db-1:9100", Subject: "DiskFull", Severity: "warning"}},
		{"unknown status", `{"status":"silenced","groupKey":"g1"}`, "", Fields{SourceID: "g1"}},
	}
	p := mustPreset(t, TypeAlertmanager)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Evaluate(mustParse(t, tt.body))
			if d.Action != tt.action {
				t.Errorf("action %q (%s); want %q", d.Action, d.Detail, tt.action)
			}
			if d.Fields != tt.fields {
				t.Errorf("fields\n got %+v\nwant %+v", d.Fields, tt.fields)
			}
		})
	}
}

func TestPagerDutyPreset(t *testing.T) {
	trigger := `{"routing_key":"R0UT1NGKEY","event_action":"trigger","dedup_key":"srv01/disk",
		"payload":{"summary":"Disk full on srv01","source":"srv01","severity":"error","custom_details":{"free":"3%"}},
		"links":[{"href":"https://monitor.example/srv01","text":"Monitor"}],"client_url":"https://client.example"}`
	tests := []struct {
		name   string
		body   string
		action Action
		fields Fields
	}{
		{"trigger", trigger, ActionOpen, Fields{SourceID: "srv01/disk", SourceName: "srv01", Subject: "Disk full on srv01",
			Severity: "error", URL: "https://monitor.example/srv01", Details: `{"free":"3%"}`}},
		{"acknowledge", `{"routing_key":"R","event_action":"acknowledge","dedup_key":"srv01/disk"}`, ActionAcknowledge, Fields{SourceID: "srv01/disk"}},
		{"resolve", `{"routing_key":"R","event_action":"resolve","dedup_key":"srv01/disk"}`, ActionClose, Fields{SourceID: "srv01/disk"}},
		{"client_url fallback", `{"event_action":"trigger","dedup_key":"k","client_url":"https://c.example"}`, ActionOpen, Fields{SourceID: "k", URL: "https://c.example"}},
		{"unknown action", `{"event_action":"bogus","dedup_key":"k"}`, "", Fields{SourceID: "k"}},
	}
	p := mustPreset(t, TypePagerDuty)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Evaluate(mustParse(t, tt.body))
			if d.Action != tt.action {
				t.Errorf("action %q (%s); want %q", d.Action, d.Detail, tt.action)
			}
			if d.Fields != tt.fields {
				t.Errorf("fields\n got %+v\nwant %+v", d.Fields, tt.fields)
			}
		})
	}
}

func TestOpsgeniePreset(t *testing.T) {
	create := `{"action":"create","message":"Disk full on db-1","alias":"db-1/disk","description":"3% free","priority":"P1","severity":"critical",
		"entity":"db-1","source":"prometheus","tags":["db"],"details":{"url":"https://grafana.example/d/disk"}}`
	tests := []struct {
		name   string
		body   string
		action Action
		fields Fields
	}{
		{"create", create, ActionOpen, Fields{SourceID: "db-1/disk", SourceName: "db-1", Subject: "Disk full on db-1",
			Severity: "critical", URL: "https://grafana.example/d/disk", Details: "3% free"}},
		{"priority only", `{"action":"create","message":"m","alias":"a","priority":"P4"}`, ActionOpen, Fields{SourceID: "a", Subject: "m", Severity: "p4"}},
		{"acknowledge", `{"action":"acknowledge","alias":"db-1/disk","source":"ci"}`, ActionAcknowledge, Fields{SourceID: "db-1/disk", SourceName: "ci"}},
		{"close", `{"action":"close","alias":"db-1/disk"}`, ActionClose, Fields{SourceID: "db-1/disk"}},
		{"add note", `{"action":"addNote","alias":"db-1/disk","note":"restarted"}`, ActionNote, Fields{SourceID: "db-1/disk", Details: "restarted"}},
	}
	p := mustPreset(t, TypeOpsgenie)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Evaluate(mustParse(t, tt.body))
			if d.Action != tt.action {
				t.Errorf("action %q (%s); want %q", d.Action, d.Detail, tt.action)
			}
			if d.Fields != tt.fields {
				t.Errorf("fields\n got %+v\nwant %+v", d.Fields, tt.fields)
			}
		})
	}
}

func TestPresetUnknownAndFresh(t *testing.T) {
	for _, typ := range []IntegrationType{"", "detectify", "NAGIOS"} {
		if m, rs, ok := Preset(typ); ok || !reflect.DeepEqual(m, Mapping{}) || rs != nil {
			t.Errorf("Preset(%q) = %v, %v, %v; want zero values and false", typ, m, rs, ok)
		}
	}
	// Callers may edit what they get back without changing later presets.
	m, rs, _ := Preset(TypeDetectify)
	m.Severity[0] = "$.edited"
	rs[0].Conditions[0].Value = "edited"
	m2, rs2, _ := Preset(TypeDetectify)
	if m2.Severity[0] == "$.edited" || rs2[0].Conditions[0].Value == "edited" {
		t.Error("Preset returned shared slices")
	}
}

func mustPreset(t testing.TB, typ IntegrationType) *Program {
	t.Helper()
	m, rs, ok := Preset(typ)
	if !ok {
		t.Fatalf("Preset(%q) not found", typ)
	}
	p, err := Compile(m, rs)
	if err != nil {
		t.Fatalf("Compile(%s preset): %v", typ, err)
	}
	return p
}
