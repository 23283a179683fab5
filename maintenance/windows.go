package maintenance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/oncall"
)

// Input is what createMaintenanceWindow and updateMaintenanceWindow take;
// nil means "default" on create and "unchanged" on update. EndsAt and
// Recurrence are set (possibly to nil, removing them) when their Set flag
// is.
type Input struct {
	// Team is the owning team; on update, unset keeps it.
	Team           db.TeamChange
	Name           *string
	IntegrationIDs []int
	// StartsAt defaults to now on create: an ad-hoc window.
	StartsAt            *time.Time
	SetEndsAt           bool
	EndsAt              *time.Time
	SetRecurrence       bool
	Recurrence          *RecurrenceInput
	PageOpenAlertsAfter *bool
}

// RecurrenceInput repeats a window weekly.
type RecurrenceInput struct {
	Weekdays []time.Weekday
	// StartTime is the local start time, HH:MM.
	StartTime       string
	DurationMinutes int
	TimeZone        string
}

const maxIntegrations = 200

// Windows returns every window, or with activeAt those covering some
// integration at that instant, by id.
func (s *Store) Windows(ctx context.Context, activeAt *time.Time) ([]*db.MaintenanceWindow, error) {
	var list []*db.MaintenanceWindow
	if err := s.db.NewSelect().Model(&list).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list maintenance windows: %w", err)
	}
	if err := s.complete(ctx, s.db, list); err != nil {
		return nil, err
	}
	if activeAt == nil {
		return list, nil
	}
	return slices.DeleteFunc(list, func(w *db.MaintenanceWindow) bool {
		_, ok := w.ActiveAt(*activeAt)
		return !ok
	}), nil
}

// Window returns one window.
func (s *Store) Window(ctx context.Context, id int) (*db.MaintenanceWindow, error) {
	return s.WindowByID(ctx, s.db, id)
}

// WindowByID loads a window through idb, so alerting can read it inside
// its own transaction.
func (s *Store) WindowByID(ctx context.Context, idb bun.IDB, id int) (*db.MaintenanceWindow, error) {
	w := new(db.MaintenanceWindow)
	if err := idb.NewSelect().Model(w).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load maintenance window %d: %w", id, db.Classify(err))
	}
	if err := s.complete(ctx, idb, []*db.MaintenanceWindow{w}); err != nil {
		return nil, err
	}
	return w, nil
}

// WindowsFor returns the windows naming the integration, for ingest to
// keep with the integration's route.
func (s *Store) WindowsFor(ctx context.Context, idb bun.IDB, integrationID int) ([]*db.MaintenanceWindow, error) {
	var list []*db.MaintenanceWindow
	// Windows already over can cover nothing again; leaving them out
	// keeps the list ingest checks each message against short.
	err := idb.NewSelect().Model(&list).
		Where("id IN (SELECT window_id FROM maintenance_window_integrations WHERE integration_id = ?)", integrationID).
		Where("ends_at IS NULL OR ends_at > ?", s.clock()).
		Order("id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("maintenance windows of integration %d: %w", integrationID, err)
	}
	for _, w := range list {
		if err := w.LoadRecurrence(); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// complete parses the windows' recurrences and loads their integrations.
func (s *Store) complete(ctx context.Context, idb bun.IDB, list []*db.MaintenanceWindow) error {
	if len(list) == 0 {
		return nil
	}
	byID := map[int]*db.MaintenanceWindow{}
	ids := make([]int, len(list))
	for i, w := range list {
		if err := w.LoadRecurrence(); err != nil {
			return err
		}
		w.IntegrationIDs = []int{}
		byID[w.ID], ids[i] = w, w.ID
	}
	var links []windowIntegration
	err := idb.NewSelect().Model(&links).Where("window_id IN (?)", bun.In(ids)).Order("window_id", "integration_id").Scan(ctx)
	if err != nil {
		return fmt.Errorf("integrations of maintenance windows: %w", err)
	}
	for _, l := range links {
		byID[l.WindowID].IntegrationIDs = append(byID[l.WindowID].IntegrationIDs, l.IntegrationID)
	}
	return nil
}

// CreateWindow stores a new window. A window that is already active holds
// back the paging of alerts opened from the commit on.
func (s *Store) CreateWindow(ctx context.Context, in Input) (*db.MaintenanceWindow, error) {
	defer s.changed()
	if in.Name == nil {
		return nil, invalid.New("name", "is required")
	}
	if in.IntegrationIDs == nil {
		return nil, invalid.New("integrationIds", "at least one integration is required")
	}
	now := s.clock()
	w := &db.MaintenanceWindow{StartsAt: now, PageOpenAlertsAfter: true, CreatedAt: now, UpdatedAt: now}
	if err := apply(w, in); err != nil {
		return nil, err
	}
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := db.RequireRows(ctx, tx, (*db.Integration)(nil), "integrationIds", "integration", w.IntegrationIDs); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(w).Exec(ctx); err != nil {
			if db.IsConstraint(err) {
				return invalid.New("name", "is already in use")
			}
			return fmt.Errorf("create maintenance window: %w", err)
		}
		if err := insertLinks(ctx, tx, w); err != nil {
			return err
		}
		if err := s.follow(ctx, tx, w, false, now); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.MaintenanceWindow, w.ID, audit.Created, nil, recordOfWindow(w))
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// UpdateWindow changes a window. Alerts it holds back follow at once: if
// the window no longer covers now (shortened, moved), they start paging
// now as when it ends; if it lasts longer, they wait for the new end.
func (s *Store) UpdateWindow(ctx context.Context, id int, in Input) (*db.MaintenanceWindow, error) {
	defer s.changed()
	var w *db.MaintenanceWindow
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if w, err = s.WindowByID(ctx, tx, id); err != nil {
			return err
		}
		before := recordOfWindow(w)
		if err := apply(w, in); err != nil {
			return err
		}
		if in.IntegrationIDs != nil {
			if err := db.RequireRows(ctx, tx, (*db.Integration)(nil), "integrationIds", "integration", w.IntegrationIDs); err != nil {
				return err
			}
		}
		w.UpdatedAt = s.clock()
		if _, err := tx.NewUpdate().Model(w).WherePK().Exec(ctx); err != nil {
			if db.IsConstraint(err) {
				return invalid.New("name", "is already in use")
			}
			return fmt.Errorf("update maintenance window %d: %w", id, err)
		}
		if in.IntegrationIDs != nil {
			if _, err := tx.NewDelete().Model((*windowIntegration)(nil)).Where("window_id = ?", id).Exec(ctx); err != nil {
				return fmt.Errorf("replace integrations of maintenance window %d: %w", id, err)
			}
			if err := insertLinks(ctx, tx, w); err != nil {
				return err
			}
		}
		if err := s.follow(ctx, tx, w, false, w.UpdatedAt); err != nil {
			return err
		}
		return audit.Record(ctx, tx, w.UpdatedAt, audit.MaintenanceWindow, id, audit.Updated, before, recordOfWindow(w))
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// DeleteWindow removes a window, which ends it now: the alerts it held
// back start paging as when it ends.
func (s *Store) DeleteWindow(ctx context.Context, id int) error {
	defer s.changed()
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		w, err := s.WindowByID(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		now := s.clock()
		// Before the row goes: the alerts are found by the window they
		// name, which the delete clears.
		if err := s.follow(ctx, tx, w, true, now); err != nil {
			return err
		}
		if err := db.DeleteByID[db.MaintenanceWindow](ctx, tx, id, "maintenance window"); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.MaintenanceWindow, id, audit.Deleted, recordOfWindow(w), nil)
	})
}

func (s *Store) follow(ctx context.Context, tx bun.Tx, w *db.MaintenanceWindow, deleted bool, now time.Time) error {
	if s.paging == nil {
		return errors.New("maintenance windows: no paging to follow the change")
	}
	return s.paging.WindowChanged(ctx, tx, w, deleted, now)
}

func (s *Store) changed() {
	if s.paging != nil {
		s.paging.RoutesChanged()
	}
}

func insertLinks(ctx context.Context, tx bun.Tx, w *db.MaintenanceWindow) error {
	links := make([]windowIntegration, len(w.IntegrationIDs))
	for i, id := range w.IntegrationIDs {
		links[i] = windowIntegration{WindowID: w.ID, IntegrationID: id}
	}
	if _, err := tx.NewInsert().Model(&links).Exec(ctx); err != nil {
		return fmt.Errorf("store integrations of maintenance window %d: %w", w.ID, err)
	}
	return nil
}

// apply validates in and sets it on w.
func apply(w *db.MaintenanceWindow, in Input) error {
	in.Team.Apply(&w.TeamID)
	if in.Name != nil {
		name, err := invalid.Name("name", *in.Name)
		if err != nil {
			return err
		}
		w.Name = name
	}
	if in.IntegrationIDs != nil {
		if len(in.IntegrationIDs) == 0 {
			return invalid.New("integrationIds", "at least one integration is required")
		}
		if len(in.IntegrationIDs) > maxIntegrations {
			return invalid.New("integrationIds", fmt.Sprintf("must be at most %d", maxIntegrations))
		}
		ids := slices.Clone(in.IntegrationIDs)
		slices.Sort(ids)
		w.IntegrationIDs = slices.Compact(ids)
	}
	if in.StartsAt != nil {
		w.StartsAt = in.StartsAt.UTC().Truncate(time.Microsecond)
	}
	if in.SetEndsAt {
		w.EndsAt = nil
		if in.EndsAt != nil {
			end := in.EndsAt.UTC().Truncate(time.Microsecond)
			w.EndsAt = &end
		}
	}
	if in.PageOpenAlertsAfter != nil {
		w.PageOpenAlertsAfter = *in.PageOpenAlertsAfter
	}
	if in.SetRecurrence {
		w.RecurWeekdays, w.RecurStartTime, w.RecurDurationMinutes, w.RecurTimeZone = "", "", 0, ""
		if r := in.Recurrence; r != nil {
			if err := validateRecurrence(r); err != nil {
				return err
			}
			days := slices.Clone(r.Weekdays)
			slices.Sort(days)
			names := make([]string, len(days))
			for i, d := range days {
				names[i] = strconv.Itoa(int(d))
			}
			w.RecurWeekdays = strings.Join(names, ",")
			w.RecurStartTime, w.RecurDurationMinutes, w.RecurTimeZone = r.StartTime, r.DurationMinutes, r.TimeZone
		}
	}
	if err := w.LoadRecurrence(); err != nil {
		return err
	}
	if w.EndsAt == nil && w.Recurrence() == nil {
		return invalid.New("endsAt", "is required for a window without a recurrence")
	}
	if w.EndsAt != nil && !w.EndsAt.After(w.StartsAt) {
		return invalid.New("endsAt", "must be after startsAt")
	}
	return nil
}

func validateRecurrence(r *RecurrenceInput) error {
	if len(r.Weekdays) == 0 {
		return invalid.New("recurrence.weekdays", "at least one weekday is required")
	}
	for i, d := range r.Weekdays {
		if d < time.Sunday || d > time.Saturday {
			return invalid.New("recurrence.weekdays", fmt.Sprintf("unknown weekday %d", d))
		}
		if slices.Contains(r.Weekdays[:i], d) {
			return invalid.New("recurrence.weekdays", d.String()+" is named twice")
		}
	}
	if _, _, err := oncall.ParseClock(r.StartTime); err != nil {
		return invalid.New("recurrence.startTime", "must be a local time HH:MM, 00:00 to 23:59")
	}
	if r.DurationMinutes < 1 || r.DurationMinutes > maxDurationMinutes {
		return invalid.New("recurrence.durationMinutes", fmt.Sprintf("must be between 1 and %d (a week)", maxDurationMinutes))
	}
	if _, err := oncall.LoadZone(r.TimeZone); err != nil {
		return invalid.New("recurrence.timeZone", err.Error())
	}
	return nil
}

// ActiveUntil is when the window stops covering its integrations, if it
// covers them now; nil if it does not.
func (s *Store) ActiveUntil(w *db.MaintenanceWindow) *time.Time {
	until, ok := w.ActiveAt(s.clock())
	if !ok {
		return nil
	}
	return &until
}
