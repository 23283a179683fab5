package auth_test

import (
	"context"
	"errors"
	"github.com/klaxonhq/klaxon/invalid"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

func newAuth(t *testing.T, d *db.DB, now func() time.Time) *auth.Service {
	t.Helper()
	key, err := auth.SigningKey(context.Background(), d, now())
	if err != nil {
		t.Fatal(err)
	}
	tokens, _ := auth.NewTokens(key, time.Hour, now)
	svc, err := auth.NewService(d, tokens, now)
	if err != nil {
		t.Fatal(err)
	}
	svc.SetPasswordCost(bcrypt.MinCost)
	return svc
}

func TestSignOutEndsEverySession(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
		svc := newAuth(t, d, now)
		email, password := "ann@example.com", "right-password"
		ann, err := svc.CreateUser(ctx, auth.UserInput{Email: &email, Password: &password})
		if err != nil {
			t.Fatal(err)
		}
		laptop, _ := svc.Login(ctx, email, password)
		phone, _ := svc.Login(ctx, email, password)
		for _, s := range []*auth.Session{laptop, phone} {
			if _, err := svc.Authenticate(ctx, s.Token); err != nil {
				t.Fatalf("fresh session: %v", err)
			}
		}
		if err := svc.SignOut(ctx, ann.ID); err != nil {
			t.Fatal(err)
		}
		for _, s := range []*auth.Session{laptop, phone} {
			if _, err := svc.Authenticate(ctx, s.Token); !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("session after sign-out: %v", err)
			}
		}
		again, err := svc.Login(ctx, email, password)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Authenticate(ctx, again.Token); err != nil {
			t.Fatalf("a new sign-in after signing out: %v", err)
		}
		if err := svc.SignOut(ctx, 999999); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("sign out of nobody: %v", err)
		}
	})
}

func TestAPIKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		svc := newAuth(t, d, func() time.Time { return clock })
		mk := func(email string, role db.Role) *db.User {
			password := "right-password"
			u, err := svc.CreateUser(ctx, auth.UserInput{Email: &email, Password: &password, Role: &role})
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		admin, responder := mk("admin@example.com", db.RoleAdmin), mk("rita@example.com", db.RoleResponder)
		mk("second-admin@example.com", db.RoleAdmin)

		key, secret, err := svc.CreateAPIKey(ctx, responder, auth.APIKeyInput{Name: "CI", Role: db.RoleViewer})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(secret, key.Prefix) || key.KeyHash == "" || strings.Contains(key.KeyHash, secret) || !key.ExpiresAt.Equal(clock.Add(auth.DefaultAPIKeyLifetime)) {
			t.Fatalf("key %+v for secret %q", key, secret)
		}
		var stored int
		if err := d.NewRaw("SELECT count(*) FROM api_keys WHERE key_hash = ? OR prefix = ?", secret, secret).Scan(ctx, &stored); err != nil || stored != 0 {
			t.Fatalf("the key itself is stored: %d, %v", stored, err)
		}
		u, expires, err := svc.AuthenticateUntil(ctx, secret)
		if err != nil || u.ID != responder.ID || u.Role != db.RoleViewer || !expires.Equal(key.ExpiresAt) {
			t.Fatalf("authenticated as %+v until %s: %v; want the owner as VIEWER", u, expires, err)
		}
		if used, _ := svc.APIKey(ctx, key.ID); used.LastUsedAt == nil {
			t.Fatal("use not recorded")
		}

		var fe *invalid.Field
		if _, _, err := svc.CreateAPIKey(ctx, responder, auth.APIKeyInput{Name: "too much", Role: db.RoleAdmin}); !errors.As(err, &fe) || fe.Name != "role" {
			t.Fatalf("a key above its owner's role: %v", err)
		}
		past := clock.Add(-time.Minute)
		if _, _, err := svc.CreateAPIKey(ctx, responder, auth.APIKeyInput{Name: "old", Role: db.RoleViewer, ExpiresAt: &past}); !errors.As(err, &fe) || fe.Name != "expiresAt" {
			t.Fatalf("a key expired at birth: %v", err)
		}

		// An admin's key scoped down stays down; a demoted owner takes
		// the key down with them.
		adminKey, adminSecret, err := svc.CreateAPIKey(ctx, admin, auth.APIKeyInput{Name: "deploy", Role: db.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		demoted := db.RoleResponder
		if _, err := svc.UpdateUser(ctx, admin.ID, auth.UserInput{Role: &demoted}); err != nil {
			t.Fatal(err)
		}
		if u, _, err := svc.AuthenticateUntil(ctx, adminSecret); err != nil || u.Role != db.RoleResponder {
			t.Fatalf("key of a demoted owner: %+v, %v", u, err)
		}

		mine, err := svc.APIKeys(ctx, &responder.ID)
		if err != nil || len(mine) != 1 || mine[0].ID != key.ID {
			t.Fatalf("own keys: %v, %v", mine, err)
		}
		all, err := svc.APIKeys(ctx, nil)
		if err != nil || len(all) != 2 {
			t.Fatalf("all keys: %d, %v", len(all), err)
		}

		if err := svc.RevokeAPIKey(ctx, adminKey.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.AuthenticateUntil(ctx, adminSecret); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("revoked key: %v", err)
		}
		clock = key.ExpiresAt
		if _, _, err := svc.AuthenticateUntil(ctx, secret); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("expired key: %v", err)
		}
		if _, _, err := svc.AuthenticateUntil(ctx, "klx_not-a-key"); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("made-up key: %v", err)
		}
	})
}

// TestSessionEndsWithItsUser: a session token names its user, not only
// an id. A deleted user's token is refused even when another user is
// given the same id, with the same creation time and token version.
func TestSessionEndsWithItsUser(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
		svc := newAuth(t, d, now)
		adminEmail, email, password := "root@example.com", "ann@example.com", "right-password"
		admin := db.RoleAdmin
		if _, err := svc.CreateUser(ctx, auth.UserInput{Email: &adminEmail, Password: &password, Role: &admin}); err != nil {
			t.Fatal(err)
		}
		ann, err := svc.CreateUser(ctx, auth.UserInput{Email: &email, Password: &password})
		if err != nil {
			t.Fatal(err)
		}
		if ann.SessionNonce == "" {
			t.Fatal("a new user has no session nonce")
		}
		session, err := svc.Login(ctx, email, password)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.DeleteUser(ctx, ann.ID); err != nil {
			t.Fatal(err)
		}
		successor := &db.User{ID: ann.ID, Email: "eve@example.com", Role: db.RoleAdmin, TokenVersion: ann.TokenVersion, CreatedAt: ann.CreatedAt, UpdatedAt: ann.UpdatedAt}
		if _, err := d.NewInsert().Model(successor).Exec(ctx); err != nil {
			t.Fatalf("insert a user with the deleted user's id: %v", err)
		}
		if successor.SessionNonce == "" || successor.SessionNonce == ann.SessionNonce {
			t.Fatalf("successor's nonce %q, deleted user's %q: want a new one", successor.SessionNonce, ann.SessionNonce)
		}
		if u, err := svc.Authenticate(ctx, session.Token); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("deleted user's token with their id taken: got user %v, err %v; want refused", u, err)
		}
	})
}

// TestNewPasswordEndsSessions: changing a password, one's own or by an
// admin, ends every session of the user, on every device; any other
// change to the user ends none.
func TestNewPasswordEndsSessions(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
		svc := newAuth(t, d, now)
		email, password := "ann@example.com", "right-password"
		ann, err := svc.CreateUser(ctx, auth.UserInput{Email: &email, Password: &password})
		if err != nil {
			t.Fatal(err)
		}
		signIn := func(password string) []*auth.Session {
			t.Helper()
			var sessions []*auth.Session
			for range 2 {
				s, err := svc.Login(ctx, email, password)
				if err != nil {
					t.Fatalf("sign in: %v", err)
				}
				sessions = append(sessions, s)
			}
			return sessions
		}
		sessions := signIn(password)
		name := "Ann"
		if _, err := svc.UpdateUser(ctx, ann.ID, auth.UserInput{Name: &name}); err != nil {
			t.Fatal(err)
		}
		for _, s := range sessions {
			if _, err := svc.Authenticate(ctx, s.Token); err != nil {
				t.Fatalf("session after a new name: %v", err)
			}
		}
		for _, newPassword := range []string{"second-password", "third-password"} {
			if _, err := svc.UpdateUser(ctx, ann.ID, auth.UserInput{Password: &newPassword}); err != nil {
				t.Fatal(err)
			}
			for _, s := range sessions {
				if _, err := svc.Authenticate(ctx, s.Token); !errors.Is(err, auth.ErrUnauthenticated) {
					t.Fatalf("session begun before the password became %q: %v", newPassword, err)
				}
			}
			sessions = signIn(newPassword)
		}
	})
}
