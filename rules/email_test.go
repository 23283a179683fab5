package rules

import (
	"encoding/json"
	"testing"
)

func TestSubjectKey(t *testing.T) {
	tests := []struct{ subject, want string }{
		{"Disk 91% full on db-1", "Disk % full on db-"},
		{"  Backup   failed\tat 03:00 ", "Backup failed at :"},
		{"2026-12-02", "--"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := SubjectKey(tt.subject); got != tt.want {
			t.Errorf("SubjectKey(%q) = %q; want %q", tt.subject, got, tt.want)
		}
	}
}

func TestEmailPreset(t *testing.T) {
	p := mustPreset(t, TypeEmail)
	mail := func(subject string) *Message {
		raw, err := json.Marshal(EmailMessage{
			From: "cron@db-1.example", To: []string{"k@alerts.example"}, Subject: subject, SubjectKey: SubjectKey(subject),
			Text: "see the log", Headers: map[string]string{"X-Alert-Id": "disk-db-1"},
		})
		if err != nil {
			t.Fatal(err)
		}
		return mustParse(t, string(raw))
	}
	first, second := p.Evaluate(mail("Disk 91% full")), p.Evaluate(mail("Disk 97% full"))
	want := Fields{SourceID: "Disk % full", SourceName: "cron@db-1.example", Subject: "Disk 91% full", Details: "see the log"}
	if first.Action != ActionOpen || first.Fields != want {
		t.Errorf("first mail: %q %+v; want OPEN %+v", first.Action, first.Fields, want)
	}
	if second.Fields.SourceID != first.Fields.SourceID {
		t.Errorf("dedup keys %q and %q differ", first.Fields.SourceID, second.Fields.SourceID)
	}

	// A header named by the mapping replaces the subject as the key.
	m, rs, _ := Preset(TypeEmail)
	m.SourceID = append([]string{"$.headers['X-Alert-Id']"}, m.SourceID...)
	byHeader, err := Compile(m, rs)
	if err != nil {
		t.Fatal(err)
	}
	if d := byHeader.Evaluate(mail("Disk 91% full")); d.Fields.SourceID != "disk-db-1" {
		t.Errorf("source id by header %q; want disk-db-1", d.Fields.SourceID)
	}
}
