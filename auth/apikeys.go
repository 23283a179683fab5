package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/klaxonhq/klaxon/invalid"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
)

const (
	// apiKeyPrefix marks a bearer token as an API key rather than a
	// session token, and lets secret scanners recognise a leaked one.
	apiKeyPrefix = "klx_"
	// DefaultAPIKeyLifetime applies when a key is created without an
	// expiry; no key lives longer than maxAPIKeyLifetime.
	DefaultAPIKeyLifetime = 90 * 24 * time.Hour
	maxAPIKeyLifetime     = 2 * 366 * 24 * time.Hour
	// lastUsedEvery bounds the writes that recording a key's use costs: a
	// busy client would otherwise write on every request.
	lastUsedEvery = time.Minute
)

// APIKeyInput is what createApiKey takes.
type APIKeyInput struct {
	Name      string
	Role      db.Role
	ExpiresAt *time.Time
}

// CreateAPIKey makes a key for owner with at most owner's own role, and
// returns it with the key itself, which is never shown again.
func (s *Service) CreateAPIKey(ctx context.Context, owner *db.User, in APIKeyInput) (*db.APIKey, string, error) {
	name, err := invalid.Name("name", in.Name)
	if err != nil {
		return nil, "", err
	}
	if !in.Role.Valid() {
		return nil, "", invalid.New("role", "unknown role")
	}
	if !owner.Role.Includes(in.Role) {
		return nil, "", invalid.New("role", "a key cannot have more rights than its owner")
	}
	now := s.now()
	expires := now.Add(DefaultAPIKeyLifetime)
	if in.ExpiresAt != nil {
		expires = in.ExpiresAt.UTC().Truncate(time.Microsecond)
		if !expires.After(now) {
			return nil, "", invalid.New("expiresAt", "must be in the future")
		}
		if expires.Sub(now) > maxAPIKeyLifetime {
			return nil, "", invalid.New("expiresAt", "must be within two years")
		}
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, "", fmt.Errorf("generate api key: %w", err)
	}
	secret := apiKeyPrefix + base64.RawURLEncoding.EncodeToString(raw)
	key := &db.APIKey{
		Name: name, UserID: owner.ID, Role: in.Role, KeyHash: hashSecret(secret),
		Prefix: secret[:len(apiKeyPrefix)+6], CreatedAt: now, ExpiresAt: expires,
	}
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(key).Exec(ctx); err != nil {
			return fmt.Errorf("create api key: %w", err)
		}
		return audit.Record(ctx, tx, now, audit.APIKey, key.ID, audit.Created, nil, recordOfAPIKey(key))
	})
	if err != nil {
		return nil, "", err
	}
	return key, secret, nil
}

// APIKeys lists the keys of one user, or of everyone when userID is nil.
func (s *Service) APIKeys(ctx context.Context, userID *int) ([]*db.APIKey, error) {
	var keys []*db.APIKey
	q := s.db.NewSelect().Model(&keys).Order("id")
	if userID != nil {
		q = q.Where("user_id = ?", *userID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return keys, nil
}

// APIKey loads one key.
func (s *Service) APIKey(ctx context.Context, id int) (*db.APIKey, error) {
	return db.LoadByID[db.APIKey](ctx, s.db, id, "api key")
}

// RevokeAPIKey deletes a key; requests with it fail from then on.
func (s *Service) RevokeAPIKey(ctx context.Context, id int) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		key, err := db.LoadByID[db.APIKey](ctx, tx, id, "api key")
		if err != nil {
			return err
		}
		if err := db.DeleteByID[db.APIKey](ctx, tx, id, "api key"); err != nil {
			return err
		}
		return audit.Record(ctx, tx, s.now(), audit.APIKey, id, audit.Deleted, recordOfAPIKey(key), nil)
	})
}

// authenticateAPIKey finds the key's owner and gives them, for this
// request, the lesser of their role and the key's: a key never outranks
// its owner, even one demoted after the key was made.
func (s *Service) authenticateAPIKey(ctx context.Context, secret string) (*db.User, time.Time, error) {
	key := new(db.APIKey)
	err := s.db.NewSelect().Model(key).Where("key_hash = ?", hashSecret(secret)).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, fmt.Errorf("%w: unknown or revoked api key", ErrUnauthenticated)
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("look up api key: %w", err)
	}
	now := s.now()
	if !now.Before(key.ExpiresAt) {
		return nil, time.Time{}, fmt.Errorf("%w: api key expired", ErrUnauthenticated)
	}
	u, err := s.User(ctx, key.UserID)
	if err != nil {
		return nil, time.Time{}, err
	}
	if !key.Role.Includes(u.Role) {
		u.Role = key.Role
		u.TeamRoleCap = teamRoleCap(key.Role)
	}
	if key.LastUsedAt == nil || now.Sub(*key.LastUsedAt) >= lastUsedEvery {
		if _, err := s.db.NewUpdate().Model(key).Set("last_used_at = ?", now).WherePK().Exec(ctx); err != nil {
			return nil, time.Time{}, fmt.Errorf("record use of api key %d: %w", key.ID, err)
		}
	}
	return u, key.ExpiresAt, nil
}

// RequireOwnersRole refuses a call made with an API key whose role is
// below its owner's, for what acts on the owner's own access: signing
// the owner out everywhere, revoking the owner's other keys. A read-only
// key that leaks must not be able to lock its owner out, nor clear away
// the keys the owner would use to respond. Calls made with a session, or
// with a key of the owner's full role, pass.
func (s *Service) RequireOwnersRole(ctx context.Context) error {
	caller := UserFrom(ctx)
	if caller == nil {
		return ErrUnauthenticated
	}
	if !CalledWithAPIKey(ctx) {
		return nil
	}
	owner, err := s.User(ctx, caller.ID)
	if err != nil {
		return fmt.Errorf("load key owner: %w", err)
	}
	// The caller's role is already the lesser of the key's and the
	// owner's, so it falls short of the owner's only for a lower key.
	if !caller.Role.Includes(owner.Role) {
		return ErrForbidden
	}
	return nil
}

// hashSecret is SHA-256 without salt or stretching, for API keys and
// login codes: each is 256 random bits, so unlike a password it cannot be
// guessed from its hash, and the hash can be looked up directly.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// teamRoleCap is the team role a restricted key of role may use at most:
// its role caps the owner's team roles as it caps their global role, so a
// RESPONDER key acts but configures nothing, and a VIEWER or MEMBER key of
// a team's manager only reads.
func teamRoleCap(role db.Role) db.TeamRole {
	if role == db.RoleResponder {
		return db.TeamResponder
	}
	return db.TeamObserver
}
