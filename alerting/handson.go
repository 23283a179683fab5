package alerting

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/rules"
)

// The hands-on actions a responder takes on an alert besides
// acknowledging, assigning and closing it: snoozing, escalating at once,
// writing a note, and opening an alert by hand.

const (
	jobUnsnooze = "unsnooze"

	// MaxSnoozeMinutes bounds a snooze to a week: an alert put away for
	// longer is one nobody means to come back to, and should be closed.
	MaxSnoozeMinutes = 7 * 24 * 60
	// MaxNoteLength bounds a note, in characters.
	MaxNoteLength = 2000

	maxSubjectRunes  = 1000
	maxDetailsBytes  = 65536
	manualSourceName = "manual"
)

// ManualSeverities are the severities an alert opened by hand may have.
var ManualSeverities = []string{"critical", "high", "medium", "low", "info"}

type unsnoozeArgs struct {
	// Until is the end of the snooze the job was queued for; a later
	// snooze replaces it, and the job then finds a different end and
	// leaves the alert alone.
	Until time.Time `json:"until"`
}

func unsnoozeKey(alertID int, until time.Time) string {
	return fmt.Sprintf("unsnooze:%d:%d", alertID, until.UnixMicro())
}

// Snooze acknowledges an unclosed alert for minutes. If it is still not
// closed then, it opens again and pages from the first step of its policy.
// A new snooze replaces the last one; acknowledging or closing the alert
// ends it for good.
func (s *Service) Snooze(ctx context.Context, alertID, userID, minutes int) (*db.Alert, error) {
	if minutes < 1 || minutes > MaxSnoozeMinutes {
		return nil, invalid.Fieldf("minutes", "must be 1 to %d", MaxSnoozeMinutes)
	}
	var until, now time.Time
	return s.changeThen(ctx, alertID, func(ctx context.Context, tx bun.Tx, a *db.Alert) (*db.AlertLog, error) {
		if a.Status == db.AlertClosed {
			return nil, invalid.New("id", fmt.Sprintf("alert %d is closed", a.ID))
		}
		now = s.clock()
		until = now.Add(time.Duration(minutes) * time.Minute)
		if a.Status == db.AlertOpen {
			a.AcknowledgedAt, a.AcknowledgedBy = &now, &userID
		}
		a.Status, a.SnoozedUntil = db.AlertAcknowledged, &until
		// Snoozing a group's first alert snoozes the group: its open
		// members sleep as long, and wake with it (see unsnooze).
		if err := s.actOnMembers(ctx, tx, a, []db.AlertStatus{db.AlertOpen}, func(m *db.Alert) *db.AlertLog {
			m.Status, m.AcknowledgedAt, m.AcknowledgedBy, m.SnoozedUntil = db.AlertAcknowledged, &now, &userID, &until
			return &db.AlertLog{At: now, Type: db.LogSnoozed, UserID: &userID,
				Message: fmt.Sprintf("Snoozed with the group's first alert #%d, until %s", a.ID, until.Format(time.RFC3339))}
		}); err != nil {
			return nil, err
		}
		return &db.AlertLog{At: now, Type: db.LogSnoozed, UserID: &userID,
			Message: fmt.Sprintf("Snoozed for %d min, until %s; paging restarts then if the alert is still not closed", minutes, until.Format(time.RFC3339))}, nil
	}, func(ctx context.Context, tx bun.Tx, a *db.Alert) error {
		return enqueue(ctx, tx, jobUnsnooze, a.ID, until, unsnoozeKey(a.ID, until), unsnoozeArgs{Until: until}, now)
	})
}

// unsnooze ends a snooze: the alert opens again and pages from the first
// step, in the transaction that removes the job.
func (s *Service) unsnooze(ctx context.Context, job *db.AlertJob, args unsnoozeArgs) error {
	defer s.bus.Kick()
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.finishJob(ctx, tx, job); err != nil {
			return err
		}
		alert, err := alertByID(ctx, tx, job.AlertID)
		if err != nil {
			return err
		}
		if alert.Status != db.AlertAcknowledged || alert.SnoozedUntil == nil || !alert.SnoozedUntil.Equal(args.Until) {
			return nil
		}
		now := s.clock()
		res, err := tx.NewUpdate().Model((*db.Alert)(nil)).
			Set("status = ?", db.AlertOpen).Set("acknowledged_at = NULL").Set("acknowledged_by = NULL").Set("snoozed_until = NULL").
			Where("id = ? AND status = ? AND snoozed_until = ?", alert.ID, db.AlertAcknowledged, args.Until).Exec(ctx)
		if err != nil {
			return fmt.Errorf("end snooze of alert %d: %w", alert.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		timeline := &timelineWriter{tx: tx, alertID: alert.ID, at: now}
		if err := timeline.add(ctx, db.LogSnoozeEnded, "Snooze ended and the alert is open again; paging restarts from step 1"); err != nil {
			return err
		}
		if err := s.alertChanged(ctx, tx, string(db.LogSnoozeEnded), alert.ID, eventIntegration(alert), now); err != nil {
			return err
		}
		// The members snoozed with it open again too; the first alert
		// pages for them, as before.
		if err := s.actOnMembers(ctx, tx, alert, []db.AlertStatus{db.AlertAcknowledged}, func(m *db.Alert) *db.AlertLog {
			if m.SnoozedUntil == nil || !m.SnoozedUntil.Equal(args.Until) {
				return nil
			}
			m.Status, m.AcknowledgedAt, m.AcknowledgedBy, m.SnoozedUntil = db.AlertOpen, nil, nil, nil
			return &db.AlertLog{At: now, Type: db.LogSnoozeEnded, Message: fmt.Sprintf("Snooze ended with the group's first alert #%d; it pages for the group", alert.ID)}
		}); err != nil {
			return err
		}
		return s.restartPaging(ctx, tx, alert, job.ID, now)
	})
}

// restartPaging queues the first step of a new paging of an alert that
// opened again; cycle tells its jobs apart from earlier pagings'. An alert
// with neither a policy nor anyone to page is left quiet, as when it
// opened.
func (s *Service) restartPaging(ctx context.Context, tx bun.Tx, alert *db.Alert, cycle int, now time.Time) error {
	if alert.EscalationPolicyID == nil {
		users, err := s.recipientUsers(ctx, tx, alert)
		if err != nil {
			return err
		}
		if len(users) == 0 {
			return nil
		}
	}
	first := escalateArgs{Cycle: cycle}
	return enqueue(ctx, tx, jobEscalate, alert.ID, now, escalateKey(alert.ID, first), first, now)
}

// Escalate runs the open alert's next escalation step now instead of
// when its delay ends: the pending step is taken off the queue and queued
// again due at once. After the policy's last step the next is the first
// step of the next round, if the policy repeats; once the policy has
// finished there is nothing to escalate to.
func (s *Service) Escalate(ctx context.Context, alertID, userID int) (*db.Alert, error) {
	for range 5 {
		var alert *db.Alert
		raced := false
		err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var err error
			if alert, err = alertByID(ctx, tx, alertID); err != nil {
				return err
			}
			if alert.Status != db.AlertOpen {
				return invalid.New("id", fmt.Sprintf("alert %d is %s; only an open alert escalates", alert.ID, strings.ToLower(string(alert.Status))))
			}
			pending := new(db.AlertJob)
			err = tx.NewSelect().Model(pending).Where("alert_id = ? AND kind = ?", alert.ID, jobEscalate).Order("run_at", "id").Limit(1).Scan(ctx)
			if errors.Is(db.Classify(err), db.ErrNotFound) {
				return invalid.New("id", fmt.Sprintf("alert %d has no next escalation step: its policy has finished", alert.ID))
			}
			if err != nil {
				return fmt.Errorf("find next step of alert %d: %w", alert.ID, err)
			}
			var args escalateArgs
			if err := json.Unmarshal([]byte(pending.Args), &args); err != nil {
				return fmt.Errorf("decode escalate job %d: %w", pending.ID, err)
			}
			// Should the step be running right now, taking its job away
			// makes that run roll back; the step runs once, from here.
			// Should it have just finished, nothing is taken and the
			// next step is looked up again.
			res, err := tx.NewDelete().Model((*db.AlertJob)(nil)).Where("id = ?", pending.ID).Exec(ctx)
			if err != nil {
				return fmt.Errorf("take next step of alert %d: %w", alert.ID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				raced = true
				return errRaced
			}
			now := s.clock()
			if err := enqueue(ctx, tx, jobEscalate, alert.ID, now, escalateKey(alert.ID, args), args, now); err != nil {
				return err
			}
			who, err := userLabel(ctx, tx, userID)
			if err != nil {
				return err
			}
			entry := &db.AlertLog{AlertID: alert.ID, At: now, Type: db.LogEscalated, UserID: &userID,
				Message: fmt.Sprintf("Escalated by %s: step %d (round %d) runs now", who, args.Step+1, args.Round+1)}
			if _, err := tx.NewInsert().Model(entry).Exec(ctx); err != nil {
				return fmt.Errorf("store timeline entry: %w", err)
			}
			return s.alertChanged(ctx, tx, string(db.LogEscalated), alert.ID, eventIntegration(alert), now)
		})
		if raced {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.bus.Kick()
		return alert, nil
	}
	return nil, fmt.Errorf("escalate alert %d: its paging kept changing underneath", alertID)
}

// AddNote writes a note by userID on the alert's timeline. Notes may be
// added to closed alerts too: what was learned often comes after.
func (s *Service) AddNote(ctx context.Context, alertID, userID int, text string) (*db.Alert, error) {
	text = strings.TrimSpace(text)
	if n := utf8.RuneCountInString(text); n == 0 || n > MaxNoteLength {
		return nil, invalid.Fieldf("text", "must be 1 to %d characters", MaxNoteLength)
	}
	var alert *db.Alert
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if alert, err = alertByID(ctx, tx, alertID); err != nil {
			return err
		}
		now := s.clock()
		entry := &db.AlertLog{AlertID: alert.ID, At: now, Type: db.LogNote, Message: text, UserID: &userID}
		if _, err := tx.NewInsert().Model(entry).Exec(ctx); err != nil {
			return fmt.Errorf("store note on alert %d: %w", alert.ID, err)
		}
		return s.alertChanged(ctx, tx, eventType(db.LogNote), alert.ID, eventIntegration(alert), now)
	})
	if err != nil {
		return nil, err
	}
	s.bus.Kick()
	return alert, nil
}

// ManualAlertInput is an alert opened by hand. It pages through the
// policy, whose RECIPIENTS targets mean the users and groups given here;
// without a policy, those users and groups are paged at once.
type ManualAlertInput struct {
	Subject            string
	Details            string
	Severity           string
	EscalationPolicyID *int
	UserIDs            []int
	GroupIDs           []int
}

// CreateAlert opens an alert by hand for userID (a "manual page"). It has
// no integration: its source is the person who opened it.
func (s *Service) CreateAlert(ctx context.Context, in ManualAlertInput, userID int) (*db.Alert, error) {
	subject := strings.TrimSpace(in.Subject)
	if n := utf8.RuneCountInString(subject); n == 0 || n > maxSubjectRunes {
		return nil, invalid.Fieldf("subject", "must be 1 to %d characters", maxSubjectRunes)
	}
	if len(in.Details) > maxDetailsBytes {
		return nil, invalid.Fieldf("details", "must be at most %d bytes", maxDetailsBytes)
	}
	severity := strings.ToLower(strings.TrimSpace(in.Severity))
	if !slices.Contains(ManualSeverities, severity) {
		return nil, invalid.Fieldf("severity", "must be one of %s", strings.Join(ManualSeverities, ", "))
	}
	if in.EscalationPolicyID == nil && len(in.UserIDs) == 0 && len(in.GroupIDs) == 0 {
		return nil, invalid.New("escalationPolicyId", "give an escalation policy or at least one user or group to page")
	}
	sourceID, err := manualSourceID()
	if err != nil {
		return nil, err
	}
	alert := new(db.Alert)
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if in.EscalationPolicyID != nil {
			if err := db.RequireRows(ctx, tx, (*db.EscalationPolicy)(nil), "escalationPolicyId", "escalation policy", []int{*in.EscalationPolicyID}); err != nil {
				return err
			}
		}
		if err := db.RequireRows(ctx, tx, (*db.User)(nil), "userIds[]", "user", in.UserIDs); err != nil {
			return err
		}
		if err := db.RequireRows(ctx, tx, (*db.Group)(nil), "groupIds[]", "group", in.GroupIDs); err != nil {
			return err
		}
		who, err := userLabel(ctx, tx, userID)
		if err != nil {
			return err
		}
		now := s.clock()
		*alert = db.Alert{
			SourceID: sourceID, SourceName: who, Subject: subject, Severity: severity, Details: in.Details,
			Status: db.AlertOpen, OpenedAt: now, LastSeenAt: now, EscalationPolicyID: in.EscalationPolicyID, CreatedBy: &userID,
		}
		if _, err := tx.NewInsert().Model(alert).Exec(ctx); err != nil {
			return fmt.Errorf("store manual alert: %w", err)
		}
		entry := &db.AlertLog{AlertID: alert.ID, At: now, Type: db.LogOpened, UserID: &userID, Message: "Opened by hand by " + who}
		if _, err := tx.NewInsert().Model(entry).Exec(ctx); err != nil {
			return fmt.Errorf("store timeline entry: %w", err)
		}
		if err := s.alertChanged(ctx, tx, string(db.LogOpened), alert.ID, eventIntegration(alert), now); err != nil {
			return err
		}
		route := rules.Route{RecipientUserIDs: in.UserIDs, RecipientGroupIDs: in.GroupIDs}
		_, err = s.startPaging(ctx, tx, nil, in.EscalationPolicyID, route, alert.ID, now, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.bus.Kick()
	return alert, nil
}

// manualSourceID names a manual alert uniquely: with no integration and
// no sender, there is nothing to deduplicate it against.
func manualSourceID() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make source id: %w", err)
	}
	return manualSourceName + ":" + hex.EncodeToString(b), nil
}

// userLabel is how a user is named on a timeline: by name, else email.
func userLabel(ctx context.Context, idb bun.IDB, userID int) (string, error) {
	u := new(db.User)
	if err := idb.NewSelect().Model(u).Column("name", "email").Where("id = ?", userID).Scan(ctx); err != nil {
		return "", fmt.Errorf("load user %d: %w", userID, db.Classify(err))
	}
	if u.Name != "" {
		return u.Name, nil
	}
	return u.Email, nil
}
