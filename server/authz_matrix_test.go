package server_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/server"
)

// authzRule says who may call a field of the API.
type authzRule int

const (
	// ruleAnyone: signed in or not (login).
	ruleAnyone authzRule = iota
	ruleViewer
	ruleResponder
	ruleAdmin
	// ruleSelfOrAdmin: the user the data belongs to, whatever their role,
	// and admins; nobody else.
	ruleSelfOrAdmin
)

func (r authzRule) String() string {
	return [...]string{"anyone", "VIEWER", "RESPONDER", "ADMIN", "self or ADMIN"}[r]
}

// authzCaller is one column of the matrix.
type authzCaller struct {
	name string
	role db.Role // "" for anonymous
	// owner marks the user whose data the call touches.
	owner bool
}

var (
	callerAnonymous = authzCaller{name: "anonymous"}
	callerViewer    = authzCaller{name: "VIEWER", role: db.RoleViewer}
	callerResponder = authzCaller{name: "RESPONDER", role: db.RoleResponder}
	callerAdmin     = authzCaller{name: "ADMIN", role: db.RoleAdmin}
	// The owner of per-user data is a VIEWER, so the VIEWER caller is
	// another user with the owner's role.
	callerOwner = authzCaller{name: "owner", role: db.RoleViewer, owner: true}
)

func (r authzRule) callers() []authzCaller {
	all := []authzCaller{callerAnonymous, callerViewer, callerResponder, callerAdmin}
	if r == ruleSelfOrAdmin {
		all = append(all, callerOwner)
	}
	return all
}

func (r authzRule) allows(c authzCaller) bool {
	switch r {
	case ruleAnyone:
		return true
	case ruleSelfOrAdmin:
		return c.owner || c.role == db.RoleAdmin
	}
	min := map[authzRule]db.Role{ruleViewer: db.RoleViewer, ruleResponder: db.RoleResponder, ruleAdmin: db.RoleAdmin}[r]
	return c.role != "" && c.role.Includes(min)
}

// authzCall is one prepared call: fresh fixtures, so that every caller
// meets the same objects and no answer depends on an earlier call.
type authzCall struct {
	vars map[string]any
	// owner is the user whose data or sessions the call touches.
	owner session
	// as is the caller, filled in by the matrix.
	as session
	// ref is whatever else the state check needs.
	ref string
}

// authzEntry is what the matrix knows about one field of the schema.
type authzEntry struct {
	rule authzRule
	doc  string
	// fixture prepares one call; nil means the call takes no variables.
	fixture func(f *authzFixture) authzCall
	// state reads, as admin, what the mutation changes. A refused call
	// must leave it as it was; an allowed one must change it, which
	// shows the check sees the effect at all.
	state func(f *authzFixture, c authzCall) string
	// noEffect marks a mutation that writes nothing even when allowed.
	noEffect bool
	// freshCaller makes each call as a new user of the caller's role,
	// for mutations that end the caller's own sessions.
	freshCaller bool
}

// authzFixture is a server with a shared set of objects the queries read
// and the users who call.
type authzFixture struct {
	*harness
	viewer, responder session
	// owner owns the per-user data (contact methods, rules, API keys)
	// the self-or-admin fields act on.
	owner session
	codes *codeCatcher

	integ      integration
	alertID    string
	messageID  string
	groupID    string
	rulesetID  string
	scheduleID string
	policyID   string
}

func (f *authzFixture) with(t *testing.T) *authzFixture {
	c := *f
	c.harness = f.harness.with(t)
	return &c
}

// codeCatcher stands in for the email channel and keeps the verification
// codes it is asked to send, by address.
type codeCatcher struct {
	mu    sync.Mutex
	codes map[string][]string
}

func (c *codeCatcher) Send(_ context.Context, msg notifiers.Message) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.codes[msg.Destination] = append(c.codes[msg.Destination], msg.VerificationCode)
	return "", nil
}

func (c *codeCatcher) sent(dest string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.codes[dest])
}

func newAuthzFixture(t *testing.T, d *db.DB) *authzFixture {
	h := newHarness(t, d, server.Config{})
	codes := &codeCatcher{codes: map[string][]string{}}
	h.alerting.SetSenders(notifiers.Senders{db.ContactEmail: codes})
	f := &authzFixture{
		harness: h, codes: codes,
		viewer: h.newUser(db.RoleViewer), responder: h.newUser(db.RoleResponder), owner: h.newUser(db.RoleViewer),
	}
	f.integ = h.createIntegration("DETECTIFY")
	r := f.postFinding()
	f.alertID, f.messageID = r.alert(), r.MessageID
	f.groupID = f.newGroup(f.viewer.ID)
	f.rulesetID = f.newRuleset()
	f.scheduleID = f.newSchedule()
	f.policyID = f.newPolicy()
	return f
}

// postFinding opens a new alert by webhook.
func (f *authzFixture) postFinding() *webhookReply {
	f.t.Helper()
	r := f.postWebhook(f.integ.Token(f.t), finding(f.unique("finding"), "high"))
	if r.HTTPStatus != http.StatusOK || r.Status != "MAPPED_OPENED" {
		f.t.Fatalf("open alert: HTTP %d: %s", r.HTTPStatus, r.Raw)
	}
	return r
}

// adminID runs a mutation as admin and returns the id of what it made.
func (f *authzFixture) adminID(doc string, vars map[string]any) string {
	f.t.Helper()
	var data map[string]struct {
		ID string `json:"id"`
	}
	f.mustGQL(f.admin.Token, doc, vars, &data)
	for _, v := range data {
		if v.ID != "" {
			return v.ID
		}
	}
	f.t.Fatalf("no id in the answer to %s", doc)
	return ""
}

// read runs a query as admin and returns its data, to compare.
func (f *authzFixture) read(doc string, vars map[string]any) string {
	f.t.Helper()
	r := f.gql(f.admin.Token, doc, vars)
	if len(r.Errors) > 0 {
		f.t.Fatalf("read as admin: %s\nquery: %s", r.Raw, doc)
	}
	return string(r.Data)
}

// rows counts a table, for mutations that create.
func (f *authzFixture) rows(model any) string {
	f.t.Helper()
	n, err := f.db.NewSelect().Model(model).Count(context.Background())
	if err != nil {
		f.t.Fatalf("count rows: %v", err)
	}
	return fmt.Sprint(n)
}

// signedIn reports whether token still opens a session.
func (f *authzFixture) signedIn(token string) string {
	f.t.Helper()
	if r := f.gql(token, `{ me { id } }`, nil); len(r.Errors) == 0 {
		return "signed in"
	}
	return "signed out"
}

func (f *authzFixture) contactMethodsOf(userID string) string {
	return f.read(`query($id: ID!) { user(id: $id) { contactMethods { id name value verified disabled } } }`, map[string]any{"id": userID})
}

func (f *authzFixture) notificationRulesOf(userID string) string {
	return f.read(`query($id: ID!) { user(id: $id) { notificationRules { id delayMinutes contactMethod { id } } } }`, map[string]any{"id": userID})
}

func (f *authzFixture) newGroup(memberIDs ...string) string {
	return f.adminID(`mutation($name: String!, $members: [ID!]) { createGroup(input: {name: $name, memberIds: $members}) { id } }`,
		map[string]any{"name": f.unique("group"), "members": memberIDs})
}

func (f *authzFixture) newRuleset() string {
	return f.adminID(`mutation($name: String!) { createRuleset(input: {name: $name, rules: [{action: OPEN}]}) { id } }`,
		map[string]any{"name": f.unique("ruleset")})
}

func (f *authzFixture) newSchedule() string {
	return f.adminID(`mutation($input: CreateScheduleInput!) { createSchedule(input: $input) { id } }`, map[string]any{"input": map[string]any{
		"name": f.unique("schedule"), "timeZone": "Europe/Berlin",
		"layers": []any{map[string]any{"shiftLength": 1, "shiftUnit": "DAYS", "handoffAt": "2026-01-05T09:00:00+01:00",
			"participantIds": []string{f.responder.ID, f.owner.ID}}},
	}})
}

func (f *authzFixture) newOverride() string {
	start := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	return f.adminID(`mutation($input: CreateOverrideInput!) { createOverride(input: $input) { id } }`, map[string]any{"input": map[string]any{
		"scheduleId": f.scheduleID, "userId": f.viewer.ID,
		"start": start.Format(time.RFC3339), "end": start.Add(time.Hour).Format(time.RFC3339),
	}})
}

func (f *authzFixture) newPolicy() string {
	return f.adminID(`mutation($name: String!, $user: ID!) {
		createEscalationPolicy(input: {name: $name, steps: [{delayMinutes: 5, targets: [{type: USER, id: $user}]}]}) { id } }`,
		map[string]any{"name": f.unique("policy"), "user": f.owner.ID})
}

// newContactMethod gives the owner a new, unverified email address.
func (f *authzFixture) newContactMethod() (id, address string) {
	address = f.unique("owner") + "@example.com"
	id = f.adminID(`mutation($user: ID!, $value: String!) { createContactMethod(input: {userId: $user, type: EMAIL, value: $value}) { id } }`,
		map[string]any{"user": f.owner.ID, "value": address})
	return id, address
}

func (f *authzFixture) newNotificationRule() string {
	cm, _ := f.newContactMethod()
	return f.adminID(`mutation($cm: ID!) { createNotificationRule(input: {contactMethodId: $cm, delayMinutes: 5}) { id } }`,
		map[string]any{"cm": cm})
}

// Fixture builders shared by several entries.

func withID(id func(f *authzFixture) string) func(f *authzFixture) authzCall {
	return func(f *authzFixture) authzCall { return authzCall{vars: map[string]any{"id": id(f)}} }
}

func withName(id func(f *authzFixture) string) func(f *authzFixture) authzCall {
	return func(f *authzFixture) authzCall {
		return authzCall{vars: map[string]any{"id": id(f), "name": f.unique("renamed")}}
	}
}

func newName(f *authzFixture) authzCall {
	return authzCall{vars: map[string]any{"name": f.unique("new")}}
}

func newIntegrationID(f *authzFixture) string { return f.createIntegration("GENERIC").ID }

func freshAlertID(f *authzFixture) string { return f.postFinding().alert() }

// ownContactMethod prepares a call on a new contact method of the owner.
func ownContactMethod(f *authzFixture) authzCall {
	id, address := f.newContactMethod()
	return authzCall{vars: map[string]any{"id": id, "name": f.unique("renamed")}, owner: f.owner, ref: address}
}

// readByID returns a state check that reads doc with the call's id.
func readByID(doc string) func(f *authzFixture, c authzCall) string {
	return func(f *authzFixture, c authzCall) string { return f.read(doc, map[string]any{"id": c.vars["id"]}) }
}

func countRows(model any) func(f *authzFixture, c authzCall) string {
	return func(f *authzFixture, _ authzCall) string { return f.rows(model) }
}

func ownerContactMethods(f *authzFixture, c authzCall) string { return f.contactMethodsOf(c.owner.ID) }

func ownerNotificationRules(f *authzFixture, c authzCall) string {
	return f.notificationRulesOf(c.owner.ID)
}

const alertState = `query($id: ID!) { alert(id: $id) { status acknowledgedAt closedAt assignedTo { id } } }`

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
	"Query.rulesets": {rule: ruleViewer, doc: `{ rulesets { id rules { name } } }`},
	"Query.ruleset": {rule: ruleViewer, doc: `query($id: ID!) { ruleset(id: $id) { id name } }`,
		fixture: withID(func(f *authzFixture) string { return f.rulesetID })},
	"Query.alerts": {rule: ruleViewer, doc: `{ alerts { totalCount nodes { id } } }`},
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
	"Query.escalationPolicies": {rule: ruleViewer, doc: `{ escalationPolicies { id steps { targets { name } } } }`},
	"Query.escalationPolicy": {rule: ruleViewer, doc: `query($id: ID!) { escalationPolicy(id: $id) { id name } }`,
		fixture: withID(func(f *authzFixture) string { return f.policyID })},
	// Who changed what is for admins only.
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
	"Mutation.createOverride": {rule: ruleAdmin, doc: `mutation($id: ID!, $user: ID!, $start: Time!, $end: Time!) {
		createOverride(input: {scheduleId: $id, userId: $user, start: $start, end: $end}) { id } }`,
		fixture: func(f *authzFixture) authzCall {
			start := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
			return authzCall{vars: map[string]any{"id": f.scheduleID, "user": f.responder.ID,
				"start": start.Format(time.RFC3339), "end": start.Add(time.Hour).Format(time.RFC3339)}}
		},
		state: readByID(`query($id: ID!) { schedule(id: $id) { overrides { id } } }`)},
	"Mutation.deleteOverride": {rule: ruleAdmin, doc: `mutation($id: ID!) { deleteOverride(id: $id) }`,
		fixture: withID(func(f *authzFixture) string { return f.newOverride() }),
		state: func(f *authzFixture, _ authzCall) string {
			return f.read(`query($id: ID!) { schedule(id: $id) { overrides { id } } }`, map[string]any{"id": f.scheduleID})
		}},
	"Mutation.createEscalationPolicy": {rule: ruleAdmin, doc: `mutation($name: String!) {
		createEscalationPolicy(input: {name: $name, steps: [{delayMinutes: 1, targets: [{type: RECIPIENTS}]}]}) { id } }`,
		fixture: newName, state: countRows((*db.EscalationPolicy)(nil))},
	"Mutation.updateEscalationPolicy": {rule: ruleAdmin, doc: `mutation($id: ID!, $name: String!) { updateEscalationPolicy(id: $id, input: {name: $name, repeat: 2}) { id } }`,
		fixture: withName(func(f *authzFixture) string { return f.newPolicy() }),
		state:   readByID(`query($id: ID!) { escalationPolicy(id: $id) { name repeat steps { id } } }`)},
	"Mutation.deleteEscalationPolicy": {rule: ruleAdmin, doc: `mutation($id: ID!) { deleteEscalationPolicy(id: $id) }`,
		fixture: withID(func(f *authzFixture) string { return f.newPolicy() }),
		state:   readByID(`query($id: ID!) { escalationPolicy(id: $id) { id } }`)},

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

	// Subscriptions: a websocket opens only with a valid token (see
	// checkSubscription).
	"Subscription.alertEvents": {rule: ruleViewer, doc: `subscription { alertEvents { type alert { id } } }`},
	"Subscription.inboundLog":  {rule: ruleViewer, doc: `subscription { inboundLog { id status } }`},
}

// schemaFields lists the fields of the root types the server serves, as
// "Query.me", by introspection.
func (h *harness) schemaFields() []string {
	h.t.Helper()
	var data struct {
		Schema map[string]*struct {
			Name   string `json:"name"`
			Fields []struct {
				Name string `json:"name"`
			} `json:"fields"`
		} `json:"__schema"`
	}
	h.mustGQL("", `{ __schema {
		queryType { name fields { name } }
		mutationType { name fields { name } }
		subscriptionType { name fields { name } } } }`, nil, &data)
	var names []string
	for _, typ := range data.Schema {
		if typ == nil {
			continue
		}
		for _, fld := range typ.Fields {
			names = append(names, typ.Name+"."+fld.Name)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		h.t.Fatal("introspection found no fields")
	}
	return names
}

// TestAuthzMatrix calls every query, mutation and subscription of the
// schema as anonymous, VIEWER, RESPONDER, ADMIN and, for per-user data,
// its owner, and checks each answer against authzTable.
func TestAuthzMatrix(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f0 := newAuthzFixture(t, d)
		fields := f0.schemaFields()
		for _, name := range fields {
			if _, ok := authzTable[name]; !ok {
				t.Errorf("add an authorization expectation for %s to authzTable", name)
			}
		}
		for name := range authzTable {
			if !slices.Contains(fields, name) {
				t.Errorf("authzTable has %s, which the schema no longer has", name)
			}
		}
		if t.Failed() {
			return
		}
		for _, name := range fields {
			e := authzTable[name]
			root, field, _ := strings.Cut(name, ".")
			if root == "Subscription" {
				t.Run(name, func(t *testing.T) { checkSubscription(t, f0.with(t), field, e) })
				continue
			}
			if root == "Mutation" && e.state == nil && e.rule != ruleAnyone {
				t.Errorf("%s needs a state check, to show a refused call changes nothing", name)
				continue
			}
			for _, c := range e.rule.callers() {
				t.Run(name+"/"+c.name, func(t *testing.T) { checkCall(f0.with(t), field, e, c) })
			}
		}
	})
}

func checkCall(f *authzFixture, field string, e authzEntry, c authzCaller) {
	t := f.t
	call := authzCall{}
	if e.fixture != nil {
		call = e.fixture(f)
	}
	switch {
	case c.owner:
		if call.owner.Token == "" {
			t.Fatal("a self-or-admin entry's fixture must name the owner")
		}
		call.as = call.owner
	case c.role == "":
	case e.freshCaller:
		call.as = f.newUser(c.role)
	case c.role == db.RoleViewer:
		call.as = f.viewer
	case c.role == db.RoleResponder:
		call.as = f.responder
	case c.role == db.RoleAdmin:
		call.as = f.admin
	}
	var before string
	if e.state != nil {
		before = e.state(f, call)
	}
	r := f.gql(call.as.Token, e.doc, call.vars)
	if r.HTTPStatus != http.StatusOK {
		t.Fatalf("HTTP %d: %s", r.HTTPStatus, r.Raw)
	}
	var data map[string]json.RawMessage
	if !r.dataIsNull() {
		if err := json.Unmarshal(r.Data, &data); err != nil {
			t.Fatalf("data: %v: %s", err, r.Data)
		}
	}
	if e.rule.allows(c) {
		if len(r.Errors) > 0 {
			t.Fatalf("%s may call %s (%s), got %s", c.name, field, e.rule, r.Raw)
		}
		if _, ok := data[field]; !ok {
			t.Fatalf("no %s in %s", field, r.Raw)
		}
		if e.state != nil {
			after := e.state(f, call)
			if e.noEffect && after != before {
				t.Errorf("%s changed %s → %s", field, before, after)
			}
			if !e.noEffect && after == before {
				t.Errorf("the state check does not see what %s did: still %s", field, after)
			}
		}
		return
	}
	want := "FORBIDDEN"
	if c.role == "" {
		want = "UNAUTHENTICATED"
	}
	if len(r.Errors) != 1 || r.Errors[0].Extensions.Code != want {
		t.Fatalf("%s may not call %s (%s): want one %s error, got %s", c.name, field, e.rule, want, r.Raw)
	}
	if p := r.Errors[0].Path; len(p) != 1 || p[0] != field {
		t.Errorf("error path %v, want [%s]", p, field)
	}
	if v, ok := data[field]; ok && string(v) != "null" {
		t.Errorf("refused %s answered %s", field, v)
	}
	if e.state != nil {
		if after := e.state(f, call); after != before {
			t.Errorf("refused %s changed state: %s → %s", field, before, after)
		}
	}
}

// checkSubscription subscribes as every caller. A websocket carries no
// token per operation, so anonymous is refused when the socket opens,
// and a subscribe sent before that gets nothing.
func checkSubscription(t *testing.T, f *authzFixture, field string, e authzEntry) {
	if e.rule != ruleViewer {
		t.Fatalf("subscriptions are checked for %s only; extend checkSubscription for %s", ruleViewer, e.rule)
	}
	for _, c := range e.rule.callers() {
		t.Run(c.name, func(t *testing.T) {
			f := f.with(t)
			if c.role == "" {
				checkAnonymousSubscribe(f, e.doc)
				return
			}
			token := map[db.Role]string{db.RoleViewer: f.viewer.Token, db.RoleResponder: f.responder.Token, db.RoleAdmin: f.admin.Token}[c.role]
			ws := f.connect(protoTransportWS, token)
			ws.subscribe("s", e.doc, nil)
			// Nothing says when the subscription is registered, so new
			// findings go in until one comes out.
			for range 100 {
				f.postFinding()
				m, err := ws.read(100 * time.Millisecond)
				if errors.Is(err, errReadTimeout) {
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", field, err)
				}
				var result struct {
					Data   map[string]json.RawMessage `json:"data"`
					Errors []gqlError                 `json:"errors"`
				}
				if err := json.Unmarshal(m.Payload, &result); err != nil {
					t.Fatalf("%s %s: %v", m.Type, m.Payload, err)
				}
				if m.Type != "next" || len(result.Errors) > 0 || string(result.Data[field]) == "null" || result.Data[field] == nil {
					t.Fatalf("%s may subscribe to %s, got %s %s", c.name, field, m.Type, m.Payload)
				}
				return
			}
			t.Fatalf("%s: no event", field)
		})
	}
}

func checkAnonymousSubscribe(f *authzFixture, doc string) {
	t := f.t
	for _, proto := range []string{protoTransportWS, protoLegacyWS} {
		c, _, err := f.dialWS(proto, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.init(""); got == "connection_ack" {
			t.Fatalf("%s: a websocket without a token was accepted", proto)
		}
		c, _, err = f.dialWS(proto, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.subscribe("s", doc, nil)
		f.postFinding()
		for {
			m, err := c.read(15 * time.Second)
			if err != nil {
				var ce *websocket.CloseError
				if !errors.As(err, &ce) {
					t.Fatalf("%s: subscribe before connection_init: want the socket closed, got %v", proto, err)
				}
				break
			}
			if m.Type == "next" || m.Type == "data" {
				t.Fatalf("%s: anonymous subscription got %s", proto, m.Payload)
			}
		}
	}
}

// TestAuthzFieldVisibility checks the fields that every signed-in user
// may query but whose contents depend on who asks.
func TestAuthzFieldVisibility(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f0 := newAuthzFixture(t, d)
		cmID, address := f0.newContactMethod()
		ruleID := f0.adminID(`mutation($cm: ID!) { createNotificationRule(input: {contactMethodId: $cm, delayMinutes: 0}) { id } }`,
			map[string]any{"cm": cmID})
		var created struct {
			Key struct {
				APIKey struct{ ID string } `json:"apiKey"`
			} `json:"createApiKey"`
		}
		f0.mustGQL(f0.owner.Token, `mutation { createApiKey(input: {name: "owner's", role: VIEWER}) { apiKey { id } } }`, nil, &created)
		keyID := created.Key.APIKey.ID

		for _, c := range []authzCaller{callerViewer, callerResponder, callerOwner, callerAdmin} {
			t.Run(c.name, func(t *testing.T) {
				f := f0.with(t)
				as := map[string]session{"VIEWER": f.viewer, "RESPONDER": f.responder, "owner": f.owner, "ADMIN": f.admin}[c.name]
				mayManage := ruleSelfOrAdmin.allows(c)
				var data struct {
					User struct {
						ContactMethods []struct {
							ID, Value string
						} `json:"contactMethods"`
						NotificationRules []struct{ ID string } `json:"notificationRules"`
					} `json:"user"`
					Users []struct {
						ID             string
						ContactMethods []struct{ ID string } `json:"contactMethods"`
					} `json:"users"`
					APIKeys []struct {
						ID    string
						Owner struct{ ID string }
					} `json:"apiKeys"`
					Integrations []struct {
						URL *string `json:"url"`
					} `json:"integrations"`
					Integration struct {
						URL *string `json:"url"`
					} `json:"integration"`
				}
				f.mustGQL(as.Token, `query($owner: ID!, $integ: ID!) {
					user(id: $owner) { contactMethods { id value } notificationRules { id } }
					users { id contactMethods { id } }
					apiKeys { id owner { id } }
					integrations { url }
					integration(id: $integ) { url } }`,
					map[string]any{"owner": f.owner.ID, "integ": f.integ.ID}, &data)

				// Someone else's contact methods and notification rules are
				// hidden altogether, not just refused on edit.
				cms, rules := data.User.ContactMethods, data.User.NotificationRules
				if mayManage {
					if len(cms) != 1 || cms[0].ID != cmID || cms[0].Value != address || len(rules) != 1 || rules[0].ID != ruleID {
						t.Errorf("%s sees the owner's contact methods %+v and rules %+v", c.name, cms, rules)
					}
				} else if len(cms) != 0 || len(rules) != 0 {
					t.Errorf("%s sees the owner's contact methods %+v and rules %+v", c.name, cms, rules)
				}
				for _, u := range data.Users {
					if u.ID == f.owner.ID && len(u.ContactMethods) != len(cms) {
						t.Errorf("users lists %d contact methods of the owner, user %d", len(u.ContactMethods), len(cms))
					}
				}

				// API keys: one's own; everyone's for admins.
				sawOwners := false
				for _, k := range data.APIKeys {
					if k.ID == keyID {
						sawOwners = true
					}
					if c.role != db.RoleAdmin && k.Owner.ID != as.ID {
						t.Errorf("%s sees API key %s of user %s", c.name, k.ID, k.Owner.ID)
					}
				}
				if sawOwners != mayManage {
					t.Errorf("%s sees the owner's API key: %v", c.name, sawOwners)
				}

				// The webhook URL carries the integration's secret token.
				urls := []*string{data.Integration.URL}
				for _, i := range data.Integrations {
					urls = append(urls, i.URL)
				}
				for _, u := range urls {
					if c.role == db.RoleAdmin && (u == nil || !strings.Contains(*u, "/webhooks/")) {
						t.Errorf("admin sees url %v", u)
					}
					if c.role != db.RoleAdmin && u != nil {
						t.Errorf("%s sees url %q", c.name, *u)
					}
				}
			})
		}
	})
}

// TestAuthzAPIKeyCannotTakeOverItsOwner: a key calls the API with the
// lesser of its own and its owner's role, and must not be able to change
// the owner's credentials and so sign in with the owner's full role, nor
// outlive its revocation.
func TestAuthzAPIKeyCannotTakeOverItsOwner(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	keyOf := func(owner session, role string) string {
		var data struct {
			Key struct{ Secret string } `json:"createApiKey"`
		}
		h.mustGQL(owner.Token, `mutation($role: Role!) { createApiKey(input: {name: "key", role: $role}) { secret } }`,
			map[string]any{"role": role}, &data)
		return data.Key.Secret
	}
	const update = `mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id } }`
	readOnly := keyOf(h.admin, "VIEWER")
	for _, input := range []map[string]any{
		{"password": "a password of my choosing"},
		{"email": "attacker@example.com"},
	} {
		h.wantGQLError(readOnly, update, map[string]any{"id": h.admin.ID, "input": input}, "FORBIDDEN")
	}
	h.wantGQLError("", `mutation { login(email: "`+h.admin.Email+`", password: "a password of my choosing") { token } }`, nil, "UNAUTHENTICATED")
	h.login(h.admin.Email, h.admin.Password)

	// What the key's role allows on its own is still allowed; but no key,
	// even one with its owner's full role, changes the owner's
	// credentials or makes further keys, so revoking it ends it.
	h.mustGQL(readOnly, update, map[string]any{"id": h.admin.ID, "input": map[string]any{"name": "Renamed by key"}}, nil)
	viewer := h.newUser(db.RoleViewer)
	full := keyOf(viewer, "VIEWER")
	h.wantGQLError(full, update, map[string]any{"id": viewer.ID, "input": map[string]any{"password": "a password of my choosing"}}, "FORBIDDEN")
	h.wantGQLError(full, `mutation { createApiKey(input: {name: "another", role: VIEWER}) { secret } }`, nil, "FORBIDDEN")
	h.mustGQL(viewer.Token, update, map[string]any{"id": viewer.ID, "input": map[string]any{"password": "a password of my choosing"}}, nil)
	h.login(viewer.Email, "a password of my choosing")
}
