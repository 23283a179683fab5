package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/invalid"
)

// TestAccessRights checks the one computation of rights: the higher of
// the global role's right and the team role's right for the thing's
// owner, with team roles read from the database once per request.
func TestAccessRights(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc, err := auth.NewService(d, nil, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		svc.SetPasswordCost(bcrypt.MinCost)
		user := func(email string, role db.Role) *db.User {
			t.Helper()
			password := "long enough password"
			u, err := svc.CreateUser(ctx, auth.UserInput{Email: &email, Password: &password, Role: &role})
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		team := func(name string) int {
			t.Helper()
			g, err := svc.CreateGroup(ctx, auth.GroupInput{Name: &name})
			if err != nil {
				t.Fatal(err)
			}
			return g.ID
		}
		a, b := team("A"), team("B")
		manager, responder, observer := user("m@example.com", db.RoleMember), user("r@example.com", db.RoleMember), user("o@example.com", db.RoleMember)
		viewer, globalResponder, admin := user("v@example.com", db.RoleViewer), user("gr@example.com", db.RoleResponder), user("a@example.com", db.RoleAdmin)
		for u, role := range map[*db.User]db.TeamRole{manager: db.TeamManager, responder: db.TeamResponder, observer: db.TeamObserver} {
			if err := svc.AddGroupMember(ctx, a, u.ID, role); err != nil {
				t.Fatal(err)
			}
		}
		// A global viewer who manages B configures B's things and still
		// only reads A's.
		if err := svc.AddGroupMember(ctx, b, viewer.ID, db.TeamManager); err != nil {
			t.Fatal(err)
		}

		none, read, act, configure := auth.RightNone, auth.RightRead, auth.RightAct, auth.RightConfigure
		cases := []struct {
			who             *db.User
			orgWide, aR, bR auth.Right
		}{
			{manager, read, configure, none},
			{responder, read, act, none},
			{observer, read, read, none},
			{viewer, read, read, configure},
			{globalResponder, act, act, act},
			{admin, configure, configure, configure},
		}
		for _, c := range cases {
			access, err := svc.Access(auth.WithUser(ctx, c.who))
			if err != nil {
				t.Fatal(err)
			}
			for owner, want := range map[string]auth.Right{"nobody": c.orgWide, "A": c.aR, "B": c.bR} {
				var teamID *int
				switch owner {
				case "A":
					teamID = &a
				case "B":
					teamID = &b
				}
				if got := access.Right(teamID); got != want {
					t.Errorf("%s (%s) on a thing of %s: right %d, want %d", c.who.Email, c.who.Role, owner, got, want)
				}
			}
		}

		// The checks answer with the errors the presenter maps.
		asManager := auth.WithUser(ctx, manager)
		if err := svc.MayConfigure(asManager, &a); err != nil {
			t.Errorf("a manager may not configure their team's thing: %v", err)
		}
		if err := svc.MayConfigure(asManager, &b); !errors.Is(err, auth.ErrForbidden) {
			t.Errorf("a manager configures another team's thing: %v", err)
		}
		if err := svc.MayMove(asManager, &a, nil); !errors.Is(err, auth.ErrForbidden) {
			t.Errorf("a manager makes a thing organisation-wide: %v", err)
		}
		if err := svc.MayRead(ctx, nil); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("anonymous read: %v", err)
		}
		var fe *invalid.Field
		if err := svc.MayReference(asManager, "input.escalationPolicyId", &a, &b); !errors.As(err, &fe) || fe.Name != "input.escalationPolicyId" {
			t.Errorf("a link across teams: %v", err)
		}
		if err := svc.MayReference(asManager, "input.escalationPolicyId", &a, nil); err != nil {
			t.Errorf("a link to an organisation-wide thing: %v", err)
		}

		// Lists: a member sees their teams and what belongs to everyone.
		access, _ := svc.Access(auth.WithUser(ctx, observer))
		if s := access.ReadScope(nil); !s.Includes(nil) || !s.Includes(&a) || s.Includes(&b) {
			t.Errorf("an observer's scope: %+v", s)
		}
		if s := access.ReadScope([]int{b}); s.Includes(&b) || s.Includes(nil) {
			t.Errorf("an observer asking for B's things: %+v", s)
		}
		viewerAccess, _ := svc.Access(auth.WithUser(ctx, viewer))
		if s := viewerAccess.ReadScope(nil); s != nil {
			t.Errorf("a global viewer's list is narrowed: %+v", s)
		}

		// Team roles are read once per request: a change shows in the next.
		req := auth.WithUser(ctx, observer)
		if err := svc.MayAct(req, &a); !errors.Is(err, auth.ErrForbidden) {
			t.Fatalf("an observer acts: %v", err)
		}
		if err := svc.SetGroupMemberRole(ctx, a, observer.ID, db.TeamResponder); err != nil {
			t.Fatal(err)
		}
		if err := svc.MayAct(req, &a); !errors.Is(err, auth.ErrForbidden) {
			t.Errorf("the same request saw the new role: %v", err)
		}
		if err := svc.MayAct(auth.WithUser(ctx, observer), &a); err != nil {
			t.Errorf("the next request does not see the promotion: %v", err)
		}
		if err := svc.SetGroupMemberRole(ctx, a, admin.ID, db.TeamResponder); !errors.As(err, &fe) {
			t.Errorf("a role for a non-member: %v", err)
		}
		if err := svc.SetGroupMemberRole(ctx, a, observer.ID, "OWNER"); !errors.As(err, &fe) {
			t.Errorf("an unknown role: %v", err)
		}
	})
}
