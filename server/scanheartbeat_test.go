package server_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// scanHeartbeatHours is set and cleared like the other integration
// settings, by admins only; a completed Detectify scan is logged as PULSE
// and shows as the integration's pulse key.
func TestScanHeartbeatsOverGraphQL(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		const create = `mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { id url scanHeartbeatHours } }`
		var created struct {
			I struct {
				ID                 string
				URL                string
				ScanHeartbeatHours *int
			} `json:"createIntegration"`
		}
		for _, hours := range []int{0, 721} {
			bad := map[string]any{"name": "Bad", "type": "DETECTIFY", "scanHeartbeatHours": hours}
			if e := h.wantGQLError(h.admin.Token, create, map[string]any{"input": bad}, "BAD_USER_INPUT"); e.Extensions.Field != "scanHeartbeatHours" {
				t.Errorf("scanHeartbeatHours %d names field %q", hours, e.Extensions.Field)
			}
		}
		// The generic preset has no PULSE rule: nothing would ever pulse.
		noPulse := map[string]any{"name": "Plain", "type": "GENERIC", "scanHeartbeatHours": 24}
		if e := h.wantGQLError(h.admin.Token, create, map[string]any{"input": noPulse}, "BAD_USER_INPUT"); e.Extensions.Field != "scanHeartbeatHours" ||
			!strings.Contains(e.Message, "no PULSE rule") {
			t.Errorf("scanHeartbeatHours without a PULSE rule: %+v", e)
		}
		h.mustGQL(h.admin.Token, create, map[string]any{"input": map[string]any{"name": "Scans", "type": "DETECTIFY", "scanHeartbeatHours": 24}}, &created)
		if created.I.ScanHeartbeatHours == nil || *created.I.ScanHeartbeatHours != 24 {
			t.Fatalf("created %+v", created.I)
		}

		body, err := os.ReadFile(filepath.Join("..", "rules", "testdata", "detectify", "scan_completed.json"))
		if err != nil {
			t.Fatal(err)
		}
		token := integration{ID: created.I.ID, URL: created.I.URL}.Token(t)
		for range 2 {
			if r := h.postWebhook(token, body); r.HTTPStatus != http.StatusOK || r.Status != "PULSE" || r.AlertID != nil {
				t.Fatalf("a completed scan was answered %d %+v", r.HTTPStatus, r)
			}
		}
		var read struct {
			I struct {
				ScanHeartbeats []struct {
					Key         string
					LastPulseAt string
					PulseCount  int
					Status      string
					Alert       *struct{ ID string }
				}
			} `json:"integration"`
		}
		viewer := h.newUser(db.RoleViewer)
		h.mustGQL(viewer.Token, `query($id: ID!) { integration(id: $id) { scanHeartbeats { key lastPulseAt pulseCount status alert { id } } } }`,
			map[string]any{"id": created.I.ID}, &read)
		if keys := read.I.ScanHeartbeats; len(keys) != 1 || keys[0].Key != "app.example.com" || keys[0].PulseCount != 2 ||
			keys[0].Status != "UP" || keys[0].Alert != nil || keys[0].LastPulseAt == "" {
			t.Fatalf("pulse keys %+v", keys)
		}

		const update = `mutation($id: ID!, $input: UpdateIntegrationInput!) { updateIntegration(id: $id, input: $input) { scanHeartbeatHours } }`
		responder := h.newUser(db.RoleResponder)
		h.wantGQLError(responder.Token, update, map[string]any{"id": created.I.ID, "input": map[string]any{"scanHeartbeatHours": 1}}, "FORBIDDEN")
		var updated struct {
			I struct{ ScanHeartbeatHours *int } `json:"updateIntegration"`
		}
		h.mustGQL(h.admin.Token, update, map[string]any{"id": created.I.ID, "input": map[string]any{"name": "Scans"}}, &updated)
		if updated.I.ScanHeartbeatHours == nil || *updated.I.ScanHeartbeatHours != 24 {
			t.Fatalf("after an update without it: %v", updated.I.ScanHeartbeatHours)
		}
		h.mustGQL(h.admin.Token, update, map[string]any{"id": created.I.ID, "input": map[string]any{"scanHeartbeatHours": nil}}, &updated)
		if updated.I.ScanHeartbeatHours != nil {
			t.Fatalf("after clearing: %v", *updated.I.ScanHeartbeatHours)
		}
	})
}
