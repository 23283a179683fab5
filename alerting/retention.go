package alerting

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// Retention of alerting's tables. Two things age out here:
//
//   - An inbound message's body. The row stays (the log still shows that a
//     message came, when, from where and what became of it); the body is
//     emptied and body_pruned_at set, so a pruned body reads as pruned and
//     never as an empty body that was received.
//   - A closed alert with its timeline: alert_log, notifications,
//     alert_recipients, action_links and alert_groups rows go with it; the
//     inbound messages that opened or touched it stay, their alert_id
//     cleared (they are the inbound log, and age by their own setting);
//     an alert past its age itself that names it as predecessor or group
//     leader, and is kept for some other reason, loses the link.
//
// A closed alert is kept past its age while an alert within its own age
// (open, or closed more recently than the age) names it as group leader
// or as predecessor: that alert's group, and its regression flag (which is
// "it has a predecessor"), must not change under it. Such a kept alert may
// lose its own predecessor link, being past its age itself, so what is
// kept for a finding that keeps coming back is one alert beyond the age,
// not its whole history. A closed alert with a job of its own queued (a
// workflow request still being retried) is kept too: a job is work, not
// history, and ends on its own. So is one still within its integration's
// regression window (regressionWindows).
//
// Every statement touches a bounded number of rows found through an index,
// oldest first, so each commits quickly: on SQLite the one writer is free
// again for ingest within milliseconds, and on PostgreSQL only the rows
// being removed are locked.

// DefaultClosedAlertBatch is how many closed alerts one batch removes with
// their timelines. An alert brings tens of rows with it, so this keeps a
// batch near the thousand rows the other kinds take at once.
const DefaultClosedAlertBatch = 100

// pruneJobKey names the one alert_jobs row that takes turns at pruning:
// the engine's lease, reused so that one instance at a time prunes.
const (
	jobPrune    = "prune"
	pruneJobKey = "retention"
	// childBatch bounds the rows of one timeline table removed per
	// statement: an alert that flapped for a year can have hundreds of
	// thousands of log lines, which must not go in one transaction.
	childBatch = 1000
	// backlogCap bounds a backlog count, so that measuring the work left
	// costs no more than a few batches of it.
	backlogCap = 100_000
)

// TakePruneTurn gives holder the pruning turn until now+lease if the turn
// is due at now and no other holder's lease is running. It is the
// engine's conditional lease on one alert_jobs row, so two instances
// asking at once get one yes.
func (s *Service) TakePruneTurn(ctx context.Context, holder string, now time.Time, lease time.Duration) (bool, error) {
	job := &db.AlertJob{Kind: jobPrune, RunAt: now, DedupKey: pruneJobKey, CreatedAt: now}
	if err := insertJob(ctx, s.db, job, struct{}{}); err != nil {
		return false, fmt.Errorf("take pruning turn: %w", err)
	}
	res, err := s.db.NewUpdate().Model((*db.AlertJob)(nil)).
		Set("locked_by = ?", holder).Set("locked_until = ?", now.Add(lease)).
		Where("dedup_key = ? AND run_at <= ?", pruneJobKey, now).
		Where("(locked_until IS NULL OR locked_until < ?)", now).
		Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("take pruning turn: %w", db.Classify(err))
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RenewPruneTurn extends holder's turn to now+lease; false means the turn
// was lost (the lease ran out and another instance took it), and the
// holder must stop.
func (s *Service) RenewPruneTurn(ctx context.Context, holder string, now time.Time, lease time.Duration) (bool, error) {
	res, err := s.db.NewUpdate().Model((*db.AlertJob)(nil)).
		Set("locked_until = ?", now.Add(lease)).
		Where("dedup_key = ? AND locked_by = ?", pruneJobKey, holder).
		Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("renew pruning turn: %w", db.Classify(err))
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// EndPruneTurn hands the turn back, due again at next.
func (s *Service) EndPruneTurn(ctx context.Context, holder string, next time.Time) error {
	_, err := s.db.NewUpdate().Model((*db.AlertJob)(nil)).
		Set("run_at = ?", next).Set("locked_by = ''").Set("locked_until = NULL").
		Where("dedup_key = ? AND locked_by = ?", pruneJobKey, holder).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("end pruning turn: %w", db.Classify(err))
	}
	return nil
}

// PruneBodies empties the bodies of at most limit messages received before
// before, oldest first, and returns how many it emptied.
func (s *Service) PruneBodies(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := s.db.NewRaw(`UPDATE inbound_messages SET body = ?, body_pruned_at = ?
		WHERE id IN (
			SELECT id FROM inbound_messages
			WHERE body_pruned_at IS NULL AND received_at < ?
			ORDER BY received_at, id LIMIT ?)
		AND body_pruned_at IS NULL`,
		[]byte{}, s.clock().UTC(), before.UTC(), limit).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune message bodies: %w", db.Classify(err))
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// BodiesBacklog counts the bodies due for pruning at before, up to
// backlogCap.
func (s *Service) BodiesBacklog(ctx context.Context, before time.Time) (int64, error) {
	return cappedCount(ctx, s.db, "inbound_messages", "body_pruned_at IS NULL AND received_at < ?", before.UTC())
}

// prunableAlerts is the condition on alerts (as a) for an alert closed
// before before that nothing kept depends on: no alert within its age
// (open, or closed since before) has it as group leader or predecessor,
// it has no job queued, and its integration's regression window (see
// regressionWindows) has passed. Its arguments follow it in order.
func prunableAlerts(before time.Time, windows []regressionWindow) (string, []any) {
	cond := `a.status = 'CLOSED' AND a.closed_at < ?
	AND NOT EXISTS (SELECT 1 FROM alerts m WHERE m.group_id = a.id AND (m.status <> 'CLOSED' OR m.closed_at >= ?))
	AND NOT EXISTS (SELECT 1 FROM alerts s WHERE s.previous_alert_id = a.id AND (s.status <> 'CLOSED' OR s.closed_at >= ?))
	AND NOT EXISTS (SELECT 1 FROM alert_jobs j WHERE j.alert_id = a.id)`
	args := []any{before, before, before}
	for _, w := range windows {
		cond += `
	AND NOT (a.integration_id IN (?) AND a.closed_at >= ?)`
		args = append(args, bun.In(w.integrations), w.since)
	}
	return cond, args
}

// regressionWindow is the integrations whose regression window reaches
// back to since, beyond the age of closed alerts.
type regressionWindow struct {
	since        time.Time
	integrations []int
}

// regressionWindows finds the integrations whose regression window is
// longer than the age that before stands for. Their closed alerts are
// kept until the window passes whatever the age: a finding back within
// its integration's window is a regression only while the alert it
// follows is stored, so an age shorter than a window would silently
// turn regressions into new findings. Integrations are few, and windows
// fewer: one condition per distinct window.
func (s *Service) regressionWindows(ctx context.Context, before time.Time) ([]regressionWindow, error) {
	var rows []struct {
		ID   int `bun:"id"`
		Days int `bun:"regression_window_days"`
	}
	if err := s.db.NewSelect().Table("integrations").Column("id", "regression_window_days").
		Where("regression_window_days > 0").OrderExpr("regression_window_days, id").Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("read regression windows: %w", db.Classify(err))
	}
	now := s.clock()
	var windows []regressionWindow
	for _, r := range rows {
		// The same reckoning as regressionFact's.
		since := now.AddDate(0, 0, -r.Days).UTC()
		if !since.Before(before) {
			continue
		}
		if n := len(windows); n > 0 && windows[n-1].since.Equal(since) {
			windows[n-1].integrations = append(windows[n-1].integrations, r.ID)
			continue
		}
		windows = append(windows, regressionWindow{since: since, integrations: []int{r.ID}})
	}
	return windows, nil
}

// PruneClosedAlerts removes at most limit alerts closed before before,
// oldest first, with their timelines, and returns how many alerts it
// removed.
//
// Their timelines go first, a bounded number of rows per statement, so
// that no transaction grows with one alert's history; then one short
// transaction checks again that each alert may go (it might have gained a
// job or an open member meanwhile), clears what points at it and removes
// it with what is left of its rows.
func (s *Service) PruneClosedAlerts(ctx context.Context, before time.Time, limit int) (int, error) {
	before = before.UTC()
	windows, err := s.regressionWindows(ctx, before)
	if err != nil {
		return 0, fmt.Errorf("prune closed alerts: %w", err)
	}
	prunable, args := prunableAlerts(before, windows)
	var ids []int
	err = s.db.NewRaw(`SELECT a.id FROM alerts a WHERE `+prunable+` ORDER BY a.closed_at, a.id LIMIT ?`, append(args, limit)...).Scan(ctx, &ids)
	if err != nil {
		return 0, fmt.Errorf("prune closed alerts: find them: %w", db.Classify(err))
	}
	if len(ids) == 0 {
		return 0, nil
	}
	for _, table := range []string{"alert_log", "notifications"} {
		if err := s.deleteInChunks(ctx, table, ids); err != nil {
			return 0, err
		}
	}
	if err := s.unlinkMessagesInChunks(ctx, ids); err != nil {
		return 0, err
	}
	var removed int
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var still []int
		if err := tx.NewRaw(`SELECT a.id FROM alerts a WHERE `+prunable+` AND a.id IN (?)`, append(args, bun.In(ids))...).Scan(ctx, &still); err != nil {
			return fmt.Errorf("check them again: %w", err)
		}
		if len(still) == 0 {
			return nil
		}
		if err := removeAlerts(ctx, tx, still); err != nil {
			return err
		}
		removed = len(still)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune closed alerts: %w", db.Classify(err))
	}
	return removed, nil
}

// removeAlerts deletes alerts and everything of theirs, in the order the
// foreign keys need, and clears the links other rows keep to them. The
// foreign keys would do most of it by themselves; doing it here keeps
// each step on an index and the order explicit on both databases.
func removeAlerts(ctx context.Context, tx bun.Tx, ids []int) error {
	in := bun.In(ids)
	steps := []struct{ what, sql string }{
		{"timeline", "DELETE FROM alert_log WHERE alert_id IN (?)"},
		{"notifications", "DELETE FROM notifications WHERE alert_id IN (?)"},
		{"recipients", "DELETE FROM alert_recipients WHERE alert_id IN (?)"},
		{"action links", "DELETE FROM action_links WHERE alert_id IN (?)"},
		{"groups they lead", "DELETE FROM alert_groups WHERE leader_id IN (?)"},
		{"group members' links", "UPDATE alerts SET group_id = NULL WHERE group_id IN (?)"},
		{"successors' links", "UPDATE alerts SET previous_alert_id = NULL WHERE previous_alert_id IN (?)"},
		{"messages' links", "UPDATE inbound_messages SET alert_id = NULL WHERE alert_id IN (?)"},
		{"scan heartbeats' links", "UPDATE scan_heartbeats SET alert_id = NULL WHERE alert_id IN (?)"},
		{"alerts", "DELETE FROM alerts WHERE id IN (?)"},
	}
	for _, step := range steps {
		if _, err := tx.ExecContext(ctx, step.sql, in); err != nil {
			return fmt.Errorf("remove %s: %w", step.what, err)
		}
	}
	return nil
}

// deleteInChunks removes the rows of table (alert_log or notifications,
// each with an index on alert_id) that belong to alerts, childBatch at a
// time.
func (s *Service) deleteInChunks(ctx context.Context, table string, alerts []int) error {
	query := fmt.Sprintf(`DELETE FROM %[1]s WHERE id IN (SELECT id FROM %[1]s WHERE alert_id IN (?) LIMIT ?)`, table)
	return s.inChunks(ctx, "remove "+table, query, alerts)
}

// unlinkMessagesInChunks clears the alert of the messages that name one
// of alerts, childBatch at a time: a noisy source's alert may carry very
// many.
func (s *Service) unlinkMessagesInChunks(ctx context.Context, alerts []int) error {
	return s.inChunks(ctx, "unlink messages",
		`UPDATE inbound_messages SET alert_id = NULL WHERE id IN (SELECT id FROM inbound_messages WHERE alert_id IN (?) LIMIT ?)`, alerts)
}

func (s *Service) inChunks(ctx context.Context, what, query string, alerts []int) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := s.db.ExecContext(ctx, query, bun.In(alerts), childBatch)
		if err != nil {
			return fmt.Errorf("prune closed alerts: %s: %w", what, db.Classify(err))
		}
		if n, _ := res.RowsAffected(); n < childBatch {
			return nil
		}
	}
}

// ClosedAlertsBacklog counts the alerts closed before before, up to
// backlogCap; it includes those kept for something that depends on them.
func (s *Service) ClosedAlertsBacklog(ctx context.Context, before time.Time) (int64, error) {
	return cappedCount(ctx, s.db, "alerts", "status = 'CLOSED' AND closed_at < ?", before.UTC())
}

// cappedCount counts the rows of table where cond holds, up to backlogCap.
func cappedCount(ctx context.Context, idb bun.IDB, table, cond string, args ...any) (int64, error) {
	var n int64
	query := fmt.Sprintf("SELECT count(*) FROM (SELECT 1 FROM %s WHERE %s LIMIT %d) due", table, cond, backlogCap)
	if err := idb.NewRaw(query, args...).Scan(ctx, &n); err != nil {
		return 0, fmt.Errorf("count %s due for pruning: %w", table, db.Classify(err))
	}
	return n, nil
}
