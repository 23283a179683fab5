package server_test

import (
	"context"
	"net/http"
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
