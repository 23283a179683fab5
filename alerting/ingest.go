package alerting

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/rules"
)

// Inbound is one webhook request as received.
type Inbound struct {
	Token      string
	Body       []byte
	Headers    map[string]string
	RemoteAddr string

	// Type, when set, says that the message came through that type's
	// drop-in API (see dropin.go): RoutingKey then names the integration
	// instead of Token, and an integration of another type is unknown.
	Type       rules.IntegrationType
	RoutingKey string
	// Invalid is why the drop-in API refused the body before mapping it
	// (a missing field, a bad value): the message is stored as
	// MAPPING_FAILED with it, and acts on nothing.
	Invalid string
	// ChangeEvent, when set, marks a change event (a deploy, say): it is
	// stored as CHANGE with this detail, and acts on nothing.
	ChangeEvent string
}

// IngestResult is what happened to a stored message.
type IngestResult struct {
	MessageID int
	Status    db.InboundStatus
	Detail    string
	AlertID   *int
}

// Ingest stores a webhook message in the inbound log and applies its
// decision to the alerts, in one transaction that may hold other messages
// too (see store): when it returns without error the message is
// committed. A body that cannot be parsed or mapped is stored as
// MAPPING_FAILED and returned without error.
func (s *Service) Ingest(ctx context.Context, in Inbound) (*IngestResult, error) {
	r, err := s.routeOf(ctx, in)
	if err != nil {
		return nil, err
	}
	if !r.integ.Enabled {
		return nil, ErrIntegrationDisabled
	}
	now := s.clock()
	if limit := r.integ.RateLimitPerMinute; limit != nil {
		if wait := s.webhookLimits.take(r.integ.ID, *limit, now); wait > 0 {
			return nil, &db.RateLimitError{Wait: wait, Reason: fmt.Sprintf("this integration takes at most %d webhooks a minute", *limit)}
		}
	}
	msg := &db.InboundMessage{
		IntegrationID: r.integ.ID,
		ReceivedAt:    now,
		RemoteAddr:    in.RemoteAddr,
		Headers:       in.Headers,
		Body:          in.Body,
	}
	if msg.Headers == nil {
		msg.Headers = map[string]string{}
	}
	p := &pendingIngest{integ: r.integ, msg: msg, hold: r.hold(now), watched: s.workflowsMayFire(ctx, r.integ.ID)}
	if r.integ.SignatureRequired() {
		// An unsigned body is kept for the record but never read: nothing
		// in it may open, append to or close an alert.
		if problem := signatureProblem(r.integ, in.Body, in.Headers); problem != "" {
			p.failure, p.failStatus = problem, db.InboundRefused
		}
	}
	if p.failure == "" {
		p.failure, p.failStatus = unmapped(in)
	}
	if p.failure == "" {
		// A good signature says who sent the body, not that it reads: what
		// fails from here on is the sender's mapping problem.
		if p.decision, p.failure, err = s.decideBody(ctx, r, in.Body, now); err != nil {
			return nil, err
		}
		p.failStatus = db.InboundMappingFailed
		msg.SourceID = p.decision.Fields.SourceID
	}
	if err := s.store(ctx, p); err != nil {
		return nil, err
	}
	return &IngestResult{MessageID: msg.ID, Status: msg.Status, Detail: msg.Detail, AlertID: msg.AlertID}, nil
}

// apply carries out a decision inside tx and records the message with its
// final status.
func (s *Service) apply(ctx context.Context, tx bun.Tx, integ *db.Integration, msg *db.InboundMessage, d rules.Decision) error {
	return s.executeGeneric(ctx, tx, integ.ID, msg, planIngest(integ, d, "", "", nil))
}

// executeGeneric carries out plan inside tx with bun: the reference executor,
// which the others must match row for row.
func (s *Service) executeGeneric(ctx context.Context, tx bun.Tx, integrationID int, msg *db.InboundMessage, plan ingestPlan) error {
	now := msg.ReceivedAt
	var alertID int
	took := true
	var err error
	// leaderID is the first alert of the opened alert's group.
	leaderID := 0
	// previousID is the closed alert an opened one brings back.
	var previousID *int
	switch plan.Step {
	case stepOpenOrAppend:
		var joining *int
		if plan.Group != nil {
			if joining, err = takingMembers(ctx, tx, integrationID, plan.Group.Key, now); err != nil {
				return err
			}
		}
		var storedSeverity string
		alertID, took, previousID, storedSeverity, err = openOrAppend(ctx, tx, integrationID, plan.PolicyID, joining, plan.Fields, now, plan.regressionSince(now), plan.dueAt(now))
		if err == nil && took && joining != nil {
			leaderID = *joining
		}
		if err == nil && !took {
			err = raiseSeverity(ctx, tx, &plan, alertID, storedSeverity, now)
		}
	case stepClose:
		alertID, took, err = closeBySource(ctx, tx, integrationID, plan.Fields.SourceID, now)
	case stepPulse:
		alertID, took, err = s.recordPulse(ctx, tx, integrationID, plan, now)
	case stepAcknowledge:
		return s.acknowledgeBySource(ctx, tx, integrationID, msg, plan)
	case stepNote:
		return s.noteBySource(ctx, tx, integrationID, msg, plan)
	}
	if err != nil {
		return err
	}
	out := plan.outcome(took)
	if plan.Group != nil && took {
		switch plan.Step {
		case stepOpenOrAppend:
			if leaderID == 0 {
				if leaderID, err = claimGroup(ctx, tx, integrationID, plan.Group.Key, alertID, now, now.Add(plan.Group.Window)); err != nil {
					return err
				}
			}
			if leaderID != alertID {
				out = out.joined(leaderID, plan.Hold)
			}
		case stepClose:
			if err := endGroup(ctx, tx, alertID, now); err != nil {
				return err
			}
		}
	}
	if out.Entry != "" {
		msg.AlertID = &alertID
	}
	heldBack := false
	if out.CancelJobs {
		if heldBack, err = cancelAllJobs(ctx, tx, alertID, now); err != nil {
			return err
		}
	}
	paging := false
	if out.StartPaging {
		if paging, err = s.startPaging(ctx, tx, &integrationID, plan.PolicyID, plan.Route, alertID, now, plan.pageAt(now)); err != nil {
			return err
		}
	}
	if out.WatchSilence {
		if err := insertJob(ctx, tx, plan.autoCloseJob(alertID, now), autoCloseArgs{Minutes: plan.AutoCloseMinutes}); err != nil {
			return err
		}
	}
	if due := plan.dueAt(now); due != nil && took && plan.Step == stepOpenOrAppend {
		if err := enqueue(ctx, tx, jobOverdue, alertID, *due, overdueKey(alertID, *due), overdueArgs{}, now); err != nil {
			return err
		}
	}
	if out.HoldPaging {
		if paging, err = s.holdOrStart(ctx, tx, integrationID, plan, &out, alertID, now); err != nil {
			return err
		}
	}
	msg.Status, msg.Detail = out.Status, out.Detail
	if out.Entry == "" {
		return insertMessage(ctx, tx, msg)
	}
	if err := s.insertMessageAndLog(ctx, tx, msg, &db.AlertLog{AlertID: alertID, At: now, Type: out.Entry, Message: out.EntryText}); err != nil {
		return err
	}
	timeline := &timelineWriter{tx: tx, alertID: alertID, at: now}
	if paging && plan.DelayEntry != "" {
		if err := timeline.add(ctx, db.LogPagingDelayed, plan.DelayEntry); err != nil {
			return err
		}
	}
	if heldBack {
		if err := timeline.add(ctx, db.LogNotPaged, closedBeforePagingText); err != nil {
			return err
		}
	}
	if leaderID != 0 && leaderID != alertID {
		if err := noteJoined(ctx, tx, integrationID, leaderID, alertID, &msg.ID, now); err != nil {
			return err
		}
	}
	if took && previousID != nil {
		return noteRegression(ctx, tx, alertID, *previousID, now)
	}
	return nil
}

// openOrAppend opens an alert for the source, or appends to the one that is
// already unclosed. The unique index decides between the two, so it holds
// under any concurrency: a losing INSERT does nothing and the UPDATE then
// finds the winner's row.
//
// An opened alert links to the source's alert closed since regressionSince
// (see regression.go), which previousID returns, and is due at dueAt (nil
// for none); an appended one returns the severity it had in
// storedSeverity.
func openOrAppend(ctx context.Context, tx bun.Tx, integrationID int, policyID, groupID *int, f rules.Fields, now time.Time, regressionSince, dueAt *time.Time) (alertID int, opened bool, previousID *int, storedSeverity string, err error) {
	// An alert closed between our INSERT and UPDATE frees the slot again;
	// a few rounds settle any realistic race.
	for range 3 {
		err = tx.QueryRowContext(ctx, `INSERT INTO alerts
			(integration_id, source_id, source_name, subject, severity, url, details, status, append_count, opened_at, last_seen_at, escalation_policy_id, group_id, previous_alert_id, due_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, `+previousAlertSQL+`, ?)
			ON CONFLICT (integration_id, source_id) WHERE status <> 'CLOSED' DO NOTHING
			RETURNING id, previous_alert_id`,
			integrationID, f.SourceID, f.SourceName, f.Subject, f.Severity, f.URL, f.Details, db.AlertOpen, now, now, policyID, groupID,
			integrationID, f.SourceID, regressionSince, dueAt,
		).Scan(&alertID, &previousID)
		if err == nil {
			return alertID, true, previousID, "", nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, false, nil, "", fmt.Errorf("open alert: %w", err)
		}
		err = tx.QueryRowContext(ctx, `UPDATE alerts SET append_count = append_count + 1, last_seen_at = ?
			WHERE integration_id = ? AND source_id = ? AND status <> 'CLOSED'
			RETURNING id, severity`,
			now, integrationID, f.SourceID,
		).Scan(&alertID, &storedSeverity)
		if err == nil {
			return alertID, false, nil, storedSeverity, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, false, nil, "", fmt.Errorf("append to alert: %w", err)
		}
	}
	return 0, false, nil, "", errors.New("open alert: the open alert kept changing; giving up")
}

// closeBySource closes the source's unclosed alert, if it has one.
func closeBySource(ctx context.Context, tx bun.Tx, integrationID int, sourceID string, now time.Time) (alertID int, closed bool, err error) {
	err = tx.QueryRowContext(ctx, `UPDATE alerts SET status = ?, closed_at = ?
		WHERE integration_id = ? AND source_id = ? AND status <> 'CLOSED'
		RETURNING id`,
		db.AlertClosed, now, integrationID, sourceID,
	).Scan(&alertID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("close alert: %w", err)
	}
	return alertID, true, nil
}

// insertMessage stores an inbound message with its final status, and its
// event for live subscribers.
func insertMessage(ctx context.Context, tx bun.Tx, msg *db.InboundMessage) error {
	if _, err := tx.NewInsert().Model(msg).Exec(ctx); err != nil {
		return fmt.Errorf("store inbound message: %w", err)
	}
	return events.MessageStored(ctx, tx, msg)
}

func (s *Service) insertMessageAndLog(ctx context.Context, tx bun.Tx, msg *db.InboundMessage, entry *db.AlertLog) error {
	if err := insertMessage(ctx, tx, msg); err != nil {
		return err
	}
	entry.InboundMessageID = &msg.ID
	if _, err := tx.NewInsert().Model(entry).Exec(ctx); err != nil {
		return fmt.Errorf("store timeline entry: %w", err)
	}
	return s.alertChanged(ctx, tx, string(entry.Type), entry.AlertID, msg.IntegrationID, entry.At)
}
