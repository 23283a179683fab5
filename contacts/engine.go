package contacts

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// The escalation engine reads contact methods and notification rules
// inside its own transactions; these take the transaction as idb.

// LockContactMethod holds the method's row until idb's transaction ends,
// so jobs for one method take turns; a missing method is not an error.
// Only PostgreSQL has row locks: on SQLite the transaction already
// excludes every other writer.
func (s *Store) LockContactMethod(ctx context.Context, idb bun.IDB, id int) error {
	if s.db.Kind != db.Postgres {
		return nil
	}
	var found int
	err := idb.NewSelect().Model((*db.ContactMethod)(nil)).Column("id").Where("id = ?", id).For("UPDATE").Scan(ctx, &found)
	if err != nil && !errors.Is(db.Classify(err), db.ErrNotFound) {
		return fmt.Errorf("lock contact method %d: %w", id, err)
	}
	return nil
}

// RulesToQueue returns the user's notification rules on enabled contact
// methods, by delay, then age.
func (s *Store) RulesToQueue(ctx context.Context, idb bun.IDB, userID int) ([]db.RuleToQueue, error) {
	var rules []db.RuleToQueue
	err := idb.NewRaw(`SELECT r.contact_method_id, r.delay_minutes, c.type, u.email
		FROM notification_rules r
		JOIN contact_methods c ON c.id = r.contact_method_id
		JOIN users u ON u.id = r.user_id
		WHERE r.user_id = ? AND NOT c.disabled
		ORDER BY r.delay_minutes, r.id`, userID).Scan(ctx, &rules)
	if err != nil {
		return nil, fmt.Errorf("notification rules of user %d: %w", userID, err)
	}
	return rules, nil
}

// VerifiedOwner returns the user who verified value as an enabled contact
// method of type t, or db.ErrNotFound. The database holds each verified
// number to one user, so the answer is unique.
func (s *Store) VerifiedOwner(ctx context.Context, t db.ContactType, value string) (int, error) {
	var userID int
	err := s.db.NewSelect().Model((*db.ContactMethod)(nil)).Column("user_id").
		Where("type = ? AND value = ? AND verified AND NOT disabled", t, value).Scan(ctx, &userID)
	if err != nil {
		return 0, fmt.Errorf("find the verified owner of a %s contact method: %w", t, db.Classify(err))
	}
	return userID, nil
}
