package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

func TestFailedSignInsBackOff(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		svc := newAuth(t, d, func() time.Time { return clock })
		password := "right-password"
		for _, email := range []string{"ann@example.com", "bob@example.com"} {
			if _, err := svc.CreateUser(context.Background(), auth.UserInput{Email: &email, Password: &password}); err != nil {
				t.Fatal(err)
			}
		}
		from := func(addr string) context.Context { return auth.WithClientAddr(context.Background(), addr) }
		login := func(ctx context.Context, email, password string) error {
			_, err := svc.Login(ctx, email, password)
			return err
		}
		refusedFor := func(err error) time.Duration {
			t.Helper()
			var rl *db.RateLimitError
			if !errors.As(err, &rl) {
				t.Fatalf("got %v, want a rate-limit refusal", err)
			}
			return rl.Wait
		}

		// Five free mistakes, then 1 s, 2 s, 4 s of waiting.
		for i := range 5 {
			if err := login(from("192.0.2.1"), "ann@example.com", "wrong"); !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Fatalf("failure %d: %v", i+1, err)
			}
		}
		if err := login(from("192.0.2.1"), "ann@example.com", "wrong"); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("sixth failure: %v", err)
		}
		for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
			// Even the right password waits: the wait is the point.
			if got := refusedFor(login(from("192.0.2.1"), "ann@example.com", "right-password")); got != want {
				t.Fatalf("wait %s, want %s", got, want)
			}
			clock = clock.Add(want)
			if err := login(from("192.0.2.1"), "ann@example.com", "wrong"); !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Fatalf("after waiting %s: %v", want, err)
			}
		}

		// The account is held from any address; the guessing address is
		// held for any account; others are not held at all.
		refusedFor(login(from("198.51.100.7"), "ann@example.com", "right-password"))
		refusedFor(login(from("192.0.2.1"), "bob@example.com", "right-password"))
		if err := login(from("198.51.100.7"), "bob@example.com", "right-password"); err != nil {
			t.Fatalf("an uninvolved address and account: %v", err)
		}

		// The back-off stops growing at its cap, and an hour without
		// failures forgets the count.
		for range 20 {
			clock = clock.Add(time.Hour / 2)
			login(from("192.0.2.1"), "ann@example.com", "wrong")
		}
		if got := refusedFor(login(from("192.0.2.1"), "ann@example.com", "wrong")); got != 15*time.Minute {
			t.Fatalf("capped wait %s, want 15m", got)
		}
		clock = clock.Add(time.Hour)
		if err := login(from("192.0.2.1"), "ann@example.com", "right-password"); err != nil {
			t.Fatalf("after an hour of quiet: %v", err)
		}

		// A good sign-in clears the account's count, not the address's.
		for range 6 {
			login(from("203.0.113.9"), "bob@example.com", "wrong")
		}
		clock = clock.Add(time.Second)
		if err := login(from("203.0.113.9"), "bob@example.com", "right-password"); err != nil {
			t.Fatalf("after the back-off: %v", err)
		}
		if err := login(from("198.51.100.8"), "bob@example.com", "wrong"); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("account count not cleared: %v", err)
		}
		login(from("203.0.113.9"), "ann@example.com", "wrong")
		if got := refusedFor(login(from("203.0.113.9"), "ann@example.com", "wrong")); got != 2*time.Second {
			t.Fatalf("address count cleared by a good sign-in: wait %s, want 2s", got)
		}

		svc.SetLoginLimits(nil)
		for range 10 {
			if err := login(from("192.0.2.1"), "ann@example.com", "wrong"); !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Fatalf("limits off: %v", err)
			}
		}
	})
}
