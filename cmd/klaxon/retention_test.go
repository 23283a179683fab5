package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestRetentionSettings(t *testing.T) {
	cfg, err := parseConfig("serve", nil, io.Discard, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (retentionSettings{Bodies: 90 * day, ClosedAlerts: 365 * day, Events: 7 * day}); cfg.Retention != want {
		t.Fatalf("defaults: %+v, want %+v", cfg.Retention, want)
	}

	t.Setenv("KLAXON_RETAIN_BODIES", "30d")
	t.Setenv("KLAXON_RETAIN_CLOSED_ALERTS", "0")
	t.Setenv("KLAXON_RETAIN_EVENTS", "36h")
	t.Setenv("KLAXON_RETAIN_AUDIT", "730d")
	env, err := parseConfig("serve", []string{"--retain-events", "14d"}, io.Discard, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := (retentionSettings{Bodies: 30 * day, Events: 14 * day, Audit: 730 * day}); env.Retention != want {
		t.Fatalf("from the environment and a flag: %+v, want %+v", env.Retention, want)
	}

	for value, wantErr := range map[string]string{
		"90":   "not an age",
		"-5d":  "not a number of days",
		"90s":  "too short",
		"abcd": "not a number of days",
		"1.5d": "not a number of days",
	} {
		t.Setenv("KLAXON_RETAIN_BODIES", value)
		_, err := parseConfig("serve", nil, io.Discard, false, nil)
		if err == nil || !strings.Contains(err.Error(), "KLAXON_RETAIN_BODIES") || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("KLAXON_RETAIN_BODIES=%s: %v, want an error naming it: %s", value, err, wantErr)
		}
	}
	t.Setenv("KLAXON_RETAIN_BODIES", "90d")
	if _, err := parseConfig("serve", []string{"--retain-audit", "10m"}, io.Discard, false, nil); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("--retain-audit 10m: %v, want too short", err)
	}
	if got := formatAge(2 * time.Hour); got != "2h0m0s" {
		t.Errorf("formatAge(2h) = %s", got)
	}
}
