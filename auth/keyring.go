package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// jwtPreviousSecretName holds the key rotated out last, its created_at
// being when it was retired.
const jwtPreviousSecretName = "jwt_signing_key_previous"

// KeyRingLoader returns the loader of the signing keys: configured ones
// when a key is configured (previous, if given, counts as retired when the
// server started), else the ones stored in the database.
func KeyRingLoader(d *db.DB, configured, configuredPrevious string, started time.Time) func(context.Context) (KeyRing, error) {
	if configured != "" {
		return func(context.Context) (KeyRing, error) {
			if len(configured) < minSecretLen || (configuredPrevious != "" && len(configuredPrevious) < minSecretLen) {
				return KeyRing{}, fmt.Errorf("jwt signing keys: need at least %d characters each", minSecretLen)
			}
			ring := KeyRing{Current: []byte(configured), Retired: started}
			if configuredPrevious != "" {
				ring.Previous = []byte(configuredPrevious)
			}
			return ring, nil
		}
	}
	return func(ctx context.Context) (KeyRing, error) {
		current, err := SigningKey(ctx, d, started)
		if err != nil {
			return KeyRing{}, err
		}
		ring := KeyRing{Current: current}
		var prev db.Secret
		err = d.NewSelect().Model(&prev).Where("name = ?", jwtPreviousSecretName).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return ring, nil
		}
		if err != nil {
			return KeyRing{}, fmt.Errorf("load previous jwt key: %w", err)
		}
		if ring.Previous, err = base64.RawStdEncoding.DecodeString(prev.Value); err != nil {
			return KeyRing{}, errors.New("load previous jwt key: stored key is not base64")
		}
		ring.Retired = prev.CreatedAt
		return ring, nil
	}
}

// RotateSigningKey replaces the stored signing key with a new one. The old
// key stays valid for the tokens it signed until they expire; the key
// before it is forgotten, ending any token it signed.
func RotateSigningKey(ctx context.Context, d *db.DB, now time.Time) error {
	if _, err := SigningKey(ctx, d, now); err != nil {
		return err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return fmt.Errorf("generate jwt key: %w", err)
	}
	return d.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var current db.Secret
		q := tx.NewSelect().Model(&current).Where("name = ?", jwtSecretName)
		if d.Kind == db.Postgres {
			q = q.For("UPDATE")
		}
		if err := q.Scan(ctx); err != nil {
			return fmt.Errorf("rotate jwt key: %w", err)
		}
		retired := &db.Secret{Name: jwtPreviousSecretName, Value: current.Value, CreatedAt: now}
		if _, err := tx.NewInsert().Model(retired).On("CONFLICT (name) DO UPDATE").
			Set("value = EXCLUDED.value").Set("created_at = EXCLUDED.created_at").Exec(ctx); err != nil {
			return fmt.Errorf("rotate jwt key: keep the old key: %w", err)
		}
		if _, err := tx.NewUpdate().Model((*db.Secret)(nil)).
			Set("value = ?", base64.RawStdEncoding.EncodeToString(raw)).Set("created_at = ?", now).
			Where("name = ?", jwtSecretName).Exec(ctx); err != nil {
			return fmt.Errorf("rotate jwt key: store the new key: %w", err)
		}
		return nil
	})
}
