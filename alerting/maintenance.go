package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// An alert opened while a maintenance window covers its integration is
// stored, appended to and closed as any other, but its paging is held
// back: instead of the first escalation step, the transaction that opens
// it queues a jobMaintenanceEnd job at the window's end (the end of the
// occurrence covering the alert, for a weekly window). That job starts
// the paging from step 1 if the alert is still open, so acknowledging or
// closing the alert meanwhile (which drops its jobs) means it is never
// paged. A change to the window moves the jobs of the alerts it holds in
// the change's transaction (WindowChanged): deleting or shortening it
// makes them due now. Being jobs, they run once, across restarts and
// instances.

const jobMaintenanceEnd = "maintenance_end"

// suppression is the maintenance window holding back the paging of
// alerts an integration opens now.
type suppression struct {
	WindowID int
	Name     string
	// Until is when the window stops covering the integration.
	Until time.Time
	// Page is the window's pageOpenAlertsAfter.
	Page bool
}

// note is what the alert's opening entry says of the window.
func (h *suppression) note() string {
	return fmt.Sprintf("; opened during maintenance window %q: not paged", h.Name)
}

type maintenanceArgs struct {
	WindowID int    `json:"windowId"`
	Window   string `json:"window"`
	// Page is the window's pageOpenAlertsAfter as last seen, for when the
	// window is deleted before the job runs.
	Page bool `json:"page"`
}

func maintenanceKey(alertID int) string {
	return fmt.Sprintf("%s:%d", jobMaintenanceEnd, alertID)
}

// holdPaging records that the newly opened alert is held back by the
// window h and queues the start of its paging at h's end. It reports
// false, having changed nothing but the route's recipients, when the
// window was deleted since the route read it: the alert then pages now.
func holdPaging(ctx context.Context, tx bun.Tx, route rules.Route, alertID int, h *suppression, now time.Time) (bool, error) {
	if _, err := storeRouteRecipients(ctx, tx, route, alertID); err != nil {
		return false, err
	}
	res, err := tx.NewUpdate().Model((*db.Alert)(nil)).Set("suppressed_by = ?", h.WindowID).
		Where("id = ?", alertID).
		Where("EXISTS (SELECT 1 FROM maintenance_windows WHERE id = ?)", h.WindowID).
		Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("hold back paging of alert %d: %w", alertID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	args := maintenanceArgs{WindowID: h.WindowID, Window: h.Name, Page: h.Page}
	return true, enqueue(ctx, tx, jobMaintenanceEnd, alertID, h.Until, maintenanceKey(alertID), args, now)
}

// holdOrStart is executeGeneric's HoldPaging: hold the alert's paging, or
// start it after the paging delay when the window is gone, and say so on
// its opening entry. It reports whether it queued the first step.
func (s *Service) holdOrStart(ctx context.Context, tx bun.Tx, integrationID int, plan ingestPlan, out *ingestOutcome, alertID int, now time.Time) (bool, error) {
	held, err := holdPaging(ctx, tx, plan.Route, alertID, plan.Hold, now)
	if err != nil || held {
		return false, err
	}
	out.EntryText = strings.TrimSuffix(out.EntryText, plan.Hold.note())
	return s.startPaging(ctx, tx, &integrationID, plan.PolicyID, plan.Route, alertID, now, plan.pageAt(now))
}

// WindowChanged moves the jobs of the alerts window w holds back, inside
// the transaction changing it: to the end of the occurrence covering now
// for the alerts of integrations it still covers, and to now (ending it)
// for the others, and for all once it is deleted or no longer covers now.
func (s *Service) WindowChanged(ctx context.Context, tx bun.Tx, w *db.MaintenanceWindow, deleted bool, now time.Time) error {
	id := w.ID
	args := maintenanceArgs{WindowID: id, Window: w.Name, Page: w.PageOpenAlertsAfter}
	var until time.Time
	covering := false
	if !deleted {
		until, covering = w.ActiveAt(now)
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("encode %s job: %w", jobMaintenanceEnd, err)
	}
	held := func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Where("kind = ?", jobMaintenanceEnd).
			Where("alert_id IN (SELECT id FROM alerts WHERE suppressed_by = ?)", id)
	}
	q := tx.NewUpdate().Model((*db.AlertJob)(nil)).Set("run_at = ?", now).Set("args = ?", string(raw)).Apply(held)
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("end maintenance window %d: %w", id, err)
	}
	if !covering || len(w.IntegrationIDs) == 0 {
		return nil
	}
	q = tx.NewUpdate().Model((*db.AlertJob)(nil)).Set("run_at = ?", until).Apply(held).
		Where("alert_id IN (SELECT id FROM alerts WHERE integration_id IN (?))", bun.In(w.IntegrationIDs))
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("move the end of maintenance window %d: %w", id, err)
	}
	return nil
}

// maintenanceEnded runs a jobMaintenanceEnd job: the window that held
// back the alert's paging has ended, so an alert still open starts paging
// from step 1, unless the window says not to.
func (s *Service) maintenanceEnded(ctx context.Context, job *db.AlertJob, args maintenanceArgs) error {
	defer s.bus.Kick()
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.finishJob(ctx, tx, job); err != nil {
			return err
		}
		now := s.clock()
		alert, err := alertByID(ctx, tx, job.AlertID)
		if err != nil {
			return err
		}
		if alert.Status != db.AlertOpen {
			return nil
		}
		name, page := args.Window, args.Page
		if s.config.Maintenance != nil {
			w, err := s.config.Maintenance.WindowByID(ctx, tx, args.WindowID)
			switch {
			case err == nil:
				name, page = w.Name, w.PageOpenAlertsAfter
				// The window goes on (the next occurrence follows at
				// once, or it was moved later than this job knew): wait
				// for its end.
				if until, ok := w.ActiveAt(now); ok && alert.IntegrationID != nil && slices.Contains(w.IntegrationIDs, *alert.IntegrationID) {
					args.Window, args.Page = name, page
					return enqueue(ctx, tx, jobMaintenanceEnd, alert.ID, until, maintenanceKey(alert.ID), args, now)
				}
			case errors.Is(err, db.ErrNotFound):
			default:
				return err
			}
		}
		timeline := &timelineWriter{tx: tx, alertID: alert.ID, at: now}
		if !page {
			if err := timeline.add(ctx, db.LogMaintenanceEnded, fmt.Sprintf("Maintenance window %q ended: not paging (pageOpenAlertsAfter is off)", name)); err != nil {
				return err
			}
			return s.alertChanged(ctx, tx, string(db.LogMaintenanceEnded), alert.ID, eventIntegration(alert), now)
		}
		if _, err := tx.NewUpdate().Model((*db.Alert)(nil)).Set("suppressed_by = NULL").Where("id = ?", alert.ID).Exec(ctx); err != nil {
			return fmt.Errorf("release paging of alert %d: %w", alert.ID, err)
		}
		if err := timeline.add(ctx, db.LogMaintenanceEnded, fmt.Sprintf("Maintenance window %q ended: paging", name)); err != nil {
			return err
		}
		if err := s.alertChanged(ctx, tx, string(db.LogMaintenanceEnded), alert.ID, eventIntegration(alert), now); err != nil {
			return err
		}
		own, err := tx.NewSelect().Model((*db.AlertRecipient)(nil)).Where("alert_id = ?", alert.ID).Exists(ctx)
		if err != nil {
			return fmt.Errorf("recipients of alert %d: %w", alert.ID, err)
		}
		// The window already held the alert back longer than any paging
		// delay would, so paging starts at once.
		_, err = s.queueFirstStep(ctx, tx, alert.IntegrationID, alert.EscalationPolicyID, own, alert.ID, now, now)
		return err
	})
}
