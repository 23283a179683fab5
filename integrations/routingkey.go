package integrations

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/klaxonhq/klaxon/db"
)

// newRoutingKey is 128 random bits in PagerDuty's integration key shape,
// 32 lowercase hex characters: some senders check the shape.
func newRoutingKey() (string, error) {
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate integration routing key: %w", err)
	}
	return hex.EncodeToString(raw), nil
}

// IntegrationByRoutingKey returns the integration whose key is key, or
// db.ErrNotFound when none has it.
func (s *Store) IntegrationByRoutingKey(ctx context.Context, key string) (*db.Integration, error) {
	if key == "" {
		// The empty key is no key: a row without one must not match.
		return nil, db.ErrNotFound
	}
	integ := new(db.Integration)
	err := s.db.NewSelect().Model(integ).Where("routing_key = ?", key).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, db.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("look up integration routing key: %w", err)
	}
	return integ, nil
}
