package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/notifiers"
)

// maxBundle bounds how many held-back notifications one message carries;
// the rest go out in the next one.
const maxBundle = 50

// NotificationRetrying marks a notification whose last attempt failed
// temporarily and which will be tried again.
const NotificationRetrying db.NotificationStatus = "RETRYING"

// outgoing is one message about to be sent: the job that sends it, and
// the jobs of other alerts for the same contact method that it carries
// along. Each has its own notification row.
type outgoing struct {
	primary   part
	bundled   []part
	channel   db.ContactType
	recipient string
	msg       notifiers.Message
}

type part struct {
	job  *db.AlertJob
	note *db.Notification
}

func (o *outgoing) parts() []part { return append([]part{o.primary}, o.bundled...) }

// notify delivers one queued notification. The notification rows are
// written (SENDING) and committed before the send, and the outcome is
// recorded in the transaction that removes the jobs, so the delivery log
// always shows an attempt that was made. The send itself happens outside
// any transaction: a slow channel never holds the database.
//
// A contact method with a rate limit gets at most one message per
// interval. A job that comes due inside the interval is put off to its
// end; the job that then sends takes every other due job for the method
// along, so a burst of alerts reaches a phone as one message.
func (s *Service) notify(ctx context.Context, job *db.AlertJob, args notifyArgs) error {
	var out *outgoing
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		out, err = s.prepareNotify(ctx, tx, job, args, nil)
		return err
	})
	if err != nil || out == nil {
		return err
	}
	return s.sendPrepared(ctx, out)
}

// sendPrepared sends a message prepareNotify recorded as being sent (and
// committed), and records its outcome.
func (s *Service) sendPrepared(ctx context.Context, out *outgoing) error {
	// From here the message may be out: neither the send nor its record
	// is cut short when the engine stops its other jobs.
	ctx = context.WithoutCancel(ctx)

	sendCtx, cancel := context.WithTimeout(ctx, notifiers.SendTimeout)
	providerID, sendErr := s.senders.Send(sendCtx, out.channel, out.msg)
	cancel()

	d := &unrecorded{out: out, providerID: providerID, sendErr: sendErr}
	err := db.Classify(s.recordTogether(ctx, d))
	if errors.Is(err, db.ErrUnavailable) {
		// The message is out: left to its lease, the job would run again
		// and send it again. Its outcome is kept instead, and recorded by
		// the first run that finds the database back (see
		// handBackStranded).
		s.stranded.Lock()
		s.stranded.deliveries = append(s.stranded.deliveries, d)
		s.stranded.Unlock()
		return fmt.Errorf("%w: %w", errSentUnrecorded, err)
	}
	return err
}

// errSentUnrecorded reports a notification sent whose outcome could not
// be recorded yet: its job is kept, not handed back.
var errSentUnrecorded = errors.New("sent; the outcome waits for the database")

// unrecorded is a send made whose outcome is not recorded yet.
type unrecorded struct {
	out        *outgoing
	providerID string
	sendErr    error
	// recordTx, when set, records a send that is not a notification (a
	// workflow's request), of job.
	recordTx func(context.Context, bun.Tx) error
	job      *db.AlertJob
}

func (s *Service) record(ctx context.Context, d *unrecorded) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return s.recordIn(ctx, tx, d)
	})
}

// recordIn records d's outcome in tx.
func (s *Service) recordIn(ctx context.Context, tx bun.Tx, d *unrecorded) error {
	if d.recordTx != nil {
		return d.recordTx(ctx, tx)
	}
	return s.recordDelivery(ctx, tx, d.out, d.providerID, d.sendErr)
}

// jobID is the job whose send d is.
func (d *unrecorded) jobID() int {
	if d.job != nil {
		return d.job.ID
	}
	return d.out.primary.job.ID
}

// prepareNotify decides what the job sends, if anything, and records the
// attempt. A nil outgoing means the job was finished or put off. A job
// queued in tx itself comes with its alert, as tx read it: no other job
// can have taken it, and the alert need not be read again.
func (s *Service) prepareNotify(ctx context.Context, tx bun.Tx, job *db.AlertJob, args notifyArgs, alert *db.Alert) (*outgoing, error) {
	method, err := s.config.Contacts.ContactMethodByID(ctx, tx, args.ContactMethodID)
	if err == nil && s.rateLimits[method.Type] > 0 {
		// Jobs for one rate-limited contact method take turns from here to
		// the commit, so two of them cannot both find the method outside
		// its limit. A method without a limit has nothing to check, and a
		// storm to one webhook must not queue every send behind one lock.
		if err := s.config.Contacts.LockContactMethod(ctx, tx, args.ContactMethodID); err != nil {
			return nil, err
		}
		// Read again under the lock, to see a change committed meanwhile
		// (the method disabled, say).
		method, err = s.config.Contacts.ContactMethodByID(ctx, tx, args.ContactMethodID)
	}
	queuedHere := alert != nil
	if !queuedHere {
		held, herr := tx.NewSelect().Model((*db.AlertJob)(nil)).Where("id = ? AND locked_by = ?", job.ID, job.LockedBy).Count(ctx)
		if herr != nil {
			return nil, fmt.Errorf("check job %d: %w", job.ID, herr)
		}
		if held == 0 {
			// Another job of this contact method took it into its message.
			return nil, errLostLease
		}
		var aerr error
		if alert, aerr = alertByID(ctx, tx, job.AlertID); aerr != nil {
			return nil, aerr
		}
	}
	if errors.Is(err, db.ErrNotFound) || (err == nil && method.Disabled) || alert.Status != db.AlertOpen {
		return nil, s.finishJob(ctx, tx, job)
	}
	if err != nil {
		return nil, err
	}
	user := new(db.User)
	if err := tx.NewSelect().Model(user).Where("id = ?", args.UserID).Scan(ctx); err != nil {
		if errors.Is(db.Classify(err), db.ErrNotFound) {
			return nil, s.finishJob(ctx, tx, job)
		}
		return nil, fmt.Errorf("load user %d: %w", args.UserID, err)
	}
	recipient := user.Name
	if recipient == "" {
		recipient = user.Email
	}
	now := s.clock()
	key := notifyKey(alert.ID, args)

	if method.Type.NeedsVerification() && !method.Verified {
		// Recorded, not skipped: the person must see in the delivery log
		// why they were not reached, and fix it.
		note, err := loadAttempt(ctx, tx, alert.ID, args, method, key, now)
		if err != nil {
			return nil, err
		}
		note.Attempts++
		note.Status, note.Error, note.UpdatedAt = db.NotificationFailed, "contact method not verified", now
		if _, err := tx.NewInsert().Model(note).
			On("CONFLICT (dedup_key) DO UPDATE").Set("attempts = EXCLUDED.attempts, status = EXCLUDED.status, error = EXCLUDED.error, updated_at = EXCLUDED.updated_at").
			Exec(ctx); err != nil {
			return nil, fmt.Errorf("record notification of alert %d: %w", alert.ID, err)
		}
		timeline := &timelineWriter{tx: tx, alertID: alert.ID, at: now}
		if err := timeline.add(ctx, db.LogNotification, fmt.Sprintf("Did not notify %s by %s: contact method not verified", recipient, method.Type)); err != nil {
			return nil, err
		}
		return nil, s.finishJob(ctx, tx, job)
	}

	limit := s.rateLimits[method.Type]
	var bundled []part
	var others []notifiers.AlertSummary
	if limit > 0 {
		until, limited, err := s.rateLimitedUntil(ctx, tx, method.ID, key, limit, now)
		if err != nil {
			return nil, err
		}
		if limited {
			if err := s.deferJob(ctx, tx, job, until); err != nil {
				return nil, err
			}
			s.log.DebugContext(ctx, "notification held back by rate limit", "job", job.ID, "alert", alert.ID, "contact_method", method.ID, "until", until)
			timeline := &timelineWriter{tx: tx, alertID: alert.ID, at: now}
			return nil, timeline.add(ctx, db.LogNotification, fmt.Sprintf("Notification to %s by %s held back until %s: at most one message every %s",
				recipient, method.Type, until.Format("15:04:05 MST"), limit))
		}
		bundled, others, err = s.takeHeldBack(ctx, tx, job, method, now)
		if err != nil {
			return nil, err
		}
	}

	// The others' rows go in first, so that a new primary row is the
	// newest: an SMS reply without an alert number means that alert.
	for _, p := range bundled {
		if err := recordAttempt(ctx, tx, p.note, now); err != nil {
			return nil, err
		}
	}
	var note *db.Notification
	if queuedHere {
		// A job queued in this transaction has made no attempt yet.
		note = newAttempt(alert.ID, args, method, key, now)
	} else if note, err = loadAttempt(ctx, tx, alert.ID, args, method, key, now); err != nil {
		return nil, err
	}
	if err := recordAttempt(ctx, tx, note, now); err != nil {
		return nil, err
	}
	ackURL, closeURL, err := s.issueActionLinks(ctx, tx, alert.ID, user.ID, now)
	if err != nil {
		return nil, err
	}
	grouped, err := groupSize(ctx, tx, alert)
	if err != nil {
		return nil, err
	}
	return &outgoing{
		primary: part{job: job, note: note}, bundled: bundled, channel: method.Type, recipient: recipient,
		msg: notifiers.Message{
			AlertID: alert.ID, AlertNumber: alert.Number(), Subject: alert.Subject, Severity: alert.Severity,
			Details: alert.Details, SourceName: alert.SourceName, URL: alert.URL,
			AckURL: ackURL, CloseURL: closeURL,
			Destination: method.Value, Recipient: recipient, Others: others, Grouped: grouped,
			UserID: user.ID,
		},
	}, nil
}

// rateLimitedUntil reports whether a message went to the contact method
// within the last limit (or is going out right now) and if so, when the
// next may go. The job's own earlier attempt does not count: after a
// crash mid-send it would otherwise hold itself back.
func (s *Service) rateLimitedUntil(ctx context.Context, tx bun.Tx, methodID int, ownKey string, limit time.Duration, now time.Time) (time.Time, bool, error) {
	last := new(db.Notification)
	err := tx.NewSelect().Model(last).Column("id", "updated_at").
		Where("contact_method_id = ?", methodID).
		Where("status IN (?)", bun.In([]db.NotificationStatus{db.NotificationSending, db.NotificationSent, db.NotificationDelivered})).
		Where("updated_at > ?", now.Add(-limit)).
		Where("dedup_key <> ?", ownKey).
		Order("updated_at DESC").Limit(1).Scan(ctx)
	if errors.Is(db.Classify(err), db.ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("last message to contact method %d: %w", methodID, err)
	}
	return last.UpdatedAt.Add(limit), true, nil
}

// takeHeldBack leases to this message every other due notify job for the
// contact method whose alert is still open: the ones the rate limit put
// off. A job this worker has claimed but not started is taken too; its
// own run then finds it gone. Jobs other workers hold are left to them.
func (s *Service) takeHeldBack(ctx context.Context, tx bun.Tx, job *db.AlertJob, method *db.ContactMethod, now time.Time) ([]part, []notifiers.AlertSummary, error) {
	var ids []int
	err := tx.NewSelect().Model((*db.AlertJob)(nil)).Column("alert_job.id").
		Join("JOIN alerts AS a ON a.id = alert_job.alert_id").
		Where("alert_job.contact_method_id = ? AND alert_job.kind = ? AND alert_job.id <> ?", method.ID, jobNotify, job.ID).
		Where("alert_job.run_at <= ? AND a.status = ?", now, db.AlertOpen).
		Where("alert_job.locked_until IS NULL OR alert_job.locked_until < ? OR alert_job.locked_by = ?", now, s.workerID).
		Order("alert_job.run_at", "alert_job.id").Limit(maxBundle).Scan(ctx, &ids)
	if err != nil {
		return nil, nil, fmt.Errorf("find notifications held back for contact method %d: %w", method.ID, err)
	}
	if len(ids) == 0 {
		return nil, nil, nil
	}
	lease := fmt.Sprintf("%s/bundle/%d", s.workerID, job.ID)
	var taken []*db.AlertJob
	err = tx.NewRaw(`UPDATE alert_jobs SET locked_by = ?, locked_until = ?, attempts = attempts + 1
		WHERE id IN (?) AND (locked_until IS NULL OR locked_until < ? OR locked_by = ?)
		RETURNING id, kind, alert_id, run_at, args, dedup_key, attempts, locked_by, locked_until, contact_method_id`,
		lease, now.Add(s.jobLease), bun.In(ids), now, s.workerID).Scan(ctx, &taken)
	if err != nil {
		return nil, nil, fmt.Errorf("take notifications held back for contact method %d: %w", method.ID, err)
	}
	var parts []part
	var others []notifiers.AlertSummary
	listed := map[int]bool{job.AlertID: true}
	for _, t := range taken {
		var args notifyArgs
		if err := json.Unmarshal([]byte(t.Args), &args); err != nil {
			// Left leased: it runs, and is dropped, once the lease ends.
			s.log.ErrorContext(ctx, "undecodable notify job", "job", t.ID, "err", err)
			continue
		}
		alert, err := alertByID(ctx, tx, t.AlertID)
		if err != nil {
			return nil, nil, err
		}
		note, err := loadAttempt(ctx, tx, alert.ID, args, method, t.DedupKey, now)
		if err != nil {
			return nil, nil, err
		}
		parts = append(parts, part{job: t, note: note})
		// A later round of the same alert is recorded but not listed twice.
		if !listed[alert.ID] {
			listed[alert.ID] = true
			others = append(others, notifiers.AlertSummary{AlertID: alert.ID, AlertNumber: alert.Number(), Subject: alert.Subject, Severity: alert.Severity})
		}
	}
	return parts, others, nil
}

// loadAttempt returns the notification row of a job, new or from an
// earlier attempt.
func loadAttempt(ctx context.Context, tx bun.Tx, alertID int, args notifyArgs, method *db.ContactMethod, key string, now time.Time) (*db.Notification, error) {
	note := new(db.Notification)
	err := tx.NewSelect().Model(note).Where("dedup_key = ?", key).Scan(ctx)
	switch {
	case errors.Is(db.Classify(err), db.ErrNotFound):
		return newAttempt(alertID, args, method, key, now), nil
	case err != nil:
		return nil, fmt.Errorf("load notification %s: %w", key, err)
	}
	return note, nil
}

// newAttempt is the notification row of a job's first attempt.
func newAttempt(alertID int, args notifyArgs, method *db.ContactMethod, key string, now time.Time) *db.Notification {
	return &db.Notification{
		AlertID: alertID, UserID: &args.UserID, ContactMethodID: &method.ID, Channel: method.Type,
		Destination: method.Value, Status: db.NotificationSending, Step: args.Step, Round: args.Round,
		DedupKey: key, CreatedAt: now,
	}
}

// recordAttempt stores note as being sent now, one more attempt.
func recordAttempt(ctx context.Context, tx bun.Tx, note *db.Notification, now time.Time) error {
	note.Attempts++
	note.Status, note.UpdatedAt = db.NotificationSending, now
	if _, err := tx.NewInsert().Model(note).
		On("CONFLICT (dedup_key) DO UPDATE").Set("attempts = EXCLUDED.attempts, status = EXCLUDED.status, updated_at = EXCLUDED.updated_at").
		Exec(ctx); err != nil {
		return fmt.Errorf("record notification of alert %d: %w", note.AlertID, err)
	}
	return nil
}

// recordDelivery applies the send's outcome to every notification the
// message carried. A temporary failure puts all its jobs back to run
// together after the backoff, or after the provider's Retry-After when
// that is later: retrying sooner would only be refused again.
func (s *Service) recordDelivery(ctx context.Context, tx bun.Tx, out *outgoing, providerID string, sendErr error) error {
	now := s.clock()
	attempts := out.primary.job.Attempts
	var outcome db.NotificationStatus
	var retryAt time.Time
	switch {
	case sendErr == nil:
		outcome = db.NotificationSent
	case notifiers.IsPermanent(sendErr) || attempts >= maxJobRetries:
		outcome = db.NotificationFailed
	default:
		outcome = NotificationRetrying
		wait := backoff(attempts)
		if after, ok := notifiers.RetryAfter(sendErr); ok && after > wait {
			wait = after
		}
		retryAt = now.Add(wait)
	}
	// The reason is stored and shown to every user; the destination is
	// its owner's alone, so it is kept out (notifiers.Reason).
	reason := deliveryError(sendErr, out.msg.Destination)
	together := ""
	if n := len(out.bundled); n > 0 {
		together = fmt.Sprintf(" (one message with %d other notification(s))", n)
	}
	for _, p := range out.parts() {
		note := p.note
		note.Status, note.UpdatedAt = outcome, now
		if outcome == db.NotificationSent {
			note.ProviderID, note.Error = providerID, ""
		} else {
			note.Error = reason
		}
		var step error
		if outcome == NotificationRetrying {
			step = s.retryJob(ctx, tx, p.job, retryAt, errors.New(reason))
		} else {
			step = s.finishJob(ctx, tx, p.job)
		}
		if errors.Is(step, errLostLease) {
			cancelled, err := jobCancelled(ctx, tx, p.job)
			if err != nil {
				return err
			}
			if cancelled {
				// Acknowledging or closing the alert removed the job while
				// its message was out. The send was made all the same and
				// is recorded; nothing will retry it.
				step = nil
				if note.Status == NotificationRetrying {
					note.Status = db.NotificationFailed
				}
			}
		}
		if step != nil {
			return step
		}
		timeline := &timelineWriter{tx: tx, alertID: note.AlertID, at: now}
		switch note.Status {
		case db.NotificationSent:
			step = timeline.add(ctx, db.LogNotification, fmt.Sprintf("Notified %s by %s%s", out.recipient, note.Channel, together))
		case db.NotificationFailed:
			step = timeline.add(ctx, db.LogNotification, fmt.Sprintf("Notification to %s by %s failed: %s", out.recipient, note.Channel, note.Error))
		}
		if step != nil {
			return step
		}
		if _, err := tx.NewUpdate().Model(note).Column("status", "provider_id", "error", "updated_at").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("record delivery of notification %d: %w", note.ID, err)
		}
	}
	return nil
}

// jobCancelled tells whether a job this worker lost was removed because
// its alert was acknowledged or closed, rather than taken by another
// worker, who then records its outcome.
func jobCancelled(ctx context.Context, tx bun.Tx, job *db.AlertJob) (bool, error) {
	n, err := tx.NewSelect().Model((*db.AlertJob)(nil)).Where("id = ?", job.ID).Count(ctx)
	if err != nil {
		return false, fmt.Errorf("check job %d: %w", job.ID, err)
	}
	if n > 0 {
		return false, nil
	}
	open, err := tx.NewSelect().Model((*db.Alert)(nil)).Where("id = ? AND status = ?", job.AlertID, db.AlertOpen).Count(ctx)
	if err != nil {
		return false, fmt.Errorf("check alert %d: %w", job.AlertID, err)
	}
	return open == 0, nil
}

// deliveryError is the text kept in the delivery log: the channel's own
// reason, without our wrapping and without the destination.
func deliveryError(err error, destination string) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, notifiers.ErrNotConfigured) {
		return "channel not configured"
	}
	return notifiers.Reason(err, destination)
}
