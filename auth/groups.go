package auth

import (
	"context"
	"fmt"
	"github.com/klaxonhq/klaxon/invalid"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
)

// GroupInput is what createGroup and updateGroup take; nil means unchanged.
type GroupInput struct {
	Name        *string
	Description *string
	MemberIDs   []int
}

func (s *Service) Groups(ctx context.Context) ([]*db.Group, error) {
	var groups []*db.Group
	if err := s.db.NewSelect().Model(&groups).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return groups, nil
}

func (s *Service) Group(ctx context.Context, id int) (*db.Group, error) {
	g := new(db.Group)
	if err := s.db.NewSelect().Model(g).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load group %d: %w", id, db.Classify(err))
	}
	return g, nil
}

// MemberIDs returns the ids of the members of the groups, in order and
// without repeats. It reads through idb so the escalation engine can ask
// inside its own transaction.
func (s *Service) MemberIDs(ctx context.Context, idb bun.IDB, groupIDs []int) ([]int, error) {
	var ids []int
	err := idb.NewSelect().Model((*db.GroupMember)(nil)).ColumnExpr("DISTINCT user_id").
		Where("group_id IN (?)", bun.In(groupIDs)).Order("user_id").Scan(ctx, &ids)
	if err != nil {
		return nil, fmt.Errorf("list members of groups %v: %w", groupIDs, err)
	}
	return ids, nil
}

// GroupMembers returns the group's members ordered by id.
func (s *Service) GroupMembers(ctx context.Context, groupID int) ([]*db.User, error) {
	var users []*db.User
	err := s.db.NewSelect().Model(&users).
		Where("id IN (SELECT user_id FROM group_members WHERE group_id = ?)", groupID).
		Order("id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list members of group %d: %w", groupID, err)
	}
	return users, nil
}

func (s *Service) CreateGroup(ctx context.Context, in GroupInput) (*db.Group, error) {
	if in.Name == nil {
		return nil, invalid.New("name", "is required")
	}
	g := &db.Group{CreatedAt: s.now()}
	if err := applyGroup(g, in); err != nil {
		return nil, err
	}
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(g).Exec(ctx); err != nil {
			if db.IsConstraint(err) {
				return invalid.New("name", "is already in use")
			}
			return fmt.Errorf("create group: %w", err)
		}
		if err := addMembers(ctx, tx, g.ID, in.MemberIDs); err != nil {
			return err
		}
		return recordGroup(ctx, tx, g.CreatedAt, g, audit.Created, nil)
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func (s *Service) UpdateGroup(ctx context.Context, id int, in GroupInput) (*db.Group, error) {
	g := new(db.Group)
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewSelect().Model(g).Where("id = ?", id).Scan(ctx); err != nil {
			return fmt.Errorf("load group %d: %w", id, db.Classify(err))
		}
		before, err := recordOfGroup(ctx, tx, g)
		if err != nil {
			return err
		}
		if err := applyGroup(g, in); err != nil {
			return err
		}
		if _, err := tx.NewUpdate().Model(g).WherePK().Exec(ctx); err != nil {
			if db.IsConstraint(err) {
				return invalid.New("name", "is already in use")
			}
			return fmt.Errorf("update group %d: %w", id, err)
		}
		if in.MemberIDs != nil {
			if _, err := tx.NewDelete().Model((*db.GroupMember)(nil)).Where("group_id = ?", id).Exec(ctx); err != nil {
				return fmt.Errorf("replace members of group %d: %w", id, err)
			}
			if err := addMembers(ctx, tx, id, in.MemberIDs); err != nil {
				return err
			}
		}
		return recordGroup(ctx, tx, s.now(), g, audit.Updated, before)
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func (s *Service) DeleteGroup(ctx context.Context, id int) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		g, err := db.LoadByID[db.Group](ctx, tx, id, "group")
		if err != nil {
			return err
		}
		before, err := recordOfGroup(ctx, tx, g)
		if err != nil {
			return err
		}
		if err := db.DeleteByID[db.Group](ctx, tx, id, "group"); err != nil {
			return err
		}
		return audit.Record(ctx, tx, s.now(), audit.Group, id, audit.Deleted, before, nil)
	})
}

// AddGroupMember adds a user to a group with a team role; adding someone
// already in it sets their role. An empty role is RESPONDER for a new
// member and leaves an existing member's role as it is.
func (s *Service) AddGroupMember(ctx context.Context, groupID, userID int, role db.TeamRole) error {
	if role != "" && !role.Valid() {
		return invalid.New("role", fmt.Sprintf("unknown team role %q", role))
	}
	return s.changeMembers(ctx, groupID, audit.MemberAdded, func(tx bun.Tx) error {
		if err := addMembers(ctx, tx, groupID, []int{userID}); err != nil {
			return err
		}
		if role == "" {
			return nil
		}
		return setRole(ctx, tx, groupID, userID, role)
	})
}

// SetGroupMemberRole changes a member's team role.
func (s *Service) SetGroupMemberRole(ctx context.Context, groupID, userID int, role db.TeamRole) error {
	if !role.Valid() {
		return invalid.New("role", fmt.Sprintf("unknown team role %q", role))
	}
	return s.changeMembers(ctx, groupID, audit.MemberRoleChanged, func(tx bun.Tx) error {
		n, err := tx.NewSelect().Model((*db.GroupMember)(nil)).Where("group_id = ? AND user_id = ?", groupID, userID).Count(ctx)
		if err != nil {
			return fmt.Errorf("find member %d of group %d: %w", userID, groupID, err)
		}
		if n == 0 {
			return invalid.New("userId", fmt.Sprintf("user %d is not a member of group %d", userID, groupID))
		}
		return setRole(ctx, tx, groupID, userID, role)
	})
}

func setRole(ctx context.Context, tx bun.Tx, groupID, userID int, role db.TeamRole) error {
	_, err := tx.NewUpdate().Model((*db.GroupMember)(nil)).Set("role = ?", role).
		Where("group_id = ? AND user_id = ?", groupID, userID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("set role of member %d of group %d: %w", userID, groupID, err)
	}
	return nil
}

// Memberships returns the group's members with their team roles, by
// user id.
func (s *Service) Memberships(ctx context.Context, groupID int) ([]*db.GroupMember, error) {
	var members []*db.GroupMember
	if err := s.db.NewSelect().Model(&members).Where("group_id = ?", groupID).Order("user_id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list memberships of group %d: %w", groupID, err)
	}
	return members, nil
}

// TeamsOf returns the user's memberships, by group id.
func (s *Service) TeamsOf(ctx context.Context, userID int) ([]*db.GroupMember, error) {
	var members []*db.GroupMember
	if err := s.db.NewSelect().Model(&members).Where("user_id = ?", userID).Order("group_id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list teams of user %d: %w", userID, err)
	}
	return members, nil
}

func (s *Service) RemoveGroupMember(ctx context.Context, groupID, userID int) error {
	return s.changeMembers(ctx, groupID, audit.MemberRemoved, func(tx bun.Tx) error {
		_, err := tx.NewDelete().Model((*db.GroupMember)(nil)).
			Where("group_id = ? AND user_id = ?", groupID, userID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("remove member %d from group %d: %w", userID, groupID, err)
		}
		return nil
	})
}

// changeMembers runs change on an existing group's members and records
// what it did.
func (s *Service) changeMembers(ctx context.Context, groupID int, action audit.Action, change func(tx bun.Tx) error) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		g := new(db.Group)
		if err := tx.NewSelect().Model(g).Where("id = ?", groupID).Scan(ctx); err != nil {
			return fmt.Errorf("load group %d: %w", groupID, db.Classify(err))
		}
		before, err := recordOfGroup(ctx, tx, g)
		if err != nil {
			return err
		}
		if err := change(tx); err != nil {
			return err
		}
		return recordGroup(ctx, tx, s.now(), g, action, before)
	})
}

// recordGroup writes the audit entry for a change to g, reading its
// members as they now are.
func recordGroup(ctx context.Context, tx bun.Tx, at time.Time, g *db.Group, action audit.Action, before *groupRecord) error {
	after, err := recordOfGroup(ctx, tx, g)
	if err != nil {
		return err
	}
	if before == nil {
		return audit.Record(ctx, tx, at, audit.Group, g.ID, action, nil, after)
	}
	return audit.Record(ctx, tx, at, audit.Group, g.ID, action, before, after)
}

// addMembers adds users to a group; adding someone already in it is not an
// error, naming a user that does not exist is.
func addMembers(ctx context.Context, tx bun.Tx, groupID int, userIDs []int) error {
	for i, userID := range userIDs {
		n, err := tx.NewSelect().Model((*db.User)(nil)).Where("id = ?", userID).Count(ctx)
		if err != nil {
			return fmt.Errorf("check user %d: %w", userID, err)
		}
		if n == 0 {
			return invalid.New(fmt.Sprintf("memberIds[%d]", i), fmt.Sprintf("user %d does not exist", userID))
		}
		m := &db.GroupMember{GroupID: groupID, UserID: userID, Role: db.TeamResponder}
		if _, err := tx.NewInsert().Model(m).On("CONFLICT (group_id, user_id) DO NOTHING").Exec(ctx); err != nil {
			return fmt.Errorf("add user %d to group %d: %w", userID, groupID, err)
		}
	}
	return nil
}

func applyGroup(g *db.Group, in GroupInput) error {
	if in.Name != nil {
		name, err := invalid.Name("name", *in.Name)
		if err != nil {
			return err
		}
		g.Name = name
	}
	if in.Description != nil {
		if err := invalid.Description("description", *in.Description); err != nil {
			return err
		}
		g.Description = *in.Description
	}
	return nil
}
