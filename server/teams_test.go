package server_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// teamsFixture is two teams, A and B, each owning one of every
// configured noun and an integration with an open alert, and MEMBER
// users holding each team role in A, and a responder of B.
type teamsFixture struct {
	*harness
	teamA, teamB                string
	managerA, responderA, obsA  session
	responderB, viewer          session
	things                      map[string]map[string]string // noun → team → id
	integA, integB, integOrg    integration
	alertA, alertB, alertOrg    string
	messageA, messageB, message string
}

func newTeamsFixture(t *testing.T, d *db.DB) *teamsFixture {
	h := newHarness(t, d, server.Config{})
	f := &teamsFixture{harness: h, things: map[string]map[string]string{}}
	f.teamA, f.teamB = f.newTeam("Payments"), f.newTeam("Search")
	f.managerA = f.member(f.teamA, db.TeamManager)
	f.responderA = f.member(f.teamA, db.TeamResponder)
	f.obsA = f.member(f.teamA, db.TeamObserver)
	f.responderB = f.member(f.teamB, db.TeamResponder)
	f.viewer = f.newUser(db.RoleViewer)
	for team, id := range map[string]string{"A": f.teamA, "B": f.teamB} {
		f.own("integration", team, f.adminCreate(`mutation($team: ID) { createIntegration(input: {name: "`+h.unique("integ")+`", type: GENERIC, teamId: $team}) { id } }`, id))
		f.own("ruleset", team, f.adminCreate(`mutation($team: ID) { createRuleset(input: {name: "`+h.unique("rs")+`", rules: [{action: OPEN}], teamId: $team}) { id } }`, id))
		f.own("policy", team, f.adminCreate(`mutation($team: ID) { createEscalationPolicy(input: {name: "`+h.unique("p")+`", teamId: $team, steps: [{delayMinutes: 1, targets: [{type: RECIPIENTS}]}]}) { id } }`, id))
		f.own("schedule", team, f.adminCreate(`mutation($team: ID) { createSchedule(input: {name: "`+h.unique("s")+`", timeZone: "UTC", teamId: $team}) { id } }`, id))
		f.own("heartbeat", team, f.adminCreate(`mutation($team: ID!) { createHeartbeatMonitor(input: {name: "`+h.unique("hb")+`", intervalMinutes: 10, teamId: $team, recipientGroupIds: [$team]}) { id } }`, id))
		f.own("window", team, f.adminCreate(`mutation($team: ID) { createMaintenanceWindow(input: {name: "`+h.unique("w")+`", integrationIds: ["`+f.things["integration"][team]+`"], startsAt: "2036-01-01T00:00:00Z", endsAt: "2036-01-01T01:00:00Z", teamId: $team}) { id } }`, id))
	}
	f.integA, f.integB, f.integOrg = f.createIntegration("DETECTIFY"), f.createIntegration("DETECTIFY"), f.createIntegration("DETECTIFY")
	f.setTeam(f.integA.ID, f.teamA)
	f.setTeam(f.integB.ID, f.teamB)
	f.alertA, f.messageA = f.open(f.integA)
	f.alertB, f.messageB = f.open(f.integB)
	f.alertOrg, f.message = f.open(f.integOrg)
	return f
}

func (f *teamsFixture) newTeam(name string) string {
	var data struct{ CreateGroup struct{ ID string } }
	f.mustGQL(f.admin.Token, `mutation($name: String!) { createGroup(input: {name: $name}) { id } }`,
		map[string]any{"name": f.unique(name)}, &data)
	return data.CreateGroup.ID
}

// member makes a MEMBER of team with role: all they may do beyond
// reading what belongs to everyone comes from the team.
func (f *teamsFixture) member(team string, role db.TeamRole) session {
	s := f.newUser(db.RoleMember)
	f.mustGQL(f.admin.Token, `mutation($team: ID!, $user: ID!, $role: TeamRole) { addGroupMember(groupId: $team, userId: $user, role: $role) { id } }`,
		map[string]any{"team": team, "user": s.ID, "role": role}, nil)
	return s
}

func (f *teamsFixture) adminCreate(doc, team string) string {
	f.t.Helper()
	var data map[string]struct{ ID string }
	f.mustGQL(f.admin.Token, doc, map[string]any{"team": team}, &data)
	for _, v := range data {
		return v.ID
	}
	f.t.Fatalf("no id from %s", doc)
	return ""
}

func (f *teamsFixture) own(noun, team, id string) {
	if f.things[noun] == nil {
		f.things[noun] = map[string]string{}
	}
	f.things[noun][team] = id
}

func (f *teamsFixture) setTeam(integrationID, team string) {
	f.mustGQL(f.admin.Token, `mutation($id: ID!, $team: ID) { updateIntegration(id: $id, input: {teamId: $team}) { id } }`,
		map[string]any{"id": integrationID, "team": team}, nil)
}

func (f *teamsFixture) open(integ integration) (alertID, messageID string) {
	f.t.Helper()
	r := f.postWebhook(integ.Token(f.t), finding(f.unique("finding"), "high"))
	if r.Status != "MAPPED_OPENED" {
		f.t.Fatalf("open an alert: %s", r.Raw)
	}
	return r.alert(), r.MessageID
}

// renames is a harmless change of each noun, by id.
var renames = map[string]string{
	"integration": `mutation($id: ID!) { updateIntegration(id: $id, input: {name: "renamed by a manager"}) { id } }`,
	"ruleset":     `mutation($id: ID!) { updateRuleset(id: $id, input: {description: "changed by a manager"}) { id } }`,
	"policy":      `mutation($id: ID!) { updateEscalationPolicy(id: $id, input: {repeat: 1}) { id } }`,
	"schedule":    `mutation($id: ID!) { updateSchedule(id: $id, input: {description: "changed by a manager"}) { id } }`,
	"heartbeat":   `mutation($id: ID!) { updateHeartbeatMonitor(id: $id, input: {graceMinutes: 3}) { id } }`,
	"window":      `mutation($id: ID!) { updateMaintenanceWindow(id: $id, input: {pageOpenAlertsAfter: true}) { id } }`,
}

// TestTeamManagerConfiguresOwnTeam: a manager of A changes each of A's
// nouns and none of B's, creates only for A, moves nothing out of A and
// links A's things to nothing of B's.
func TestTeamManagerConfiguresOwnTeam(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newTeamsFixture(t, d)
		for noun, doc := range renames {
			f.mustGQL(f.managerA.Token, doc, map[string]any{"id": f.things[noun]["A"]}, nil)
			f.wantGQLError(f.managerA.Token, doc, map[string]any{"id": f.things[noun]["B"]}, "FORBIDDEN")
			// A team responder acts on alerts but configures nothing.
			f.wantGQLError(f.responderA.Token, doc, map[string]any{"id": f.things[noun]["A"]}, "FORBIDDEN")
		}
		// Overrides are configuration of the schedule: A's manager sets
		// any on A's schedules, none on B's.
		override := `mutation($id: ID!, $user: ID!) { createOverride(input: {scheduleId: $id, userId: $user,
			start: "2036-01-01T00:00:00Z", end: "2036-01-01T08:00:00Z"}) { id } }`
		f.mustGQL(f.managerA.Token, override, map[string]any{"id": f.things["schedule"]["A"], "user": f.responderA.ID}, nil)
		f.wantGQLError(f.managerA.Token, override, map[string]any{"id": f.things["schedule"]["B"], "user": f.responderA.ID}, "FORBIDDEN")

		create := `mutation($team: ID) { createSchedule(input: {name: "new", timeZone: "UTC", teamId: $team}) { id team { id } } }`
		var made struct {
			CreateSchedule struct {
				ID   string
				Team struct{ ID string }
			}
		}
		f.mustGQL(f.managerA.Token, create, map[string]any{"team": f.teamA}, &made)
		if made.CreateSchedule.Team.ID != f.teamA {
			t.Errorf("created schedule belongs to %+v, want team A", made.CreateSchedule.Team)
		}
		f.wantGQLError(f.managerA.Token, create, map[string]any{"team": f.teamB}, "FORBIDDEN")
		f.wantGQLError(f.managerA.Token, create, map[string]any{"team": nil}, "FORBIDDEN")

		move := `mutation($id: ID!, $team: ID) { updateIntegration(id: $id, input: {teamId: $team}) { id } }`
		f.wantGQLError(f.managerA.Token, move, map[string]any{"id": f.things["integration"]["A"], "team": f.teamB}, "FORBIDDEN")
		f.wantGQLError(f.managerA.Token, move, map[string]any{"id": f.things["integration"]["A"], "team": nil}, "FORBIDDEN")

		link := f.wantGQLError(f.managerA.Token, `mutation($team: ID, $policy: ID) {
			createIntegration(input: {name: "linked", type: GENERIC, teamId: $team, escalationPolicyId: $policy}) { id } }`,
			map[string]any{"team": f.teamA, "policy": f.things["policy"]["B"]}, "BAD_USER_INPUT")
		if link.Extensions.Field != "input.escalationPolicyId" {
			t.Errorf("refused link names field %q", link.Extensions.Field)
		}

		// A manager of two teams moves things between them, but not one
		// whose links would then cross teams; an admin's link across
		// teams does not stop a manager's other changes.
		teamC := f.newTeam("Checkout")
		f.mustGQL(f.admin.Token, `mutation($team: ID!, $user: ID!) { addGroupMember(groupId: $team, userId: $user, role: MANAGER) { id } }`,
			map[string]any{"team": teamC, "user": f.managerA.ID}, nil)
		f.mustGQL(f.managerA.Token, `mutation($id: ID!, $team: ID) { updateSchedule(id: $id, input: {teamId: $team}) { id } }`,
			map[string]any{"id": f.things["schedule"]["A"], "team": teamC}, nil)
		var linked struct{ CreateIntegration struct{ ID string } }
		f.mustGQL(f.managerA.Token, `mutation($team: ID, $policy: ID) {
			createIntegration(input: {name: "paged", type: GENERIC, teamId: $team, escalationPolicyId: $policy}) { id } }`,
			map[string]any{"team": f.teamA, "policy": f.things["policy"]["A"]}, &linked)
		stale := f.wantGQLError(f.managerA.Token, move, map[string]any{"id": linked.CreateIntegration.ID, "team": teamC}, "BAD_USER_INPUT")
		// Its preset ruleset and its policy are A's.
		if f := stale.Extensions.Field; f != "input.rulesetId" && f != "input.escalationPolicyId" {
			t.Errorf("refused move names field %q", f)
		}
		f.mustGQL(f.admin.Token, `mutation($id: ID!, $policy: ID) { updateIntegration(id: $id, input: {escalationPolicyId: $policy}) { id } }`,
			map[string]any{"id": linked.CreateIntegration.ID, "policy": f.things["policy"]["B"]}, nil)
		f.mustGQL(f.managerA.Token, renames["integration"], map[string]any{"id": linked.CreateIntegration.ID}, nil)

		// An admin moves a thing between teams; the audit log keeps it.
		f.mustGQL(f.admin.Token, move, map[string]any{"id": f.things["integration"]["A"], "team": f.teamB}, nil)
		var audit struct {
			AuditLog struct {
				Nodes []struct {
					Action  string
					Changes string
				}
			}
		}
		f.mustGQL(f.admin.Token, `query($id: ID!) { auditLog(first: 1, entityType: INTEGRATION, entityId: $id) { nodes { action changes } } }`,
			map[string]any{"id": f.things["integration"]["A"]}, &audit)
		want := fmt.Sprintf(`{"teamId":{"from":%s,"to":%s}}`, f.teamA, f.teamB)
		if n := audit.AuditLog.Nodes; len(n) != 1 || n[0].Action != "UPDATED" || n[0].Changes != want {
			t.Errorf("the move was audited as %+v, want UPDATED %s", n, want)
		}
	})
}

// TestTeamRolesOnAlerts: a team responder acts on A's alerts and not B's;
// an observer reads A's but cannot act; a MEMBER of B never sees A's
// alert or message, by id, list, count, team filter or nested field.
func TestTeamRolesOnAlerts(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newTeamsFixture(t, d)
		ack := `mutation($id: ID!) { acknowledgeAlert(id: $id) { id status } }`
		f.mustGQL(f.responderA.Token, ack, map[string]any{"id": f.alertA}, nil)
		f.wantGQLError(f.responderA.Token, ack, map[string]any{"id": f.alertB}, "FORBIDDEN")
		f.wantGQLError(f.responderA.Token, ack, map[string]any{"id": f.alertOrg}, "FORBIDDEN")
		f.wantGQLError(f.obsA.Token, `mutation($id: ID!) { closeAlert(id: $id) { id } }`, map[string]any{"id": f.alertA}, "FORBIDDEN")
		f.wantGQLError(f.responderB.Token, `mutation($id: ID!) { closeAlert(id: $id) { id } }`, map[string]any{"id": f.alertA}, "FORBIDDEN")

		var seen struct {
			Alert *struct{ ID string }
		}
		f.mustGQL(f.obsA.Token, `query($id: ID!) { alert(id: $id) { id } }`, map[string]any{"id": f.alertA}, &seen)
		if seen.Alert == nil {
			t.Error("an observer of A does not see A's alert")
		}

		type lists struct {
			Alerts struct {
				TotalCount int
				Nodes      []struct{ ID string }
			}
			InboundMessages struct {
				TotalCount int
				Nodes      []struct{ ID string }
			}
			Alert          *struct{ ID string }
			InboundMessage *struct{ ID string }
			Integrations   []struct{ ID string }
		}
		read := func(token string, teams []string, alertID, messageID string) lists {
			var l lists
			f.mustGQL(token, `query($teams: [ID!], $alert: ID!, $message: ID!) {
				alerts(filter: {teamIds: $teams}) { totalCount nodes { id } }
				inboundMessages(teamIds: $teams) { totalCount nodes { id } }
				alert(id: $alert) { id } inboundMessage(id: $message) { id } integrations { id } }`,
				map[string]any{"teams": teams, "alert": alertID, "message": messageID}, &l)
			return l
		}
		ids := func(nodes []struct{ ID string }) []string {
			var out []string
			for _, n := range nodes {
				out = append(out, n.ID)
			}
			slices.Sort(out)
			return out
		}
		sorted := func(v ...string) []string { slices.Sort(v); return v }

		b := read(f.responderB.Token, nil, f.alertA, f.messageA)
		if b.Alert != nil || b.InboundMessage != nil {
			t.Errorf("a member of B reads A's alert %+v or message %+v by id", b.Alert, b.InboundMessage)
		}
		if got, want := ids(b.Alerts.Nodes), sorted(f.alertB, f.alertOrg); !slices.Equal(got, want) || b.Alerts.TotalCount != 2 {
			t.Errorf("a member of B lists alerts %v (total %d), want %v", got, b.Alerts.TotalCount, want)
		}
		if got, want := ids(b.InboundMessages.Nodes), sorted(f.messageB, f.message); !slices.Equal(got, want) || b.InboundMessages.TotalCount != 2 {
			t.Errorf("a member of B lists messages %v (total %d), want %v", got, b.InboundMessages.TotalCount, want)
		}
		for _, integ := range b.Integrations {
			if integ.ID == f.integA.ID || integ.ID == f.things["integration"]["A"] {
				t.Errorf("a member of B lists A's integration %s", integ.ID)
			}
		}
		// Asking for A's alerts gives nothing, rather than an error that
		// would confirm A has some.
		if asked := read(f.responderB.Token, []string{f.teamA}, f.alertB, f.messageB); asked.Alerts.TotalCount != 0 || asked.InboundMessages.TotalCount != 0 {
			t.Errorf("a member of B filtering by A gets %d alerts and %d messages", asked.Alerts.TotalCount, asked.InboundMessages.TotalCount)
		}

		// Global roles read everything; the team filter narrows.
		v := read(f.viewer.Token, nil, f.alertA, f.messageA)
		if v.Alert == nil || v.InboundMessage == nil || v.Alerts.TotalCount != 3 || v.InboundMessages.TotalCount != 3 {
			t.Errorf("a global viewer reads %+v", v)
		}
		if a := read(f.admin.Token, []string{f.teamA}, f.alertA, f.messageA); !slices.Equal(ids(a.Alerts.Nodes), []string{f.alertA}) {
			t.Errorf("alerts of team A: %v, want [%s]", ids(a.Alerts.Nodes), f.alertA)
		}

		// One's own teams are on me, for the SPA's default view.
		var me struct {
			Me struct {
				Teams []struct {
					Team struct{ ID string }
					Role string
				}
			}
		}
		f.mustGQL(f.obsA.Token, `{ me { teams { team { id } role } } }`, nil, &me)
		if tm := me.Me.Teams; len(tm) != 1 || tm[0].Team.ID != f.teamA || tm[0].Role != "OBSERVER" {
			t.Errorf("me.teams = %+v", tm)
		}
	})
}

// TestTeamManagerManagesMembers: a manager of A sets roles in A, not in
// B, and the change is audited.
func TestTeamManagerManagesMembers(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newTeamsFixture(t, d)
		set := `mutation($team: ID!, $user: ID!, $role: TeamRole!) { setGroupMemberRole(groupId: $team, userId: $user, role: $role) { memberships { user { id } role } } }`
		// On a websocket opened before the promotion, each operation reads
		// the roles afresh, as each HTTP request does.
		ws := f.connect(protoTransportWS, f.obsA.Token)
		ack := `mutation($id: ID!) { acknowledgeAlert(id: $id) { id } }`
		ws.subscribe("before", ack, map[string]any{"id": f.alertA})
		if errs := ws.nextData("before", &struct{}{}); len(errs) != 1 || errs[0].Extensions.Code != "FORBIDDEN" {
			t.Fatalf("an observer acknowledged over a websocket: %+v", errs)
		}
		f.mustGQL(f.managerA.Token, set, map[string]any{"team": f.teamA, "user": f.obsA.ID, "role": "RESPONDER"}, nil)
		ws.subscribe("after", ack, map[string]any{"id": f.alertA})
		if errs := ws.nextData("after", &struct{}{}); len(errs) != 0 {
			t.Fatalf("the promoted observer may not acknowledge over the same websocket: %+v", errs)
		}
		f.wantGQLError(f.managerA.Token, set, map[string]any{"team": f.teamB, "user": f.responderB.ID, "role": "MANAGER"}, "FORBIDDEN")
		f.wantGQLError(f.responderA.Token, set, map[string]any{"team": f.teamA, "user": f.responderA.ID, "role": "MANAGER"}, "FORBIDDEN")

		var audit struct {
			AuditLog struct{ Nodes []struct{ Action string } }
		}
		f.mustGQL(f.admin.Token, `query($id: ID!) { auditLog(first: 1, entityType: GROUP, entityId: $id) { nodes { action } } }`,
			map[string]any{"id": f.teamA}, &audit)
		if n := audit.AuditLog.Nodes; len(n) != 1 || n[0].Action != "MEMBER_ROLE_CHANGED" {
			t.Errorf("last audit entry of team A: %+v", n)
		}
	})
}

// expectScoped opens an alert on forbidden, then one on allowed, and
// checks that ws's subscriptions "a" (alertEvents) and "i" (inboundLog)
// hear of the second and not of the first, which came before it.
func (f *teamsFixture) expectScoped(ws *wsClient, who string, forbidden, allowed integration) {
	f.t.Helper()
	deniedAlert, deniedMsg := f.open(forbidden)
	okAlert, okMsg := f.open(allowed)
	for {
		e := ws.nextAlertEvent("a")
		if e.AlertEvents.Alert.ID == deniedAlert {
			f.t.Fatalf("%s got the event of an alert they may not read: %s", who, describe(e))
		}
		if e.AlertEvents.Alert.ID == okAlert {
			break
		}
	}
	for {
		m := ws.nextInbound("i")
		if m.InboundLog.ID == deniedMsg {
			f.t.Fatalf("%s got a message they may not read: %+v", who, m)
		}
		if m.InboundLog.ID == okMsg {
			break
		}
	}
}

// Subscriptions follow changes to their subscriber's roles once the
// socket's session is checked again, without subscribing anew: removed
// from a team, they stop hearing of its alerts and messages; added to
// one, they start; a global role that reads everything, then one that
// does not, likewise.
func TestSubscriptionsFollowRoleChanges(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newTeamsFixture(t, d)
		user := f.member(f.teamB, db.TeamResponder)
		ws := f.connect(protoTransportWS, user.Token)
		ws.subscribe("a", alertEventsQuery, nil)
		ws.subscribe("i", inboundLogQuery, nil)
		f.postUntilLive(ws, f.integB.Token(t), "a", "i")
		f.expectScoped(ws, "a member of B", f.integA, f.integB)

		f.mustGQL(f.admin.Token, `mutation($team: ID!, $user: ID!) { removeGroupMember(groupId: $team, userId: $user) { id } }`,
			map[string]any{"team": f.teamB, "user": user.ID}, nil)
		f.server.CheckWebsocketTokens()
		f.expectScoped(ws, "a member removed from B", f.integB, f.integOrg)

		f.mustGQL(f.admin.Token, `mutation($team: ID!, $user: ID!) { addGroupMember(groupId: $team, userId: $user, role: OBSERVER) { id } }`,
			map[string]any{"team": f.teamA, "user": user.ID}, nil)
		f.server.CheckWebsocketTokens()
		f.expectScoped(ws, "a member added to A", f.integB, f.integA)

		setRole := func(role db.Role) {
			f.mustGQL(f.admin.Token, `mutation($id: ID!, $role: Role) { updateUser(id: $id, input: {role: $role}) { id } }`,
				map[string]any{"id": user.ID, "role": role}, nil)
			f.server.CheckWebsocketTokens()
		}
		setRole(db.RoleViewer)
		// Not a member of B, so only the global role lets it through.
		alertB, _ := f.open(f.integB)
		for ws.nextAlertEvent("a").AlertEvents.Alert.ID != alertB {
		}
		setRole(db.RoleMember)
		f.expectScoped(ws, "a MEMBER again", f.integB, f.integA)

		// An operation started later goes by the role as last read, not
		// the one the socket was opened with.
		ws.subscribe("me", `query { me { role } }`, nil)
		var me struct{ Me struct{ Role string } }
		if errs := ws.nextData("me", &me); len(errs) > 0 || me.Me.Role != string(db.RoleMember) {
			t.Fatalf("me over the socket: %+v, errors %+v", me, errs)
		}
	})
}

// TestTeamScopedSubscriptions: over real websockets, a member of B gets
// the events of B's and everyone's integrations and none of A's, and a
// responder of A none of B's. Each check posts the forbidden event first
// and an allowed one after it: the first to arrive must be the allowed
// one, so nothing waits on a clock.
func TestTeamScopedSubscriptions(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newTeamsFixture(t, d)
		wsA := f.connect(protoTransportWS, f.responderA.Token)
		wsB := f.connect(protoTransportWS, f.responderB.Token)
		for _, ws := range []*wsClient{wsA, wsB} {
			ws.subscribe("a", alertEventsQuery, nil)
			ws.subscribe("i", inboundLogQuery, nil)
		}
		f.postUntilLive(wsA, f.integA.Token(t), "a", "i")
		f.postUntilLive(wsB, f.integB.Token(t), "a", "i")

		f.expectScoped(wsB, "a member of B", f.integA, f.integB)
		f.expectScoped(wsB, "a member of B", f.integA, f.integOrg)
		f.expectScoped(wsA, "a responder of A", f.integB, f.integA)

		// A change of owner reaches subscribers at once on this instance:
		// B's integration moves to A, and B stops hearing of it.
		f.setTeam(f.integB.ID, f.teamA)
		f.expectScoped(wsB, "a member of B after the move", f.integB, f.integOrg)
	})
}
