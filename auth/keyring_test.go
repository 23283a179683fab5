package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

func TestSigningKeyRotation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		now := func() time.Time { return clock }
		const ttl = time.Hour
		// Two instances on one database.
		newTokens := func() *auth.Tokens {
			tok, err := auth.NewRotatingTokens(ctx, auth.KeyRingLoader(d, "", "", now()), ttl, now)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		a, b := newTokens(), newTokens()
		user := &db.User{ID: 7}
		issue := func(tok *auth.Tokens) string {
			s, _, err := tok.Issue(user)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		accepted := func(tok *auth.Tokens, token string) bool {
			_, err := tok.Verify(token)
			if err != nil && !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("verify: %v", err)
			}
			return err == nil
		}
		clock = clock.Add(10 * time.Minute)
		old := issue(a)
		if !accepted(b, old) {
			t.Fatal("instances disagree on the key")
		}
		if err := auth.RotateSigningKey(ctx, d, now()); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Minute) // both instances take the new key up
		fresh := issue(a)
		if headerOf(fresh) == headerOf(old) {
			t.Fatal("a rotated instance still signs with the old key")
		}
		for name, tok := range map[string]*auth.Tokens{"a": a, "b": b} {
			if !accepted(tok, fresh) || !accepted(tok, old) {
				t.Fatalf("instance %s: new token %v, old token in its grace %v", name, accepted(tok, fresh), accepted(tok, old))
			}
		}

		// The old key's grace lasts as long as its last token: an hour
		// after it was retired at 00:10.
		retired := time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC)
		clock = retired.Add(ttl - time.Second)
		if !accepted(b, old) {
			t.Fatal("a token of the retired key refused within the grace period")
		}
		clock = retired.Add(ttl)
		if accepted(b, old) {
			t.Fatal("a token of the retired key outlived the grace period")
		}
		if !accepted(b, fresh) {
			t.Fatal("the current key's token refused")
		}

		// Rotating again forgets the key before the previous one.
		second := issue(b)
		if err := auth.RotateSigningKey(ctx, d, now()); err != nil {
			t.Fatal(err)
		}
		if err := auth.RotateSigningKey(ctx, d, now()); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Minute)
		if accepted(a, second) {
			t.Fatal("a key rotated out twice still verifies")
		}
		if !accepted(a, issue(b)) {
			t.Fatal("instances disagree after two rotations")
		}
	})
}

func TestConfiguredPreviousKey(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	oldKey, newKey := strings.Repeat("o", 32), strings.Repeat("n", 32)
	before, err := auth.NewRotatingTokens(context.Background(), auth.KeyRingLoader(nil, oldKey, "", now()), time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	token, _, _ := before.Issue(&db.User{ID: 1})
	after, err := auth.NewRotatingTokens(context.Background(), auth.KeyRingLoader(nil, newKey, oldKey, now()), time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(59 * time.Minute)
	if _, err := after.Verify(token); err != nil {
		t.Fatalf("token of the configured previous key: %v", err)
	}
	if _, err := auth.NewRotatingTokens(context.Background(), auth.KeyRingLoader(nil, newKey, "short", now()), time.Hour, now); err == nil {
		t.Fatal("a short previous key was accepted")
	}
}

// headerOf is a token's first segment, which names its key.
func headerOf(token string) string {
	return strings.SplitN(token, ".", 2)[0]
}
