package server_test

import (
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// TestMaintenanceWindowOverGraphQL holds the API of a maintenance window:
// an ad-hoc window (startsAt left out) over an integration, an alert
// opened under it showing suppressedBy and its timeline entry, the
// suppressed filter, the recurrence read back, and bad input refused
// with a field error.
func TestMaintenanceWindowOverGraphQL(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("DETECTIFY")
		var created struct {
			W struct {
				ID           string `json:"id"`
				ActiveUntil  string `json:"activeUntil"`
				Integrations []struct {
					ID string `json:"id"`
				} `json:"integrations"`
			} `json:"createMaintenanceWindow"`
		}
		h.mustGQL(h.admin.Token, `mutation($integ: ID!) {
			createMaintenanceWindow(input: {name: "deploy", integrationIds: [$integ], endsAt: "2099-01-01T00:00:00Z"}) {
				id activeUntil integrations { id } } }`, map[string]any{"integ": integ.ID}, &created)
		if created.W.ActiveUntil != "2099-01-01T00:00:00Z" || len(created.W.Integrations) != 1 || created.W.Integrations[0].ID != integ.ID {
			t.Fatalf("created window %+v", created.W)
		}
		alertID := h.postWebhook(integ.Token(t), finding("held", "critical")).alert()
		bystander := h.postWebhook(h.createIntegration("DETECTIFY").Token(t), finding("paged", "critical")).alert()
		var got struct {
			Alert struct {
				SuppressedBy *struct {
					ID   string `json:"id"`
					Name string `json:"name"`
				} `json:"suppressedBy"`
				Timeline []struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"timeline"`
			} `json:"alert"`
			Held struct {
				TotalCount int `json:"totalCount"`
				Nodes      []struct {
					ID string `json:"id"`
				} `json:"nodes"`
			} `json:"held"`
			Free struct {
				Nodes []struct {
					ID string `json:"id"`
				} `json:"nodes"`
			} `json:"free"`
		}
		h.mustGQL(h.admin.Token, `query($id: ID!) {
			alert(id: $id) { suppressedBy { id name } timeline { type message } }
			held: alerts(filter: {suppressed: true}) { totalCount nodes { id } }
			free: alerts(filter: {suppressed: false}) { nodes { id } } }`, map[string]any{"id": alertID}, &got)
		if s := got.Alert.SuppressedBy; s == nil || s.ID != created.W.ID || s.Name != "deploy" {
			t.Fatalf("suppressedBy %+v, want window %s", s, created.W.ID)
		}
		if len(got.Alert.Timeline) == 0 || got.Alert.Timeline[0].Type != "OPENED" ||
			!strings.Contains(got.Alert.Timeline[0].Message, `opened during maintenance window "deploy": not paged`) {
			t.Fatalf("timeline %+v", got.Alert.Timeline)
		}
		if got.Held.TotalCount != 1 || got.Held.Nodes[0].ID != alertID || len(got.Free.Nodes) != 1 || got.Free.Nodes[0].ID != bystander {
			t.Fatalf("filtered: held %+v, free %+v", got.Held, got.Free)
		}

		var weekly struct {
			W struct {
				EndsAt     *string `json:"endsAt"`
				Recurrence struct {
					Weekdays        []string `json:"weekdays"`
					StartTime       string   `json:"startTime"`
					DurationMinutes int      `json:"durationMinutes"`
					TimeZone        string   `json:"timeZone"`
				} `json:"recurrence"`
			} `json:"updateMaintenanceWindow"`
		}
		h.mustGQL(h.admin.Token, `mutation($id: ID!) {
			updateMaintenanceWindow(id: $id, input: {endsAt: null,
				recurrence: {weekdays: [SATURDAY, SUNDAY], startTime: "22:00", durationMinutes: 240, timeZone: "Europe/Berlin"}}) {
				endsAt recurrence { weekdays startTime durationMinutes timeZone } } }`, map[string]any{"id": created.W.ID}, &weekly)
		r := weekly.W.Recurrence
		if weekly.W.EndsAt != nil || len(r.Weekdays) != 2 || r.Weekdays[0] != "SUNDAY" || r.StartTime != "22:00" || r.DurationMinutes != 240 || r.TimeZone != "Europe/Berlin" {
			t.Fatalf("updated window %+v", weekly.W)
		}
		e := h.wantGQLError(h.admin.Token, `mutation($integ: ID!) {
			createMaintenanceWindow(input: {name: "no end", integrationIds: [$integ]}) { id } }`, map[string]any{"integ": integ.ID}, "BAD_USER_INPUT")
		if !strings.Contains(e.Message, "endsAt") {
			t.Fatalf("error %q does not name endsAt", e.Message)
		}
	})
}
