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

// RecipientTable is a table of the users and groups something's alerts
// are for: rows of (OwnerColumn, kind, target_id). Integrations and
// heartbeat monitors each have one, read and written the same way.
type RecipientTable struct {
	Name, OwnerColumn string
}

var (
	IntegrationRecipients = RecipientTable{Name: "integration_recipients", OwnerColumn: "integration_id"}
	HeartbeatRecipients   = RecipientTable{Name: "heartbeat_recipients", OwnerColumn: "monitor_id"}
)

// Check refuses recipient ids that name no user or group, as the API
// fields recipientUserIds and recipientGroupIds.
func (RecipientTable) Check(ctx context.Context, idb bun.IDB, userIDs, groupIDs []int) error {
	if err := RequireRows(ctx, idb, (*User)(nil), "recipientUserIds[]", "user", userIDs); err != nil {
		return err
	}
	return RequireRows(ctx, idb, (*Group)(nil), "recipientGroupIds[]", "group", groupIDs)
}

// Replace stores the owner's recipient lists, each replacing the stored
// one of its kind; a nil list leaves its kind as it is, and repeated ids
// are stored once.
func (t RecipientTable) Replace(ctx context.Context, idb bun.IDB, ownerID int, userIDs, groupIDs []int) error {
	for kind, ids := range map[TargetType][]int{TargetUser: userIDs, TargetGroup: groupIDs} {
		if ids == nil {
			continue
		}
		_, err := idb.NewDelete().TableExpr("?", bun.Ident(t.Name)).
			Where("? = ? AND kind = ?", bun.Ident(t.OwnerColumn), ownerID, kind).Exec(ctx)
		if err != nil {
			return fmt.Errorf("replace %s of %d: %w", t.Name, ownerID, err)
		}
		ids = slices.Clone(ids)
		slices.Sort(ids)
		for _, id := range slices.Compact(ids) {
			_, err := idb.NewRaw("INSERT INTO ? (?, kind, target_id) VALUES (?, ?, ?)",
				bun.Ident(t.Name), bun.Ident(t.OwnerColumn), ownerID, kind, id).Exec(ctx)
			if err != nil {
				return fmt.Errorf("store %s of %d: %w", t.Name, ownerID, err)
			}
		}
	}
	return nil
}

// Read returns the users and groups the owner's alerts are for, each by
// id; deleted ones are left out.
func (t RecipientTable) Read(ctx context.Context, idb bun.IDB, ownerID int) ([]*User, []*Group, error) {
	inTable := "id IN (SELECT target_id FROM ? WHERE ? = ? AND kind = ?)"
	users := []*User{}
	err := idb.NewSelect().Model(&users).
		Where(inTable, bun.Ident(t.Name), bun.Ident(t.OwnerColumn), ownerID, TargetUser).
		Order("id").Scan(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("recipient users: %w", err)
	}
	groups := []*Group{}
	err = idb.NewSelect().Model(&groups).
		Where(inTable, bun.Ident(t.Name), bun.Ident(t.OwnerColumn), ownerID, TargetGroup).
		Order("id").Scan(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("recipient groups: %w", err)
	}
	return users, groups, nil
}
