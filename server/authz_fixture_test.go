package server_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
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
	// ruleParticipant: the participant of the schedule the call names
	// that the call leaves it to (the requester of a swap, its
	// addressee), whatever their role; nobody else, admins included.
	ruleParticipant
	// ruleParticipantOrAdmin: that participant, and whoever configures
	// the schedule.
	ruleParticipantOrAdmin
)

func (r authzRule) String() string {
	return [...]string{"anyone", "VIEWER", "RESPONDER", "ADMIN", "self or ADMIN", "participant", "participant or ADMIN"}[r]
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
	// The participant is the fixture's call.owner too: a VIEWER in the
	// layers of the schedule the call names.
	callerParticipant = authzCaller{name: "participant", role: db.RoleViewer, owner: true}
)

func (r authzRule) callers() []authzCaller {
	all := []authzCaller{callerAnonymous, callerViewer, callerResponder, callerAdmin}
	switch r {
	case ruleSelfOrAdmin:
		all = append(all, callerOwner)
	case ruleParticipant, ruleParticipantOrAdmin:
		all = append(all, callerParticipant)
	}
	return all
}

func (r authzRule) allows(c authzCaller) bool {
	switch r {
	case ruleAnyone:
		return true
	case ruleSelfOrAdmin, ruleParticipantOrAdmin:
		return c.owner || c.role == db.RoleAdmin
	case ruleParticipant:
		return c.owner
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

	// swapScheduleID names a schedule whose higher layer has participant
	// on call at all times and whose lower one lists partner, so that
	// participant may hand any span of the future to partner.
	swapScheduleID       string
	participant, partner session
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
	h.channels.SetSenders(notifiers.Senders{db.ContactEmail: codes})
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
	f.participant, f.partner = h.newUser(db.RoleViewer), h.newUser(db.RoleViewer)
	f.swapScheduleID = f.adminID(`mutation($input: CreateScheduleInput!) { createSchedule(input: $input) { id } }`, map[string]any{"input": map[string]any{
		"name": f.unique("swaps"), "timeZone": "UTC",
		"layers": []any{
			map[string]any{"shiftLength": 1, "shiftUnit": "WEEKS", "handoffAt": "2026-01-05T09:00:00Z", "participantIds": []string{f.partner.ID}},
			map[string]any{"shiftLength": 1, "shiftUnit": "WEEKS", "handoffAt": "2026-01-05T09:00:00Z", "participantIds": []string{f.participant.ID}},
		},
	}})
	return f
}

// swapSpan returns a span of an hour in the future that no earlier call
// has used, so that swaps asked for never overlap.
func (f *authzFixture) swapSpan() (start, end string) {
	from := time.Now().UTC().Truncate(time.Hour).Add(time.Duration(24+f.seq.Add(1)) * time.Hour)
	return from.Format(time.RFC3339), from.Add(time.Hour).Format(time.RFC3339)
}

// newSwap has the participant ask the partner to take a fresh span.
func (f *authzFixture) newSwap() string {
	start, end := f.swapSpan()
	var data struct {
		Swap struct{ ID string } `json:"requestShiftSwap"`
	}
	f.mustGQL(f.participant.Token, `mutation($id: ID!, $to: ID!, $start: Time!, $end: Time!) {
		requestShiftSwap(input: {scheduleId: $id, toUserId: $to, start: $start, end: $end}) { id } }`,
		map[string]any{"id": f.swapScheduleID, "to": f.partner.ID, "start": start, "end": end}, &data)
	return data.Swap.ID
}

// swapStates reads, as admin, where each swap of the swap schedule stands.
func (f *authzFixture) swapStates(_ authzCall) string {
	return f.read(`query($id: ID!) { shiftSwaps(scheduleId: $id) { id status override { id } } }`, map[string]any{"id": f.swapScheduleID})
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

// newHeartbeat creates a heartbeat monitor, as admin, paging the owner.
func (f *authzFixture) newHeartbeat() string {
	return f.adminID(`mutation($name: String!, $user: ID!) {
		createHeartbeatMonitor(input: {name: $name, intervalMinutes: 10, recipientUserIds: [$user]}) { id } }`,
		map[string]any{"name": f.unique("heartbeat"), "user": f.owner.ID})
}

// manualAlert opens an alert by hand, as admin, paging through a policy
// of two steps, so it has a next step to escalate to.
func (f *authzFixture) manualAlert() string {
	policy := f.adminID(`mutation($name: String!, $user: ID!) {
		createEscalationPolicy(input: {name: $name, steps: [
			{delayMinutes: 5, targets: [{type: USER, id: $user}]},
			{delayMinutes: 5, targets: [{type: USER, id: $user}]}]}) { id } }`,
		map[string]any{"name": f.unique("policy"), "user": f.owner.ID})
	return f.adminID(`mutation($policy: ID!) { createAlert(input: {subject: "Payments down", severity: "high", escalationPolicyId: $policy}) { id } }`,
		map[string]any{"policy": policy})
}

// newWindow stores a maintenance window, far in the future so it holds
// back no one's paging, over an integration of its own.
func (f *authzFixture) newWindow() string {
	return f.adminID(`mutation($name: String!, $integ: ID!) {
		createMaintenanceWindow(input: {name: $name, integrationIds: [$integ], startsAt: "2036-01-01T00:00:00Z", endsAt: "2036-01-01T02:00:00Z"}) { id } }`,
		map[string]any{"name": f.unique("window"), "integ": newIntegrationID(f)})
}

// newWorkflow stores a global workflow following closes.
func (f *authzFixture) newWorkflow() string {
	return f.adminID(`mutation($name: String!) {
		createWorkflow(input: {name: $name, on: [CLOSED], action: {method: "POST", url: "https://hooks.example.com/x"}}) { id } }`,
		map[string]any{"name": f.unique("workflow")})
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
