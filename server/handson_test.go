package server_test

import (
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// TestHandsOnActionsOverGraphQL opens an alert by hand, writes a note on
// it, snoozes and closes it over the API, and checks that each reaches
// alertEvents subscribers and that the alert shows its creator as its
// source, with no integration.
func TestHandsOnActionsOverGraphQL(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("DETECTIFY")
		viewer := h.newUser(db.RoleViewer)
		responder := h.newUser(db.RoleResponder)
		c := h.connect(protoTransportWS, viewer.Token)
		c.subscribe("alerts", alertEventsQuery, nil)
		h.primed(c, "alerts", integ.Token(t))

		var created struct {
			CreateAlert struct{ ID string } `json:"createAlert"`
		}
		h.mustGQL(responder.Token, `mutation($user: ID!) {
			createAlert(input: {subject: "Payments down", details: "checkout fails", severity: "critical", userIds: [$user]}) { id } }`,
			map[string]any{"user": responder.ID}, &created)
		id := created.CreateAlert.ID
		if e := c.awaitAlert("alerts", id); e.AlertEvents.Type != "OPENED" || e.AlertEvents.Alert.Subject != "Payments down" {
			t.Fatalf("first event: %s", describe(e))
		}

		h.mustGQL(responder.Token, `mutation($id: ID!) { addAlertNote(id: $id, text: "rolled back") { id } }`, map[string]any{"id": id}, nil)
		if e := c.nextAlertEvent("alerts"); e.AlertEvents.Type != "NOTE_ADDED" || e.AlertEvents.Alert.ID != id {
			t.Fatalf("after the note: %s", describe(e))
		}
		h.mustGQL(responder.Token, `mutation($id: ID!) { snoozeAlert(id: $id, minutes: 15) { id } }`, map[string]any{"id": id}, nil)
		if e := c.nextAlertEvent("alerts"); e.AlertEvents.Type != "SNOOZED" || e.AlertEvents.Alert.Status != "ACKNOWLEDGED" {
			t.Fatalf("after the snooze: %s", describe(e))
		}
		h.mustGQL(responder.Token, `mutation($id: ID!) { closeAlert(id: $id) { id } }`, map[string]any{"id": id}, nil)
		if e := c.nextAlertEvent("alerts"); e.AlertEvents.Type != "CLOSED" {
			t.Fatalf("after the close: %s", describe(e))
		}

		var got struct {
			Alert struct {
				SourceName   string
				Integration  *struct{ ID string }
				CreatedBy    *struct{ ID string }
				SnoozedUntil *string
				Timeline     []struct {
					Type    string
					Message string
					User    *struct{ ID string }
				}
			}
		}
		h.mustGQL(viewer.Token, `query($id: ID!) { alert(id: $id) {
			sourceName integration { id } createdBy { id } snoozedUntil timeline { type message user { id } } } }`,
			map[string]any{"id": id}, &got)
		a := got.Alert
		if a.Integration != nil || a.CreatedBy == nil || a.CreatedBy.ID != responder.ID || a.SourceName != "User "+responder.Email || a.SnoozedUntil != nil {
			t.Fatalf("manual alert %+v", a)
		}
		var note bool
		for _, e := range a.Timeline {
			if e.Type == "NOTE" && e.Message == "rolled back" && e.User != nil && e.User.ID == responder.ID {
				note = true
			}
		}
		if !note {
			t.Fatalf("no note by its author on the timeline: %+v", a.Timeline)
		}

		var found struct {
			Alerts struct {
				TotalCount int
				Nodes      []struct{ ID string }
			}
		}
		h.mustGQL(viewer.Token, `{ alerts(filter: {search: "PAYMENTS"}) { totalCount nodes { id } } }`, nil, &found)
		if found.Alerts.TotalCount != 1 || found.Alerts.Nodes[0].ID != id {
			t.Fatalf("search: %+v", found)
		}
		h.wantGQLError(responder.Token, `mutation($id: ID!) { addAlertNote(id: $id, text: "") { id } }`, map[string]any{"id": id}, "BAD_USER_INPUT")
		h.wantGQLError(viewer.Token, `mutation($id: ID!) { addAlertNote(id: $id, text: "x") { id } }`, map[string]any{"id": id}, "FORBIDDEN")
	})
}
