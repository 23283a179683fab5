package alerting

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// ActionLinkTTL is how long a notification's action links work: long
// enough for a page to be read, short enough that an old message found
// in a mailbox cannot silence a new incident.
const ActionLinkTTL = 24 * time.Hour

var (
	// ErrActionLinkUnknown is a token that was never issued.
	ErrActionLinkUnknown = errors.New("this link is not valid")
	// ErrActionLinkUsed is a link that has already done its job.
	ErrActionLinkUsed = errors.New("this link has already been used")
	// ErrActionLinkExpired is a link past its expiry.
	ErrActionLinkExpired = errors.New("this link has expired")
)

// issueActionLinks stores new single-use links for userID to acknowledge
// and to close alertID, in one statement, and returns their URLs. Each
// token is 256 random bits; only its hash is stored, so a link cannot be
// forged or read back from the database.
func (s *Service) issueActionLinks(ctx context.Context, tx bun.Tx, alertID, userID int, now time.Time) (ackURL, closeURL string, err error) {
	var urls [2]string
	links := make([]*db.ActionLink, 0, 2)
	for i, action := range []db.LinkAction{db.LinkAcknowledge, db.LinkClose} {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return "", "", fmt.Errorf("generate action link: %w", err)
		}
		token := base64.RawURLEncoding.EncodeToString(raw)
		links = append(links, &db.ActionLink{TokenHash: hashToken(token), AlertID: alertID, UserID: userID, Action: action, ExpiresAt: now.Add(ActionLinkTTL), CreatedAt: now})
		urls[i] = s.publicURL + "/actions/" + token
	}
	if _, err := tx.NewInsert().Model(&links).Exec(ctx); err != nil {
		return "", "", fmt.Errorf("store action links: %w", err)
	}
	return urls[0], urls[1], nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ActionLink returns the link for token without using it, so a page can
// say what it will do; it fails like UseActionLink would, including with
// ErrRoleCannotAct when the person it was sent to may not act now.
func (s *Service) ActionLink(ctx context.Context, token string) (*db.ActionLink, *db.Alert, error) {
	link := new(db.ActionLink)
	if err := s.db.NewSelect().Model(link).Where("token_hash = ?", hashToken(token)).Scan(ctx); err != nil {
		if errors.Is(db.Classify(err), db.ErrNotFound) {
			return nil, nil, ErrActionLinkUnknown
		}
		return nil, nil, fmt.Errorf("load action link: %w", err)
	}
	switch {
	case link.UsedAt != nil:
		return link, nil, ErrActionLinkUsed
	case !s.clock().Before(link.ExpiresAt):
		return link, nil, ErrActionLinkExpired
	}
	if _, err := loadActorOn(ctx, s.db, link.UserID, link.AlertID); err != nil {
		return link, nil, err
	}
	alert, err := s.Alert(ctx, link.AlertID)
	if err != nil {
		return nil, nil, err
	}
	return link, alert, nil
}

// UseActionLink acknowledges or closes the link's alert as the person it
// was sent to, if their role allows it at this moment (ErrRoleCannotAct
// otherwise). Using the link and changing the alert commit together: a
// link that is used, expired or refused (an acknowledge on a closed
// alert, a role too low) changes nothing and stays unused.
func (s *Service) UseActionLink(ctx context.Context, token string) (*db.Alert, db.LinkAction, error) {
	link, _, err := s.ActionLink(ctx, token)
	if err != nil {
		return nil, "", err
	}
	act := s.acknowledgeBy(link.UserID)
	if link.Action == db.LinkClose {
		act = s.closeBy(link.UserID)
	}
	alert, err := s.change(ctx, link.AlertID, func(ctx context.Context, tx bun.Tx, a *db.Alert) (*db.AlertLog, error) {
		// Checked in the transaction that acts, so a demotion committed
		// before it is always seen.
		if _, err := loadActorOn(ctx, tx, link.UserID, link.AlertID); err != nil {
			return nil, err
		}
		now := s.clock()
		res, err := tx.NewUpdate().Model((*db.ActionLink)(nil)).Set("used_at = ?", now).
			Where("token_hash = ? AND used_at IS NULL AND expires_at > ?", link.TokenHash, now).Exec(ctx)
		if err != nil {
			return nil, fmt.Errorf("use action link: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil, ErrActionLinkUsed // used (or expired) by a concurrent click
		}
		entry, err := act(ctx, tx, a)
		if entry != nil {
			entry.Message += " from a notification link"
		}
		return entry, err
	})
	if err != nil {
		return nil, "", err
	}
	return alert, link.Action, nil
}
