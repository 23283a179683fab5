package auth_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

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

// TestConcurrentSignInsWaitTheirTurn: thirty sign-ins for one account
// from one address, sent at once with the clock standing still, get no
// more passwords checked than the same thirty sent one after another:
// the five free failures and the one that starts the first wait. The
// right password is among them, so a guess cannot ride along with a
// burst that the back-off never saw.
func TestConcurrentSignInsWaitTheirTurn(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		svc := newAuth(t, d, func() time.Time { return clock })
		// A password check as slow as in production, so the attempts are
		// truly in flight together.
		svc.SetPasswordCost(bcrypt.DefaultCost)
		email, password := "ann@example.com", "right-password"
		if _, err := svc.CreateUser(context.Background(), auth.UserInput{Email: &email, Password: &password}); err != nil {
			t.Fatal(err)
		}
		ctx := auth.WithClientAddr(context.Background(), "192.0.2.1")
		const attempts = 30
		free := auth.DefaultLoginLimits().Free
		results := make([]error, attempts)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range attempts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				guess := "wrong-password"
				if i == attempts-1 {
					guess = password
				}
				<-start
				_, results[i] = svc.Login(ctx, email, guess)
			}()
		}
		close(start)
		wg.Wait()
		checked := 0
		for i, err := range results {
			var rl *db.RateLimitError
			switch {
			case errors.As(err, &rl):
			case err == nil, errors.Is(err, auth.ErrInvalidCredentials):
				checked++
			default:
				t.Fatalf("attempt %d: %v", i, err)
			}
		}
		if checked > free+1 {
			t.Fatalf("%d of %d simultaneous sign-ins had their password checked, want at most %d", checked, attempts, free+1)
		}
	})
}

// TestUnknownEmailHashIsReadyAtStart: the hash a login for an unknown
// email is compared against exists as soon as the service does, at the
// cost of new password hashes, so the first unknown email takes as long
// as the others.
func TestUnknownEmailHashIsReadyAtStart(t *testing.T) {
	svc, err := auth.NewService(nil, nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := svc.DummyHashCost(); err != nil || cost != bcrypt.DefaultCost {
		t.Fatalf("dummy hash at start: cost %d, %v; want ready at cost %d", cost, err, bcrypt.DefaultCost)
	}
	if err := svc.SetPasswordCost(bcrypt.MinCost); err != nil {
		t.Fatal(err)
	}
	if cost, err := svc.DummyHashCost(); err != nil || cost != bcrypt.MinCost {
		t.Fatalf("dummy hash after setting the cost: cost %d, %v; want ready at cost %d", cost, err, bcrypt.MinCost)
	}
}
