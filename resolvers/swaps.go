package resolvers

import (
	"context"
	"errors"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/schedules"
)

// mayConfigureSchedule is the one answer to "may the caller configure
// this schedule": create any override, delete one. Today that is a
// global ADMIN.
func (r *Resolver) mayConfigureSchedule(ctx context.Context, scheduleID int) (bool, error) {
	u := auth.UserFrom(ctx)
	if u == nil {
		return false, auth.ErrUnauthenticated
	}
	return u.Role.Includes(db.RoleAdmin), nil
}

// requireConfigureSchedule refuses a caller who may not configure the
// schedule.
func (r *Resolver) requireConfigureSchedule(ctx context.Context, scheduleID int) error {
	ok, err := r.mayConfigureSchedule(ctx, scheduleID)
	if err != nil {
		return err
	}
	if !ok {
		return auth.ErrForbidden
	}
	return nil
}

// requireParticipant returns the caller if they are in one of the
// schedule's layers: what lets them put themselves on call and swap
// their shifts without configuring the schedule.
func (r *Resolver) requireParticipant(ctx context.Context, scheduleID int) (*db.User, error) {
	u, err := auth.Require(ctx, db.RoleViewer)
	if err != nil {
		return nil, err
	}
	ok, err := r.ScheduleStore.IsParticipant(ctx, scheduleID, u.ID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, auth.ErrForbidden
	}
	return u, nil
}

// checkSelfOverride lets a participant who may not configure the
// schedule create only an override that puts themselves on call
// alongside whoever is: it cannot take anyone off call.
func (r *Resolver) checkSelfOverride(ctx context.Context, in schedules.OverrideInput) error {
	u, err := r.requireParticipant(ctx, in.ScheduleID)
	if err != nil {
		return err
	}
	if in.UserID != u.ID {
		return auth.ErrForbidden
	}
	if !in.Alongside || in.ReplaceUserID != nil {
		return invalid.New("alongside", "must be true, with no replaceUserId: you may put yourself on call alongside whoever is; to hand over your shift, ask for a shift swap")
	}
	return nil
}

// answerSwap runs an answer or a cancel as the caller; a swap that is
// not theirs to act on is forbidden.
func (r *Resolver) answerSwap(ctx context.Context, id int, act func(ctx context.Context, id, byUserID int) (*schedules.ShiftSwap, error)) (*schedules.ShiftSwap, error) {
	u, err := auth.Require(ctx, db.RoleViewer)
	if err != nil {
		return nil, err
	}
	sw, err := act(ctx, id, u.ID)
	if errors.Is(err, schedules.ErrNotYourSwap) {
		return nil, auth.ErrForbidden
	}
	return sw, err
}
