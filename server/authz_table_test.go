package server_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/heartbeats"
)

const alertState = `query($id: ID!) { alert(id: $id) { status acknowledgedAt closedAt assignedTo { id } } }`

const alertTimeline = `query($id: ID!) { alert(id: $id) { timeline { type message user { id } } } }`

// authzTable holds an entry for every field of Query, Mutation and
// Subscription. TestAuthzMatrix fails for a field without one, so new API
// surface must say who may call it.
var authzTable = map[string]authzEntry{
	// Queries: everyone signed in reads everything; what is private is
	// hidden field by field (see TestAuthzFieldVisibility).
	"Query.me":            {rule: ruleViewer, doc: `{ me { id role } }`},
	"Query.apiKeys":       {rule: ruleViewer, doc: `{ apiKeys { id owner { id } } }`},
	"Query.channels":      {rule: ruleViewer, doc: `{ channels { type enabled } }`},
	"Query.pushPublicKey": {rule: ruleViewer, doc: `{ pushPublicKey }`},
	"Query.users":         {rule: ruleViewer, doc: `{ users { id email contactMethods { id } } }`},
	"Query.user": {rule: ruleViewer, doc: `query($id: ID!) { user(id: $id) { id email } }`,
		fixture: withID(func(f *authzFixture) string { return f.owner.ID })},
	"Query.groups": {rule: ruleViewer, doc: `{ groups { id members { id } } }`},
	"Query.group": {rule: ruleViewer, doc: `query($id: ID!) { group(id: $id) { id name } }`,
		fixture: withID(func(f *authzFixture) string { return f.groupID })},
	"Query.integrations": {rule: ruleViewer, doc: `{ integrations { id name url } }`},
	"Query.integration": {rule: ruleViewer, doc: `query($id: ID!) { integration(id: $id) { id url ruleset { id } } }`,
		fixture: withID(func(f *authzFixture) string { return f.integ.ID })},
	"Query.heartbeatMonitors": {rule: ruleViewer, doc: `{ heartbeatMonitors { id name url status } }`},
	"Query.heartbeatMonitor": {rule: ruleViewer, doc: `query($id: ID!) { heartbeatMonitor(id: $id) { id url recipientUsers { id } escalationPolicy { id } } }`,
		fixture: withID(func(f *authzFixture) string { return f.newHeartbeat() })},
	"Query.rulesets": {rule: ruleViewer, doc: `{ rulesets { id rules { name } } }`},
	"Query.ruleset": {rule: ruleViewer, doc: `query($id: ID!) { ruleset(id: $id) { id name } }`,
		fixture: withID(func(f *authzFixture) string { return f.rulesetID })},
	"Query.replayRuleset": {rule: ruleAdmin, doc: `query($id: ID!) { replayRuleset(integrationId: $id, ruleset: {rules: [{action: OPEN}]},
		from: "2026-01-01T00:00:00Z", to: "2036-01-01T00:00:00Z") { messages before { status count } } }`,
		fixture: withID(func(f *authzFixture) string { return f.integ.ID })},
	"Query.alerts": {rule: ruleViewer, doc: `{ alerts { totalCount nodes { id } } }`},
	"Query.findingStats": {rule: ruleViewer, doc: `query($id: ID!) { findingStats(integrationId: $id, from: "2020-01-01T00:00:00Z", to: "2040-01-01T00:00:00Z") { severities { severity opened closed regressions overdue medianSecondsToClose } } }`,
		fixture: withID(func(f *authzFixture) string { return f.integ.ID })},
	"Query.alert": {rule: ruleViewer, doc: `query($id: ID!) { alert(id: $id) { id status timeline { type } notifications { id } } }`,
		fixture: withID(func(f *authzFixture) string { return f.alertID })},
	"Query.inboundMessages": {rule: ruleViewer, doc: `{ inboundMessages { totalCount nodes { id status } } }`},
	"Query.inboundMessage": {rule: ruleViewer, doc: `query($id: ID!) { inboundMessage(id: $id) { id status body } }`,
		fixture: withID(func(f *authzFixture) string { return f.messageID })},
	"Query.schedules": {rule: ruleViewer, doc: `{ schedules { id layers { participants { id } } } }`},
	"Query.schedule": {rule: ruleViewer, doc: `query($id: ID!) { schedule(id: $id) { id overrides { id } } }`,
		fixture: withID(func(f *authzFixture) string { return f.scheduleID })},
	"Query.onCall": {rule: ruleViewer, doc: `query($id: ID!) { onCall(scheduleId: $id) { id } }`,
		fixture: withID(func(f *authzFixture) string { return f.scheduleID })},
	"Query.shifts": {rule: ruleViewer, doc: `query($id: ID!) { shifts(scheduleId: $id, from: "2026-01-01T00:00:00Z", to: "2026-01-15T00:00:00Z") { start users { id } } }`,
		fixture: withID(func(f *authzFixture) string { return f.scheduleID })},
	"Query.shiftSwaps": {rule: ruleViewer, doc: `query($id: ID!) { shiftSwaps(scheduleId: $id) { id status expiresAt } }`,
		fixture: withID(func(f *authzFixture) string { return f.swapScheduleID })},
	"Query.pendingShiftSwaps":  {rule: ruleViewer, doc: `{ pendingShiftSwaps { id toUser { id } } }`},
	"Query.escalationPolicies": {rule: ruleViewer, doc: `{ escalationPolicies { id steps { targets { name } } } }`},
	"Query.escalationPolicy": {rule: ruleViewer, doc: `query($id: ID!) { escalationPolicy(id: $id) { id name } }`,
		fixture: withID(func(f *authzFixture) string { return f.policyID })},
	"Query.maintenanceWindows": {rule: ruleViewer, doc: `{ maintenanceWindows(activeAt: "2036-01-01T01:00:00Z") { id integrations { id } recurrence { weekdays } activeUntil } }`},
	"Query.maintenanceWindow": {rule: ruleViewer, doc: `query($id: ID!) { maintenanceWindow(id: $id) { id name startsAt endsAt pageOpenAlertsAfter } }`,
		fixture: withID(func(f *authzFixture) string { return f.newWindow() })},
	// Who changed what is for admins only.
	"Query.workflows": {rule: ruleAdmin, doc: `{ workflows { id name on integration { id } conditions { field } action { method url headers { name value } body } } }`},
	"Query.workflow": {rule: ruleAdmin, doc: `query($id: ID!) { workflow(id: $id) { id name action { body } } }`,
		fixture: withID(func(f *authzFixture) string { return f.newWorkflow() })},
	"Query.auditLog": {rule: ruleAdmin, doc: `{ auditLog(first: 5) { totalCount nodes { id action actor { id } changes } } }`},

	// Sessions and API keys.
	"Mutation.login": {rule: ruleAnyone, doc: `mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }`,
		fixture: func(f *authzFixture) authzCall {
			return authzCall{vars: map[string]any{"email": f.owner.Email, "password": f.owner.Password}}
		}},
	"Mutation.signOut": {rule: ruleViewer, doc: `mutation { signOut }`, freshCaller: true,
		state: func(f *authzFixture, c authzCall) string { return f.signedIn(c.as.Token) }},
	"Mutation.signOutUser": {rule: ruleAdmin, doc: `mutation($id: ID!) { signOutUser(userId: $id) }`,
		fixture: func(f *authzFixture) authzCall {
			victim := f.newUser(db.RoleViewer)
			return authzCall{vars: map[string]any{"id": victim.ID}, owner: victim}
		},
		state: func(f *authzFixture, c authzCall) string { return f.signedIn(c.owner.Token) }},
	"Mutation.createApiKey": {rule: ruleViewer, doc: `mutation($name: String!) { createApiKey(input: {name: $name, role: VIEWER}) { secret } }`,
		fixture: newName, state: countRows((*db.APIKey)(nil))},
	"Mutation.revokeApiKey": {rule: ruleSelfOrAdmin, doc: `mutation($id: ID!) { revokeApiKey(id: $id) }`,
		fixture: func(f *authzFixture) authzCall {
			var data struct {
				Key struct {
					APIKey struct{ ID string } `json:"apiKey"`
				} `json:"createApiKey"`
			}
			f.mustGQL(f.owner.Token, `mutation($name: String!) { createApiKey(input: {name: $name, role: VIEWER}) { apiKey { id } } }`,
				map[string]any{"name": f.unique("key")}, &data)
			return authzCall{vars: map[string]any{"id": data.Key.APIKey.ID}, owner: f.owner}
		},
		state: func(f *authzFixture, c authzCall) string { return f.read(`{ apiKeys { id } }`, nil) }},

	// Users and groups.
	"Mutation.createUser": {rule: ruleAdmin, doc: `mutation($email: String!) { createUser(input: {email: $email, password: "long enough password"}) { id } }`,
		fixture: func(f *authzFixture) authzCall {
			return authzCall{vars: map[string]any{"email": f.unique("new") + "@example.com"}}
		},
		state: countRows((*db.User)(nil))},
	"Mutation.updateUser": {rule: ruleSelfOrAdmin, doc: `mutation($id: ID!, $name: String!) { updateUser(id: $id, input: {name: $name}) { id name } }`,
		fixture: func(f *authzFixture) authzCall {
			return authzCall{vars: map[string]any{"id": f.owner.ID, "name": f.unique("Renamed")}, owner: f.owner}
		},
		state: readByID(`query($id: ID!) { user(id: $id) { name email role } }`)},
	"Mutation.deleteUser": {rule: ruleAdmin, doc: `mutation($id: ID!) { deleteUser(id: $id) }`,
		fixture: withID(func(f *authzFixture) string { return f.createUser(db.RoleViewer).ID }),
		state:   readByID(`query($id: ID!) { user(id: $id) { id email } }`)},
	"Mutation.createGroup": {rule: ruleAdmin, doc: `mutation($name: String!) { createGroup(input: {name: $name}) { id } }`,
		fixture: newName, state: countRows((*db.Group)(nil))},
	"Mutation.updateGroup": {rule: ruleAdmin, doc: `mutation($id: ID!, $name: String!) { updateGroup(id: $id, input: {name: $name}) { id } }`,
		fixture: withName(func(f *authzFixture) string { return f.newGroup() }),
		state:   readByID(`query($id: ID!) { group(id: $id) { name description members { id } } }`)},
	"Mutation.deleteGroup": {rule: ruleAdmin, doc: `mutation($id: ID!) { deleteGroup(id: $id) }`,
		fixture: withID(func(f *authzFixture) string { return f.newGroup() }),
		state:   readByID(`query($id: ID!) { group(id: $id) { id } }`)},
	"Mutation.addGroupMember": {rule: ruleAdmin, doc: `mutation($id: ID!, $user: ID!) { addGroupMember(groupId: $id, userId: $user) { id } }`,
		fixture: func(f *authzFixture) authzCall {
			return authzCall{vars: map[string]any{"id": f.newGroup(), "user": f.viewer.ID}}
		},
		state: readByID(`query($id: ID!) { group(id: $id) { members { id } } }`)},
	"Mutation.removeGroupMember": {rule: ruleAdmin, doc: `mutation($id: ID!, $user: ID!) { removeGroupMember(groupId: $id, userId: $user) { id } }`,
		fixture: func(f *authzFixture) authzCall {
			return authzCall{vars: map[string]any{"id": f.newGroup(f.viewer.ID), "user": f.viewer.ID}}
		},
		state: readByID(`query($id: ID!) { group(id: $id) { members { id } } }`)},

	// Integrations and rulesets.
	"Mutation.createIntegration": {rule: ruleAdmin, doc: `mutation($name: String!) { createIntegration(input: {name: $name, type: GENERIC}) { id } }`,
		fixture: newName, state: countRows((*db.Integration)(nil))},
	"Mutation.updateIntegration": {rule: ruleAdmin, doc: `mutation($id: ID!, $name: String!) { updateIntegration(id: $id, input: {name: $name, enabled: false}) { id } }`,
		fixture: withName(newIntegrationID),
		state:   readByID(`query($id: ID!) { integration(id: $id) { name enabled url } }`)},
	"Mutation.deleteIntegration": {rule: ruleAdmin, doc: `mutation($id: ID!) { deleteIntegration(id: $id) }`,
		fixture: withID(newIntegrationID),
		state:   readByID(`query($id: ID!) { integration(id: $id) { id } }`)},
	"Mutation.rotateIntegrationToken": {rule: ruleAdmin, doc: `mutation($id: ID!) { rotateIntegrationToken(id: $id) { id } }`,
		fixture: withID(newIntegrationID),
		state:   readByID(`query($id: ID!) { integration(id: $id) { url } }`)},
	// Heartbeat monitors.
	"Mutation.createHeartbeatMonitor": {rule: ruleAdmin, doc: `mutation($name: String!, $user: ID!) { createHeartbeatMonitor(input: {name: $name, intervalMinutes: 10, recipientUserIds: [$user]}) { id } }`,
		fixture: func(f *authzFixture) authzCall {
			return authzCall{vars: map[string]any{"name": f.unique("heartbeat"), "user": f.owner.ID}}
		},
		state: countRows((*heartbeats.Monitor)(nil))},
	"Mutation.updateHeartbeatMonitor": {rule: ruleAdmin, doc: `mutation($id: ID!, $name: String!) { updateHeartbeatMonitor(id: $id, input: {name: $name, graceMinutes: 5}) { id } }`,
		fixture: withName(func(f *authzFixture) string { return f.newHeartbeat() }),
		state:   readByID(`query($id: ID!) { heartbeatMonitor(id: $id) { name graceMinutes } }`)},
	"Mutation.deleteHeartbeatMonitor": {rule: ruleAdmin, doc: `mutation($id: ID!) { deleteHeartbeatMonitor(id: $id) }`,
		fixture: withID(func(f *authzFixture) string { return f.newHeartbeat() }),
		state:   readByID(`query($id: ID!) { heartbeatMonitor(id: $id) { id } }`)},
	"Mutation.rotateHeartbeatToken": {rule: ruleAdmin, doc: `mutation($id: ID!) { rotateHeartbeatToken(id: $id) { id } }`,
		fixture: withID(func(f *authzFixture) string { return f.newHeartbeat() }),
		state:   readByID(`query($id: ID!) { heartbeatMonitor(id: $id) { url } }`)},
	"Mutation.testIntegration": {rule: ruleAdmin, doc: `mutation($id: ID!, $payload: JSON!) { testIntegration(id: $id, payload: $payload) { status } }`,
		fixture: func(f *authzFixture) authzCall {
			return authzCall{vars: map[string]any{"id": f.integ.ID, "payload": json.RawMessage(finding(f.unique("dry"), "high"))}}
		},
		state: func(f *authzFixture, _ authzCall) string {
			return f.rows((*db.InboundMessage)(nil)) + " messages, " + f.rows((*db.Alert)(nil)) + " alerts"
		},
		noEffect: true},
	"Mutation.createRuleset": {rule: ruleAdmin, doc: `mutation($name: String!) { createRuleset(input: {name: $name, rules: [{action: OPEN}]}) { id } }`,
		fixture: newName, state: countRows((*db.Ruleset)(nil))},
	"Mutation.updateRuleset": {rule: ruleAdmin, doc: `mutation($id: ID!, $name: String!) { updateRuleset(id: $id, input: {name: $name, rules: [{action: IGNORE}]}) { id } }`,
		fixture: withName(func(f *authzFixture) string { return f.newRuleset() }),
		state:   readByID(`query($id: ID!) { ruleset(id: $id) { name rules { action } } }`)},
	"Mutation.deleteRuleset": {rule: ruleAdmin, doc: `mutation($id: ID!) { deleteRuleset(id: $id) }`,
		fixture: withID(func(f *authzFixture) string { return f.newRuleset() }),
		state:   readByID(`query($id: ID!) { ruleset(id: $id) { id } }`)},

	// Per-user paging settings: the owner's and admins' alone.
	"Mutation.createContactMethod": {rule: ruleSelfOrAdmin, doc: `mutation($user: ID!, $value: String!) { createContactMethod(input: {userId: $user, type: EMAIL, value: $value}) { id } }`,
		fixture: func(f *authzFixture) authzCall {
			return authzCall{vars: map[string]any{"user": f.owner.ID, "value": f.unique("new") + "@example.com"}, owner: f.owner}
		},
		state: ownerContactMethods},
	"Mutation.updateContactMethod": {rule: ruleSelfOrAdmin, doc: `mutation($id: ID!, $name: String!) { updateContactMethod(id: $id, input: {name: $name, disabled: true}) { id } }`,
		fixture: ownContactMethod, state: ownerContactMethods},
	"Mutation.deleteContactMethod": {rule: ruleSelfOrAdmin, doc: `mutation($id: ID!) { deleteContactMethod(id: $id) }`,
		fixture: ownContactMethod, state: ownerContactMethods},
	"Mutation.sendContactMethodVerification": {rule: ruleSelfOrAdmin, doc: `mutation($id: ID!) { sendContactMethodVerification(id: $id) }`,
		fixture: ownContactMethod,
		state: func(f *authzFixture, c authzCall) string {
			return fmt.Sprintf("%d codes sent", len(f.codes.sent(c.ref)))
		}},
	"Mutation.verifyContactMethod": {rule: ruleSelfOrAdmin, doc: `mutation($id: ID!, $code: String!) { verifyContactMethod(id: $id, code: $code) { id verified } }`,
		// Even the right code does not let anyone else verify the
		// owner's address.
		fixture: func(f *authzFixture) authzCall {
			c := ownContactMethod(f)
			f.mustGQL(f.admin.Token, `mutation($id: ID!) { sendContactMethodVerification(id: $id) }`, map[string]any{"id": c.vars["id"]}, nil)
			codes := f.codes.sent(c.ref)
			if len(codes) != 1 {
				f.t.Fatalf("%d verification codes sent to %s", len(codes), c.ref)
			}
			c.vars["code"] = codes[0]
			return c
		},
		state: ownerContactMethods},
	"Mutation.registerPushSubscription": {rule: ruleViewer, doc: `mutation($endpoint: String!, $p256dh: String!, $auth: String!) {
		registerPushSubscription(input: {endpoint: $endpoint, p256dh: $p256dh, auth: $auth}) { id } }`,
		fixture: func(f *authzFixture) authzCall {
			key, err := ecdh.P256().GenerateKey(rand.Reader)
			if err != nil {
				f.t.Fatal(err)
			}
			return authzCall{vars: map[string]any{
				"endpoint": "https://push.example/send/" + f.unique("browser"),
				"p256dh":   base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes()),
				"auth":     base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef")),
			}}
		},
		state: countRows((*db.ContactMethod)(nil))},
	"Mutation.createNotificationRule": {rule: ruleSelfOrAdmin, doc: `mutation($id: ID!) { createNotificationRule(input: {contactMethodId: $id, delayMinutes: 3}) { id } }`,
		fixture: ownContactMethod, state: ownerNotificationRules},
	"Mutation.deleteNotificationRule": {rule: ruleSelfOrAdmin, doc: `mutation($id: ID!) { deleteNotificationRule(id: $id) }`,
		fixture: func(f *authzFixture) authzCall {
			return authzCall{vars: map[string]any{"id": f.newNotificationRule()}, owner: f.owner}
		},
		state: ownerNotificationRules},

	// Schedules and escalation policies.
	"Mutation.createSchedule": {rule: ruleAdmin, doc: `mutation($name: String!) { createSchedule(input: {name: $name, timeZone: "UTC"}) { id } }`,
		fixture: newName, state: countRows((*db.Schedule)(nil))},
	"Mutation.updateSchedule": {rule: ruleAdmin, doc: `mutation($id: ID!, $name: String!) { updateSchedule(id: $id, input: {name: $name, layers: []}) { id } }`,
		fixture: withName(func(f *authzFixture) string { return f.newSchedule() }),
		state:   readByID(`query($id: ID!) { schedule(id: $id) { name timeZone layers { id } } }`)},
	"Mutation.deleteSchedule": {rule: ruleAdmin, doc: `mutation($id: ID!) { deleteSchedule(id: $id) }`,
		fixture: withID(func(f *authzFixture) string { return f.newSchedule() }),
		state:   readByID(`query($id: ID!) { schedule(id: $id) { id } }`)},
	// A participant puts themselves on call alongside whoever is; the
	// other callers are not in the schedule's layers (the responder is
	// in another schedule's).
	"Mutation.createOverride": {rule: ruleParticipantOrAdmin, doc: `mutation($id: ID!, $user: ID!, $start: Time!, $end: Time!) {
		createOverride(input: {scheduleId: $id, userId: $user, start: $start, end: $end, alongside: true}) { id alongside } }`,
		fixture: func(f *authzFixture) authzCall {
			start := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
			return authzCall{vars: map[string]any{"id": f.swapScheduleID, "user": f.participant.ID,
				"start": start.Format(time.RFC3339), "end": start.Add(time.Hour).Format(time.RFC3339)}, owner: f.participant}
		},
		state: readByID(`query($id: ID!) { schedule(id: $id) { overrides { id } } }`)},
	"Mutation.deleteOverride": {rule: ruleAdmin, doc: `mutation($id: ID!) { deleteOverride(id: $id) }`,
		fixture: withID(func(f *authzFixture) string { return f.newOverride() }),
		state: func(f *authzFixture, _ authzCall) string {
			return f.read(`query($id: ID!) { schedule(id: $id) { overrides { id } } }`, map[string]any{"id": f.scheduleID})
		}},
	// Shift swaps: asked and cancelled by the participant on call,
	// answered by the participant asked.
	"Mutation.requestShiftSwap": {rule: ruleParticipant, doc: `mutation($id: ID!, $to: ID!, $start: Time!, $end: Time!) {
		requestShiftSwap(input: {scheduleId: $id, toUserId: $to, start: $start, end: $end}) { id status fromUser { id } toUser { id } schedule { id } } }`,
		fixture: func(f *authzFixture) authzCall {
			start, end := f.swapSpan()
			return authzCall{vars: map[string]any{"id": f.swapScheduleID, "to": f.partner.ID, "start": start, "end": end}, owner: f.participant}
		},
		state: func(f *authzFixture, c authzCall) string { return f.swapStates(c) }},
	"Mutation.acceptShiftSwap": {rule: ruleParticipant, doc: `mutation($id: ID!) { acceptShiftSwap(id: $id) { id status override { id } } }`,
		fixture: func(f *authzFixture) authzCall {
			return authzCall{vars: map[string]any{"id": f.newSwap()}, owner: f.partner}
		},
		state: func(f *authzFixture, c authzCall) string { return f.swapStates(c) }},
	"Mutation.declineShiftSwap": {rule: ruleParticipant, doc: `mutation($id: ID!) { declineShiftSwap(id: $id) { id status } }`,
		fixture: func(f *authzFixture) authzCall {
			return authzCall{vars: map[string]any{"id": f.newSwap()}, owner: f.partner}
		},
		state: func(f *authzFixture, c authzCall) string { return f.swapStates(c) }},
	"Mutation.cancelShiftSwap": {rule: ruleParticipant, doc: `mutation($id: ID!) { cancelShiftSwap(id: $id) { id status } }`,
		fixture: func(f *authzFixture) authzCall {
			return authzCall{vars: map[string]any{"id": f.newSwap()}, owner: f.participant}
		},
		state: func(f *authzFixture, c authzCall) string { return f.swapStates(c) }},
	"Mutation.createEscalationPolicy": {rule: ruleAdmin, doc: `mutation($name: String!) {
		createEscalationPolicy(input: {name: $name, steps: [{delayMinutes: 1, targets: [{type: RECIPIENTS}]}]}) { id } }`,
		fixture: newName, state: countRows((*db.EscalationPolicy)(nil))},
	"Mutation.updateEscalationPolicy": {rule: ruleAdmin, doc: `mutation($id: ID!, $name: String!) { updateEscalationPolicy(id: $id, input: {name: $name, repeat: 2}) { id } }`,
		fixture: withName(func(f *authzFixture) string { return f.newPolicy() }),
		state:   readByID(`query($id: ID!) { escalationPolicy(id: $id) { name repeat steps { id } } }`)},
	"Mutation.deleteEscalationPolicy": {rule: ruleAdmin, doc: `mutation($id: ID!) { deleteEscalationPolicy(id: $id) }`,
		fixture: withID(func(f *authzFixture) string { return f.newPolicy() }),
		state:   readByID(`query($id: ID!) { escalationPolicy(id: $id) { id } }`)},

	// Maintenance windows.
	"Mutation.createMaintenanceWindow": {rule: ruleAdmin, doc: `mutation($name: String!, $integ: ID!) {
		createMaintenanceWindow(input: {name: $name, integrationIds: [$integ], startsAt: "2036-02-01T00:00:00Z",
			recurrence: {weekdays: [SUNDAY], startTime: "02:00", durationMinutes: 60, timeZone: "Europe/Berlin"}}) { id } }`,
		fixture: func(f *authzFixture) authzCall {
			return authzCall{vars: map[string]any{"name": f.unique("window"), "integ": newIntegrationID(f)}}
		},
		state: countRows((*db.MaintenanceWindow)(nil))},
	"Mutation.updateMaintenanceWindow": {rule: ruleAdmin, doc: `mutation($id: ID!, $name: String!) {
		updateMaintenanceWindow(id: $id, input: {name: $name, endsAt: "2036-01-01T03:00:00Z", pageOpenAlertsAfter: false}) { id } }`,
		fixture: withName(func(f *authzFixture) string { return f.newWindow() }),
		state:   readByID(`query($id: ID!) { maintenanceWindow(id: $id) { name endsAt pageOpenAlertsAfter } }`)},
	"Mutation.deleteMaintenanceWindow": {rule: ruleAdmin, doc: `mutation($id: ID!) { deleteMaintenanceWindow(id: $id) }`,
		fixture: withID(func(f *authzFixture) string { return f.newWindow() }),
		state:   readByID(`query($id: ID!) { maintenanceWindow(id: $id) { id } }`)},

	// Workflows.
	"Mutation.createWorkflow": {rule: ruleAdmin, doc: `mutation($name: String!, $integ: ID!) {
		createWorkflow(input: {name: $name, integrationId: $integ, on: [OPENED], conditions: [{field: "severity", op: EQUALS, value: "critical"}],
			action: {method: "POST", url: "https://hooks.example.com/issues", headers: [{name: "Authorization", value: "token x"}],
			body: "{\"title\": {{json .Alert.Subject}}}"}}) { id } }`,
		fixture: func(f *authzFixture) authzCall {
			return authzCall{vars: map[string]any{"name": f.unique("workflow"), "integ": newIntegrationID(f)}}
		},
		state: countRows((*db.Workflow)(nil))},
	"Mutation.updateWorkflow": {rule: ruleAdmin, doc: `mutation($id: ID!, $name: String!) {
		updateWorkflow(id: $id, input: {name: $name, on: [CLOSED], action: {method: "PUT", url: "https://hooks.example.com/closed", body: "{{.Alert.ID}}"}}) { id } }`,
		fixture: withName(func(f *authzFixture) string { return f.newWorkflow() }),
		state:   readByID(`query($id: ID!) { workflow(id: $id) { name on action { method url body } } }`)},
	"Mutation.deleteWorkflow": {rule: ruleAdmin, doc: `mutation($id: ID!) { deleteWorkflow(id: $id) }`,
		fixture: withID(func(f *authzFixture) string { return f.newWorkflow() }),
		state:   readByID(`query($id: ID!) { workflow(id: $id) { id } }`)},

	// Alerts.
	"Mutation.acknowledgeAlert": {rule: ruleResponder, doc: `mutation($id: ID!) { acknowledgeAlert(id: $id) { id status } }`,
		fixture: withID(freshAlertID), state: readByID(alertState)},
	"Mutation.closeAlert": {rule: ruleResponder, doc: `mutation($id: ID!) { closeAlert(id: $id) { id status } }`,
		fixture: withID(freshAlertID), state: readByID(alertState)},
	"Mutation.assignAlert": {rule: ruleResponder, doc: `mutation($id: ID!, $user: ID!) { assignAlert(id: $id, userId: $user) { id assignedTo { id } } }`,
		fixture: func(f *authzFixture) authzCall {
			return authzCall{vars: map[string]any{"id": freshAlertID(f), "user": f.responder.ID}}
		},
		state: readByID(alertState)},
	"Mutation.snoozeAlert": {rule: ruleResponder, doc: `mutation($id: ID!) { snoozeAlert(id: $id, minutes: 30) { id status snoozedUntil } }`,
		fixture: withID(freshAlertID), state: readByID(`query($id: ID!) { alert(id: $id) { status snoozedUntil } }`)},
	"Mutation.escalateAlert": {rule: ruleResponder, doc: `mutation($id: ID!) { escalateAlert(id: $id) { id } }`,
		fixture: withID(func(f *authzFixture) string { return f.manualAlert() }), state: readByID(alertTimeline)},
	"Mutation.addAlertNote": {rule: ruleResponder, doc: `mutation($id: ID!) { addAlertNote(id: $id, text: "checked the logs") { id } }`,
		fixture: withID(freshAlertID), state: readByID(alertTimeline)},
	"Mutation.createAlert": {rule: ruleResponder, doc: `mutation($user: ID!) { createAlert(input: {subject: "Payments down", severity: "high", userIds: [$user]}) { id createdBy { id } integration { id } } }`,
		fixture: func(f *authzFixture) authzCall { return authzCall{vars: map[string]any{"user": f.viewer.ID}} },
		state:   countRows((*db.Alert)(nil))},

	// Subscriptions: a websocket opens only with a valid token (see
	// checkSubscription).
	"Subscription.alertEvents": {rule: ruleViewer, doc: `subscription { alertEvents { type alert { id } } }`},
	"Subscription.inboundLog":  {rule: ruleViewer, doc: `subscription { inboundLog { id status } }`},
}
