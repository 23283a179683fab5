package db

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/invalid"
)

// RequireRows checks that every id names a row of model's table, and
// otherwise reports the first missing one as invalid input on field; a
// "[]" in field becomes the id's index, as in "memberIds[2]". Every
// package that stores references to another's rows checks them this way.
func RequireRows(ctx context.Context, idb bun.IDB, model any, field, what string, ids []int) error {
	if len(ids) == 0 {
		return nil
	}
	var found []int
	if err := idb.NewSelect().Model(model).Column("id").Where("id IN (?)", bun.In(ids)).Scan(ctx, &found); err != nil {
		return fmt.Errorf("check %ss exist: %w", what, err)
	}
	for i, id := range ids {
		if !slices.Contains(found, id) {
			return invalid.New(strings.Replace(field, "[]", fmt.Sprintf("[%d]", i), 1), fmt.Sprintf("%s %d does not exist", what, id))
		}
	}
	return nil
}

// UsersInOrder loads the users with the given ids in that order, leaving
// out ids with no user.
func UsersInOrder(ctx context.Context, idb bun.IDB, ids []int) ([]*User, error) {
	users := []*User{}
	if len(ids) == 0 {
		return users, nil
	}
	var found []*User
	if err := idb.NewSelect().Model(&found).Where("id IN (?)", bun.In(ids)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load users: %w", err)
	}
	byID := make(map[int]*User, len(found))
	for _, u := range found {
		byID[u.ID] = u
	}
	for _, id := range ids {
		if u, ok := byID[id]; ok {
			users = append(users, u)
		}
	}
	return users, nil
}

// Recipients returns the users and groups named in a recipients table
// (integration_recipients, heartbeat_recipients: rows of kind, target_id
// and the owner's id in ownerColumn), each by id; deleted ones are left
// out.
func Recipients(ctx context.Context, idb bun.IDB, table, ownerColumn string, ownerID int) ([]*User, []*Group, error) {
	inTable := "id IN (SELECT target_id FROM ? WHERE ? = ? AND kind = ?)"
	users := []*User{}
	err := idb.NewSelect().Model(&users).
		Where(inTable, bun.Ident(table), bun.Ident(ownerColumn), ownerID, TargetUser).
		Order("id").Scan(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("recipient users: %w", err)
	}
	groups := []*Group{}
	err = idb.NewSelect().Model(&groups).
		Where(inTable, bun.Ident(table), bun.Ident(ownerColumn), ownerID, TargetGroup).
		Order("id").Scan(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("recipient groups: %w", err)
	}
	return users, groups, nil
}
