package server_test

import (
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

func TestAckTimeoutOverGraphQL(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		const create = `mutation($input: CreateEscalationPolicyInput!) { createEscalationPolicy(input: $input) { id ackTimeoutMinutes } }`
		steps := []any{map[string]any{"delayMinutes": 5, "targets": []any{map[string]any{"type": "RECIPIENTS"}}}}
		var created struct {
			P struct {
				ID                string
				AckTimeoutMinutes *int
			} `json:"createEscalationPolicy"`
		}
		h.mustGQL(h.admin.Token, create, map[string]any{"input": map[string]any{"name": "Primary", "steps": steps, "ackTimeoutMinutes": 30}}, &created)
		if created.P.AckTimeoutMinutes == nil || *created.P.AckTimeoutMinutes != 30 {
			t.Fatalf("created with timeout %v", created.P.AckTimeoutMinutes)
		}
		bad := map[string]any{"name": "Other", "steps": steps, "ackTimeoutMinutes": 0}
		if e := h.wantGQLError(h.admin.Token, create, map[string]any{"input": bad}, "BAD_USER_INPUT"); e.Extensions.Field != "ackTimeoutMinutes" {
			t.Errorf("a zero timeout names field %q", e.Extensions.Field)
		}

		// Leaving it out keeps it; an explicit null turns it off.
		const update = `mutation($id: ID!, $input: UpdateEscalationPolicyInput!) { updateEscalationPolicy(id: $id, input: $input) { ackTimeoutMinutes } }`
		var updated struct {
			P struct{ AckTimeoutMinutes *int } `json:"updateEscalationPolicy"`
		}
		h.mustGQL(h.admin.Token, update, map[string]any{"id": created.P.ID, "input": map[string]any{"repeat": 1}}, &updated)
		if updated.P.AckTimeoutMinutes == nil || *updated.P.AckTimeoutMinutes != 30 {
			t.Fatalf("after an update without it: %v", updated.P.AckTimeoutMinutes)
		}
		h.mustGQL(h.admin.Token, update, map[string]any{"id": created.P.ID, "input": map[string]any{"ackTimeoutMinutes": nil}}, &updated)
		if updated.P.AckTimeoutMinutes != nil {
			t.Fatalf("after clearing: %v", *updated.P.AckTimeoutMinutes)
		}
	})
}

func TestPagingDelayAndAutoCloseOverGraphQL(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		type integ struct {
			ID                    string
			PageDelayMinutes      int
			AutoCloseAfterMinutes *int
		}
		const create = `mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { id pageDelayMinutes autoCloseAfterMinutes } }`
		var created struct {
			I integ `json:"createIntegration"`
		}
		h.mustGQL(h.admin.Token, create, map[string]any{"input": map[string]any{"name": "Plain", "type": "GENERIC"}}, &created)
		if created.I.PageDelayMinutes != 0 || created.I.AutoCloseAfterMinutes != nil {
			t.Fatalf("defaults %+v", created.I)
		}
		h.mustGQL(h.admin.Token, create, map[string]any{"input": map[string]any{"name": "Flappy", "type": "GENERIC",
			"pageDelayMinutes": 5, "autoCloseAfterMinutes": 120}}, &created)
		if created.I.PageDelayMinutes != 5 || created.I.AutoCloseAfterMinutes == nil || *created.I.AutoCloseAfterMinutes != 120 {
			t.Fatalf("created %+v", created.I)
		}
		for field, value := range map[string]int{"pageDelayMinutes": 1441, "autoCloseAfterMinutes": 0} {
			bad := map[string]any{"name": "Bad", "type": "GENERIC", field: value}
			if e := h.wantGQLError(h.admin.Token, create, map[string]any{"input": bad}, "BAD_USER_INPUT"); e.Extensions.Field != field {
				t.Errorf("%s %d names field %q", field, value, e.Extensions.Field)
			}
		}

		// Leaving auto-close out keeps it; an explicit null turns it off.
		const update = `mutation($id: ID!, $input: UpdateIntegrationInput!) { updateIntegration(id: $id, input: $input) { id pageDelayMinutes autoCloseAfterMinutes } }`
		var updated struct {
			I integ `json:"updateIntegration"`
		}
		h.mustGQL(h.admin.Token, update, map[string]any{"id": created.I.ID, "input": map[string]any{"pageDelayMinutes": 0}}, &updated)
		if updated.I.PageDelayMinutes != 0 || updated.I.AutoCloseAfterMinutes == nil {
			t.Fatalf("after an update without auto-close: %+v", updated.I)
		}
		h.mustGQL(h.admin.Token, update, map[string]any{"id": created.I.ID, "input": map[string]any{"autoCloseAfterMinutes": nil}}, &updated)
		if updated.I.AutoCloseAfterMinutes != nil {
			t.Fatalf("after clearing: %+v", updated.I)
		}
	})
}
