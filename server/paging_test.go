package server_test

import (
	"slices"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/server"
)

func TestContactMethodsOverGraphQL(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		owner := h.newUser(db.RoleResponder)
		other := h.newUser(db.RoleResponder)
		viewer := h.newUser(db.RoleViewer)

		const create = `mutation($user: ID!, $type: ContactType!, $value: String!) {
			createContactMethod(input: {userId: $user, type: $type, value: $value}) { id type value verified user { id } } }`
		var created struct {
			CM struct {
				ID, Type, Value string
				Verified        bool
				User            struct{ ID string }
			} `json:"createContactMethod"`
		}
		h.mustGQL(owner.Token, create, map[string]any{"user": owner.ID, "type": "SMS", "value": "+1 555 123 4567"}, &created)
		cm := created.CM
		if cm.Type != "SMS" || cm.Value != "+15551234567" || cm.Verified || cm.User.ID != owner.ID {
			t.Fatalf("created %+v", cm)
		}
		var rule struct {
			Rule struct {
				ID            string
				DelayMinutes  int
				User          struct{ ID string }
				ContactMethod struct{ ID string }
			} `json:"createNotificationRule"`
		}
		const createRule = `mutation($cm: ID!, $delay: Int!) {
			createNotificationRule(input: {contactMethodId: $cm, delayMinutes: $delay}) { id delayMinutes user { id } contactMethod { id } } }`
		h.mustGQL(owner.Token, createRule, map[string]any{"cm": cm.ID, "delay": 0}, &rule)
		if rule.Rule.User.ID != owner.ID || rule.Rule.ContactMethod.ID != cm.ID || rule.Rule.DelayMinutes != 0 {
			t.Fatalf("rule %+v", rule.Rule)
		}
		e := h.wantGQLError(owner.Token, createRule, map[string]any{"cm": cm.ID, "delay": 0}, "BAD_USER_INPUT")
		if e.Extensions.Field != "delayMinutes" {
			t.Errorf("duplicate rule names field %q", e.Extensions.Field)
		}
		e = h.wantGQLError(owner.Token, create, map[string]any{"user": owner.ID, "type": "EMAIL", "value": "nope"}, "BAD_USER_INPUT")
		if e.Extensions.Field != "value" {
			t.Errorf("bad email names field %q", e.Extensions.Field)
		}

		// Someone else, not an admin, can neither see nor touch them.
		forbidden := []struct {
			name, query string
			vars        map[string]any
		}{
			{"create for another", create, map[string]any{"user": owner.ID, "type": "EMAIL", "value": "x@example.com"}},
			{"update", `mutation($id: ID!) { updateContactMethod(id: $id, input: {value: "+15550000000"}) { id } }`, map[string]any{"id": cm.ID}},
			{"delete", `mutation($id: ID!) { deleteContactMethod(id: $id) }`, map[string]any{"id": cm.ID}},
			{"add a rule", createRule, map[string]any{"cm": cm.ID, "delay": 5}},
			{"delete a rule", `mutation($id: ID!) { deleteNotificationRule(id: $id) }`, map[string]any{"id": rule.Rule.ID}},
		}
		for _, tc := range forbidden {
			t.Run("other user may not "+tc.name, func(t *testing.T) {
				h := h.with(t)
				h.wantGQLError(other.Token, tc.query, tc.vars, "FORBIDDEN")
				h.wantGQLError("", tc.query, tc.vars, "UNAUTHENTICATED")
			})
		}
		type userContacts struct {
			User struct {
				ContactMethods    []struct{ ID, Value string } `json:"contactMethods"`
				NotificationRules []struct{ ID string }        `json:"notificationRules"`
			} `json:"user"`
		}
		const read = `query($id: ID!) { user(id: $id) { contactMethods { id value } notificationRules { id } } }`
		for _, s := range []session{other, viewer} {
			var seen userContacts
			h.mustGQL(s.Token, read, map[string]any{"id": owner.ID}, &seen)
			if len(seen.User.ContactMethods) != 0 || len(seen.User.NotificationRules) != 0 {
				t.Errorf("%s sees another user's contact methods: %+v", s.Role, seen)
			}
		}
		for _, s := range []session{owner, h.admin} {
			var seen userContacts
			h.mustGQL(s.Token, read, map[string]any{"id": owner.ID}, &seen)
			if len(seen.User.ContactMethods) != 1 || seen.User.ContactMethods[0].Value != "+15551234567" || len(seen.User.NotificationRules) != 1 {
				t.Errorf("%s sees %+v", s.Role, seen)
			}
		}

		// An admin can manage anyone's.
		var updated struct {
			CM struct{ Value string } `json:"updateContactMethod"`
		}
		h.mustGQL(h.admin.Token, `mutation($id: ID!) { updateContactMethod(id: $id, input: {value: "+15550000000", name: "Work"}) { value } }`,
			map[string]any{"id": cm.ID}, &updated)
		if updated.CM.Value != "+15550000000" {
			t.Errorf("admin update: %+v", updated)
		}
		h.mustGQL(h.admin.Token, create, map[string]any{"user": owner.ID, "type": "WEBHOOK", "value": "https://hooks.example.com/x"}, nil)
		h.mustGQL(h.admin.Token, `mutation($id: ID!) { deleteNotificationRule(id: $id) }`, map[string]any{"id": rule.Rule.ID}, nil)
		h.mustGQL(h.admin.Token, `mutation($id: ID!) { deleteContactMethod(id: $id) }`, map[string]any{"id": cm.ID}, nil)
		h.wantGQLError(h.admin.Token, `mutation($id: ID!) { deleteContactMethod(id: $id) }`, map[string]any{"id": cm.ID}, "NOT_FOUND")
		var mine struct {
			Me struct {
				ContactMethods []struct{ Type string } `json:"contactMethods"`
			} `json:"me"`
		}
		h.mustGQL(owner.Token, `{ me { contactMethods { type } } }`, nil, &mine)
		if len(mine.Me.ContactMethods) != 1 || mine.Me.ContactMethods[0].Type != "WEBHOOK" {
			t.Errorf("owner's methods after admin changes: %+v", mine)
		}
	})
}

func TestSchedulesPoliciesAndIntegrationsOverGraphQL(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		alice, bob, carol := h.createUser(db.RoleResponder), h.createUser(db.RoleResponder), h.createUser(db.RoleResponder)
		viewer := h.newUser(db.RoleViewer)

		const createSchedule = `mutation($input: CreateScheduleInput!) {
			createSchedule(input: $input) { id name timeZone layers { name shiftLength shiftUnit handoffAt participantIds participants { id }
				restrictions { startDay startTime durationMinutes } } } }`
		input := map[string]any{
			"name": "Primary", "timeZone": "Europe/Berlin",
			"layers": []any{map[string]any{
				"name": "daily", "shiftLength": 1, "shiftUnit": "DAYS", "handoffAt": "2026-01-05T09:00:00+01:00",
				"participantIds": []string{alice.ID, bob.ID},
			}, map[string]any{
				"name": "monday lunch", "shiftLength": 1, "shiftUnit": "WEEKS", "handoffAt": "2026-01-05T12:00:00+01:00",
				"participantIds": []string{carol.ID},
				"restrictions":   []any{map[string]any{"startDay": "MONDAY", "startTime": "12:00", "durationMinutes": 60}},
			}},
		}
		h.wantGQLError(viewer.Token, createSchedule, map[string]any{"input": input}, "FORBIDDEN")
		var created struct {
			Schedule struct {
				ID, Name, TimeZone string
				Layers             []struct {
					Name, ShiftUnit, HandoffAt string
					ShiftLength                int
					ParticipantIDs             []string `json:"participantIds"`
					Participants               []struct{ ID string }
					Restrictions               []struct {
						StartDay, StartTime string
						DurationMinutes     int
					}
				}
			} `json:"createSchedule"`
		}
		h.mustGQL(h.admin.Token, createSchedule, map[string]any{"input": input}, &created)
		sched := created.Schedule
		if sched.TimeZone != "Europe/Berlin" || len(sched.Layers) != 2 || !slices.Equal(sched.Layers[0].ParticipantIDs, []string{alice.ID, bob.ID}) ||
			len(sched.Layers[0].Participants) != 2 || sched.Layers[0].Participants[1].ID != bob.ID {
			t.Fatalf("created %+v", sched)
		}
		if r := sched.Layers[1].Restrictions; len(r) != 1 || r[0].StartDay != "MONDAY" || r[0].StartTime != "12:00" || r[0].DurationMinutes != 60 {
			t.Fatalf("restrictions %+v", r)
		}
		if h0, _ := time.Parse(time.RFC3339, sched.Layers[0].HandoffAt); !h0.Equal(time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)) {
			t.Fatalf("handoffAt %s", sched.Layers[0].HandoffAt)
		}

		bad := map[string]any{"name": "Bad", "timeZone": "Europe/Berlin", "layers": []any{map[string]any{
			"shiftLength": 0, "shiftUnit": "DAYS", "handoffAt": "2026-01-05T09:00:00Z", "participantIds": []string{alice.ID},
		}}}
		if e := h.wantGQLError(h.admin.Token, createSchedule, map[string]any{"input": bad}, "BAD_USER_INPUT"); e.Extensions.Field != "layers[0].shiftLength" {
			t.Errorf("bad layer names field %q", e.Extensions.Field)
		}
		bad["layers"] = []any{map[string]any{"shiftLength": 1, "shiftUnit": "DAYS", "handoffAt": "2026-01-05T09:00:00Z",
			"participantIds": []string{alice.ID}, "restrictions": []any{map[string]any{"startDay": "MONDAY", "startTime": "25:00", "durationMinutes": 60}}}}
		if e := h.wantGQLError(h.admin.Token, createSchedule, map[string]any{"input": bad}, "BAD_USER_INPUT"); e.Extensions.Field != "layers[0].restrictions[0].startTime" {
			t.Errorf("bad start time names field %q", e.Extensions.Field)
		}

		// Bob stands in for Alice on Monday afternoon.
		const createOverride = `mutation($input: CreateOverrideInput!) { createOverride(input: $input) { id user { id } replaceUser { id } start end } }`
		override := map[string]any{"scheduleId": sched.ID, "userId": bob.ID, "replaceUserId": alice.ID,
			"start": "2026-01-05T14:00:00Z", "end": "2026-01-05T16:00:00Z"}
		h.wantGQLError(viewer.Token, createOverride, map[string]any{"input": override}, "FORBIDDEN")
		h.mustGQL(h.admin.Token, createOverride, map[string]any{"input": override}, nil)

		onCall := func(at string) []string {
			t.Helper()
			var data struct {
				OnCall []struct{ ID string } `json:"onCall"`
			}
			h.mustGQL(viewer.Token, `query($s: ID!, $at: Time) { onCall(scheduleId: $s, at: $at) { id email } }`,
				map[string]any{"s": sched.ID, "at": at}, &data)
			var ids []string
			for _, u := range data.OnCall {
				ids = append(ids, u.ID)
			}
			return ids
		}
		for _, tc := range []struct {
			at   string
			want []string
		}{
			{"2026-01-05T09:00:00Z", []string{alice.ID}},
			{"2026-01-05T11:30:00Z", []string{carol.ID}}, // Monday 12:30 in Berlin
			{"2026-01-05T15:00:00Z", []string{bob.ID}},
			{"2026-01-06T09:00:00Z", []string{bob.ID}},
		} {
			if got := onCall(tc.at); !slices.Equal(got, tc.want) {
				t.Errorf("on call at %s: %v, want %v", tc.at, got, tc.want)
			}
		}
		var now struct {
			OnCall []struct{ ID string } `json:"onCall"`
		}
		h.mustGQL(viewer.Token, `query($s: ID!) { onCall(scheduleId: $s) { id } }`, map[string]any{"s": sched.ID}, &now)
		if len(now.OnCall) != 1 {
			t.Errorf("on call now: %+v", now)
		}

		var shifts struct {
			Shifts []struct {
				Start, End string
				Users      []struct{ ID string }
			} `json:"shifts"`
		}
		h.mustGQL(viewer.Token, `query($s: ID!) { shifts(scheduleId: $s, from: "2026-01-05T08:00:00Z", to: "2026-01-06T08:00:00Z") { start end users { id } } }`,
			map[string]any{"s": sched.ID}, &shifts)
		var got []string
		for _, s := range shifts.Shifts {
			got = append(got, s.Start+" "+s.Users[0].ID)
		}
		want := []string{
			"2026-01-05T08:00:00Z " + alice.ID, "2026-01-05T11:00:00Z " + carol.ID, "2026-01-05T12:00:00Z " + alice.ID,
			"2026-01-05T14:00:00Z " + bob.ID, "2026-01-05T16:00:00Z " + alice.ID,
		}
		if !slices.Equal(got, want) {
			t.Errorf("shifts %v, want %v", got, want)
		}
		h.wantGQLError(viewer.Token, `query($s: ID!) { shifts(scheduleId: $s, from: "2026-01-06T00:00:00Z", to: "2026-01-05T00:00:00Z") { start } }`,
			map[string]any{"s": sched.ID}, "BAD_USER_INPUT")

		// An escalation policy over the schedule, a group and the recipients.
		group := h.pagingGroup(alice.ID, carol.ID)
		const createPolicy = `mutation($input: CreateEscalationPolicyInput!) {
			createEscalationPolicy(input: $input) { id name repeat steps { delayMinutes targets { type id name } } } }`
		policyInput := map[string]any{"name": "Default", "repeat": 2, "steps": []any{
			map[string]any{"delayMinutes": 5, "targets": []any{map[string]any{"type": "SCHEDULE", "id": sched.ID}}},
			map[string]any{"delayMinutes": 10, "targets": []any{map[string]any{"type": "GROUP", "id": group}, map[string]any{"type": "RECIPIENTS"}}},
		}}
		h.wantGQLError(viewer.Token, createPolicy, map[string]any{"input": policyInput}, "FORBIDDEN")
		var policy struct {
			P struct {
				ID     string
				Repeat int
				Steps  []struct {
					DelayMinutes int
					Targets      []struct {
						Type string
						ID   *string
						Name string
					}
				}
			} `json:"createEscalationPolicy"`
		}
		h.mustGQL(h.admin.Token, createPolicy, map[string]any{"input": policyInput}, &policy)
		p := policy.P
		if p.Repeat != 2 || len(p.Steps) != 2 || p.Steps[0].Targets[0].Name != "Primary" || p.Steps[1].Targets[1].Type != "RECIPIENTS" ||
			p.Steps[1].Targets[1].ID != nil || p.Steps[1].Targets[0].ID == nil || *p.Steps[1].Targets[0].ID != group {
			t.Fatalf("policy %+v", p)
		}
		noTargets := map[string]any{"name": "Empty", "steps": []any{map[string]any{"delayMinutes": 5, "targets": []any{}}}}
		if e := h.wantGQLError(h.admin.Token, createPolicy, map[string]any{"input": noTargets}, "BAD_USER_INPUT"); e.Extensions.Field != "steps[0].targets" {
			t.Errorf("a step without targets names field %q", e.Extensions.Field)
		}
		if e := h.wantGQLError(h.admin.Token, `mutation($id: ID!) { deleteSchedule(id: $id) }`, map[string]any{"id": sched.ID}, "BAD_USER_INPUT"); e.Extensions.Field != "id" {
			t.Errorf("deleting a targeted schedule names field %q", e.Extensions.Field)
		}

		// An integration paging by the policy, for Bob and the group.
		const createInteg = `mutation($input: CreateIntegrationInput!) {
			createIntegration(input: $input) { id url escalationPolicy { id name } recipientUsers { id } recipientGroups { id } } }`
		integInput := map[string]any{"name": "Detectify", "type": "DETECTIFY", "escalationPolicyId": p.ID,
			"recipientUserIds": []string{bob.ID}, "recipientGroupIds": []string{group}}
		h.wantGQLError(viewer.Token, createInteg, map[string]any{"input": integInput}, "FORBIDDEN")
		var integ struct {
			I pagingInteg `json:"createIntegration"`
		}
		h.mustGQL(h.admin.Token, createInteg, map[string]any{"input": integInput}, &integ)
		if integ.I.EscalationPolicy == nil || integ.I.EscalationPolicy.ID != p.ID || len(integ.I.RecipientUsers) != 1 ||
			integ.I.RecipientUsers[0].ID != bob.ID || len(integ.I.RecipientGroups) != 1 || integ.I.RecipientGroups[0].ID != group {
			t.Fatalf("integration %+v", integ.I)
		}
		integInput["name"], integInput["recipientUserIds"] = "Bad", []string{"999999"}
		if e := h.wantGQLError(h.admin.Token, createInteg, map[string]any{"input": integInput}, "BAD_USER_INPUT"); e.Extensions.Field != "recipientUserIds[0]" {
			t.Errorf("unknown recipient names field %q", e.Extensions.Field)
		}

		// Leaving the policy out keeps it; an explicit null clears it.
		const updateInteg = `mutation($id: ID!, $input: UpdateIntegrationInput!) {
			updateIntegration(id: $id, input: $input) { id escalationPolicy { id } recipientUsers { id } recipientGroups { id } } }`
		var upd struct {
			I pagingInteg `json:"updateIntegration"`
		}
		h.mustGQL(h.admin.Token, updateInteg, map[string]any{"id": integ.I.ID, "input": map[string]any{"name": "Renamed", "recipientGroupIds": []string{}}}, &upd)
		if upd.I.EscalationPolicy == nil || len(upd.I.RecipientUsers) != 1 || len(upd.I.RecipientGroups) != 0 {
			t.Fatalf("after rename %+v", upd.I)
		}
		h.mustGQL(h.admin.Token, updateInteg, map[string]any{"id": integ.I.ID, "input": map[string]any{"escalationPolicyId": nil}}, &upd)
		if upd.I.EscalationPolicy != nil || len(upd.I.RecipientUsers) != 1 {
			t.Fatalf("after clearing the policy %+v", upd.I)
		}

		// An alert shows its (so far empty) notifications.
		var alertData struct {
			Alert struct {
				Notifications []struct{ ID string } `json:"notifications"`
			} `json:"alert"`
		}
		r := h.postWebhook(integ.I.token(t), finding("paging-1", "high"))
		if r.alert() == "" {
			t.Fatalf("webhook: %s", r.Raw)
		}
		h.mustGQL(viewer.Token, `query($id: ID!) { alert(id: $id) { escalationPolicy { id } notifications { id status channel attempts error user { id } contactMethod { type } } } }`,
			map[string]any{"id": r.alert()}, &alertData)
		if alertData.Alert.Notifications == nil {
			t.Errorf("notifications: %+v", alertData)
		}

		var lists struct {
			Schedules          []struct{ ID string } `json:"schedules"`
			EscalationPolicies []struct{ ID string } `json:"escalationPolicies"`
		}
		h.mustGQL(viewer.Token, `{ schedules { id overrides(from: "2026-01-01T00:00:00Z") { id } } escalationPolicies { id steps { targets { name } } } }`, nil, &lists)
		if len(lists.Schedules) != 1 || len(lists.EscalationPolicies) != 1 {
			t.Errorf("lists %+v", lists)
		}
		h.mustGQL(h.admin.Token, `mutation($id: ID!) { deleteEscalationPolicy(id: $id) }`, map[string]any{"id": p.ID}, nil)
		h.mustGQL(h.admin.Token, `mutation($id: ID!) { deleteSchedule(id: $id) }`, map[string]any{"id": sched.ID}, nil)
	})
}

// pagingGroup makes a group with members over GraphQL as admin.
func (h *harness) pagingGroup(members ...string) string {
	h.t.Helper()
	var data struct {
		G struct{ ID string } `json:"createGroup"`
	}
	h.mustGQL(h.admin.Token, `mutation($name: String!, $m: [ID!]) { createGroup(input: {name: $name, memberIds: $m}) { id } }`,
		map[string]any{"name": h.unique("group"), "m": members}, &data)
	return data.G.ID
}

// pagingInteg is an integration as the paging queries read it.
type pagingInteg struct {
	ID               string
	URL              string
	EscalationPolicy *struct{ ID, Name string }
	RecipientUsers   []struct{ ID string }
	RecipientGroups  []struct{ ID string }
}

func (i pagingInteg) token(t *testing.T) string {
	return integration{ID: i.ID, URL: i.URL}.Token(t)
}

// TestHandoffInRepeatedHourOverGraphQL checks, through the API the
// escalation engine's answers are seen in, that a handoffAt inside the hour
// a fall-back repeats is the instant the first participant goes on call,
// east and west of UTC.
func TestHandoffInRepeatedHourOverGraphQL(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		alice, bob := h.createUser(db.RoleResponder), h.createUser(db.RoleResponder)
		viewer := h.newUser(db.RoleViewer)
		for _, tc := range []struct {
			zone, handoffAt string
			instant         time.Time
		}{
			{"Europe/Berlin", "2026-10-25T02:30:00+02:00", time.Date(2026, 10, 25, 0, 30, 0, 0, time.UTC)},
			{"America/New_York", "2026-11-01T01:30:00-05:00", time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC)},
		} {
			var created struct {
				Schedule struct {
					ID     string
					Layers []struct{ HandoffAt string }
				} `json:"createSchedule"`
			}
			h.mustGQL(h.admin.Token, `mutation($input: CreateScheduleInput!) { createSchedule(input: $input) { id layers { handoffAt } } }`,
				map[string]any{"input": map[string]any{
					"name": h.unique("repeated hour"), "timeZone": tc.zone,
					"layers": []any{map[string]any{
						"shiftLength": 1, "shiftUnit": "DAYS", "handoffAt": tc.handoffAt,
						"participantIds": []string{alice.ID, bob.ID},
					}},
				}}, &created)
			sched := created.Schedule
			if got, _ := time.Parse(time.RFC3339, sched.Layers[0].HandoffAt); !got.Equal(tc.instant) {
				t.Fatalf("%s: handoffAt echoed as %s, want %s", tc.zone, sched.Layers[0].HandoffAt, tc.instant)
			}
			onCall := func(at time.Time) []string {
				t.Helper()
				var data struct {
					OnCall []struct{ ID string } `json:"onCall"`
				}
				h.mustGQL(viewer.Token, `query($s: ID!, $at: Time) { onCall(scheduleId: $s, at: $at) { id } }`,
					map[string]any{"s": sched.ID, "at": at.Format(time.RFC3339Nano)}, &data)
				var ids []string
				for _, u := range data.OnCall {
					ids = append(ids, u.ID)
				}
				return ids
			}
			if got := onCall(tc.instant); !slices.Equal(got, []string{alice.ID}) {
				t.Errorf("%s: on call at handoffAt %s: %v, want alice %s", tc.zone, tc.instant, got, alice.ID)
			}
			if got := onCall(tc.instant.Add(-time.Minute)); !slices.Equal(got, []string{bob.ID}) {
				t.Errorf("%s: on call a minute before handoffAt: %v, want bob %s", tc.zone, got, bob.ID)
			}

			var shifts struct {
				Shifts []struct {
					Start string
					Users []struct{ ID string }
				} `json:"shifts"`
			}
			h.mustGQL(viewer.Token, `query($s: ID!, $from: Time!, $to: Time!) { shifts(scheduleId: $s, from: $from, to: $to) { start users { id } } }`,
				map[string]any{"s": sched.ID, "from": tc.instant.Add(-3 * time.Hour).Format(time.RFC3339), "to": tc.instant.Add(3 * time.Hour).Format(time.RFC3339)}, &shifts)
			if len(shifts.Shifts) != 2 || shifts.Shifts[1].Start != tc.instant.Format(time.RFC3339) || shifts.Shifts[1].Users[0].ID != alice.ID {
				t.Errorf("%s: shifts %+v, want alice's to start at %s", tc.zone, shifts.Shifts, tc.instant.Format(time.RFC3339))
			}
		}
	})
}

func TestChannelsReportWhetherTheyAreConfigured(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	h.channels.SetSenders(notifiers.Senders{db.ContactWebhook: notifiers.NewWebhook(nil)})
	h.wantGQLError("", `{ channels { type enabled } }`, nil, "UNAUTHENTICATED")
	viewer := h.newUser(db.RoleViewer)
	var data struct {
		Channels []struct {
			Type    string `json:"type"`
			Enabled bool   `json:"enabled"`
		} `json:"channels"`
	}
	h.mustGQL(viewer.Token, `{ channels { type enabled } }`, nil, &data)
	got := map[string]bool{}
	for _, c := range data.Channels {
		got[c.Type] = c.Enabled
	}
	if len(got) != len(db.ContactTypes) || !got["WEBHOOK"] || got["EMAIL"] || got["SMS"] {
		t.Fatalf("channels: %+v", data.Channels)
	}
}
