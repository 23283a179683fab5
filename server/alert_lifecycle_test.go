package server_test

import (
	"slices"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

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
