package auth

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/invalid"
)

// Right is what a caller may do with one thing; each right includes the
// ones below it.
type Right int

const (
	RightNone Right = iota
	// RightRead sees the thing.
	RightRead
	// RightAct acknowledges, closes, snoozes, assigns and notes alerts.
	RightAct
	// RightConfigure creates, changes and deletes the thing.
	RightConfigure
)

// Access is what one caller may do: their global role and their role in
// each team they belong to. It is the one place rights are computed;
// every resolver asks it through MayRead, MayAct and MayConfigure.
type Access struct {
	User  *db.User
	teams map[int]db.TeamRole
}

// NewAccess builds the access of user with the given team roles.
func NewAccess(user *db.User, teams map[int]db.TeamRole) *Access {
	return &Access{User: user, teams: teams}
}

// Right is the caller's effective right on a thing owned by teamID (nil:
// organisation-wide): the higher of what the global role grants and
// what the team role grants there.
func (a *Access) Right(teamID *int) Right {
	if a == nil || a.User == nil {
		return RightNone
	}
	right := globalRight(a.User.Role, teamID == nil)
	if teamID != nil {
		right = max(right, teamRight(a.teams[*teamID]))
	}
	return right
}

func globalRight(role db.Role, orgWide bool) Right {
	switch role {
	case db.RoleAdmin:
		return RightConfigure
	case db.RoleResponder:
		return RightAct
	case db.RoleViewer:
		return RightRead
	case db.RoleMember:
		// A member sees what belongs to everyone; the rest only through
		// their teams.
		if orgWide {
			return RightRead
		}
	}
	return RightNone
}

func teamRight(role db.TeamRole) Right {
	switch role {
	case db.TeamManager:
		return RightConfigure
	case db.TeamResponder:
		return RightAct
	case db.TeamObserver:
		return RightRead
	}
	return RightNone
}

// TeamRole is the caller's role in team teamID, "" when not a member.
func (a *Access) TeamRole(teamID int) db.TeamRole {
	if a == nil {
		return ""
	}
	return a.teams[teamID]
}

// TeamIDs lists the teams the caller belongs to, in order.
func (a *Access) TeamIDs() []int {
	if a == nil {
		return nil
	}
	ids := make([]int, 0, len(a.teams))
	for id := range a.teams {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// ReadsAll reports a caller whose global role reads everything, so lists
// need no scoping.
func (a *Access) ReadsAll() bool {
	return a != nil && a.User != nil && a.User.Role.Includes(db.RoleViewer)
}

// ReadScope is the owners whose things the caller may see, narrowed to
// the teams asked for (none asked: no narrowing); nil means every owner.
func (a *Access) ReadScope(asked []int) *db.TeamScope {
	if a.ReadsAll() {
		if len(asked) == 0 {
			return nil
		}
		return &db.TeamScope{TeamIDs: slices.Clone(asked)}
	}
	if len(asked) == 0 {
		return &db.TeamScope{TeamIDs: a.TeamIDs(), OrgWide: true}
	}
	scope := &db.TeamScope{TeamIDs: []int{}}
	for _, id := range asked {
		if a.Right(&id) >= RightRead {
			scope.TeamIDs = append(scope.TeamIDs, id)
		}
	}
	return scope
}

// may refuses a right below want: unauthenticated without a caller,
// forbidden otherwise.
func (a *Access) may(want Right, teamID *int) error {
	if a == nil || a.User == nil {
		return ErrUnauthenticated
	}
	if a.Right(teamID) < want {
		return ErrForbidden
	}
	return nil
}

// accessSlot holds one request's access, loaded at the first question.
type accessSlot struct {
	once   sync.Once
	access *Access
	err    error
}

type accessKey struct{}

func withAccessSlot(ctx context.Context) context.Context {
	return context.WithValue(ctx, accessKey{}, &accessSlot{})
}

// WithFreshAccess makes the caller's team roles be read again at the next
// question: for each operation on a long-lived connection.
func WithFreshAccess(ctx context.Context) context.Context {
	if UserFrom(ctx) == nil {
		return ctx
	}
	return withAccessSlot(ctx)
}

// Access returns the caller's access, reading their team roles once per
// request; a caller who is not signed in gets ErrUnauthenticated.
func (s *Service) Access(ctx context.Context) (*Access, error) {
	u := UserFrom(ctx)
	if u == nil {
		return nil, ErrUnauthenticated
	}
	if live := LiveAccessFrom(ctx); live != nil {
		if latest := live.User(); latest != nil {
			u = latest
		}
	}
	slot, _ := ctx.Value(accessKey{}).(*accessSlot)
	if slot == nil {
		return s.loadAccess(ctx, u)
	}
	slot.once.Do(func() { slot.access, slot.err = s.loadAccess(ctx, u) })
	return slot.access, slot.err
}

func (s *Service) loadAccess(ctx context.Context, u *db.User) (*Access, error) {
	var members []*db.GroupMember
	if err := s.db.NewSelect().Model(&members).Where("user_id = ?", u.ID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load team roles of user %d: %w", u.ID, err)
	}
	teams := make(map[int]db.TeamRole, len(members))
	for _, m := range members {
		teams[m.GroupID] = m.Role
		if u.TeamRoleCap != "" && !u.TeamRoleCap.Includes(m.Role) {
			teams[m.GroupID] = u.TeamRoleCap
		}
	}
	return NewAccess(u, teams), nil
}

func (s *Service) may(ctx context.Context, want Right, teamID *int) error {
	a, err := s.Access(ctx)
	if err != nil {
		return err
	}
	return a.may(want, teamID)
}

// MayRead refuses a caller who may not see a thing owned by teamID.
func (s *Service) MayRead(ctx context.Context, teamID *int) error {
	return s.may(ctx, RightRead, teamID)
}

// MayAct refuses a caller who may not act on the alerts of teamID.
func (s *Service) MayAct(ctx context.Context, teamID *int) error {
	return s.may(ctx, RightAct, teamID)
}

// MayConfigure refuses a caller who may not configure a thing owned by
// teamID.
func (s *Service) MayConfigure(ctx context.Context, teamID *int) error {
	return s.may(ctx, RightConfigure, teamID)
}

// MayMove refuses a change of owner from one team to another unless the
// caller configures both.
func (s *Service) MayMove(ctx context.Context, from, to *int) error {
	if err := s.MayConfigure(ctx, from); err != nil {
		return err
	}
	return s.MayConfigure(ctx, to)
}

// MayManageTeam lets admins and the team's managers change its members
// and their roles.
func (s *Service) MayManageTeam(ctx context.Context, teamID int) error {
	a, err := s.Access(ctx)
	if err != nil {
		return err
	}
	if a.User.Role == db.RoleAdmin || a.TeamRole(teamID) == db.TeamManager {
		return nil
	}
	return ErrForbidden
}

// Sees reports whether the caller may see a thing owned by teamID; an
// unknown caller sees nothing.
func (s *Service) Sees(ctx context.Context, teamID *int) (bool, error) {
	a, err := s.Access(ctx)
	if err != nil {
		return false, err
	}
	return a.Right(teamID) >= RightRead, nil
}

// MayReference refuses, as bad input of field, a link from a thing owned
// by owner to a thing owned by target (a policy from an integration, a
// schedule from a policy step): admins link anything, everyone else only
// within one team or to what belongs to the organisation.
func (s *Service) MayReference(ctx context.Context, field string, owner, target *int) error {
	a, err := s.Access(ctx)
	if err != nil {
		return err
	}
	if a.User.Role == db.RoleAdmin || target == nil || (owner != nil && *owner == *target) {
		return nil
	}
	return invalid.New(field, "belongs to another team; only admins link things across teams")
}
