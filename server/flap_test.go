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
