package alerting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/invalid"
)

// AlertFilter narrows a list of alerts; zero values match everything.
type AlertFilter struct {
	Statuses      []db.AlertStatus
	IntegrationID *int
	Severities    []string
	// Search matches alerts whose subject contains it, ignoring case;
	// it is plain text, never a pattern.
	Search string
	// Grouped, when set, keeps only the first alerts of groups (true) or
	// only the alerts outside any group (false).
	Grouped *bool
	// Suppressed, when set, keeps the alerts opened during a maintenance
	// window that has not yet let them page (true), or the others.
	Suppressed *bool
	// Overdue, when set, keeps the alerts marked overdue (true), closed
	// since or not, or the others.
	Overdue *bool
	// Teams, when set, keeps only the alerts of these owners (see
	// alertOwner).
	Teams *db.TeamScope
}

// alertOwner is the SQL for the team an alert belongs to: its
// integration's, or for a missed heartbeat its monitor's; NULL is
// organisation-wide (a manual alert).
const alertOwner = `(CASE WHEN alert.integration_id IS NOT NULL
	THEN (SELECT owner_i.team_id FROM integrations AS owner_i WHERE owner_i.id = alert.integration_id)
	ELSE (SELECT owner_h.team_id FROM heartbeat_monitors AS owner_h WHERE owner_h.id = alert.heartbeat_monitor_id) END)`

// MaxSearchLength bounds AlertFilter.Search, in characters.
const MaxSearchLength = 200

// likeEscaper makes text match only itself inside a LIKE pattern that
// declares ESCAPE '\'.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// Alerts returns one page of alerts, the total matching the filter
// (counted up to db.CountCap + 1), and whether more follow.
func (s *Service) Alerts(ctx context.Context, f AlertFilter, p db.PageRequest) ([]*db.Alert, int, bool, error) {
	search := strings.TrimSpace(f.Search)
	if utf8.RuneCountInString(search) > MaxSearchLength {
		return nil, 0, false, invalid.Fieldf("filter.search", "must be at most %d characters", MaxSearchLength)
	}
	return listPage[db.Alert](ctx, s.db, p, "alerts", func(q *bun.SelectQuery) *bun.SelectQuery {
		switch {
		case len(f.Statuses) > 0 && !slices.Contains(f.Statuses, db.AlertClosed) && s.db.Kind == db.SQLite:
			// Only unclosed alerts, which stay few: they are read newest
			// first from the partial indexes alerts_unclosed and
			// alerts_unclosed_integration. PostgreSQL sees that the list
			// implies their condition; SQLite needs it said in the
			// indexes' own words, and, planning without statistics,
			// would still walk alerts_status once per status and sort
			// all it found for one page, so the list is an expression
			// (status || '') that no index answers.
			q = q.Where("status <> ?", db.AlertClosed).Where("status || '' IN (?)", bun.In(f.Statuses))
		case len(f.Statuses) > 0:
			q = q.Where("status IN (?)", bun.In(f.Statuses))
		}
		if f.IntegrationID != nil {
			q = q.Where("integration_id = ?", *f.IntegrationID)
		}
		if len(f.Severities) > 0 {
			q = q.Where("severity IN (?)", bun.In(f.Severities))
		}
		if search != "" {
			q = q.Where(`lower(subject) LIKE ? ESCAPE '\'`, "%"+likeEscaper.Replace(strings.ToLower(search))+"%")
		}
		if f.Grouped != nil {
			if *f.Grouped {
				q = q.Where("group_id = id")
			} else {
				q = q.Where("group_id IS NULL")
			}
		}
		if f.Suppressed != nil {
			if *f.Suppressed {
				q = q.Where("suppressed_by IS NOT NULL")
			} else {
				q = q.Where("suppressed_by IS NULL")
			}
		}
		if f.Overdue != nil {
			if *f.Overdue {
				q = q.Where("overdue_at IS NOT NULL")
			} else {
				q = q.Where("overdue_at IS NULL")
			}
		}
		return scopeAlerts(q, f.Teams)
	})
}

// scopeAlerts keeps the alerts of the scope's owners (alertOwner) in a
// form an index answers: the alerts of the owners' integrations and
// monitors, not each alert's owner looked up and compared, which reads
// every alert.
func scopeAlerts(q *bun.SelectQuery, s *db.TeamScope) *bun.SelectQuery {
	if s == nil {
		return q
	}
	owned := func(table string) *bun.SelectQuery {
		return s.Apply(q.DB().NewSelect().Table(table).Column("id"), "team_id")
	}
	cond := "(alert.integration_id IN (?) OR (alert.integration_id IS NULL AND alert.heartbeat_monitor_id IN (?))"
	if s.OrgWide {
		cond += " OR (alert.integration_id IS NULL AND alert.heartbeat_monitor_id IS NULL)"
	}
	return q.Where(cond+")", owned("integrations"), owned("heartbeat_monitors"))
}

// listPage returns one page of rows of T, newest first, the total that
// filter matches counted up to db.CountCap + 1, and whether more follow.
func listPage[T any](ctx context.Context, d *db.DB, p db.PageRequest, what string, filter func(*bun.SelectQuery) *bun.SelectQuery) (rows []*T, total int, more bool, err error) {
	limit, err := p.Limit()
	if err != nil {
		return nil, 0, false, err
	}
	count, err := db.CountUpTo(ctx, d, d.NewSelect().Model((*T)(nil)).Apply(filter))
	if err != nil {
		return nil, 0, false, fmt.Errorf("count %s: %w", what, err)
	}
	q := d.NewSelect().Model(&rows).Apply(filter).Order("id DESC").Limit(int64(limit + 1))
	if p.After > 0 {
		q = q.Where("id < ?", p.After)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, 0, false, fmt.Errorf("list %s: %w", what, err)
	}
	if len(rows) > limit {
		rows, more = rows[:limit], true
	}
	return rows, int(count), more, nil
}

func (s *Service) Alert(ctx context.Context, id int) (*db.Alert, error) {
	return alertByID(ctx, s.db, id)
}

func alertByID(ctx context.Context, idb bun.IDB, id int) (*db.Alert, error) {
	a := new(db.Alert)
	if err := idb.NewSelect().Model(a).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load alert %d: %w", id, db.Classify(err))
	}
	return a, nil
}

// GroupedAlerts returns the alerts that joined the group alertID leads,
// oldest first; none when it leads no group.
func (s *Service) GroupedAlerts(ctx context.Context, alertID int) ([]*db.Alert, error) {
	list := []*db.Alert{}
	if err := s.db.NewSelect().Model(&list).Where("group_id = ? AND id <> ?", alertID, alertID).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("alerts grouped under alert %d: %w", alertID, err)
	}
	return list, nil
}

// Timeline returns the alert's entries, oldest first.
func (s *Service) Timeline(ctx context.Context, alertID int) ([]*db.AlertLog, error) {
	var entries []*db.AlertLog
	if err := s.db.NewSelect().Model(&entries).Where("alert_id = ?", alertID).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("timeline of alert %d: %w", alertID, err)
	}
	return entries, nil
}

// Acknowledge marks an open alert as being handled by userID. It is a
// no-op on an alert already acknowledged, and refused on a closed one.
func (s *Service) Acknowledge(ctx context.Context, alertID, userID int) (*db.Alert, error) {
	return s.change(ctx, alertID, s.acknowledgeBy(userID))
}

func (s *Service) acknowledgeBy(userID int) alertMutation {
	return func(ctx context.Context, tx bun.Tx, a *db.Alert) (*db.AlertLog, error) {
		now := s.clock()
		switch {
		case a.Status == db.AlertAcknowledged && a.SnoozedUntil == nil:
			// Acknowledging again says "still on it": under a policy with
			// an acknowledgement timeout, the timeout starts over (see
			// settleJobs).
			timeout, err := s.ackTimeoutOf(ctx, tx, a)
			if err != nil || timeout == 0 {
				return nil, err
			}
			a.AcknowledgedAt, a.AcknowledgedBy = &now, &userID
			return &db.AlertLog{At: now, Type: db.LogAcknowledged, Message: "Acknowledged again; the acknowledgement timeout starts over", UserID: &userID}, nil
		case a.Status == db.AlertClosed:
			return nil, invalid.New("id", fmt.Sprintf("alert %d is closed", a.ID))
		}
		// Acknowledging a snoozed alert ends the snooze for good: change
		// drops the job that would have opened it again.
		a.Status, a.AcknowledgedAt, a.AcknowledgedBy, a.SnoozedUntil = db.AlertAcknowledged, &now, &userID, nil
		// Acknowledging a group's first alert is acknowledging the group.
		if err := s.actOnMembers(ctx, tx, a, []db.AlertStatus{db.AlertOpen}, func(m *db.Alert) *db.AlertLog {
			m.Status, m.AcknowledgedAt, m.AcknowledgedBy, m.SnoozedUntil = db.AlertAcknowledged, &now, &userID, nil
			return &db.AlertLog{At: now, Type: db.LogAcknowledged, Message: fmt.Sprintf("Acknowledged with the group's first alert #%d", a.ID), UserID: &userID}
		}); err != nil {
			return nil, err
		}
		return &db.AlertLog{At: now, Type: db.LogAcknowledged, Message: "Acknowledged", UserID: &userID}, nil
	}
}

// Close closes an alert; closing a closed alert is a no-op.
func (s *Service) Close(ctx context.Context, alertID, userID int) (*db.Alert, error) {
	return s.change(ctx, alertID, s.closeBy(userID))
}

func (s *Service) closeBy(userID int) alertMutation {
	return func(ctx context.Context, tx bun.Tx, a *db.Alert) (*db.AlertLog, error) {
		if a.Status == db.AlertClosed {
			return nil, nil
		}
		now := s.clock()
		a.Status, a.ClosedAt, a.ClosedBy, a.SnoozedUntil = db.AlertClosed, &now, &userID, nil
		// Closing a group's first alert closes the group: its open
		// members, and its window for new ones.
		if err := s.actOnMembers(ctx, tx, a, []db.AlertStatus{db.AlertOpen, db.AlertAcknowledged}, func(m *db.Alert) *db.AlertLog {
			m.Status, m.ClosedAt, m.ClosedBy, m.SnoozedUntil = db.AlertClosed, &now, &userID, nil
			return &db.AlertLog{At: now, Type: db.LogClosed, Message: fmt.Sprintf("Closed with the group's first alert #%d", a.ID), UserID: &userID}
		}); err != nil {
			return nil, err
		}
		if a.GroupID != nil {
			if err := endGroup(ctx, tx, a.ID, now); err != nil {
				return nil, err
			}
		}
		return &db.AlertLog{At: now, Type: db.LogClosed, Message: "Closed", UserID: &userID}, nil
	}
}

// Assign makes assigneeID the owner of an unclosed alert.
func (s *Service) Assign(ctx context.Context, alertID, assigneeID, byUserID int) (*db.Alert, error) {
	return s.change(ctx, alertID, func(ctx context.Context, tx bun.Tx, a *db.Alert) (*db.AlertLog, error) {
		if a.Status == db.AlertClosed {
			return nil, invalid.New("id", fmt.Sprintf("alert %d is closed", a.ID))
		}
		assignee := new(db.User)
		if err := tx.NewSelect().Model(assignee).Where("id = ?", assigneeID).Scan(ctx); err != nil {
			if errors.Is(db.Classify(err), db.ErrNotFound) {
				return nil, invalid.New("userId", fmt.Sprintf("user %d does not exist", assigneeID))
			}
			return nil, fmt.Errorf("load assignee %d: %w", assigneeID, err)
		}
		if a.AssignedTo != nil && *a.AssignedTo == assigneeID {
			return nil, nil
		}
		a.AssignedTo = &assigneeID
		return &db.AlertLog{At: s.clock(), Type: db.LogAssigned, Message: "Assigned to " + assignee.Email, UserID: &byUserID}, nil
	})
}

// change loads an alert, lets mutate decide, and stores the alert with its
// timeline entry. A nil entry means nothing changed. The write is
// conditional on the status it read, so a concurrent change (say, a close
// arriving by webhook) is never overwritten: the loser reloads and decides
// again.
// alertMutation changes a loaded alert inside change's transaction and
// returns the timeline entry to record, or nil when nothing changed.
type alertMutation func(context.Context, bun.Tx, *db.Alert) (*db.AlertLog, error)

func (s *Service) change(ctx context.Context, alertID int, mutate alertMutation) (*db.Alert, error) {
	return s.changeThen(ctx, alertID, mutate, nil)
}

// changeThen is change with a last step inside its transaction, run only
// when mutate changed the alert and after the alert's pending jobs were
// dropped, so it can queue jobs of its own.
func (s *Service) changeThen(ctx context.Context, alertID int, mutate alertMutation, then func(context.Context, bun.Tx, *db.Alert) error) (*db.Alert, error) {
	for range 5 {
		var alert *db.Alert
		raced := false
		err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			if alert, err = alertByID(ctx, tx, alertID); err != nil {
				return err
			}
			readStatus := alert.Status
			entry, err := mutate(ctx, tx, alert)
			if err != nil || entry == nil {
				return err
			}
			res, err := tx.NewUpdate().Model(alert).WherePK().Where("status = ?", readStatus).Exec(ctx)
			if err != nil {
				return fmt.Errorf("update alert %d: %w", alertID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				raced = true
				return errRaced
			}
			entry.AlertID = alertID
			if _, err := tx.NewInsert().Model(entry).Exec(ctx); err != nil {
				return fmt.Errorf("store timeline entry: %w", err)
			}
			if err := s.alertChanged(ctx, tx, eventType(entry.Type), alertID, eventIntegration(alert), entry.At); err != nil {
				return err
			}
			if err := s.settleJobs(ctx, tx, alert, entry); err != nil {
				return err
			}
			if then != nil {
				return then(ctx, tx, alert)
			}
			return nil
		})
		if raced {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.bus.Kick()
		return alert, nil
	}
	return nil, fmt.Errorf("update alert %d: it kept changing underneath", alertID)
}

var errRaced = errors.New("alert changed concurrently")

// AlertNotifications returns the notifications sent about an alert, in
// the order they were made.
func (s *Service) AlertNotifications(ctx context.Context, alertID int) ([]*db.Notification, error) {
	var list []*db.Notification
	if err := s.db.NewSelect().Model(&list).Where("alert_id = ?", alertID).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("notifications of alert %d: %w", alertID, err)
	}
	return list, nil
}

// eventIntegration is the integration an alert's events are filed
// under: 0, which names no integration, for an alert opened by hand.
func eventIntegration(a *db.Alert) int {
	if a.IntegrationID == nil {
		return 0
	}
	return *a.IntegrationID
}

// eventType is the alertEvents type of a timeline entry: the entry's own
// type, but for a note, whose event says what happened to the alert.
func eventType(t db.AlertLogType) string {
	if t == db.LogNote {
		return "NOTE_ADDED"
	}
	return string(t)
}
