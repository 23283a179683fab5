package alerting

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// Remediation deadlines: an integration gives each severity a number of
// days to fix a finding in. An alert opened with such a severity is due
// that long after it opened (due_at), and a message that raises its
// severity pulls the due time in, never out. One overdue job per alert
// and due time waits in alert_jobs; moving the due time replaces it,
// closing the alert drops it with the rest. When it runs on an alert still
// unclosed, the alert is marked overdue (overdue_at, a timeline entry, an
// event) and, if the integration names an overdue policy, that policy
// pages the alert once: a paging of its own, beside the alert's own
// policy, for the people who own the fix rather than the night shift.

// jobOverdue marks an alert overdue at its due time.
const jobOverdue = "overdue"

// overdueArgs are empty: the alert's due_at, read when the job runs, is
// what counts.
type overdueArgs struct{}

// overdueArgsJSON is overdueArgs encoded, as the fast ingest paths store
// it.
const overdueArgsJSON = "{}"

// overdueKey names the overdue job of one alert and due time, in whole
// seconds, which PostgreSQL's one statement per message also writes.
func overdueKey(alertID int, due time.Time) string {
	return fmt.Sprintf("%s:%d:%d", jobOverdue, alertID, due.Unix())
}

// remediationDays is n days as a duration: deadlines count whole days of
// 24 hours, in every executor alike.
func remediationDays(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// dueAt is when an alert the plan opens at now is due; nil without a
// deadline for its severity.
func (p *ingestPlan) dueAt(now time.Time) *time.Time {
	if p.DueDays <= 0 {
		return nil
	}
	due := now.Add(remediationDays(p.DueDays))
	return &due
}

// raises says whether an append of the plan raises an alert of severity
// stored.
func (p *ingestPlan) raises(stored string) bool {
	return p.RaiseRank > rules.SeverityRank(stored)
}

// raisedDue is the due time of a raised alert that opened at openedAt and
// was due at dueAt (nil for none), and whether it moved: the new
// severity's deadline from the opening, when that is earlier.
func (p *ingestPlan) raisedDue(openedAt time.Time, dueAt *time.Time) (*time.Time, bool) {
	if p.DueDays <= 0 {
		return dueAt, false
	}
	due := openedAt.Add(remediationDays(p.DueDays))
	if dueAt != nil && !due.Before(*dueAt) {
		return dueAt, false
	}
	return &due, true
}

// raiseSeverity is the generic executor's raise of an appended alert
// whose severity was stored: the severity goes up and the due time in,
// with its overdue job.
func raiseSeverity(ctx context.Context, tx bun.Tx, plan *ingestPlan, alertID int, stored string, now time.Time) error {
	if !plan.raises(stored) {
		return nil
	}
	var a struct {
		OpenedAt time.Time  `bun:"opened_at"`
		DueAt    *time.Time `bun:"due_at"`
	}
	if err := tx.NewSelect().Table("alerts").Column("opened_at", "due_at").Where("id = ?", alertID).Scan(ctx, &a); err != nil {
		return fmt.Errorf("raise severity of alert %d: %w", alertID, err)
	}
	due, moved := plan.raisedDue(a.OpenedAt, a.DueAt)
	if _, err := tx.NewUpdate().Table("alerts").Set("severity = ?", plan.Fields.Severity).Set("due_at = ?", due).
		Where("id = ?", alertID).Exec(ctx); err != nil {
		return fmt.Errorf("raise severity of alert %d: %w", alertID, err)
	}
	if !moved {
		return nil
	}
	if _, err := tx.NewDelete().Model((*db.AlertJob)(nil)).Where("alert_id = ? AND kind = ?", alertID, jobOverdue).Exec(ctx); err != nil {
		return fmt.Errorf("move the due time of alert %d: %w", alertID, err)
	}
	return enqueue(ctx, tx, jobOverdue, alertID, *due, overdueKey(alertID, *due), overdueArgs{}, now)
}

// jobsKeptByAcknowledging are the jobs of an alert that acknowledging it
// (or its joining a group) leaves: they are not paging.
var jobsKeptByAcknowledging = []string{jobAutoClose, jobOverdue, jobWorkflow}

// markOverdue marks the job's alert overdue if it is still unclosed at its
// due time, and starts the integration's overdue policy on it, in the
// transaction that removes the job: once, across restarts and instances.
func (s *Service) markOverdue(ctx context.Context, job *db.AlertJob) error {
	defer s.bus.Kick()
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.finishJob(ctx, tx, job); err != nil {
			return err
		}
		now := s.clock()
		res, err := tx.NewUpdate().Table("alerts").Set("overdue_at = ?", now).
			Where("id = ? AND status <> ? AND overdue_at IS NULL AND due_at <= ?", job.AlertID, db.AlertClosed, now).Exec(ctx)
		if err != nil {
			return fmt.Errorf("mark alert %d overdue: %w", job.AlertID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// Closed, or already overdue by an earlier due time.
			return nil
		}
		alert, err := alertByID(ctx, tx, job.AlertID)
		if err != nil {
			return err
		}
		policy, err := s.overduePolicyOf(ctx, tx, alert)
		if err != nil {
			return err
		}
		text := fmt.Sprintf("Overdue: this %s finding was due to be fixed by %s", alert.Severity, alert.DueAt.UTC().Format(time.RFC3339))
		if policy != nil {
			text += fmt.Sprintf("; paging the overdue policy %q", policy.Name)
			if alert.Status == db.AlertAcknowledged {
				// Acknowledging said someone is on it; the deadline says
				// the fix is late. Paging the fix's owners needs the
				// alert open, as any paging does.
				text += ", so the alert is open again"
				if err := reopenForOverdue(ctx, tx, alert.ID); err != nil {
					return err
				}
			}
		}
		timeline := &timelineWriter{tx: tx, alertID: alert.ID, at: now}
		if err := timeline.add(ctx, db.LogOverdue, text); err != nil {
			return err
		}
		if err := s.alertChanged(ctx, tx, string(db.LogOverdue), alert.ID, eventIntegration(alert), now); err != nil {
			return err
		}
		if policy == nil {
			return nil
		}
		first := escalateArgs{Cycle: job.ID, PolicyID: policy.ID}
		return enqueue(ctx, tx, jobEscalate, alert.ID, now, escalateKey(alert.ID, first), first, now)
	})
}

// overduePolicyOf is the overdue policy of the alert's integration, nil
// when it has none.
func (s *Service) overduePolicyOf(ctx context.Context, tx bun.Tx, alert *db.Alert) (*db.EscalationPolicy, error) {
	if alert.IntegrationID == nil {
		return nil, nil
	}
	integ, err := s.config.Integrations.IntegrationByID(ctx, tx, *alert.IntegrationID)
	if err != nil {
		return nil, fmt.Errorf("overdue policy of alert %d: %w", alert.ID, err)
	}
	if integ.OverduePolicyID == nil {
		return nil, nil
	}
	policy, err := s.config.Policies.PolicyByID(ctx, tx, *integ.OverduePolicyID)
	if err != nil {
		return nil, fmt.Errorf("overdue policy of alert %d: %w", alert.ID, err)
	}
	return policy, nil
}

// reopenForOverdue returns an acknowledged (or snoozed) alert to OPEN and
// drops the timers of its acknowledgement: its timeout, its snooze's end.
func reopenForOverdue(ctx context.Context, tx bun.Tx, alertID int) error {
	_, err := tx.NewUpdate().Table("alerts").
		Set("status = ?", db.AlertOpen).Set("acknowledged_at = NULL").Set("acknowledged_by = NULL").Set("snoozed_until = NULL").
		Where("id = ?", alertID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("open overdue alert %d again: %w", alertID, err)
	}
	if _, err := tx.NewDelete().Model((*db.AlertJob)(nil)).Where("alert_id = ? AND kind NOT IN (?)", alertID, bun.In(jobsKeptByAcknowledging)).Exec(ctx); err != nil {
		return fmt.Errorf("open overdue alert %d again: %w", alertID, err)
	}
	return nil
}

// OverdueAlertCount counts the integration's unclosed overdue alerts.
func (s *Service) OverdueAlertCount(ctx context.Context, integrationID int) (int, error) {
	n, err := s.db.NewSelect().Table("alerts").
		Where("integration_id = ? AND overdue_at IS NOT NULL AND status <> ?", integrationID, db.AlertClosed).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("count overdue alerts of integration %d: %w", integrationID, err)
	}
	return int(n), nil
}
