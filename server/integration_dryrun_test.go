package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

type dryRun struct {
	Status      string `json:"status"`
	Detail      string `json:"detail"`
	Fields      map[string]string
	MatchedRule *struct {
		Position int    `json:"position"`
		Name     string `json:"name"`
		Action   string `json:"action"`
	} `json:"matchedRule"`
	Alert *struct {
		ID string `json:"id"`
	} `json:"alert"`
}

func TestTestIntegrationDryRun(t *testing.T) {
	t.Parallel()
	const sqliUUID = "3f9c2a8e-6b1d-4c57-9e0a-5d2b7c41f8a3"
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h0 := newHarness(t, d, server.Config{})
		integ := h0.createIntegration("DETECTIFY")
		dry := func(h *harness, payload any) dryRun {
			h.t.Helper()
			var data struct {
				Test dryRun `json:"testIntegration"`
			}
			h.mustGQL(h.admin.Token, `mutation($id: ID!, $payload: JSON!) { testIntegration(id: $id, payload: $payload) {
				status detail fields { sourceId sourceName subject severity url details }
				matchedRule { position name action } alert { id } } }`,
				map[string]any{"id": integ.ID, "payload": payload}, &data)
			return data.Test
		}
		// Every dry run below must leave the store as it finds it.
		var alertID string
		steps := []struct {
			name string
			// before runs before the dry run (the real webhook, for some).
			before  func(h *harness)
			payload func(t *testing.T) any
			check   func(t *testing.T, r dryRun)
		}{
			{
				name:    "high finding, nothing open yet",
				payload: func(t *testing.T) any { return json.RawMessage(sample(t, "new_finding_high.json")) },
				check: func(t *testing.T, r dryRun) {
					if r.Status != "MAPPED_OPENED" || r.Alert != nil {
						t.Errorf("status %s alert %v, want MAPPED_OPENED and no alert", r.Status, r.Alert)
					}
					if r.MatchedRule == nil || r.MatchedRule.Position != 1 || r.MatchedRule.Action != "OPEN" {
						t.Errorf("matchedRule %+v, want position 1, OPEN", r.MatchedRule)
					}
					if r.Fields["sourceId"] != sqliUUID || r.Fields["severity"] != "high" || r.Fields["subject"] != "SQL Injection" {
						t.Errorf("fields %v", r.Fields)
					}
				},
			},
			{
				name: "high finding again, after the real one was posted",
				before: func(h *harness) {
					r := h.postWebhook(integ.Token(h.t), sample(h.t, "new_finding_high.json"))
					if r.Status != "MAPPED_OPENED" {
						h.t.Fatalf("real post: %s", r.Raw)
					}
					alertID = r.alert()
				},
				payload: func(t *testing.T) any { return json.RawMessage(sample(t, "new_finding_high_repeat.json")) },
				check: func(t *testing.T, r dryRun) {
					if r.Status != "MAPPED_APPENDED" || r.Alert == nil || r.Alert.ID != alertID {
						t.Errorf("status %s alert %+v, want MAPPED_APPENDED to alert %s", r.Status, r.Alert, alertID)
					}
				},
			},
			{
				name:    "low update of the open finding",
				payload: func(t *testing.T) any { return json.RawMessage(sample(t, "finding_low.json")) },
				check: func(t *testing.T, r dryRun) {
					if r.Status != "MAPPED_CLOSED" || r.Alert == nil || r.Alert.ID != alertID {
						t.Errorf("status %s alert %+v, want MAPPED_CLOSED of alert %s", r.Status, r.Alert, alertID)
					}
					if r.MatchedRule == nil || r.MatchedRule.Position != 2 || r.MatchedRule.Action != "CLOSE" {
						t.Errorf("matchedRule %+v, want position 2, CLOSE", r.MatchedRule)
					}
				},
			},
			{
				name:    "low finding with nothing open",
				payload: func(t *testing.T) any { return json.RawMessage(sample(t, "finding_low_unmatched.json")) },
				check: func(t *testing.T, r dryRun) {
					if r.Status != "MAPPED_IGNORED" || r.Alert != nil {
						t.Errorf("status %s alert %+v, want MAPPED_IGNORED", r.Status, r.Alert)
					}
				},
			},
			{
				name:    "scan event",
				payload: func(t *testing.T) any { return json.RawMessage(sample(t, "scan_started.json")) },
				check: func(t *testing.T, r dryRun) {
					if r.Status != "MAPPED_IGNORED" || r.MatchedRule != nil {
						t.Errorf("status %s matchedRule %+v, want MAPPED_IGNORED with no rule", r.Status, r.MatchedRule)
					}
				},
			},
			{
				name:    "completed scan",
				payload: func(t *testing.T) any { return json.RawMessage(sample(t, "scan_completed.json")) },
				check: func(t *testing.T, r dryRun) {
					if r.Status != "PULSE" || r.Alert != nil || r.MatchedRule == nil || r.MatchedRule.Position != 3 || r.MatchedRule.Action != "PULSE" ||
						r.Fields["sourceName"] != "app.example.com" {
						t.Errorf("status %s alert %+v matchedRule %+v fields %v, want a PULSE of app.example.com by rule 3", r.Status, r.Alert, r.MatchedRule, r.Fields)
					}
				},
			},
			{
				name:    "a string payload that is not JSON",
				payload: func(t *testing.T) any { return "this is not JSON" },
				check: func(t *testing.T, r dryRun) {
					if r.Status != "MAPPING_FAILED" || !strings.Contains(r.Detail, "invalid JSON") {
						t.Errorf("status %s detail %q, want MAPPING_FAILED for invalid JSON", r.Status, r.Detail)
					}
				},
			},
		}
		for _, step := range steps {
			ok := t.Run(step.name, func(t *testing.T) {
				h := h0.with(t)
				if step.before != nil {
					step.before(h)
				}
				before := h.stateCounts()
				r := dry(h, step.payload(t))
				step.check(t, r)
				if after := h.stateCounts(); after != before {
					t.Errorf("the dry run wrote: %+v → %+v", before, after)
				}
			})
			if !ok {
				t.FailNow()
			}
		}
		t.Run("unknown integration", func(t *testing.T) {
			h := h0.with(t)
			h.wantGQLError(h.admin.Token, `mutation { testIntegration(id: 999999, payload: {}) { status } }`, nil, "NOT_FOUND")
		})
	})
}
