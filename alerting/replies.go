package alerting

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/klaxonhq/klaxon/db"
)

// ReplyToSMS acts on a text message sent back to Klaxon's number: "ack" or
// "close", optionally followed by an alert number ("ack 42"); without a
// number it means the alert this person was paged about last. It returns
// the answer to text back. Only a number that is one of a RESPONDER's
// (or ADMIN's) SMS contact methods may act.
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

	user := new(db.User)
	err := s.db.NewSelect().Model(user).
		Where("id = (SELECT user_id FROM contact_methods WHERE type = ? AND value = ? AND NOT disabled ORDER BY id LIMIT 1)", db.ContactSMS, from).
		Scan(ctx)
	if errors.Is(db.Classify(err), db.ErrNotFound) {
		return "This number is not a Klaxon contact method.", nil
	}
	if err != nil {
		return "", fmt.Errorf("find the sender of a reply: %w", err)
	}
	if !user.Role.Includes(db.RoleResponder) {
		return "Your role does not allow acting on alerts.", nil
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
	alert, err := act(ctx, alertID, user.ID)
	var invalid *db.FieldError
	switch {
	case errors.Is(db.Classify(err), db.ErrNotFound):
		return fmt.Sprintf("There is no alert #%d.", alertID), nil
	case errors.As(err, &invalid):
		return fmt.Sprintf("Nothing changed: %s.", invalid.Reason), nil
	case err != nil:
		return "", err
	}
	return fmt.Sprintf("%s #%d: %s", done, alert.Number(), alert.Subject), nil
}

const smsHelp = `Reply "ack" or "close", optionally with the alert number: "ack 42".`

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
