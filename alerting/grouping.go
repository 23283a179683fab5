package alerting

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
)

// Grouping: an integration with a grouping gathers the alerts it opens
// under the first alert of their group key for the group's window. Who
// leads is decided by the database alone: table alert_groups holds one row
// per (integration, key) naming the leader and when its window ends, and an
// opened alert claims it with one INSERT … ON CONFLICT DO UPDATE that takes
// the row over only once the window has ended. Two alerts opening at once
// for one key meet on that row: the first to write leads, and the other
// finds the row taken and joins. Closing the leader ends its window, so
// the next alert for the key opens a new group rather than joining a
// closed one.

// groupPlan is the grouping part of an ingest plan.
type groupPlan struct {
	// Key is the opened alert's group key; Window how long a group takes
	// members after its first alert opened.
	Key    string
	Window time.Duration
}

// joined is out for an opened alert that joined leaderID's group: it is
// on the record like any other, but the group's first alert pages for it,
// so a maintenance window has no paging of its own to hold back. hold is
// the plan's window, nil if none.
func (out ingestOutcome) joined(leaderID int, hold *suppression) ingestOutcome {
	if out.HoldPaging {
		out.EntryText = strings.TrimSuffix(out.EntryText, hold.note())
	}
	out.StartPaging, out.HoldPaging = false, false
	out.EntryText += fmt.Sprintf(joinedNote, strconv.Itoa(leaderID))
	return out
}

// PostgreSQL's one statement per message writes these texts itself with
// format(), which knows %s alone.
const (
	// joinedNote ends a member's opening entry, with its leader's id.
	joinedNote = "; joined the group of #%s, which pages for it"
	// joinedEntry is the note on the leader's timeline, with the member's
	// id.
	joinedEntry = "#%s joined the group"
)

// joinedText is the note on the leader's timeline.
func joinedText(memberID int) string { return fmt.Sprintf(joinedEntry, strconv.Itoa(memberID)) }

// groupQuerier is a transaction of bun, or SQLite's prepared statements.
type groupQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

const (
	// claimGroupSQL takes the key's group row over for the alert when the
	// row's window has ended, and otherwise leaves it; either way the row
	// comes back with the group's first alert. Writing the row every time
	// is what makes it the meeting point: a second writer waits for the
	// first and then reads its leader.
	claimGroupSQL = `INSERT INTO alert_groups (integration_id, group_key, leader_id, window_ends_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (integration_id, group_key) DO UPDATE SET
			leader_id = CASE WHEN alert_groups.window_ends_at <= ? THEN excluded.leader_id ELSE alert_groups.leader_id END,
			window_ends_at = CASE WHEN alert_groups.window_ends_at <= ? THEN excluded.window_ends_at ELSE alert_groups.window_ends_at END
		RETURNING leader_id`
	setGroupSQL = `UPDATE alerts SET group_id = ? WHERE id = ?`
	// takingMembersSQL finds the key's group while it takes members, so
	// that a member is opened in it at once: one read, where leading a
	// group takes two writes.
	takingMembersSQL = `SELECT leader_id FROM alert_groups WHERE integration_id = ? AND group_key = ? AND window_ends_at > ?`
	// endGroupSQL ends the window of a group whose leader closed.
	endGroupSQL = `UPDATE alert_groups SET window_ends_at = ? WHERE leader_id = ? AND window_ends_at > ?`
)

// claimGroup puts the just opened alertID, which found no group taking
// members, into its group: it leads a new one unless another alert
// claimed the key meanwhile, and the return is the group's first alert. now and ends are times as the querier binds
// them (db.SQLiteTime on SQLite's own statements).
func claimGroup(ctx context.Context, q groupQuerier, integrationID int, key string, alertID int, now, ends any) (int, error) {
	var leaderID int
	if err := q.QueryRowContext(ctx, claimGroupSQL, integrationID, key, alertID, ends, now, now).Scan(&leaderID); err != nil {
		return 0, fmt.Errorf("group alert %d: %w", alertID, err)
	}
	if _, err := q.ExecContext(ctx, setGroupSQL, leaderID, alertID); err != nil {
		return 0, fmt.Errorf("group alert %d under #%d: %w", alertID, leaderID, err)
	}
	return leaderID, nil
}

// takingMembers is the first alert of the key's group when it still takes
// members, else nil.
func takingMembers(ctx context.Context, q groupQuerier, integrationID int, key string, now any) (*int, error) {
	var leaderID int
	err := q.QueryRowContext(ctx, takingMembersSQL, integrationID, key, now).Scan(&leaderID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find the group of key %q: %w", key, err)
	}
	return &leaderID, nil
}

// endGroup stops alertID's group, if it leads one, from taking members.
func endGroup(ctx context.Context, q groupQuerier, alertID int, now any) error {
	if _, err := q.ExecContext(ctx, endGroupSQL, now, alertID, now); err != nil {
		return fmt.Errorf("end the group of alert %d: %w", alertID, err)
	}
	return nil
}

// noteJoined records on the leader's timeline, with its event, that
// memberID joined, on the generic path.
func noteJoined(ctx context.Context, tx bun.Tx, integrationID, leaderID, memberID int, msgID *int, at time.Time) error {
	entry := &db.AlertLog{AlertID: leaderID, At: at, Type: db.LogGrouped, Message: joinedText(memberID), InboundMessageID: msgID}
	if _, err := tx.NewInsert().Model(entry).Exec(ctx); err != nil {
		return fmt.Errorf("store timeline entry: %w", err)
	}
	return events.AlertChanged(ctx, tx, string(db.LogGrouped), leaderID, integrationID, at)
}

// groupMembers returns the unclosed alerts that joined leader's group, for
// acting on the group as a whole.
func groupMembers(ctx context.Context, tx bun.Tx, leader *db.Alert, statuses ...db.AlertStatus) ([]*db.Alert, error) {
	if leader.GroupID == nil || *leader.GroupID != leader.ID {
		return nil, nil
	}
	var members []*db.Alert
	if err := tx.NewSelect().Model(&members).
		Where("group_id = ? AND id <> ?", leader.ID, leader.ID).
		Where("status IN (?)", bun.In(statuses)).
		Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("members of the group of alert %d: %w", leader.ID, err)
	}
	return members, nil
}

// actOnMembers gives each of the leader's unclosed members the change
// the leader just had, with a timeline entry and an event each, inside the
// leader's transaction. A member that changed meanwhile (closed by its own
// message) is left as it is, and so is one for which change returns nil.
func (s *Service) actOnMembers(ctx context.Context, tx bun.Tx, leader *db.Alert, from []db.AlertStatus, change func(*db.Alert) *db.AlertLog) error {
	members, err := groupMembers(ctx, tx, leader, from...)
	if err != nil {
		return err
	}
	for _, m := range members {
		read := m.Status
		entry := change(m)
		if entry == nil {
			continue
		}
		res, err := tx.NewUpdate().Model(m).WherePK().Where("status = ?", read).Exec(ctx)
		if err != nil {
			return fmt.Errorf("update grouped alert %d: %w", m.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue
		}
		entry.AlertID = m.ID
		if _, err := tx.NewInsert().Model(entry).Exec(ctx); err != nil {
			return fmt.Errorf("store timeline entry: %w", err)
		}
		if err := s.alertChanged(ctx, tx, eventType(entry.Type), m.ID, eventIntegration(m), entry.At); err != nil {
			return err
		}
		if err := settleMemberJobs(ctx, tx, m, entry.At); err != nil {
			return err
		}
	}
	return nil
}

// settleMemberJobs is settleJobs for a member: it was never paged, so
// there is no paging to stop nor an acknowledgement timeout to start, but
// its auto-close and overdue job go when it closes and stay while it is
// acknowledged.
func settleMemberJobs(ctx context.Context, tx bun.Tx, m *db.Alert, now time.Time) error {
	if m.Status == db.AlertClosed {
		_, err := cancelAllJobs(ctx, tx, m.ID, now)
		return err
	}
	if _, err := tx.NewDelete().Model((*db.AlertJob)(nil)).Where("alert_id = ? AND kind NOT IN (?)", m.ID, bun.In(jobsKeptByAcknowledging)).Exec(ctx); err != nil {
		return fmt.Errorf("settle jobs of grouped alert %d: %w", m.ID, err)
	}
	return nil
}

// groupSize is how many alerts joined alertID's group, read when a
// notification is built so that it tells the size as it is then.
func groupSize(ctx context.Context, idb bun.IDB, a *db.Alert) (int, error) {
	if a.GroupID == nil || *a.GroupID != a.ID {
		return 0, nil
	}
	n, err := idb.NewSelect().Model((*db.Alert)(nil)).Where("group_id = ? AND id <> ?", a.ID, a.ID).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("size of the group of alert %d: %w", a.ID, err)
	}
	return int(n), nil
}
