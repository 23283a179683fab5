package alerting

import (
	"context"
	"errors"
	"fmt"
	"github.com/klaxonhq/klaxon/invalid"
	"strconv"
	"strings"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// ReplyToSMS acts on a text message sent back to Klaxon's number: "ack" or
// "close", optionally followed by an alert number ("ack 42"); without a
// number it means the alert this person was paged about last. It returns
// the answer to text back. Only a number that is one of a RESPONDER's
// (or ADMIN's) verified SMS contact methods may act.
func (s *Service) ReplyToSMS(ctx context.Context, from, body string) (string, error) {
	fields := strings.Fields(strings.ToLower(body))
	if len(fields) == 0 || len(fields) > 2 {
		return smsHelp, nil
	}
	var act func(ctx context.Context, alertID, userID int) (*db.Alert, error)
	var done string
	switch fields[0] {
	case "ack", "acknowledge", "a":
		act, done = s.Acknowledge, "Acknowledged"
	case "close", "resolve", "c":
		act, done = s.Close, "Closed"
	default:
		return smsHelp, nil
	}

	// Only a verified number speaks for its owner: anyone may add any
	// number to their own profile, but only the phone's holder can verify
	// it, and the database lets one user at a time do that.
	// Whether they may act is asked once the alert is known: a team role
	// counts only for its own team's alerts.
	var user *db.User
	ownerID, err := s.config.Contacts.VerifiedOwner(ctx, db.ContactSMS, from)
	if err == nil {
		user, err = loadUser(ctx, s.db, ownerID)
	}
	switch {
	case errors.Is(db.Classify(err), db.ErrNotFound):
		return "This number is not a Klaxon contact method (or has not been verified).", nil
	case err != nil:
		return "", fmt.Errorf("find the sender of a reply: %w", err)
	}

	var alertID int
	if len(fields) == 2 {
		n, err := strconv.Atoi(strings.TrimPrefix(fields[1], "#"))
		if err != nil || n <= 0 {
			return smsHelp, nil
		}
		alertID = n
	} else {
		err := s.db.NewSelect().Model((*db.Notification)(nil)).Column("notification.alert_id").
			Join("JOIN alerts AS a ON a.id = notification.alert_id").
			Where("notification.user_id = ? AND a.status <> ?", user.ID, db.AlertClosed).
			Order("notification.id DESC").Limit(1).Scan(ctx, &alertID)
		if errors.Is(db.Classify(err), db.ErrNotFound) {
			return `You have no open alert to act on; reply with its number, e.g. "ack 42".`, nil
		}
		if err != nil {
			return "", fmt.Errorf("find the alert a reply is about: %w", err)
		}
	}
	if _, err := loadActorOn(ctx, s.db, user.ID, alertID); errors.Is(err, ErrRoleCannotAct) {
		return "Your role does not allow acting on this alert.", nil
	} else if err != nil {
		return "", fmt.Errorf("check the sender of a reply: %w", err)
	}
	alert, err := act(ctx, alertID, user.ID)
	var bad *invalid.Field
	switch {
	case errors.Is(db.Classify(err), db.ErrNotFound):
		return fmt.Sprintf("There is no alert #%d.", alertID), nil
	case errors.As(err, &bad):
		return fmt.Sprintf("Nothing changed: %s.", bad.Reason), nil
	case err != nil:
		return "", err
	}
	return fmt.Sprintf("%s #%d: %s", done, alert.Number(), alert.Subject), nil
}

const smsHelp = `Reply "ack" or "close", optionally with the alert number: "ack 42".`

// Keys a callee presses during a voice page; the call script offers them.
const (
	callKeyAcknowledge = "4"
	callKeyClose       = "6"
	// CallOptions is the spoken list of keys, for prompting again.
	CallOptions = "Press 4 to acknowledge, 6 to close."
)

// ErrCallKeyUnknown is a key press (or none) that means nothing; the
// answer to Twilio may offer CallOptions again.
var ErrCallKeyUnknown = errors.New("that key does nothing")

// AnswerCall acts on the key pressed during a voice page: 4 acknowledges
// and 6 closes the alert the call was about, as the person called. The
// call is found by the SID Twilio gave when it was placed, not by the
// caller's number, so only the call Klaxon made can act, and only on its
// own alert. It returns what to say back; a key that means nothing
// changes nothing and returns ErrCallKeyUnknown.
func (s *Service) AnswerCall(ctx context.Context, callSID, digits string) (string, error) {
	var note db.Notification
	err := s.db.NewSelect().Model(&note).
		Where("provider_id = ? AND provider_id <> '' AND channel = ?", callSID, db.ContactVoice).
		Order("id DESC").Limit(1).Scan(ctx)
	if errors.Is(db.Classify(err), db.ErrNotFound) {
		return "This call cannot be matched to an alert; nothing was changed.", nil
	}
	if err != nil {
		return "", fmt.Errorf("answer call: find its notification: %w", err)
	}
	// A deleted user leaves the notification with no user (ON DELETE SET
	// NULL); their pages must not act for anyone.
	if note.UserID == nil {
		return "The person this call was for is no longer a Klaxon user; nothing was changed.", nil
	}
	// The role is read now, not when the page went out: a demotion since
	// takes effect on calls still ringing.
	user, err := loadActorOn(ctx, s.db, *note.UserID, note.AlertID)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return "The person this call was for is no longer a Klaxon user; nothing was changed.", nil
	case errors.Is(err, ErrRoleCannotAct):
		return "Your role does not allow acting on alerts; nothing was changed.", nil
	case err != nil:
		return "", fmt.Errorf("answer call: %w", err)
	}

	var act alertMutation
	var done string
	switch strings.TrimSpace(digits) {
	case callKeyAcknowledge:
		act, done = s.acknowledgeBy(user.ID), "acknowledged"
	case callKeyClose:
		act, done = s.closeBy(user.ID), "closed"
	default:
		return "", ErrCallKeyUnknown
	}
	alert, err := s.change(ctx, note.AlertID, func(ctx context.Context, tx bun.Tx, a *db.Alert) (*db.AlertLog, error) {
		entry, err := act(ctx, tx, a)
		if entry != nil {
			entry.Message += " from a voice call"
		}
		return entry, err
	})
	var bad *invalid.Field
	switch {
	case errors.Is(db.Classify(err), db.ErrNotFound):
		return "The alert this call was about no longer exists; nothing was changed.", nil
	case errors.As(err, &bad):
		return fmt.Sprintf("Nothing changed: %s.", bad.Reason), nil
	case err != nil:
		return "", fmt.Errorf("answer call: %w", err)
	}
	return fmt.Sprintf("Alert %d %s. Goodbye.", alert.Number(), done), nil
}

// RecordDeliveryStatus applies a provider's report on a message it
// accepted earlier (a Twilio status callback): delivered or failed.
// Intermediate states (queued, sent, ringing) are not recorded.
func (s *Service) RecordDeliveryStatus(ctx context.Context, providerID string, delivered bool, reason string) error {
	status, errText := db.NotificationDelivered, ""
	if !delivered {
		status, errText = db.NotificationFailed, reason
	}
	_, err := s.db.NewUpdate().Model((*db.Notification)(nil)).
		Set("status = ?, error = ?, updated_at = ?", status, errText, s.clock()).
		Where("provider_id = ? AND provider_id <> ''", providerID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("record delivery status of %s: %w", providerID, err)
	}
	return nil
}
