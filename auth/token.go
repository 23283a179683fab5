package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/klaxonhq/klaxon/db"
)

const (
	issuer   = "klaxon"
	audience = "klaxon-api"
	// jwtSecretName is the secrets-table row holding the generated key, so
	// every instance sharing a database signs with the same key.
	jwtSecretName = "jwt_signing_key"
	minSecretLen  = 32
)

// Tokens issues and verifies session tokens.
type Tokens struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewTokens signs with key; tokens live for ttl; now is the clock.
func NewTokens(key []byte, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	if len(key) < minSecretLen {
		return nil, fmt.Errorf("jwt signing key: need at least %d bytes, got %d", minSecretLen, len(key))
	}
	return &Tokens{key: key, ttl: ttl, now: now}, nil
}

// Issue returns a signed token for u and when it expires.
func (t *Tokens) Issue(u *db.User) (string, time.Time, error) {
	now := t.now()
	exp := now.Add(t.ttl)
	claims := jwt.RegisteredClaims{
		Issuer:    issuer,
		Subject:   strconv.Itoa(u.ID),
		Audience:  jwt.ClaimStrings{audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return signed, exp, nil
}

// Verify checks the signature, algorithm, issuer, audience and expiry, and
// returns the user id the token was issued to.
func (t *Tokens) Verify(token string) (int, error) {
	id, _, err := t.VerifyUntil(token)
	return id, err
}

// VerifyUntil is Verify that also says when the token expires.
func (t *Tokens) VerifyUntil(token string) (int, time.Time, error) {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return t.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(t.now),
	)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	id, err := strconv.Atoi(claims.Subject)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%w: bad subject", ErrUnauthenticated)
	}
	return id, claims.ExpiresAt.Time, nil
}

// SigningKey returns configured when it is set, and otherwise the key
// stored in the database, generating and storing one the first time.
func SigningKey(ctx context.Context, d *db.DB, configured string, now time.Time) ([]byte, error) {
	if configured != "" {
		if len(configured) < minSecretLen {
			return nil, fmt.Errorf("KLAXON_JWT_SECRET: need at least %d characters", minSecretLen)
		}
		return []byte(configured), nil
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("generate jwt key: %w", err)
	}
	// Insert-if-absent then read back: instances starting together agree on
	// whichever key was stored first.
	candidate := &db.Secret{Name: jwtSecretName, Value: base64.RawStdEncoding.EncodeToString(raw), CreatedAt: now}
	if _, err := d.NewInsert().Model(candidate).On("CONFLICT (name) DO NOTHING").Exec(ctx); err != nil {
		return nil, fmt.Errorf("store jwt key: %w", err)
	}
	var stored db.Secret
	if err := d.NewSelect().Model(&stored).Where("name = ?", jwtSecretName).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load jwt key: %w", err)
	}
	key, err := base64.RawStdEncoding.DecodeString(stored.Value)
	if err != nil {
		return nil, errors.New("load jwt key: stored key is not base64")
	}
	return key, nil
}
