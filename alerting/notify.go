package alerting

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/notifiers"
)

const sendTimeout = 30 * time.Second

// NotificationRetrying marks a notification whose last attempt failed
// temporarily and which will be tried again.
const NotificationRetrying db.NotificationStatus = "RETRYING"

// notify delivers one queued notification. The notification row is written
// (SENDING) and committed before the send, and its outcome is recorded in
// the transaction that removes the job, so the delivery log always shows
// an attempt that was made. The send itself happens outside any
// transaction: a slow channel never holds the database.
func (s *Service) notify(ctx context.Context, job *db.AlertJob, args notifyArgs) error {
	var (
		note    *db.Notification
		msg     notifiers.Message
		skipped bool
	)
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		held, err := tx.NewSelect().Model((*db.AlertJob)(nil)).Where("id = ? AND locked_by = ?", job.ID, s.workerID).Count(ctx)
		if err != nil {
			return fmt.Errorf("check job %d: %w", job.ID, err)
		}
		if held == 0 {
			return errLostLease
		}
		alert, err := loadAlert(ctx, tx, job.AlertID)
		if err != nil {
			return err
		}
		method := new(db.ContactMethod)
		err = tx.NewSelect().Model(method).Where("id = ?", args.ContactMethodID).Scan(ctx)
		if errors.Is(db.Classify(err), db.ErrNotFound) || (err == nil && method.Disabled) || alert.Status != db.AlertOpen {
			skipped = true
			return s.finishJob(ctx, tx, job)
		}
		if err != nil {
			return fmt.Errorf("load contact method %d: %w", args.ContactMethodID, err)
		}
		user := new(db.User)
		if err := tx.NewSelect().Model(user).Where("id = ?", args.UserID).Scan(ctx); err != nil {
			if errors.Is(db.Classify(err), db.ErrNotFound) {
				skipped = true
				return s.finishJob(ctx, tx, job)
			}
			return fmt.Errorf("load user %d: %w", args.UserID, err)
		}
		now := s.clock()
		recipient := user.Name
		if recipient == "" {
			recipient = user.Email
		}
		note = new(db.Notification)
		key := notifyKey(alert.ID, args)
		err = tx.NewSelect().Model(note).Where("dedup_key = ?", key).Scan(ctx)
		switch {
		case errors.Is(db.Classify(err), db.ErrNotFound):
			note = &db.Notification{
				AlertID: alert.ID, UserID: &user.ID, ContactMethodID: &method.ID, Channel: method.Type,
				Destination: method.Value, Status: db.NotificationSending, Step: args.Step, Round: args.Round,
				DedupKey: key, CreatedAt: now,
			}
		case err != nil:
			return fmt.Errorf("load notification %s: %w", key, err)
		}
		note.Attempts++
		note.Status, note.UpdatedAt = db.NotificationSending, now
		if method.Type.NeedsVerification() && !method.Verified {
			// Recorded, not skipped: the person must see in the delivery
			// log why they were not reached, and fix it.
			note.Status, note.Error = db.NotificationFailed, "contact method not verified"
			skipped = true
		}
		if _, err := tx.NewInsert().Model(note).
			On("CONFLICT (dedup_key) DO UPDATE").Set("attempts = EXCLUDED.attempts, status = EXCLUDED.status, error = EXCLUDED.error, updated_at = EXCLUDED.updated_at").
			Exec(ctx); err != nil {
			return fmt.Errorf("record notification: %w", err)
		}
		if skipped {
			timeline := &timelineWriter{tx: tx, alertID: alert.ID, at: now}
			if err := timeline.add(ctx, db.LogNotification, fmt.Sprintf("Did not notify %s by %s: contact method not verified", recipient, method.Type)); err != nil {
				return err
			}
			return s.finishJob(ctx, tx, job)
		}
		ackURL, err := s.issueActionLink(ctx, tx, alert.ID, user.ID, db.LinkAcknowledge, now)
		if err != nil {
			return err
		}
		closeURL, err := s.issueActionLink(ctx, tx, alert.ID, user.ID, db.LinkClose, now)
		if err != nil {
			return err
		}
		msg = notifiers.Message{
			AlertID: alert.ID, AlertNumber: alert.Number(), Subject: alert.Subject, Severity: alert.Severity,
			Details: alert.Details, SourceName: alert.SourceName, URL: alert.URL,
			AckURL: ackURL, CloseURL: closeURL,
			Destination: method.Value, Recipient: recipient,
		}
		return nil
	})
	if err != nil || skipped {
		return err
	}

	sendCtx, cancel := context.WithTimeout(ctx, sendTimeout)
	providerID, sendErr := s.senders.Send(sendCtx, note.Channel, msg)
	cancel()

	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		now := s.clock()
		timeline := &timelineWriter{tx: tx, alertID: note.AlertID, at: now}
		note.UpdatedAt = now
		var step error
		switch {
		case sendErr == nil:
			note.Status, note.ProviderID, note.Error = db.NotificationSent, providerID, ""
			step = s.finishJob(ctx, tx, job)
			if step == nil {
				step = timeline.add(ctx, db.LogNotification, fmt.Sprintf("Notified %s by %s", msg.Recipient, note.Channel))
			}
		case notifiers.IsPermanent(sendErr) || job.Attempts >= maxJobRetries:
			note.Status, note.Error = db.NotificationFailed, deliveryError(sendErr)
			step = s.finishJob(ctx, tx, job)
			if step == nil {
				step = timeline.add(ctx, db.LogNotification, fmt.Sprintf("Notification to %s by %s failed: %s", msg.Recipient, note.Channel, note.Error))
			}
		default:
			note.Status, note.Error = NotificationRetrying, deliveryError(sendErr)
			step = s.retryJob(ctx, tx, job, now.Add(backoff(job.Attempts)), sendErr)
		}
		if step != nil {
			return step
		}
		if _, err := tx.NewUpdate().Model(note).Column("status", "provider_id", "error", "updated_at").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("record delivery of notification %d: %w", note.ID, err)
		}
		return nil
	})
}

// deliveryError is the text kept in the delivery log: the channel's own
// reason, without our wrapping.
func deliveryError(err error) string {
	if errors.Is(err, notifiers.ErrNotConfigured) {
		return "channel not configured"
	}
	return err.Error()
}
