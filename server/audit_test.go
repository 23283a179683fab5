package server_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

type auditEntry struct {
	ID    string `json:"id"`
	At    string `json:"at"`
	Actor *struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	} `json:"actor"`
	ActorName  string `json:"actorName"`
	EntityType string `json:"entityType"`
	EntityID   string `json:"entityId"`
	Action     string `json:"action"`
	Changes    string `json:"changes"`
}

type auditPage struct {
	AuditLog struct {
		Nodes      []auditEntry `json:"nodes"`
		TotalCount int          `json:"totalCount"`
		PageInfo   struct {
			EndCursor   *string `json:"endCursor"`
			HasNextPage bool    `json:"hasNextPage"`
		} `json:"pageInfo"`
	} `json:"auditLog"`
}

const auditQuery = `query($type: AuditEntityType, $id: ID, $first: Int, $after: String) {
	auditLog(entityType: $type, entityId: $id, first: $first, after: $after) {
		nodes { id at actor { id email } actorName entityType entityId action changes }
		totalCount pageInfo { endCursor hasNextPage }
	}
}`

func TestAuditLogOverGraphQL(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("GENERIC")
		for _, name := range []string{"Renamed", "Renamed again"} {
			h.mustGQL(h.admin.Token, `mutation($id: ID!, $name: String!) { updateIntegration(id: $id, input: {name: $name}) { id } }`,
				map[string]any{"id": integ.ID, "name": name}, nil)
		}
		h.mustGQL(h.admin.Token, `mutation($id: ID!) { rotateIntegrationToken(id: $id) { id } }`, map[string]any{"id": integ.ID}, nil)
		token := integ.Token(t)

		// Every change to the integration, newest first, two at a time.
		var actions []string
		var after any
		for pages := 0; ; pages++ {
			if pages > 3 {
				t.Fatal("paging does not end")
			}
			var page auditPage
			h.mustGQL(h.admin.Token, auditQuery, map[string]any{"type": "INTEGRATION", "id": integ.ID, "first": 2, "after": after}, &page)
			if page.AuditLog.TotalCount != 4 {
				t.Fatalf("totalCount %d, want 4", page.AuditLog.TotalCount)
			}
			for _, e := range page.AuditLog.Nodes {
				if e.EntityType != "INTEGRATION" || e.EntityID != integ.ID {
					t.Fatalf("filtered on integration %s, got %+v", integ.ID, e)
				}
				if e.Actor == nil || e.Actor.ID != h.admin.ID || e.Actor.Email != h.admin.Email || e.ActorName != h.admin.Email {
					t.Errorf("entry %s: actor %+v (%s), want the admin %s", e.ID, e.Actor, e.ActorName, h.admin.Email)
				}
				if e.At == "" {
					t.Errorf("entry %s has no time", e.ID)
				}
				actions = append(actions, e.Action)
			}
			if !page.AuditLog.PageInfo.HasNextPage {
				break
			}
			after = *page.AuditLog.PageInfo.EndCursor
		}
		want := []string{"TOKEN_ROTATED", "UPDATED", "UPDATED", "CREATED"}
		if len(actions) != len(want) {
			t.Fatalf("actions %v, want %v", actions, want)
		}
		for i := range want {
			if actions[i] != want[i] {
				t.Fatalf("actions %v, want %v", actions, want)
			}
		}

		var page auditPage
		h.mustGQL(h.admin.Token, auditQuery, map[string]any{"type": "INTEGRATION", "id": integ.ID, "first": 3}, &page)
		var changes map[string]map[string]any
		if err := json.Unmarshal([]byte(page.AuditLog.Nodes[2].Changes), &changes); err != nil {
			t.Fatalf("changes are not a JSON object: %v", err)
		}
		if len(changes) != 1 || changes["name"]["to"] != "Renamed" {
			t.Errorf("first rename recorded %v, want only the name", changes)
		}
		for _, e := range page.AuditLog.Nodes {
			if token != "" && strings.Contains(e.Changes, token) {
				t.Errorf("entry %s holds the webhook token", e.ID)
			}
		}

		// Without a filter the users made by the harness show too, made by
		// no signed-in user.
		h.mustGQL(h.admin.Token, auditQuery, map[string]any{"type": "USER"}, &page)
		if page.AuditLog.TotalCount == 0 {
			t.Fatal("no user entries")
		}
		for _, e := range page.AuditLog.Nodes {
			if e.EntityType != "USER" || e.Actor != nil || e.ActorName != "system" {
				t.Errorf("user entry %+v, want a USER entry by the system", e)
			}
		}

		if e := h.wantGQLError(h.admin.Token, auditQuery, map[string]any{"id": integ.ID}, "BAD_USER_INPUT"); e.Extensions.Field != "entityId" {
			t.Errorf("entityId without entityType: field %q", e.Extensions.Field)
		}
		h.wantGQLError(h.admin.Token, auditQuery, map[string]any{"type": "ALERT"}, "GRAPHQL_VALIDATION_FAILED")
		for _, role := range []db.Role{db.RoleResponder, db.RoleViewer} {
			h.wantGQLError(h.newUser(role).Token, auditQuery, nil, "FORBIDDEN")
		}
		h.wantGQLError("", auditQuery, nil, "UNAUTHENTICATED")
	})
}
