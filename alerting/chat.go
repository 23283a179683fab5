package alerting

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// ChatAction is what a button on a chat message asks for.
type ChatAction string

// The buttons a page in Slack or Mattermost carries.
const (
	ChatAcknowledge ChatAction = "acknowledge"
	ChatClose       ChatAction = "close"
	ChatEscalate    ChatAction = "escalate"
)

// Valid reports whether a is one of the buttons Klaxon offers.
func (a ChatAction) Valid() bool {
	return a == ChatAcknowledge || a == ChatClose || a == ChatEscalate
}

// ErrChatUserUnknown is a chat user whose email address is no Klaxon
// user's.
var ErrChatUserUnknown = errors.New("no Klaxon user has this email address")

// ChatActorByEmail finds the Klaxon user a chat account speaks for, by
// the email address the chat service verified. Whether they may act is
// asked of the alert the button is on (ActFromChat), since a team role
// counts only for its own team's alerts.
func (s *Service) ChatActorByEmail(ctx context.Context, email string) (*db.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return nil, ErrChatUserUnknown
	}
	u := new(db.User)
	err := s.db.NewSelect().Model(u).Where("email = ?", email).Scan(ctx)
	if errors.Is(db.Classify(err), db.ErrNotFound) {
		return nil, ErrChatUserUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("find the user of a chat account: %w", err)
	}
	return u, nil
}

// ActFromChat acknowledges, closes or escalates alertID as userID, who
// pressed a button in via ("Slack", "Mattermost"). The role is checked
// again in the transaction that acts, as for action links, so a
// demotion committed before the click is always seen.
func (s *Service) ActFromChat(ctx context.Context, alertID, userID int, action ChatAction, via string) (*db.Alert, error) {
	var act alertMutation
	switch action {
	case ChatAcknowledge:
		act = s.acknowledgeBy(userID)
	case ChatClose:
		act = s.closeBy(userID)
	case ChatEscalate:
		// Escalate runs its own transaction; the check just before it is
		// the same one SMS replies make.
		if _, err := loadActorOn(ctx, s.db, userID, alertID); err != nil {
			return nil, err
		}
		return s.Escalate(ctx, alertID, userID)
	default:
		return nil, fmt.Errorf("unknown chat action %q", action)
	}
	return s.change(ctx, alertID, func(ctx context.Context, tx bun.Tx, a *db.Alert) (*db.AlertLog, error) {
		if _, err := loadActorOn(ctx, tx, userID, alertID); err != nil {
			return nil, err
		}
		entry, err := act(ctx, tx, a)
		if entry != nil {
			entry.Message += " from " + via
		}
		return entry, err
	})
}

// UserLabel is how userID is named on a timeline and in chat: by name,
// else email.
func (s *Service) UserLabel(ctx context.Context, userID int) (string, error) {
	return userLabel(ctx, s.db, userID)
}
