package auth_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestLoginCodeIsShortLivedAndSingleUse: a login code works within its
// minute and once; of many exchanges of one code at once exactly one
// gets a session; a code past its minute gets nothing.
func TestLoginCodeIsShortLivedAndSingleUse(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clock := &stepClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
		svc := newAuth(t, d, clock.Now)
		in := auth.ExternalIdentity{Method: "OIDC", Email: "erin@example.com", Role: db.RoleViewer}

		first, err := svc.SignInExternal(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		results := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				_, err := svc.ExchangeLoginCode(ctx, first.Code)
				results <- err
			})
		}
		wg.Wait()
		close(results)
		won := 0
		for err := range results {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, auth.ErrInvalidLoginCode):
				t.Errorf("exchange: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d of 8 exchanges of one code got a session, want exactly 1", won)
		}

		late, err := svc.SignInExternal(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		if _, err := svc.ExchangeLoginCode(ctx, late.Code); !errors.Is(err, auth.ErrInvalidLoginCode) {
			t.Fatalf("exchange at the end of the minute: %v", err)
		}

		inTime, err := svc.SignInExternal(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(59 * time.Second)
		session, err := svc.ExchangeLoginCode(ctx, inTime.Code)
		if err != nil || session.User.Email != "erin@example.com" {
			t.Fatalf("exchange within the minute: %v", err)
		}
		if _, err := svc.Authenticate(ctx, session.Token); err != nil {
			t.Fatalf("the session from a login code: %v", err)
		}
		var stored []db.LoginCode
		if err := d.NewSelect().Model(&stored).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		for _, c := range stored {
			if c.CodeHash == inTime.Code || c.CodeHash == late.Code {
				t.Fatal("a login code is stored as it is, not hashed")
			}
		}
	})
}

// TestFirstSignInsAtOnceMakeOneUser: the same person signing in from two
// tabs at once, on a team nobody has made yet, makes one user and one
// team, and both sign-ins succeed.
func TestFirstSignInsAtOnceMakeOneUser(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc := newAuth(t, d, time.Now)
		in := auth.ExternalIdentity{
			Method: "OIDC", Email: "fay@example.com", Role: db.RoleResponder,
			Teams: map[string]db.TeamRole{"Night Shift": db.TeamManager}, ManagedTeams: []string{"Night Shift"},
		}
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				_, err := svc.SignInExternal(ctx, in)
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("sign-in: %v", err)
			}
		}
		users, _ := d.NewSelect().Model((*db.User)(nil)).Count(ctx)
		teams, _ := d.NewSelect().Model((*db.Group)(nil)).Count(ctx)
		members, _ := d.NewSelect().Model((*db.GroupMember)(nil)).Where("role = ?", db.TeamManager).Count(ctx)
		if users != 1 || teams != 1 || members != 1 {
			t.Fatalf("%d users, %d teams, %d managers; want one of each", users, teams, members)
		}
		created, _ := d.NewSelect().Model((*audit.Entry)(nil)).Where("action = ?", audit.Created).Count(ctx)
		if created != 2 {
			t.Errorf("%d creations audited, want the user's and the team's", created)
		}
	})
}

// TestSignInKeepsTheLastAdmin: claims that would demote the only admin
// leave the role as it is and say so; with another admin they demote,
// but never the break-glass admin.
func TestSignInKeepsTheLastAdmin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc := newAuth(t, d, time.Now)
		admin := auth.ExternalIdentity{Method: "OIDC", Email: "gus@example.com", Role: db.RoleAdmin, RoleFromClaims: true}
		if _, err := svc.SignInExternal(ctx, admin); err != nil {
			t.Fatal(err)
		}
		demoted := admin
		demoted.Role = db.RoleViewer
		got, err := svc.SignInExternal(ctx, demoted)
		if err != nil {
			t.Fatal(err)
		}
		if !got.KeptLastAdmin || got.User.Role != db.RoleAdmin {
			t.Fatalf("the last admin became %s (kept: %v)", got.User.Role, got.KeptLastAdmin)
		}
		other := auth.ExternalIdentity{Method: "OIDC", Email: "hal@example.com", Role: db.RoleAdmin}
		if _, err := svc.SignInExternal(ctx, other); err != nil {
			t.Fatal(err)
		}
		if got, err = svc.SignInExternal(ctx, demoted); err != nil || got.KeptLastAdmin || got.User.Role != db.RoleViewer {
			t.Fatalf("with another admin: %+v, %v", got, err)
		}
		// The break-glass admin keeps the role whatever the claims say.
		svc.SetPasswordLogin(true, "hal@example.com")
		halDemoted := other
		halDemoted.Role, halDemoted.RoleFromClaims = db.RoleViewer, true
		if got, err = svc.SignInExternal(ctx, halDemoted); err != nil || got.User.Role != db.RoleAdmin {
			t.Fatalf("break-glass admin: %+v, %v", got, err)
		}
	})
}

// TestPasswordLoginOffLeavesOnlyTheBreakGlassAdmin: off, a right
// password signs in only the named admin, and every refusal reads the
// same.
func TestPasswordLoginOffLeavesOnlyTheBreakGlassAdmin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc := newAuth(t, d, time.Now)
		svc.SetLoginLimits(nil)
		password := "right-password"
		mk := func(email string, role db.Role) {
			if _, err := svc.CreateUser(ctx, auth.UserInput{Email: &email, Password: &password, Role: &role}); err != nil {
				t.Fatal(err)
			}
		}
		mk("root@example.com", db.RoleAdmin)
		mk("ivy@example.com", db.RoleResponder)
		mk("demoted@example.com", db.RoleViewer)
		svc.SetPasswordLogin(false, "Root@Example.com")
		if _, err := svc.Login(ctx, "root@example.com", password); err != nil {
			t.Fatalf("break-glass admin: %v", err)
		}
		for _, tc := range []struct{ email, password string }{
			{"ivy@example.com", password},
			{"root@example.com", "wrong-password"},
			{"nobody@example.com", password},
		} {
			if _, err := svc.Login(ctx, tc.email, tc.password); !errors.Is(err, auth.ErrPasswordLoginDisabled) {
				t.Errorf("%s: %v", tc.email, err)
			}
		}
		// The break-glass account is the named admin only while it is an
		// admin.
		svc.SetPasswordLogin(false, "demoted@example.com")
		if _, err := svc.Login(ctx, "demoted@example.com", password); !errors.Is(err, auth.ErrPasswordLoginDisabled) {
			t.Errorf("named account that is no admin: %v", err)
		}
		svc.SetPasswordLogin(true, "")
		if _, err := svc.Login(ctx, "ivy@example.com", password); err != nil {
			t.Errorf("password sign-in back on: %v", err)
		}
	})
}
