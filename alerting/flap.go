package alerting

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// Flap control: the paging delay holds a new alert's first step back
// (its escalation job simply runs later), auto-close closes an alert that
// has gone quiet, and the acknowledgement timeout returns a forgotten
// acknowledged alert to paging. Each is a row in alert_jobs like any
// engine timer, so a restart or a second instance carries it out once.

const (
	// jobAutoClose closes an alert that has had no message for its
	// integration's autoCloseAfterMinutes. There is one per alert, made
	// when it opens; it puts itself off when a message came meanwhile, so
	// that appending costs ingest nothing.
	jobAutoClose = "autoclose"
	// jobAckTimeout returns an acknowledged alert to OPEN and pages from
	// the first step; made in the transaction that acknowledges.
	jobAckTimeout = "acktimeout"
)

// autoCloseArgs fix the quiet time when the alert opens, as its policy
// is fixed then: editing the integration changes the alerts that open
// after.
type autoCloseArgs struct {
	Minutes int `json:"minutes"`
}

type ackTimeoutArgs struct {
	Minutes int `json:"minutes"`
}

func autoCloseKey(alertID int) string { return fmt.Sprintf("%s:%d", jobAutoClose, alertID) }

// ackTimeoutKey names one acknowledgement's timeout: acknowledging again
// after it fired starts a new one.
func ackTimeoutKey(alertID int, ackedAt time.Time) string {
	return fmt.Sprintf("%s:%d:%d", jobAckTimeout, alertID, ackedAt.UnixMicro())
}

// minutes reads n minutes as people write it.
func minutes(n int) string {
	if n == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", n)
}

// closedBeforePagingText is the LogNotPaged entry.
const closedBeforePagingText = "Closed before paging: the paging delay had not passed, so nobody was paged"

// settleJobs brings an alert's jobs in line with the change just
// recorded: closing drops them all; acknowledging or snoozing stops the
// paging and any earlier acknowledgement's timeout or snooze end, keeping
// only the auto-close and the overdue job; and an acknowledgement (not a snooze) starts the
// policy's acknowledgement timeout. Other changes (an assignment, a
// note) leave the jobs alone.
func (s *Service) settleJobs(ctx context.Context, tx bun.Tx, alert *db.Alert, entry *db.AlertLog) error {
	switch {
	case alert.Status == db.AlertClosed:
		return closeJobs(ctx, tx, alert.ID, entry.At)
	case alert.Status == db.AlertAcknowledged && (entry.Type == db.LogAcknowledged || entry.Type == db.LogSnoozed):
		_, err := tx.NewDelete().Model((*db.AlertJob)(nil)).Where("alert_id = ? AND kind NOT IN (?)", alert.ID, bun.In(jobsKeptByAcknowledging)).Exec(ctx)
		if err != nil {
			return fmt.Errorf("stop paging alert %d: %w", alert.ID, err)
		}
		if entry.Type == db.LogAcknowledged {
			return s.startAckTimeout(ctx, tx, alert, entry.At)
		}
	}
	return nil
}

// cancelAllJobs drops every pending job of an alert that closed at now
// but its workflows' requests, which report the close among others,
// and reports whether its first step was among them, still held back by
// the paging delay: then nobody was paged.
func cancelAllJobs(ctx context.Context, idb bun.IDB, alertID int, now time.Time) (heldBack bool, err error) {
	var held []int
	err = idb.NewRaw(`DELETE FROM alert_jobs WHERE alert_id = ? AND kind <> '`+jobWorkflow+`'
		RETURNING CASE WHEN dedup_key = ? AND run_at > ? THEN 1 ELSE 0 END`,
		alertID, escalateKey(alertID, escalateArgs{}), now).Scan(ctx, &held)
	if err != nil {
		return false, fmt.Errorf("cancel jobs of alert %d: %w", alertID, err)
	}
	return slices.Contains(held, 1), nil
}

// closeJobs cancels the jobs of an alert that closed at now, and says on
// its timeline when that was before anyone was paged.
func closeJobs(ctx context.Context, tx bun.Tx, alertID int, now time.Time) error {
	held, err := cancelAllJobs(ctx, tx, alertID, now)
	if err != nil || !held {
		return err
	}
	timeline := &timelineWriter{tx: tx, alertID: alertID, at: now}
	return timeline.add(ctx, db.LogNotPaged, closedBeforePagingText)
}

// ackTimeoutOf is the acknowledgement timeout of the alert's policy in
// minutes, 0 for none.
func (s *Service) ackTimeoutOf(ctx context.Context, tx bun.Tx, a *db.Alert) (int, error) {
	if a.EscalationPolicyID == nil {
		return 0, nil
	}
	policy, err := s.config.Policies.PolicyByID(ctx, tx, *a.EscalationPolicyID)
	if err != nil {
		return 0, fmt.Errorf("acknowledge alert %d: %w", a.ID, err)
	}
	if policy.AckTimeoutMinutes == nil {
		return 0, nil
	}
	return *policy.AckTimeoutMinutes, nil
}

// startAckTimeout queues the timeout of an acknowledgement made at now,
// when the alert's policy has one.
func (s *Service) startAckTimeout(ctx context.Context, tx bun.Tx, a *db.Alert, now time.Time) error {
	n, err := s.ackTimeoutOf(ctx, tx, a)
	if err != nil || n == 0 {
		return err
	}
	return enqueue(ctx, tx, jobAckTimeout, a.ID, now.Add(time.Duration(n)*time.Minute), ackTimeoutKey(a.ID, now), ackTimeoutArgs{Minutes: n}, now)
}

// ackTimedOut returns an alert still acknowledged to OPEN and queues its
// first step again, in the transaction that removes the job.
func (s *Service) ackTimedOut(ctx context.Context, job *db.AlertJob, args ackTimeoutArgs) error {
	defer s.bus.Kick()
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.finishJob(ctx, tx, job); err != nil {
			return err
		}
		now := s.clock()
		res, err := tx.NewUpdate().Model((*db.Alert)(nil)).
			Set("status = ?", db.AlertOpen).Set("acknowledged_at = NULL").Set("acknowledged_by = NULL").
			Where("id = ? AND status = ?", job.AlertID, db.AlertAcknowledged).Exec(ctx)
		if err != nil {
			return fmt.Errorf("reopen alert %d after its acknowledgement timed out: %w", job.AlertID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// Closed meanwhile (which would also have removed this job).
			return nil
		}
		alert, err := alertByID(ctx, tx, job.AlertID)
		if err != nil {
			return err
		}
		timeline := &timelineWriter{tx: tx, alertID: alert.ID, at: now}
		if err := timeline.add(ctx, db.LogAckTimedOut, fmt.Sprintf("Acknowledgement timed out after %s; paging again from step 1", minutes(args.Minutes))); err != nil {
			return err
		}
		if err := s.alertChanged(ctx, tx, string(db.LogAckTimedOut), alert.ID, eventIntegration(alert), now); err != nil {
			return err
		}
		return s.restartPaging(ctx, tx, alert, job.ID, now)
	})
}

// autoClose closes an alert that has had no message for args.Minutes. A
// message since the job was made puts the job off to that message's
// quiet time instead.
func (s *Service) autoClose(ctx context.Context, job *db.AlertJob, args autoCloseArgs) error {
	defer s.bus.Kick()
	quiet := time.Duration(args.Minutes) * time.Minute
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		now := s.clock()
		alert, err := alertByID(ctx, tx, job.AlertID)
		if err != nil {
			return err
		}
		if alert.Status == db.AlertClosed {
			return s.finishJob(ctx, tx, job)
		}
		if due := alert.LastSeenAt.Add(quiet); due.After(now) {
			return s.deferJob(ctx, tx, job, due)
		}
		// Conditional on the quiet it read: a message appended since
		// makes this match nothing, and the job looks again at once.
		res, err := tx.NewUpdate().Model((*db.Alert)(nil)).
			Set("status = ?", db.AlertClosed).Set("closed_at = ?", now).
			Where("id = ? AND status <> ? AND last_seen_at <= ?", alert.ID, db.AlertClosed, now.Add(-quiet)).Exec(ctx)
		if err != nil {
			return fmt.Errorf("auto-close alert %d: %w", alert.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return s.deferJob(ctx, tx, job, now)
		}
		if err := s.finishJob(ctx, tx, job); err != nil {
			return err
		}
		timeline := &timelineWriter{tx: tx, alertID: alert.ID, at: now}
		if err := timeline.add(ctx, db.LogClosed, "Closed: no message for "+minutes(args.Minutes)); err != nil {
			return err
		}
		if err := s.alertChanged(ctx, tx, string(db.LogClosed), alert.ID, eventIntegration(alert), now); err != nil {
			return err
		}
		return closeJobs(ctx, tx, alert.ID, now)
	})
}
