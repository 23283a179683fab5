package alerting

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// alreadyAcknowledged is why an acknowledging message changed nothing.
const alreadyAcknowledged = "no open, unacknowledged alert for this source"

// acknowledgeBySource carries out a stepAcknowledge plan inside tx: the
// source's open alert is acknowledged as a person's acknowledgement
// would (paging stops, the policy's acknowledgement timeout starts, a
// group's open members follow), attributed to no user: its timeline
// entry links to the message, which names the integration. A snoozed
// alert counts as not acknowledged, as for a person, so the snooze ends.
func (s *Service) acknowledgeBySource(ctx context.Context, tx bun.Tx, integrationID int, msg *db.InboundMessage, plan ingestPlan) error {
	now := msg.ReceivedAt
	var alertID int
	// One statement decides, like closeBySource: a person acting on the
	// alert at the same moment is either before it or after it.
	err := tx.QueryRowContext(ctx, `UPDATE alerts SET status = ?, acknowledged_at = ?, acknowledged_by = NULL, snoozed_until = NULL
		WHERE integration_id = ? AND source_id = ? AND (status = ? OR (status = ? AND snoozed_until IS NOT NULL))
		RETURNING id`,
		db.AlertAcknowledged, now, integrationID, plan.Fields.SourceID, db.AlertOpen, db.AlertAcknowledged,
	).Scan(&alertID)
	if errors.Is(err, sql.ErrNoRows) {
		out := plan.outcome(false)
		msg.Status, msg.Detail = out.Status, out.Detail
		return insertMessage(ctx, tx, msg)
	}
	if err != nil {
		return fmt.Errorf("acknowledge alert: %w", err)
	}
	out := plan.outcome(true)
	msg.Status, msg.Detail, msg.AlertID = out.Status, out.Detail, &alertID
	entry := &db.AlertLog{AlertID: alertID, At: now, Type: out.Entry, Message: out.EntryText}
	if err := s.insertMessageAndLog(ctx, tx, msg, entry); err != nil {
		return err
	}
	alert, err := alertByID(ctx, tx, alertID)
	if err != nil {
		return err
	}
	if err := s.actOnMembers(ctx, tx, alert, []db.AlertStatus{db.AlertOpen}, func(m *db.Alert) *db.AlertLog {
		m.Status, m.AcknowledgedAt, m.AcknowledgedBy, m.SnoozedUntil = db.AlertAcknowledged, &now, nil, nil
		return &db.AlertLog{At: now, Type: db.LogAcknowledged, Message: fmt.Sprintf("Acknowledged with the group's first alert #%d", alert.ID), InboundMessageID: &msg.ID}
	}); err != nil {
		return err
	}
	return s.settleJobs(ctx, tx, alert, entry)
}

// noteBySource carries out a stepNote plan inside tx: the note goes on the
// source's unclosed alert's timeline, attributed to no user and linked to
// the message, which names the integration.
func (s *Service) noteBySource(ctx context.Context, tx bun.Tx, integrationID int, msg *db.InboundMessage, plan ingestPlan) error {
	var alertID int
	err := tx.QueryRowContext(ctx, `SELECT id FROM alerts WHERE integration_id = ? AND source_id = ? AND status <> ?`,
		integrationID, plan.Fields.SourceID, db.AlertClosed).Scan(&alertID)
	if errors.Is(err, sql.ErrNoRows) {
		out := plan.outcome(false)
		msg.Status, msg.Detail = out.Status, out.Detail
		return insertMessage(ctx, tx, msg)
	}
	if err != nil {
		return fmt.Errorf("find alert to note: %w", err)
	}
	out := plan.outcome(true)
	msg.Status, msg.Detail, msg.AlertID = out.Status, out.Detail, &alertID
	if err := insertMessage(ctx, tx, msg); err != nil {
		return err
	}
	entry := &db.AlertLog{AlertID: alertID, At: msg.ReceivedAt, Type: out.Entry, Message: out.EntryText, InboundMessageID: &msg.ID}
	if _, err := tx.NewInsert().Model(entry).Exec(ctx); err != nil {
		return fmt.Errorf("store note: %w", err)
	}
	return s.alertChanged(ctx, tx, eventType(entry.Type), alertID, integrationID, entry.At)
}
