package notifiers

import "testing"

func TestTitleCarriesTheGroupSize(t *testing.T) {
	msg := testMessage("ada@example.com")
	msg.Grouped = 12
	if got, want := title(msg), "[Klaxon #42] HIGH: Disk full on db-1 (+12 grouped)"; got != want {
		t.Errorf("title = %q, want %q", got, want)
	}
	if got, want := summaries(msg)[0], "#42 HIGH: Disk full on db-1 (+12 grouped)"; got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
}
