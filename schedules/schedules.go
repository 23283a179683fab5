package schedules

import (
	"context"
	"fmt"
	"github.com/klaxonhq/klaxon/invalid"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/oncall"
)

// ScheduleInput is what createSchedule and updateSchedule take; nil means
// "default" on create and "unchanged" on update. Layers, lowest first,
// replace all layers when not nil.
type ScheduleInput struct {
	Name        *string
	Description *string
	TimeZone    *string
	Layers      []oncall.Layer
}

// OverrideInput is what createOverride takes: UserID is on call during
// [Start, End) instead of ReplaceUserID, or instead of everyone when
// ReplaceUserID is nil, or in addition to whoever is when Alongside.
type OverrideInput struct {
	ScheduleID    int
	UserID        int
	ReplaceUserID *int
	Start, End    time.Time
	Alongside     bool
}

// Now is the store's clock, for callers that default a time to now.
func (s *Store) Now() time.Time { return s.clock() }

// maxShiftsWindow is the longest span Shifts answers for.
const maxShiftsWindow = 366 * 24 * time.Hour

func (s *Store) Schedules(ctx context.Context) ([]*db.Schedule, error) {
	var list []*db.Schedule
	err := s.db.NewSelect().Model(&list).
		Relation("Layers", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("position") }).
		Order("id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	return list, nil
}

// Schedule returns the schedule with its layers; its Overrides are not
// loaded (see Overrides).
func (s *Store) Schedule(ctx context.Context, id int) (*db.Schedule, error) {
	return scheduleByID(ctx, s.db, id)
}

func scheduleByID(ctx context.Context, idb bun.IDB, id int) (*db.Schedule, error) {
	sched := new(db.Schedule)
	err := idb.NewSelect().Model(sched).
		Relation("Layers", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("position") }).
		Where("schedule.id = ?", id).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("load schedule %d: %w", id, db.Classify(err))
	}
	return sched, nil
}

// Overrides returns the schedule's overrides that end after from, by start.
func (s *Store) Overrides(ctx context.Context, scheduleID int, from time.Time) ([]*db.ScheduleOverride, error) {
	return overridesBetween(ctx, s.db, scheduleID, from, time.Time{})
}

// overridesBetween loads the overrides of a schedule that overlap
// (from, to); a zero to means no upper bound.
func overridesBetween(ctx context.Context, idb bun.IDB, scheduleID int, from, to time.Time) ([]*db.ScheduleOverride, error) {
	var list []*db.ScheduleOverride
	q := idb.NewSelect().Model(&list).Where("schedule_id = ?", scheduleID).Where("end_at > ?", from.UTC())
	if !to.IsZero() {
		q = q.Where("start_at < ?", to.UTC())
	}
	if err := q.Order("start_at", "id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("load overrides of schedule %d: %w", scheduleID, err)
	}
	return list, nil
}

func (s *Store) CreateSchedule(ctx context.Context, in ScheduleInput) (*db.Schedule, error) {
	if in.Name == nil {
		return nil, invalid.New("name", "is required")
	}
	if in.TimeZone == nil {
		return nil, invalid.New("timeZone", "is required")
	}
	now := s.clock()
	sched := &db.Schedule{CreatedAt: now, UpdatedAt: now}
	if in.Layers == nil {
		in.Layers = []oncall.Layer{}
	}
	if err := applySchedule(sched, in); err != nil {
		return nil, err
	}
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := requireParticipants(ctx, tx, in.Layers); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(sched).Exec(ctx); err != nil {
			if db.IsConstraint(err) {
				return invalid.New("name", "is already in use")
			}
			return fmt.Errorf("create schedule: %w", err)
		}
		var err error
		if sched.Layers, err = insertLayers(ctx, tx, sched.ID, in.Layers); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.Schedule, sched.ID, audit.Created, nil, recordOfSchedule(sched))
	})
	if err != nil {
		return nil, err
	}
	return sched, nil
}

// UpdateSchedule changes a schedule; layers given replace all layers.
// Overrides are kept.
func (s *Store) UpdateSchedule(ctx context.Context, id int, in ScheduleInput) (*db.Schedule, error) {
	var sched *db.Schedule
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if sched, err = scheduleByID(ctx, tx, id); err != nil {
			return err
		}
		before := recordOfSchedule(sched)
		replace := in.Layers != nil
		if !replace {
			// Checked again, as a new time zone must suit the layers kept.
			in.Layers = sched.Spec().Layers
		}
		if err := applySchedule(sched, in); err != nil {
			return err
		}
		if replace {
			if err := requireParticipants(ctx, tx, in.Layers); err != nil {
				return err
			}
		}
		sched.UpdatedAt = s.clock()
		if _, err := tx.NewUpdate().Model(sched).WherePK().Exec(ctx); err != nil {
			if db.IsConstraint(err) {
				return invalid.New("name", "is already in use")
			}
			return fmt.Errorf("update schedule %d: %w", id, err)
		}
		if replace {
			if _, err := tx.NewDelete().Model((*db.ScheduleLayer)(nil)).Where("schedule_id = ?", id).Exec(ctx); err != nil {
				return fmt.Errorf("replace layers of schedule %d: %w", id, err)
			}
			if sched.Layers, err = insertLayers(ctx, tx, id, in.Layers); err != nil {
				return err
			}
		}
		return audit.Record(ctx, tx, sched.UpdatedAt, audit.Schedule, id, audit.Updated, before, recordOfSchedule(sched))
	})
	if err != nil {
		return nil, err
	}
	return sched, nil
}

// DeleteSchedule removes a schedule with its layers and overrides. It
// refuses while an escalation policy still targets the schedule, so no
// policy silently loses a step's target.
func (s *Store) DeleteSchedule(ctx context.Context, id int) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.targets.RefuseIfTargeted(ctx, tx, db.Target{Type: db.TargetSchedule, ID: id}); err != nil {
			return err
		}
		sched, err := scheduleByID(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		if err := db.DeleteByID[db.Schedule](ctx, tx, id, "schedule"); err != nil {
			return err
		}
		return audit.Record(ctx, tx, s.clock(), audit.Schedule, id, audit.Deleted, recordOfSchedule(sched), nil)
	})
}

// applySchedule sets the schedule's own fields from in and checks the
// result, with in.Layers, as package oncall would evaluate it.
func applySchedule(sched *db.Schedule, in ScheduleInput) error {
	if in.Name != nil {
		name, err := invalid.Name("name", *in.Name)
		if err != nil {
			return err
		}
		sched.Name = name
	}
	if in.Description != nil {
		if err := invalid.Description("description", *in.Description); err != nil {
			return err
		}
		sched.Description = *in.Description
	}
	if in.TimeZone != nil {
		tz := strings.TrimSpace(*in.TimeZone)
		if tz == "" || strings.EqualFold(tz, "local") {
			return invalid.New("timeZone", "must be an IANA time zone name such as Europe/Berlin")
		}
		sched.TimeZone = tz
	}
	if len(in.Layers) > 20 {
		return invalid.New("layers", "must be at most 20")
	}
	for i, l := range in.Layers {
		if len(l.Name) > 200 {
			return invalid.New(fmt.Sprintf("layers[%d].name", i), "must be at most 200 characters")
		}
		if len(l.ParticipantIDs) > 500 {
			return invalid.New(fmt.Sprintf("layers[%d].participantIds", i), "must be at most 500")
		}
		if len(l.Restrictions) > 100 {
			return invalid.New(fmt.Sprintf("layers[%d].restrictions", i), "must be at most 100")
		}
	}
	return oncall.Schedule{TimeZone: sched.TimeZone, Layers: in.Layers}.Validate()
}

// requireParticipants checks that every participant is an existing user.
func requireParticipants(ctx context.Context, idb bun.IDB, layers []oncall.Layer) error {
	for i, l := range layers {
		field := fmt.Sprintf("layers[%d].participantIds[]", i)
		if err := db.RequireRows(ctx, idb, (*db.User)(nil), field, "user", l.ParticipantIDs); err != nil {
			return err
		}
	}
	return nil
}

func insertLayers(ctx context.Context, tx bun.Tx, scheduleID int, layers []oncall.Layer) ([]*db.ScheduleLayer, error) {
	stored := make([]*db.ScheduleLayer, len(layers))
	for i, l := range layers {
		participants := l.ParticipantIDs
		if participants == nil {
			participants = []int{}
		}
		restrictions := l.Restrictions
		if restrictions == nil {
			restrictions = []oncall.Restriction{}
		}
		stored[i] = &db.ScheduleLayer{
			ScheduleID: scheduleID, Position: i, Name: strings.TrimSpace(l.Name),
			ShiftLength: l.ShiftLength, ShiftUnit: l.ShiftUnit, HandoffAt: l.HandoffAt.UTC().Truncate(time.Microsecond),
			ParticipantIDs: participants, Restrictions: restrictions,
		}
	}
	if len(stored) == 0 {
		return stored, nil
	}
	if _, err := tx.NewInsert().Model(&stored).Exec(ctx); err != nil {
		return nil, fmt.Errorf("store layers of schedule %d: %w", scheduleID, err)
	}
	return stored, nil
}

// CreateOverride puts a user on call for a while, in place of one user
// or of everyone, or alongside whoever is.
func (s *Store) CreateOverride(ctx context.Context, in OverrideInput) (*db.ScheduleOverride, error) {
	var o *db.ScheduleOverride
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		o, err = s.createOverrideTx(ctx, tx, in)
		return err
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// createOverrideTx checks, stores and audits an override inside tx; an
// accepted shift swap becomes one this way too.
func (s *Store) createOverrideTx(ctx context.Context, tx bun.Tx, in OverrideInput) (*db.ScheduleOverride, error) {
	switch {
	case in.Start.IsZero():
		return nil, invalid.New("start", "is required")
	case !in.End.After(in.Start):
		return nil, invalid.New("end", "must be after start")
	case in.End.Sub(in.Start) > maxShiftsWindow:
		return nil, invalid.New("end", "must be at most 366 days after start")
	case in.Alongside && in.ReplaceUserID != nil:
		return nil, invalid.New("replaceUserId", "must be left out when alongside is true: nobody is replaced")
	case in.ReplaceUserID != nil && *in.ReplaceUserID == in.UserID:
		return nil, invalid.New("replaceUserId", "must differ from userId")
	}
	o := &db.ScheduleOverride{
		ScheduleID: in.ScheduleID, UserID: in.UserID, ReplaceUserID: in.ReplaceUserID, Alongside: in.Alongside,
		Start: in.Start.UTC().Truncate(time.Microsecond), End: in.End.UTC().Truncate(time.Microsecond), CreatedAt: s.clock(),
	}
	if err := db.RequireRows(ctx, tx, (*db.Schedule)(nil), "scheduleId", "schedule", []int{in.ScheduleID}); err != nil {
		return nil, err
	}
	if err := db.RequireRows(ctx, tx, (*db.User)(nil), "userId", "user", []int{in.UserID}); err != nil {
		return nil, err
	}
	if in.ReplaceUserID != nil {
		if err := db.RequireRows(ctx, tx, (*db.User)(nil), "replaceUserId", "user", []int{*in.ReplaceUserID}); err != nil {
			return nil, err
		}
	}
	if _, err := tx.NewInsert().Model(o).Exec(ctx); err != nil {
		return nil, fmt.Errorf("create override: %w", err)
	}
	if err := audit.Record(ctx, tx, o.CreatedAt, audit.Schedule, o.ScheduleID, audit.OverrideCreated, nil, recordOfOverride(o)); err != nil {
		return nil, err
	}
	return o, nil
}

func (s *Store) Override(ctx context.Context, id int) (*db.ScheduleOverride, error) {
	o := new(db.ScheduleOverride)
	if err := s.db.NewSelect().Model(o).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load override %d: %w", id, db.Classify(err))
	}
	return o, nil
}

func (s *Store) DeleteOverride(ctx context.Context, id int) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		o, err := db.LoadByID[db.ScheduleOverride](ctx, tx, id, "override")
		if err != nil {
			return err
		}
		if err := db.DeleteByID[db.ScheduleOverride](ctx, tx, id, "override"); err != nil {
			return err
		}
		return audit.Record(ctx, tx, s.clock(), audit.Schedule, o.ScheduleID, audit.OverrideDeleted, recordOfOverride(o), nil)
	})
}

// OnCallUsers returns the sorted ids of the users on call for the schedule
// at the instant at, leaving out users that no longer exist. It reads
// through idb so the escalation engine can call it inside its transaction.
func (s *Store) OnCallUsers(ctx context.Context, idb bun.IDB, scheduleID int, at time.Time) ([]int, error) {
	sched, err := scheduleByID(ctx, idb, scheduleID)
	if err != nil {
		return nil, err
	}
	if sched.Overrides, err = overridesBetween(ctx, idb, scheduleID, at, time.Time{}); err != nil {
		return nil, err
	}
	ids, err := sched.Spec().OnCall(at)
	if err != nil {
		return nil, fmt.Errorf("on call for schedule %d: %w", scheduleID, err)
	}
	if len(ids) == 0 {
		return []int{}, nil
	}
	var existing []int
	err = idb.NewSelect().Model((*db.User)(nil)).Column("id").Where("id IN (?)", bun.In(ids)).Order("id").Scan(ctx, &existing)
	if err != nil {
		return nil, fmt.Errorf("on call for schedule %d: %w", scheduleID, err)
	}
	if existing == nil {
		existing = []int{}
	}
	return existing, nil
}

// OnCall returns the users on call for the schedule at the instant at.
func (s *Store) OnCall(ctx context.Context, scheduleID int, at time.Time) ([]*db.User, error) {
	ids, err := s.OnCallUsers(ctx, s.db, scheduleID, at)
	if err != nil {
		return nil, err
	}
	return db.UsersInOrder(ctx, s.db, ids)
}

// Shifts returns the schedule's final timeline in [from, to): who is on
// call when, overrides applied, with no one-on-call gaps left out.
func (s *Store) Shifts(ctx context.Context, scheduleID int, from, to time.Time) ([]oncall.Shift, error) {
	if !to.After(from) {
		return nil, invalid.New("to", "must be after from")
	}
	if to.Sub(from) > maxShiftsWindow {
		return nil, invalid.New("to", "must be at most 366 days after from")
	}
	sched, err := scheduleByID(ctx, s.db, scheduleID)
	if err != nil {
		return nil, err
	}
	if sched.Overrides, err = overridesBetween(ctx, s.db, scheduleID, from, to); err != nil {
		return nil, err
	}
	shifts, err := sched.Spec().Shifts(from, to)
	if err != nil {
		return nil, fmt.Errorf("shifts of schedule %d: %w", scheduleID, err)
	}
	return shifts, nil
}
