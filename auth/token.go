package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
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
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	ring KeyRing
	// load, when set, rereads the ring, so that a key rotated by another
	// instance or by "klaxon keys rotate" is taken up within reloadEvery.
	load     func(context.Context) (KeyRing, error)
	loadedAt time.Time
}

// KeyRing is the key tokens are signed with and, during its grace period,
// the one before it: tokens signed with Previous are accepted until
// Retired plus the session lifetime, when the last of them has expired
// anyway.
type KeyRing struct {
	Current  []byte
	Previous []byte
	Retired  time.Time
}

// reloadEvery bounds how long an instance keeps signing with a key
// another instance has rotated out.
const reloadEvery = time.Minute

// NewTokens signs with key; tokens live for ttl; now is the clock.
func NewTokens(key []byte, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	if len(key) < minSecretLen {
		return nil, fmt.Errorf("jwt signing key: need at least %d bytes, got %d", minSecretLen, len(key))
	}
	return &Tokens{ring: KeyRing{Current: key}, ttl: ttl, now: now}, nil
}

// NewRotatingTokens keeps its keys in step with load, which it calls now
// and then at most every reloadEvery.
func NewRotatingTokens(ctx context.Context, load func(context.Context) (KeyRing, error), ttl time.Duration, now func() time.Time) (*Tokens, error) {
	ring, err := load(ctx)
	if err != nil {
		return nil, err
	}
	t, err := NewTokens(ring.Current, ttl, now)
	if err != nil {
		return nil, err
	}
	t.ring, t.load, t.loadedAt = ring, load, now()
	return t, nil
}

// keys returns the ring, rereading it when it is due. One caller rereads
// while the others go on with the keys in hand, so a slow database never
// holds up token checks; a failed reread keeps those keys too.
func (t *Tokens) keys() KeyRing {
	now := t.now()
	t.mu.Lock()
	ring := t.ring
	due := t.load != nil && now.Sub(t.loadedAt) >= reloadEvery
	if due {
		t.loadedAt = now
	}
	t.mu.Unlock()
	if !due {
		return ring
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	loaded, err := t.load(ctx)
	if err != nil || len(loaded.Current) < minSecretLen {
		return ring
	}
	t.mu.Lock()
	t.ring = loaded
	t.mu.Unlock()
	return loaded
}

// keyID names a key in a token's header without revealing it.
func keyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:6])
}

// sessionClaims are the registered claims plus the user's token version
// at sign-in and their session nonce. The subject alone names an id, and
// an id names a user only while that user exists; the nonce names the
// user.
type sessionClaims struct {
	jwt.RegisteredClaims
	Version int    `json:"ver"`
	Nonce   string `json:"nonce"`
}

// Issue returns a signed token for u and when it expires.
func (t *Tokens) Issue(u *db.User) (string, time.Time, error) {
	now := t.now()
	exp := now.Add(t.ttl)
	claims := sessionClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   strconv.Itoa(u.ID),
			Audience:  jwt.ClaimStrings{audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Version: u.TokenVersion,
		Nonce:   u.SessionNonce,
	}
	key := t.keys().Current
	token := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	token.Header["kid"] = keyID(key)
	signed, err := token.SignedString(key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return signed, exp, nil
}

// Verify checks the signature, algorithm, issuer, audience and expiry, and
// returns the user id the token was issued to.
func (t *Tokens) Verify(token string) (int, error) {
	c, err := t.verify(token)
	if err != nil {
		return 0, err
	}
	return c.userID, nil
}

type verified struct {
	userID  int
	version int
	nonce   string
	expires time.Time
}

func (t *Tokens) verify(token string) (verified, error) {
	var claims sessionClaims
	_, err := jwt.ParseWithClaims(token, &claims, t.verificationKey,
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(t.now),
	)
	if err != nil {
		return verified{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	id, err := strconv.Atoi(claims.Subject)
	if err != nil {
		return verified{}, fmt.Errorf("%w: bad subject", ErrUnauthenticated)
	}
	return verified{userID: id, version: claims.Version, nonce: claims.Nonce, expires: claims.ExpiresAt.Time}, nil
}

// verificationKey picks the key a token names. Tokens from before key
// ids were written name none and are checked with the current key.
func (t *Tokens) verificationKey(token *jwt.Token) (any, error) {
	ring := t.keys()
	kid, _ := token.Header["kid"].(string)
	switch {
	case kid == "" || kid == keyID(ring.Current):
		return ring.Current, nil
	case ring.Previous != nil && kid == keyID(ring.Previous):
		if !t.now().Before(ring.Retired.Add(t.ttl)) {
			return nil, errors.New("signed with a retired key")
		}
		return ring.Previous, nil
	}
	return nil, errors.New("signed with an unknown key")
}

// SigningKey returns the key stored in the database, generating and
// storing one the first time.
func SigningKey(ctx context.Context, d *db.DB, now time.Time) ([]byte, error) {
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
