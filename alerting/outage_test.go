package alerting

import (
	"testing"
	"time"
)

// TestEngineOutageBacksOff follows the engine's loop through an outage on
// an injected clock: the outage begins once (one warning), the polls
// space out from the poll interval up to maxOutagePoll instead of
// failing every interval, and the first poll that reaches the database
// ends it once (one notice), with how long it lasted.
func TestEngineOutageBacksOff(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := start
	o := engineOutage{interval: 100 * time.Millisecond}
	if _, ended := o.recovered(now); ended {
		t.Fatal("an outage ended that never began")
	}
	var waits []time.Duration
	began := 0
	for range 8 {
		wait, b := o.failed(now)
		if b {
			began++
		}
		waits = append(waits, wait)
		now = now.Add(wait)
	}
	if began != 1 {
		t.Fatalf("the outage began %d times over 8 failed polls, want once", began)
	}
	want := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000, 2000}
	for i, w := range want {
		if waits[i] != w*time.Millisecond {
			t.Fatalf("waits between polls: %v, want %v ms", waits, want)
		}
	}
	lasted, ended := o.recovered(now)
	if !ended || lasted != now.Sub(start) {
		t.Fatalf("recovered: ended %v after %v, want ended after %v", ended, lasted, now.Sub(start))
	}
	if _, ended := o.recovered(now); ended {
		t.Fatal("the outage ended twice")
	}
	// The next outage starts from the poll interval again.
	if wait, b := o.failed(now); !b || wait != 100*time.Millisecond {
		t.Fatalf("next outage: began %v, wait %v; want began, 100ms", b, wait)
	}
}
