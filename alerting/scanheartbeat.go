package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// Scan heartbeats: a message a PULSE rule matches (a completed Detectify
// scan) is a pulse of its integration, keyed by its mapped sourceName, so
// one integration watches each scan profile on its own. Each key is one
// row of scan_heartbeats, counting its pulses. A key starts being watched
// at its first pulse: a profile that never completed a scan has no
// rhythm to miss, and watching keys nobody named would need a list of
// them kept by hand.
//
// With the integration's scanHeartbeatHours set, each key has one
// deadline job in alert_jobs, as a heartbeat monitor has (heartbeat.go):
// a pulse moves it to its own time plus the window; when due, the job
// reads the key's row, and either finds a later pulse and waits for the
// new deadline, or opens the key's one alert and marks the key DOWN, in
// the transaction that removes the job, so a restart or a second
// instance opens it once. The key's next pulse closes the alert (an
// ingest outcome, planned in ingestplan.go) and queues the job again.

const jobScanHeartbeat = "scan_heartbeat_deadline"

type scanHeartbeatArgs struct {
	ScanHeartbeatID int `json:"scanHeartbeatId"`
}

func scanHeartbeatJobKey(id int) string {
	return fmt.Sprintf("%s:%d", jobScanHeartbeat, id)
}

// defaultPulseKey is the key of pulses with no sourceName, such as the
// legacy Detectify webhook's, which is one subscription per scan profile.
const defaultPulseKey = "default"

// pulseKey is the key a pulse with fields f counts under.
func pulseKey(f rules.Fields) string {
	if f.SourceName == "" {
		return defaultPulseKey
	}
	return f.SourceName
}

// scanHeartbeatSource is the source id of a key's missed-pulse alert: the
// integration's open-alert index then keeps it to one alert per outage.
func scanHeartbeatSource(key string) string {
	return "scan-heartbeat:" + key
}

// pulseWords names, for the alert and its timeline, what a key is and
// what its pulse is: a scan profile's completed scan for Detectify.
func pulseWords(t rules.IntegrationType, key string) (what, pulse string) {
	if t == rules.TypeDetectify {
		return "profile " + key, "completed scan"
	}
	return "key " + key, "pulse"
}

// recordPulse counts a pulse of the plan's key, inside tx, and queues
// the key's deadline when the integration watches it. It then closes the
// key's missed-pulse alert, if one is open: closed says so.
func (s *Service) recordPulse(ctx context.Context, tx bun.Tx, integrationID int, plan ingestPlan, now time.Time) (alertID int, closed bool, err error) {
	var id int
	err = tx.QueryRowContext(ctx, `INSERT INTO scan_heartbeats (integration_id, pulse_key, status, pulse_count, last_pulse_at)
		VALUES (?, ?, ?, 1, ?)
		ON CONFLICT (integration_id, pulse_key) DO UPDATE SET status = EXCLUDED.status,
			pulse_count = scan_heartbeats.pulse_count + 1, last_pulse_at = EXCLUDED.last_pulse_at, alert_id = NULL
		RETURNING id`,
		integrationID, plan.PulseKey, db.ScanHeartbeatUp, now,
	).Scan(&id)
	if err != nil {
		return 0, false, fmt.Errorf("record pulse of %q: %w", plan.PulseKey, err)
	}
	if plan.PulseHours > 0 {
		if err := queueScanDeadline(ctx, tx, id, now.Add(time.Duration(plan.PulseHours)*time.Hour), now); err != nil {
			return 0, false, err
		}
	}
	return closeBySource(ctx, tx, integrationID, plan.Fields.SourceID, now)
}

// queueScanDeadline queues the key's deadline job at at, or moves the
// one queued. A job being run keeps its lease: the run reads the key
// after this transaction and decides from what it wrote.
func queueScanDeadline(ctx context.Context, idb bun.IDB, scanHeartbeatID int, at, now time.Time) error {
	raw, err := json.Marshal(scanHeartbeatArgs{ScanHeartbeatID: scanHeartbeatID})
	if err != nil {
		return fmt.Errorf("encode %s job: %w", jobScanHeartbeat, err)
	}
	job := &db.AlertJob{Kind: jobScanHeartbeat, RunAt: at, Args: string(raw), DedupKey: scanHeartbeatJobKey(scanHeartbeatID),
		CreatedAt: now, ScanHeartbeatID: &scanHeartbeatID}
	if _, err := idb.NewInsert().Model(job).On("CONFLICT (dedup_key) DO UPDATE").Set("run_at = EXCLUDED.run_at").Exec(ctx); err != nil {
		return fmt.Errorf("queue deadline of pulse key %d: %w", scanHeartbeatID, err)
	}
	return nil
}

// WatchScanHeartbeats follows a change of the integration's
// scanHeartbeatHours to hours, inside the caller's transaction: every key
// that is UP gets its deadline at its last pulse plus the new window
// (a window already passed is due at once), and nil stops watching. A
// DOWN key waits for its next pulse either way. Package integrations
// calls it when the setting changes.
func (s *Service) WatchScanHeartbeats(ctx context.Context, tx bun.Tx, integrationID int, hours *int) error {
	if hours == nil {
		_, err := tx.NewDelete().Model((*db.AlertJob)(nil)).
			Where("scan_heartbeat_id IN (SELECT id FROM scan_heartbeats WHERE integration_id = ?)", integrationID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("stop watching pulses of integration %d: %w", integrationID, err)
		}
		return nil
	}
	var keys []*db.ScanHeartbeat
	if err := tx.NewSelect().Model(&keys).Where("integration_id = ? AND status = ?", integrationID, db.ScanHeartbeatUp).Order("id").Scan(ctx); err != nil {
		return fmt.Errorf("pulse keys of integration %d: %w", integrationID, err)
	}
	now := s.clock()
	for _, k := range keys {
		if err := queueScanDeadline(ctx, tx, k.ID, k.LastPulseAt.Add(time.Duration(*hours)*time.Hour), now); err != nil {
			return err
		}
	}
	return nil
}

// ScanHeartbeats lists the integration's pulse keys by key.
func (s *Service) ScanHeartbeats(ctx context.Context, integrationID int) ([]*db.ScanHeartbeat, error) {
	keys := []*db.ScanHeartbeat{}
	if err := s.db.NewSelect().Model(&keys).Where("integration_id = ?", integrationID).Order("pulse_key").Scan(ctx); err != nil {
		return nil, fmt.Errorf("pulse keys of integration %d: %w", integrationID, err)
	}
	return keys, nil
}

// scanHeartbeatDeadline runs a key's deadline job.
func (s *Service) scanHeartbeatDeadline(ctx context.Context, job *db.AlertJob, args scanHeartbeatArgs) error {
	opened := false
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		now := s.clock()
		key := new(db.ScanHeartbeat)
		q := tx.NewSelect().Model(key).Where("id = ?", args.ScanHeartbeatID)
		if tx.Dialect().Name() == dialect.PG {
			// Held until the job's effect commits: a pulse meanwhile
			// waits, then finds the alert to close.
			q = q.For("UPDATE")
		}
		err := q.Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return s.finishJob(ctx, tx, job)
		}
		if err != nil {
			return fmt.Errorf("load pulse key %d: %w", args.ScanHeartbeatID, err)
		}
		if key.Status == db.ScanHeartbeatDown {
			return s.finishJob(ctx, tx, job)
		}
		integ, err := s.config.Integrations.IntegrationByID(ctx, tx, key.IntegrationID)
		if errors.Is(err, db.ErrNotFound) {
			return s.finishJob(ctx, tx, job)
		}
		if err != nil {
			return err
		}
		// A disabled integration takes no messages, so its silence says
		// nothing about the scans: watching resumes at the next pulse.
		if integ.ScanHeartbeatHours == nil || !integ.Enabled {
			return s.finishJob(ctx, tx, job)
		}
		if deadline := key.LastPulseAt.Add(time.Duration(*integ.ScanHeartbeatHours) * time.Hour); deadline.After(now) {
			return s.releaseJob(ctx, tx, job, deadline, nil)
		}
		alertID, err := s.openScanHeartbeatAlert(ctx, tx, integ, key, now)
		if err != nil {
			return err
		}
		_, err = tx.NewUpdate().Model((*db.ScanHeartbeat)(nil)).Set("status = ?", db.ScanHeartbeatDown).Set("alert_id = ?", alertID).
			Where("id = ?", key.ID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("mark pulse key %d down: %w", key.ID, err)
		}
		opened = true
		return s.finishJob(ctx, tx, job)
	})
	if err != nil {
		return err
	}
	if opened {
		s.WakeEvents()
	}
	return nil
}

// openScanHeartbeatAlert opens the key's missed-pulse alert inside tx and
// starts paging through the integration's policy and recipients. Should
// an alert with the key's source id be open already, it is returned
// instead, unchanged: one outage, one alert.
func (s *Service) openScanHeartbeatAlert(ctx context.Context, tx bun.Tx, integ *db.Integration, key *db.ScanHeartbeat, now time.Time) (int, error) {
	what, pulse := pulseWords(integ.Type, key.Key)
	since := key.LastPulseAt.UTC().Format(time.RFC3339)
	hours := *integ.ScanHeartbeatHours
	var alertID int
	err := tx.QueryRowContext(ctx, `INSERT INTO alerts
		(integration_id, source_id, source_name, subject, severity, url, details, status, append_count, opened_at, last_seen_at, escalation_policy_id)
		VALUES (?, ?, ?, ?, ?, '', ?, ?, 0, ?, ?, ?)
		ON CONFLICT (integration_id, source_id) WHERE status <> 'CLOSED' DO NOTHING
		RETURNING id`,
		integ.ID, scanHeartbeatSource(key.Key), key.Key, fmt.Sprintf("No %s for %s since %s", pulse, what, since), scanHeartbeatSeverity,
		fmt.Sprintf("%s expects a %s for each of its keys at least every %d hours; %s had its last at %s (%d in all).",
			integ.Name, pulse, hours, what, since, key.PulseCount),
		db.AlertOpen, now, now, integ.EscalationPolicyID,
	).Scan(&alertID)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.NewSelect().Model((*db.Alert)(nil)).Column("id").
			Where("integration_id = ? AND source_id = ? AND status <> ?", integ.ID, scanHeartbeatSource(key.Key), db.AlertClosed).Scan(ctx, &alertID)
		if err != nil {
			return 0, fmt.Errorf("find open alert of pulse key %q: %w", key.Key, err)
		}
		return alertID, nil
	}
	if err != nil {
		return 0, fmt.Errorf("open alert of pulse key %q: %w", key.Key, err)
	}
	held, hold, err := s.holdScanAlert(ctx, tx, integ.ID, alertID, now)
	if err != nil {
		return 0, err
	}
	text := fmt.Sprintf("Opened: no %s for %s within %d hours of its last at %s", pulse, what, hours, since)
	if held {
		text += hold.note()
	}
	entry := &db.AlertLog{AlertID: alertID, At: now, Type: db.LogOpened, Message: text}
	if _, err := tx.NewInsert().Model(entry).Exec(ctx); err != nil {
		return 0, fmt.Errorf("store timeline entry: %w", err)
	}
	if err := s.alertChanged(ctx, tx, string(db.LogOpened), alertID, integ.ID, now); err != nil {
		return 0, err
	}
	if held {
		return alertID, nil
	}
	if _, err := s.startPaging(ctx, tx, &integ.ID, integ.EscalationPolicyID, rules.Route{}, alertID, now, now); err != nil {
		return 0, err
	}
	return alertID, nil
}

// holdScanAlert holds back the paging of the integration's newly opened
// missed-pulse alert while a maintenance window covers the integration,
// as ingest does for the alerts its messages open: scans paused for
// maintenance page no one, and what is still silent pages when the
// window ends (if it says so). held is false, having changed nothing,
// when no window covers now.
func (s *Service) holdScanAlert(ctx context.Context, tx bun.Tx, integrationID, alertID int, now time.Time) (held bool, hold *suppression, err error) {
	if s.config.Maintenance == nil {
		return false, nil, nil
	}
	windows, err := s.config.Maintenance.WindowsFor(ctx, tx, integrationID)
	if err != nil {
		return false, nil, fmt.Errorf("maintenance windows of integration %d: %w", integrationID, err)
	}
	if hold = holdAmong(windows, now); hold == nil {
		return false, nil, nil
	}
	held, err = holdPaging(ctx, tx, rules.Route{}, alertID, hold, now)
	return held, hold, err
}

// scanHeartbeatSeverity is a missed pulse's: findings go unseen while
// the scans are away, which is worth a page, as a heartbeat monitor's
// default is.
const scanHeartbeatSeverity = "high"
