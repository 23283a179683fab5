package auth_test

import (
	"bytes"
	"context"
	"errors"
	"github.com/klaxonhq/klaxon/invalid"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

var key = []byte("0123456789abcdef0123456789abcdef")

func TestTokens(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tokens, err := auth.NewTokens(key, time.Hour, clock)
	if err != nil {
		t.Fatal(err)
	}
	signed, exp, err := tokens.Issue(&db.User{ID: 42})
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(now.Add(time.Hour)) {
		t.Fatalf("expiry %v", exp)
	}
	if id, err := tokens.Verify(signed); err != nil || id != 42 {
		t.Fatalf("verify fresh token: %d, %v", id, err)
	}

	forge := func(method jwt.SigningMethod, signKey any, claims jwt.RegisteredClaims) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(signKey)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := jwt.RegisteredClaims{
		Issuer: "klaxon", Subject: "42", Audience: jwt.ClaimStrings{"klaxon-api"},
		ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}
	withClaims := func(edit func(*jwt.RegisteredClaims)) jwt.RegisteredClaims {
		c := good
		edit(&c)
		return c
	}
	bad := map[string]string{
		"garbage":        "not-a-token",
		"tampered":       signed[:len(signed)-2] + "xx",
		"other key":      forge(jwt.SigningMethodHS256, []byte("another-key-another-key-another-k"), good),
		"alg none":       forge(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good),
		"HS512":          forge(jwt.SigningMethodHS512, key, good),
		"wrong issuer":   forge(jwt.SigningMethodHS256, key, withClaims(func(c *jwt.RegisteredClaims) { c.Issuer = "evil" })),
		"wrong audience": forge(jwt.SigningMethodHS256, key, withClaims(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"other"} })),
		"no expiry":      forge(jwt.SigningMethodHS256, key, withClaims(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })),
		"expired":        forge(jwt.SigningMethodHS256, key, withClaims(func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Second)) })),
		"bad subject":    forge(jwt.SigningMethodHS256, key, withClaims(func(c *jwt.RegisteredClaims) { c.Subject = "admin" })),
	}
	for name, token := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := tokens.Verify(token); !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("accepted or wrong error: %v", err)
			}
		})
	}

	now = now.Add(2 * time.Hour)
	if _, err := tokens.Verify(signed); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("token accepted after expiry: %v", err)
	}
	if _, err := auth.NewTokens([]byte("short"), time.Hour, clock); err == nil {
		t.Fatal("short signing key accepted")
	}
}

func TestUsers(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		now := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
		k1, err := auth.SigningKey(ctx, d, now())
		if err != nil {
			t.Fatal(err)
		}
		k2, err := auth.SigningKey(ctx, d, now())
		if err != nil || !bytes.Equal(k1, k2) || len(k1) != 32 {
			t.Fatalf("stored key not stable: %v", err)
		}
		tokens, _ := auth.NewTokens(k1, time.Hour, now)
		svc, err := auth.NewService(d, tokens, now)
		if err != nil {
			t.Fatal(err)
		}
		svc.SetPasswordCost(bcrypt.MinCost)

		admin, generated, err := svc.EnsureAdmin(ctx, "Admin@Example.com", "")
		if err != nil || admin == nil || len(generated) < 20 || admin.Email != "admin@example.com" || admin.Role != db.RoleAdmin {
			t.Fatalf("first admin: %+v %q %v", admin, generated, err)
		}
		if again, _, err := svc.EnsureAdmin(ctx, "other@example.com", "whatever-pass"); err != nil || again != nil {
			t.Fatalf("second EnsureAdmin created %+v, %v", again, err)
		}
		session, err := svc.Login(ctx, " ADMIN@example.com ", generated)
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		if u, err := svc.Authenticate(ctx, session.Token); err != nil || u.ID != admin.ID {
			t.Fatalf("authenticate: %+v %v", u, err)
		}
		if _, err := svc.Login(ctx, "admin@example.com", "wrong-password"); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
		if _, err := svc.Login(ctx, "nobody@example.com", "wrong-password"); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("unknown user: %v", err)
		}

		str := func(s string) *string { return &s }
		role := func(r db.Role) *db.Role { return &r }
		bad := map[string]auth.UserInput{
			"email":    {Email: str("not an email"), Password: str("long-enough")},
			"password": {Email: str("a@example.com"), Password: str("short")},
			"role":     {Email: str("b@example.com"), Password: str("long-enough"), Role: role("ROOT")},
		}
		for field, in := range bad {
			var fe *invalid.Field
			if _, err := svc.CreateUser(ctx, in); !errors.As(err, &fe) || fe.Name != field {
				t.Fatalf("invalid %s: %v", field, err)
			}
		}
		if _, err := svc.CreateUser(ctx, auth.UserInput{Email: str("ADMIN@example.com"), Password: str("long-enough")}); err == nil || !strings.Contains(err.Error(), "already in use") {
			t.Fatalf("duplicate email: %v", err)
		}

		var fe *invalid.Field
		if _, err := svc.UpdateUser(ctx, admin.ID, auth.UserInput{Role: role(db.RoleViewer)}); !errors.As(err, &fe) {
			t.Fatalf("demoting the last admin: %v", err)
		}
		if err := svc.DeleteUser(ctx, admin.ID); !errors.As(err, &fe) {
			t.Fatalf("deleting the last admin: %v", err)
		}
		viewer, err := svc.CreateUser(ctx, auth.UserInput{Email: str("v@example.com"), Password: str("long-enough")})
		if err != nil || viewer.Role != db.RoleViewer {
			t.Fatalf("default role: %+v %v", viewer, err)
		}
		viewerSession, err := svc.Login(ctx, "v@example.com", "long-enough")
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.DeleteUser(ctx, viewer.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Authenticate(ctx, viewerSession.Token); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Fatalf("token of a deleted user: %v", err)
		}
	})
}

func TestGroups(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc, err := auth.NewService(d, nil, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		svc.SetPasswordCost(bcrypt.MinCost)
		str := func(s string) *string { return &s }
		a, _ := svc.CreateUser(ctx, auth.UserInput{Email: str("a@example.com"), Password: str("long-enough")})
		b, _ := svc.CreateUser(ctx, auth.UserInput{Email: str("b@example.com"), Password: str("long-enough")})
		g, err := svc.CreateGroup(ctx, auth.GroupInput{Name: str("SecOps"), MemberIDs: []int{a.ID}})
		if err != nil {
			t.Fatal(err)
		}
		var fe *invalid.Field
		if _, err := svc.CreateGroup(ctx, auth.GroupInput{Name: str("Ghosts"), MemberIDs: []int{a.ID, 9999}}); !errors.As(err, &fe) || fe.Name != "memberIds[1]" {
			t.Fatalf("unknown member: %v", err)
		}
		groups, _ := svc.Groups(ctx)
		if len(groups) != 1 {
			t.Fatalf("a failed create left a group behind: %d groups", len(groups))
		}
		if err := svc.AddGroupMember(ctx, g.ID, b.ID, ""); err != nil {
			t.Fatal(err)
		}
		if err := svc.AddGroupMember(ctx, g.ID, b.ID, ""); err != nil {
			t.Fatalf("adding a member twice: %v", err)
		}
		members, _ := svc.GroupMembers(ctx, g.ID)
		if len(members) != 2 {
			t.Fatalf("members: %d", len(members))
		}
		if err := svc.RemoveGroupMember(ctx, g.ID, a.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.UpdateGroup(ctx, g.ID, auth.GroupInput{MemberIDs: []int{}}); err != nil {
			t.Fatal(err)
		}
		if members, _ := svc.GroupMembers(ctx, g.ID); len(members) != 0 {
			t.Fatalf("members after clearing: %d", len(members))
		}
		if err := svc.DeleteGroup(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if err := svc.DeleteGroup(ctx, g.ID); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("deleting twice: %v", err)
		}
	})
}
