package alerting

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// ErrRoleCannotAct refuses an acknowledge or close made from outside the
// API (an action link, an SMS reply, a key pressed on a call) by someone
// whose role, as it is now, is below RESPONDER: the same rule the API
// applies to acknowledgeAlert and closeAlert.
var ErrRoleCannotAct = errors.New("your role does not allow acting on alerts")

// mayAct is the one role check for acting on alerts from a notification.
// It reads the role the user has at the moment of acting, not the one
// they had when the page went out, so a demotion takes effect on pages
// already sent.
func mayAct(u *db.User) error {
	if !u.Role.Includes(db.RoleResponder) {
		return ErrRoleCannotAct
	}
	return nil
}

// loadActorOn loads userID as they are now and checks that they may act
// on alertID: by their global role, or as a RESPONDER or MANAGER of the
// team the alert belongs to (alertOwner), the same rule the API applies.
func loadActorOn(ctx context.Context, idb bun.IDB, userID, alertID int) (*db.User, error) {
	u, err := loadActor(ctx, idb, userID)
	if !errors.Is(err, ErrRoleCannotAct) {
		return u, err
	}
	var roles []db.TeamRole
	err = idb.NewSelect().Model((*db.GroupMember)(nil)).Column("role").
		Where("user_id = ?", userID).
		Where("group_id = (SELECT "+alertOwner+" FROM alerts AS alert WHERE alert.id = ?)", alertID).
		Scan(ctx, &roles)
	if err != nil {
		return nil, fmt.Errorf("load the team role of user %d for alert %d: %w", userID, alertID, err)
	}
	if len(roles) == 1 && roles[0].Includes(db.TeamResponder) {
		return u, nil
	}
	return u, ErrRoleCannotAct
}

// loadActor loads userID as they are now and checks mayAct.
func loadActor(ctx context.Context, idb bun.IDB, userID int) (*db.User, error) {
	u, err := loadUser(ctx, idb, userID)
	if err != nil {
		return nil, err
	}
	return u, mayAct(u)
}

func loadUser(ctx context.Context, idb bun.IDB, userID int) (*db.User, error) {
	u := new(db.User)
	if err := idb.NewSelect().Model(u).Where("id = ?", userID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load user %d: %w", userID, db.Classify(err))
	}
	return u, nil
}
