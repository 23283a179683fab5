package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// A heartbeat monitor (package heartbeats) expects a pulse every interval.
// Its deadline is one job in alert_jobs per monitor, not one per pulse:
// the job, when due, asks the monitor whether a pulse came meanwhile and
// runs again at the new deadline if so. Only when none came does it open
// the monitor's alert, in the transaction that removes the job, so a
// restart or a second instance opens it once. The next pulse closes it
// and queues the job again.

const jobHeartbeatDeadline = "heartbeat_deadline"

type heartbeatArgs struct {
	MonitorID int `json:"monitorId"`
}

func heartbeatKey(monitorID int) string {
	return fmt.Sprintf("%s:%d", jobHeartbeatDeadline, monitorID)
}

// Heartbeats is what the deadline job asks of the heartbeat monitors;
// package heartbeats implements it.
type Heartbeats interface {
	// CheckDeadline decides, inside tx and holding the monitor's row
	// until tx ends, what the monitor's deadline job finds at now: the
	// new deadline when a pulse came in time; the alert to open when the
	// deadline passed (the monitor is then marked down in tx); or
	// neither when the monitor is gone or already down, which ends the
	// job (the next pulse queues it again).
	CheckDeadline(ctx context.Context, tx bun.Tx, monitorID int, now time.Time) (next time.Time, missed *db.MissedHeartbeat, err error)
}

// ScheduleHeartbeatDeadline queues the monitor's deadline job at at,
// inside the caller's transaction (which holds the monitor's row), or
// moves the one queued. A job being run keeps its lease: the run reads
// the monitor after this transaction and decides from what it wrote.
func (s *Service) ScheduleHeartbeatDeadline(ctx context.Context, tx bun.Tx, monitorID int, at time.Time) error {
	raw, err := json.Marshal(heartbeatArgs{MonitorID: monitorID})
	if err != nil {
		return fmt.Errorf("encode heartbeat job: %w", err)
	}
	job := &db.AlertJob{
		Kind: jobHeartbeatDeadline, RunAt: at, Args: string(raw), DedupKey: heartbeatKey(monitorID),
		CreatedAt: s.clock(), HeartbeatMonitorID: &monitorID,
	}
	_, err = tx.NewInsert().Model(job).On("CONFLICT (dedup_key) DO UPDATE").Set("run_at = EXCLUDED.run_at").Exec(ctx)
	if err != nil {
		return fmt.Errorf("queue deadline of heartbeat monitor %d: %w", monitorID, err)
	}
	return nil
}

// heartbeatDeadline runs a monitor's deadline job.
func (s *Service) heartbeatDeadline(ctx context.Context, job *db.AlertJob, args heartbeatArgs) error {
	if s.config.Heartbeats == nil {
		return s.dropJob(ctx, job, errors.New("heartbeat deadline with no heartbeat monitors configured"))
	}
	opened := false
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		now := s.clock()
		next, missed, err := s.config.Heartbeats.CheckDeadline(ctx, tx, args.MonitorID, now)
		if err != nil {
			return err
		}
		switch {
		case missed != nil:
			if _, err := s.OpenHeartbeatAlert(ctx, tx, missed, now); err != nil {
				return err
			}
			opened = true
			return s.finishJob(ctx, tx, job)
		case next.IsZero():
			return s.finishJob(ctx, tx, job)
		default:
			return s.releaseJob(ctx, tx, job, next, nil)
		}
	})
	if err != nil {
		return err
	}
	if opened {
		s.WakeEvents()
	}
	return nil
}

// OpenHeartbeatAlert opens a monitor's missed-heartbeat alert inside the
// caller's transaction and starts paging for it. While the monitor has an
// alert open it is returned instead, unchanged: one outage, one alert.
func (s *Service) OpenHeartbeatAlert(ctx context.Context, tx bun.Tx, miss *db.MissedHeartbeat, now time.Time) (*db.Alert, error) {
	if miss.Alert == nil || miss.Alert.HeartbeatMonitorID == nil {
		return nil, errors.New("open heartbeat alert: no monitor named")
	}
	monitorID := *miss.Alert.HeartbeatMonitorID
	alert := new(db.Alert)
	err := tx.NewSelect().Model(alert).Where("heartbeat_monitor_id = ? AND status <> ?", monitorID, db.AlertClosed).Limit(1).Scan(ctx)
	if err == nil {
		return alert, nil
	}
	if !errors.Is(db.Classify(err), db.ErrNotFound) {
		return nil, fmt.Errorf("find open alert of heartbeat monitor %d: %w", monitorID, err)
	}
	*alert = *miss.Alert
	alert.ID, alert.IntegrationID, alert.Status, alert.OpenedAt, alert.LastSeenAt = 0, nil, db.AlertOpen, now, now
	if _, err := tx.NewInsert().Model(alert).Exec(ctx); err != nil {
		return nil, fmt.Errorf("open alert of heartbeat monitor %d: %w", monitorID, err)
	}
	entry := &db.AlertLog{AlertID: alert.ID, At: now, Type: db.LogOpened, Message: miss.Timeline}
	if _, err := tx.NewInsert().Model(entry).Exec(ctx); err != nil {
		return nil, fmt.Errorf("store timeline entry: %w", err)
	}
	if err := s.alertChanged(ctx, tx, string(db.LogOpened), alert.ID, eventIntegration(alert), now); err != nil {
		return nil, err
	}
	route := rules.Route{RecipientUserIDs: miss.UserIDs, RecipientGroupIDs: miss.GroupIDs}
	if _, err := s.startPaging(ctx, tx, nil, alert.EscalationPolicyID, route, alert.ID, now, now); err != nil {
		return nil, err
	}
	return alert, nil
}

// CloseHeartbeatAlert closes the monitor's unclosed alert, if it has one,
// inside the caller's transaction, writing why on its timeline; its
// paging stops. It returns the closed alert, or nil when none was open.
func (s *Service) CloseHeartbeatAlert(ctx context.Context, tx bun.Tx, monitorID int, why string, now time.Time) (*db.Alert, error) {
	alert := new(db.Alert)
	err := tx.NewSelect().Model(alert).Where("heartbeat_monitor_id = ? AND status <> ?", monitorID, db.AlertClosed).Limit(1).Scan(ctx)
	if errors.Is(db.Classify(err), db.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find open alert of heartbeat monitor %d: %w", monitorID, err)
	}
	alert.Status, alert.ClosedAt, alert.SnoozedUntil = db.AlertClosed, &now, nil
	if _, err := tx.NewUpdate().Model(alert).Column("status", "closed_at", "snoozed_until").WherePK().Exec(ctx); err != nil {
		return nil, fmt.Errorf("close alert %d: %w", alert.ID, err)
	}
	entry := &db.AlertLog{AlertID: alert.ID, At: now, Type: db.LogClosed, Message: why}
	if _, err := tx.NewInsert().Model(entry).Exec(ctx); err != nil {
		return nil, fmt.Errorf("store timeline entry: %w", err)
	}
	if err := s.alertChanged(ctx, tx, string(db.LogClosed), alert.ID, eventIntegration(alert), now); err != nil {
		return nil, err
	}
	if err := closeJobs(ctx, tx, alert.ID, now); err != nil {
		return nil, err
	}
	return alert, nil
}

// WakeEvents tells the alertEvents stream that a transaction run outside
// this service recorded events, so subscribers hear of them at once
// rather than on the stream's next poll.
func (s *Service) WakeEvents() {
	s.bus.Kick()
}
