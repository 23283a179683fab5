package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

func TestGraphQLBadUserInput(t *testing.T) {
	t.Parallel()
	type fixture struct {
		integID, rulesetID string
	}
	cases := []struct {
		name      string
		query     string
		vars      func(h *harness, f fixture) map[string]any
		wantField string
	}{
		{
			name:      "createIntegration with an invalid JSONPath",
			query:     `mutation { createIntegration(input: {name: "bad path", type: DETECTIFY, mapping: {severity: ["$.finding["]}}) { id } }`,
			wantField: "mapping.severity[0]",
		},
		{
			name:      "createIntegration with a JSONPath lacking $, second in its list",
			query:     `mutation { createIntegration(input: {name: "bad path", type: GENERIC, mapping: {subject: ["$.title", "title"]}}) { id } }`,
			wantField: "mapping.subject[1]",
		},
		{
			name:      "createIntegration with a blank name",
			query:     `mutation { createIntegration(input: {name: "   ", type: GENERIC}) { id } }`,
			wantField: "name",
		},
		{
			name:      "createIntegration with a missing ruleset",
			query:     `mutation { createIntegration(input: {name: "no ruleset", type: GENERIC, rulesetId: 999999}) { id } }`,
			wantField: "rulesetId",
		},
		{
			name:  "updateIntegration with an invalid JSONPath",
			query: `mutation($id: ID!) { updateIntegration(id: $id, input: {name: "renamed", mapping: {sourceId: [""]}}) { id } }`,
			vars: func(h *harness, f fixture) map[string]any {
				return map[string]any{"id": f.integID}
			},
			wantField: "mapping.sourceId[0]",
		},
		{
			name: "createRuleset with a bad regex",
			query: `mutation { createRuleset(input: {name: "bad regex", rules: [
				{name: "ok", action: IGNORE},
				{name: "bad", action: OPEN, conditions: [{field: "severity", op: EQUALS, value: "x"}, {field: "subject", op: MATCHES, value: "(unclosed"}]}]}) { id } }`,
			wantField: "rules[1].conditions[1].value",
		},
		{
			name:      "createRuleset with an unknown field",
			query:     `mutation { createRuleset(input: {name: "bad field", rules: [{action: OPEN, conditions: [{field: "colour", op: EXISTS}]}]}) { id } }`,
			wantField: "rules[0].conditions[0].field",
		},
		{
			name:      "createRuleset with IN and no values",
			query:     `mutation { createRuleset(input: {name: "bad in", rules: [{action: OPEN, conditions: [{path: "$.a", op: IN}]}]}) { id } }`,
			wantField: "rules[0].conditions[0].values",
		},
		{
			name:      "createRuleset with both field and path",
			query:     `mutation { createRuleset(input: {name: "both", rules: [{action: CLOSE, conditions: [{field: "severity", path: "$.a", op: EXISTS}]}]}) { id } }`,
			wantField: "rules[0].conditions[0].path",
		},
		{
			name:      "createUser with a short password",
			query:     `mutation { createUser(input: {email: "short@example.com", password: "1234567"}) { id } }`,
			wantField: "password",
		},
		{
			name:      "createUser with a bad email",
			query:     `mutation { createUser(input: {email: "not an email", password: "long enough password"}) { id } }`,
			wantField: "email",
		},
		{
			name:  "createUser with a taken email",
			query: `mutation($email: String!) { createUser(input: {email: $email, password: "long enough password"}) { id } }`,
			vars: func(h *harness, f fixture) map[string]any {
				return map[string]any{"email": strings.ToUpper(h.admin.Email)}
			},
			wantField: "email",
		},
		{
			name:  "createGroup with a missing member after a real one",
			query: `mutation($admin: ID!) { createGroup(input: {name: "half", memberIds: [$admin, 999999]}) { id } }`,
			vars: func(h *harness, f fixture) map[string]any {
				return map[string]any{"admin": h.admin.ID}
			},
			wantField: "memberIds[1]",
		},
		{
			name:  "demoting the last admin",
			query: `mutation($id: ID!) { updateUser(id: $id, input: {role: VIEWER}) { id } }`,
			vars: func(h *harness, f fixture) map[string]any {
				return map[string]any{"id": h.admin.ID}
			},
			wantField: "role",
		},
		{
			name:  "deleting the last admin",
			query: `mutation($id: ID!) { deleteUser(id: $id) }`,
			vars: func(h *harness, f fixture) map[string]any {
				return map[string]any{"id": h.admin.ID}
			},
			wantField: "role",
		},
		{
			name:  "deleting a ruleset in use",
			query: `mutation($id: ID!) { deleteRuleset(id: $id) }`,
			vars: func(h *harness, f fixture) map[string]any {
				return map[string]any{"id": f.rulesetID}
			},
			wantField: "id",
		},
		{
			name:      "alerts with first 0",
			query:     `{ alerts(first: 0) { totalCount } }`,
			wantField: "first",
		},
		{
			name:      "alerts with first over the maximum",
			query:     `{ alerts(first: 501) { totalCount } }`,
			wantField: "first",
		},
		{
			name:      "alerts after a foreign cursor",
			query:     `{ alerts(after: "not a cursor!") { totalCount } }`,
			wantField: "after",
		},
		{
			name:      "inboundMessages after a foreign cursor",
			query:     `{ inboundMessages(after: "LTE") { totalCount } }`,
			wantField: "after",
		},
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h0 := newHarness(t, d, server.Config{})
		var data struct {
			Integ struct {
				ID      string `json:"id"`
				Ruleset struct {
					ID string `json:"id"`
				} `json:"ruleset"`
			} `json:"createIntegration"`
		}
		h0.mustGQL(h0.admin.Token, `mutation { createIntegration(input: {name: "fixture", type: DETECTIFY}) { id ruleset { id } } }`, nil, &data)
		f := fixture{integID: data.Integ.ID, rulesetID: data.Integ.Ruleset.ID}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := h0.with(t)
				var vars map[string]any
				if tc.vars != nil {
					vars = tc.vars(h, f)
				}
				before := h.counts()
				e := h.wantGQLError(h.admin.Token, tc.query, vars, "BAD_USER_INPUT")
				if e.Extensions.Field != tc.wantField {
					t.Errorf("extensions.field %q, want %q (message %q)", e.Extensions.Field, tc.wantField, e.Message)
				}
				if !strings.Contains(e.Message, tc.wantField+": ") {
					t.Errorf("message %q does not name %s", e.Message, tc.wantField)
				}
				if after := h.counts(); after != before {
					t.Errorf("a refused input changed what is stored: %+v → %+v", before, after)
				}
			})
		}
		t.Run("refused update left the integration as it was", func(t *testing.T) {
			h := h0.with(t)
			var got struct {
				Integration struct {
					Name    string `json:"name"`
					Mapping struct {
						SourceID []string `json:"sourceId"`
					} `json:"mapping"`
				} `json:"integration"`
			}
			h.mustGQL(h.admin.Token, `query($id: ID!) { integration(id: $id) { name mapping { sourceId } } }`, map[string]any{"id": f.integID}, &got)
			if got.Integration.Name != "fixture" || len(got.Integration.Mapping.SourceID) == 0 || got.Integration.Mapping.SourceID[0] == "" {
				t.Errorf("integration changed: %+v", got.Integration)
			}
		})
	})
}

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

func TestPagination(t *testing.T) {
	t.Parallel()
	const n = 7
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		token := h.createIntegration("DETECTIFY").Token(t)
		var opened []string
		for i := range n {
			r := h.postWebhook(token, finding("page-"+strconv.Itoa(i), "high"))
			if r.Status != "MAPPED_OPENED" {
				t.Fatalf("post %d: %s", i, r.Raw)
			}
			opened = append(opened, r.alert())
		}
		// Newest first.
		slices.Reverse(opened)

		type page struct {
			TotalCount int `json:"totalCount"`
			Nodes      []struct {
				ID string `json:"id"`
			} `json:"nodes"`
			PageInfo struct {
				EndCursor   *string `json:"endCursor"`
				HasNextPage bool    `json:"hasNextPage"`
			} `json:"pageInfo"`
		}
		walk := func(t *testing.T, field, query string) []string {
			h := h.with(t)
			var seen []string
			var after *string
			for pages := 1; ; pages++ {
				if pages > n {
					t.Fatalf("more than %d pages of 2", n)
				}
				var data map[string]page
				h.mustGQL(h.admin.Token, query, map[string]any{"after": after}, &data)
				p := data[field]
				if p.TotalCount != n {
					t.Errorf("page %d: totalCount %d, want %d", pages, p.TotalCount, n)
				}
				if len(p.Nodes) == 0 || len(p.Nodes) > 2 {
					t.Fatalf("page %d has %d nodes", pages, len(p.Nodes))
				}
				for _, node := range p.Nodes {
					seen = append(seen, node.ID)
				}
				if !p.PageInfo.HasNextPage {
					if pages != (n+1)/2 {
						t.Errorf("%d pages, want %d", pages, (n+1)/2)
					}
					return seen
				}
				if p.PageInfo.EndCursor == nil {
					t.Fatalf("page %d has a next page but no endCursor", pages)
				}
				after = p.PageInfo.EndCursor
			}
		}
		t.Run("alerts", func(t *testing.T) {
			seen := walk(t, "alerts", `query($after: String) { alerts(first: 2, after: $after) {
				totalCount nodes { id } pageInfo { endCursor hasNextPage } } }`)
			if !slices.Equal(seen, opened) {
				t.Errorf("pages gave %v, want each alert once, newest first: %v", seen, opened)
			}
		})
		t.Run("inboundMessages", func(t *testing.T) {
			seen := walk(t, "inboundMessages", `query($after: String) { inboundMessages(first: 2, after: $after) {
				totalCount nodes { id } pageInfo { endCursor hasNextPage } } }`)
			unique := slices.Compact(slices.Clone(seen))
			if len(seen) != n || len(unique) != n || !slices.IsSortedFunc(seen, func(a, b string) int {
				return mustAtoi(t, b) - mustAtoi(t, a)
			}) {
				t.Errorf("pages gave %v, want %d distinct messages, newest first", seen, n)
			}
		})
		t.Run("alert messages", func(t *testing.T) {
			hh := h.with(t)
			// Two more for the newest alert's finding: three messages on it.
			for range 2 {
				hh.postWebhook(token, finding("page-"+strconv.Itoa(n-1), "high"))
			}
			var data struct {
				Alert struct {
					AppendCount int  `json:"appendCount"`
					Messages    page `json:"messages"`
				} `json:"alert"`
			}
			hh.mustGQL(hh.admin.Token, `query($id: ID!) { alert(id: $id) { appendCount messages(first: 2) {
				totalCount nodes { id } pageInfo { endCursor hasNextPage } } } }`, map[string]any{"id": opened[0]}, &data)
			m := data.Alert.Messages
			if data.Alert.AppendCount != 2 || m.TotalCount != 3 || len(m.Nodes) != 2 || !m.PageInfo.HasNextPage {
				t.Errorf("alert %s: %+v", opened[0], data.Alert)
			}
		})
	})
}

func TestAlertLifecycle(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h0 := newHarness(t, d, server.Config{})
		responder := h0.newUser(db.RoleResponder)
		viewer := h0.createUser(db.RoleViewer)
		token := h0.createIntegration("DETECTIFY").Token(t)
		body := finding("lifecycle", "critical")
		first := h0.postWebhook(token, body).alert()
		other := h0.postWebhook(token, finding("bystander", "medium")).alert()
		if first == "" || other == "" {
			t.Fatal("alerts not opened")
		}

		const fields = `id status acknowledgedAt acknowledgedBy { id } assignedTo { id } closedAt closedBy { id } appendCount timeline { type user { id } }`
		type alert struct {
			ID             string  `json:"id"`
			Status         string  `json:"status"`
			AcknowledgedAt *string `json:"acknowledgedAt"`
			AcknowledgedBy *struct {
				ID string `json:"id"`
			} `json:"acknowledgedBy"`
			AssignedTo *struct {
				ID string `json:"id"`
			} `json:"assignedTo"`
			ClosedAt *string `json:"closedAt"`
			ClosedBy *struct {
				ID string `json:"id"`
			} `json:"closedBy"`
			AppendCount int `json:"appendCount"`
			Timeline    []struct {
				Type string `json:"type"`
				User *struct {
					ID string `json:"id"`
				} `json:"user"`
			} `json:"timeline"`
		}
		mutate := func(h *harness, mutation string, extra map[string]any) alert {
			h.t.Helper()
			vars := map[string]any{"id": first}
			for k, v := range extra {
				vars[k] = v
			}
			var data map[string]alert
			args := "$id: ID!"
			call := "(id: $id)"
			if extra != nil {
				args += ", $user: ID!"
				call = "(id: $id, userId: $user)"
			}
			h.mustGQL(responder.Token, `mutation(`+args+`) { `+mutation+call+` { `+fields+` } }`, vars, &data)
			return data[mutation]
		}
		filterCounts := func(h *harness) map[string]int {
			h.t.Helper()
			var data map[string]struct{ TotalCount int }
			h.mustGQL(h.admin.Token, `{
				open: alerts(filter: {status: [OPEN]}) { totalCount }
				acknowledged: alerts(filter: {status: [ACKNOWLEDGED]}) { totalCount }
				closed: alerts(filter: {status: [CLOSED]}) { totalCount }
				unclosed: alerts(filter: {status: [OPEN, ACKNOWLEDGED]}) { totalCount }
				critical: alerts(filter: {severity: ["critical"]}) { totalCount }
				all: alerts { totalCount } }`, nil, &data)
			out := map[string]int{}
			for k, v := range data {
				out[k] = v.TotalCount
			}
			return out
		}
		timelineOf := func(a alert) []string {
			var out []string
			for _, e := range a.Timeline {
				who := ""
				if e.User != nil {
					who = "@" + e.User.ID
				}
				out = append(out, e.Type+who)
			}
			return out
		}
		by := "@" + responder.ID

		steps := []struct {
			name string
			run  func(t *testing.T, h *harness)
			// counts are the alert filters' totals after the step.
			counts map[string]int
		}{
			{"opened", func(t *testing.T, h *harness) {}, map[string]int{"open": 2, "acknowledged": 0, "closed": 0, "unclosed": 2, "critical": 1, "all": 2}},
			{"acknowledge", func(t *testing.T, h *harness) {
				a := mutate(h, "acknowledgeAlert", nil)
				if a.Status != "ACKNOWLEDGED" || a.AcknowledgedBy == nil || a.AcknowledgedBy.ID != responder.ID || a.AcknowledgedAt == nil {
					t.Errorf("after acknowledge: %+v", a)
				}
			}, map[string]int{"open": 1, "acknowledged": 1, "closed": 0, "unclosed": 2, "critical": 1, "all": 2}},
			{"acknowledge again is a no-op", func(t *testing.T, h *harness) {
				a := mutate(h, "acknowledgeAlert", nil)
				if a.Status != "ACKNOWLEDGED" || !slices.Equal(timelineOf(a), []string{"OPENED", "ACKNOWLEDGED" + by}) {
					t.Errorf("after a second acknowledge: %+v %v", a, timelineOf(a))
				}
			}, nil},
			{"assign", func(t *testing.T, h *harness) {
				a := mutate(h, "assignAlert", map[string]any{"user": viewer.ID})
				if a.AssignedTo == nil || a.AssignedTo.ID != viewer.ID || a.Status != "ACKNOWLEDGED" {
					t.Errorf("after assign: %+v", a)
				}
			}, nil},
			{"assign to nobody", func(t *testing.T, h *harness) {
				e := h.wantGQLError(responder.Token, `mutation($id: ID!) { assignAlert(id: $id, userId: 999999) { id } }`,
					map[string]any{"id": first}, "BAD_USER_INPUT")
				if e.Extensions.Field != "userId" {
					t.Errorf("field %q, want userId", e.Extensions.Field)
				}
			}, nil},
			{"a repeat while acknowledged appends", func(t *testing.T, h *harness) {
				r := h.postWebhook(token, body)
				if r.Status != "MAPPED_APPENDED" || r.alert() != first {
					t.Errorf("repeat: %s", r.Raw)
				}
			}, map[string]int{"open": 1, "acknowledged": 1, "closed": 0, "unclosed": 2, "critical": 1, "all": 2}},
			{"close", func(t *testing.T, h *harness) {
				a := mutate(h, "closeAlert", nil)
				if a.Status != "CLOSED" || a.ClosedBy == nil || a.ClosedBy.ID != responder.ID || a.ClosedAt == nil || a.AppendCount != 1 {
					t.Errorf("after close: %+v", a)
				}
				want := []string{"OPENED", "ACKNOWLEDGED" + by, "ASSIGNED" + by, "APPENDED", "CLOSED" + by}
				if got := timelineOf(a); !slices.Equal(got, want) {
					t.Errorf("timeline %v, want %v", got, want)
				}
			}, map[string]int{"open": 1, "acknowledged": 0, "closed": 1, "unclosed": 1, "critical": 1, "all": 2}},
			{"acknowledge a closed alert", func(t *testing.T, h *harness) {
				e := h.wantGQLError(responder.Token, `mutation($id: ID!) { acknowledgeAlert(id: $id) { id } }`, map[string]any{"id": first}, "BAD_USER_INPUT")
				if e.Extensions.Field != "id" {
					t.Errorf("field %q, want id", e.Extensions.Field)
				}
			}, nil},
			{"assign a closed alert", func(t *testing.T, h *harness) {
				h.wantGQLError(responder.Token, `mutation($id: ID!, $user: ID!) { assignAlert(id: $id, userId: $user) { id } }`,
					map[string]any{"id": first, "user": responder.ID}, "BAD_USER_INPUT")
			}, nil},
			{"close again is a no-op", func(t *testing.T, h *harness) {
				a := mutate(h, "closeAlert", nil)
				if a.Status != "CLOSED" || len(a.Timeline) != 5 {
					t.Errorf("after a second close: %+v", a)
				}
			}, map[string]int{"open": 1, "acknowledged": 0, "closed": 1, "unclosed": 1, "critical": 1, "all": 2}},
			{"the finding again opens a new alert", func(t *testing.T, h *harness) {
				r := h.postWebhook(token, body)
				if r.Status != "MAPPED_OPENED" || r.alert() == first {
					t.Errorf("after close, repeat: %s", r.Raw)
				}
			}, map[string]int{"open": 2, "acknowledged": 0, "closed": 1, "unclosed": 2, "critical": 2, "all": 3}},
			{"missing alerts", func(t *testing.T, h *harness) {
				for _, m := range []string{"acknowledgeAlert", "closeAlert"} {
					h.wantGQLError(responder.Token, `mutation { `+m+`(id: 999999) { id } }`, nil, "NOT_FOUND")
				}
				r := h.gql(responder.Token, `{ alert(id: 999999) { id } }`, nil)
				if len(r.Errors) > 0 || string(r.Data) != `{"alert":null}` {
					t.Errorf("alert(id: 999999): %s", r.Raw)
				}
			}, nil},
		}
		for _, step := range steps {
			ok := t.Run(step.name, func(t *testing.T) {
				h := h0.with(t)
				step.run(t, h)
				if step.counts != nil {
					if got := filterCounts(h); !mapsEqual(got, step.counts) {
						t.Errorf("filter totals %v, want %v", got, step.counts)
					}
				}
			})
			if !ok {
				t.FailNow()
			}
		}
	})
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestInternalErrorsDoNotLeak breaks the database under a running server:
// callers must see "internal error" and nothing of the SQL behind it.
func TestInternalErrorsDoNotLeak(t *testing.T) {
	t.Parallel()
	leaks := []string{"sql", "select", "alert_log", "no such table", "relation", "database", "closed", "pq:", "sqlite"}
	noLeak := func(t *testing.T, raw []byte) {
		t.Helper()
		lower := strings.ToLower(string(raw))
		for _, word := range leaks {
			if strings.Contains(lower, word) {
				t.Errorf("reply mentions %q: %s", word, raw)
			}
		}
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h0 := newHarness(t, d, server.Config{})
		token := h0.createIntegration("DETECTIFY").Token(t)
		alertID := h0.postWebhook(token, finding("broken", "high")).alert()

		t.Run("a table gone missing", func(t *testing.T) {
			h := h0.with(t)
			if _, err := d.ExecContext(context.Background(), "ALTER TABLE alert_log RENAME TO alert_log_moved"); err != nil {
				t.Fatal(err)
			}
			r := h.gql(h.admin.Token, `query($id: ID!) { alert(id: $id) { id timeline { type } } }`, map[string]any{"id": alertID})
			if len(r.Errors) != 1 || r.Errors[0].Extensions.Code != "INTERNAL_SERVER_ERROR" || r.Errors[0].Message != "internal error" {
				t.Errorf("want one INTERNAL_SERVER_ERROR \"internal error\": %s", r.Raw)
			}
			noLeak(t, r.Raw)
			w := h.postWebhook(token, finding("broken", "high"))
			if w.HTTPStatus != http.StatusInternalServerError || w.Error == "" {
				t.Errorf("webhook: HTTP %d: %s", w.HTTPStatus, w.Raw)
			}
			noLeak(t, w.Raw)
		})

		t.Run("the database closed", func(t *testing.T) {
			h := h0.with(t)
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			r := h.gql("", `mutation { login(email: "a@example.com", password: "whatever1") { token } }`, nil)
			if len(r.Errors) != 1 || r.Errors[0].Extensions.Code != "INTERNAL_SERVER_ERROR" || r.Errors[0].Message != "internal error" {
				t.Errorf("login: want one INTERNAL_SERVER_ERROR: %s", r.Raw)
			}
			noLeak(t, r.Raw)
			// Authentication itself needs the database.
			r = h.gql(h.admin.Token, `{ me { id } }`, nil)
			if r.HTTPStatus != http.StatusInternalServerError {
				t.Errorf("authenticated query: HTTP %d: %s", r.HTTPStatus, r.Raw)
			}
			noLeak(t, r.Raw)
			w := h.postWebhook(token, finding("broken", "high"))
			if w.HTTPStatus != http.StatusInternalServerError || w.Error == "" {
				t.Errorf("webhook: HTTP %d: %s", w.HTTPStatus, w.Raw)
			}
			noLeak(t, w.Raw)
			resp, err := h.client.Get(h.srv.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("/readyz: HTTP %d, want 503", resp.StatusCode)
			}
		})
	})
}
