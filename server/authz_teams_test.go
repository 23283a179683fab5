package server_test

import (
	"fmt"
	"strings"

	"github.com/klaxonhq/klaxon/db"
)

// The matrix's team columns: users whose global role is MEMBER, so that
// whatever they may do comes from their team role. The fixture's things
// belong to team A; team B's members hold the same roles elsewhere.

// teamRule says which team members may call a field. The zero value
// derives it from the entry's rule (see authzEntry.teamRule), so rows
// written without it keep compiling and mean what they say for teams.
type teamRule int

const (
	teamDerived teamRule = iota
	// teamNone: no MEMBER, whatever their team role.
	teamNone
	// teamAll: every MEMBER; what they see is scoped, not refused.
	teamAll
	// teamRead: every member of the owning team.
	teamRead
	// teamAct: the owning team's RESPONDERs and MANAGERs.
	teamAct
	// teamConfigure: the owning team's MANAGERs.
	teamConfigure
)

func (r teamRule) String() string {
	return [...]string{"derived", "no team member", "every member", "team A's members", "team A's responders", "team A's managers"}[r]
}

// teamCallers are the six team columns of the matrix.
var teamCallers = func() []authzCaller {
	var out []authzCaller
	for _, team := range []string{"A", "B"} {
		for _, role := range []db.TeamRole{db.TeamObserver, db.TeamResponder, db.TeamManager} {
			out = append(out, authzCaller{name: fmt.Sprintf("team %s %s", team, role), role: db.RoleMember, team: team, teamRole: role})
		}
	}
	return out
}()

// teamRule is the entry's rule for team members: given, or derived from
// the global rule. Reading is open to every member (lists and single
// reads are scoped to what they may see); what only responders may do,
// a team's responders may do on its alerts; what needs an admin stays so.
func (e authzEntry) teamRule() teamRule {
	if e.team != teamDerived {
		return e.team
	}
	switch e.rule {
	case ruleAnyone, ruleViewer:
		return teamAll
	case ruleResponder:
		return teamAct
	}
	return teamNone
}

// allows says whether caller c may call the entry's field.
func (e authzEntry) allows(c authzCaller) bool {
	if c.team == "" {
		return e.rule.allows(c)
	}
	switch e.teamRule() {
	case teamAll:
		return true
	case teamRead:
		return c.team == "A"
	case teamAct:
		return c.team == "A" && c.teamRole.Includes(db.TeamResponder)
	case teamConfigure:
		return c.team == "A" && c.teamRole == db.TeamManager
	}
	return false
}

// callers are the columns the entry is checked for.
func (e authzEntry) callers() []authzCaller {
	return append(e.rule.callers(), teamCallers...)
}

// addTeams makes teams A and B and their members, and returns A's id.
func (f *authzFixture) addTeams() {
	f.teamA, f.teamB = f.newGroup(), f.newGroup()
	f.teamMembers = map[string]session{}
	for _, c := range teamCallers {
		s := f.newUser(db.RoleMember)
		team := map[string]string{"A": f.teamA, "B": f.teamB}[c.team]
		f.mustGQL(f.admin.Token, `mutation($team: ID!, $user: ID!, $role: TeamRole!) { addGroupMember(groupId: $team, userId: $user, role: $role) { id } }`,
			map[string]any{"team": team, "user": s.ID, "role": c.teamRole}, nil)
		f.teamMembers[c.name] = s
	}
}

// ownByA gives an integration to team A, as admin.
func (f *authzFixture) ownByA(integrationID string) string {
	f.mustGQL(f.admin.Token, `mutation($id: ID!, $team: ID) { updateIntegration(id: $id, input: {teamId: $team}) { id } }`,
		map[string]any{"id": integrationID, "team": f.teamA}, nil)
	return integrationID
}

// teamVars passes team A's id to a call whose document asks for $team.
func (f *authzFixture) teamVars(doc string, vars map[string]any) map[string]any {
	if !strings.Contains(doc, "$team") {
		return vars
	}
	if vars == nil {
		vars = map[string]any{}
	}
	if _, ok := vars["team"]; !ok {
		vars["team"] = f.teamA
	}
	return vars
}

// newTeamMember adds a new MEMBER to team A with role, for the calls that
// change A's members.
func (f *authzFixture) newTeamMember(role db.TeamRole) string {
	s := f.createUser(db.RoleMember)
	f.mustGQL(f.admin.Token, `mutation($team: ID!, $user: ID!, $role: TeamRole!) { addGroupMember(groupId: $team, userId: $user, role: $role) { id } }`,
		map[string]any{"team": f.teamA, "user": s.ID, "role": role}, nil)
	return s.ID
}
