package auth_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// A restricted API key (made with less than its owner's role) caps its
// owner's team roles as it caps their global role: a read-only key of a
// team's manager cannot configure the team's things. A key with the
// owner's own role carries their team roles.
func TestAPIKeyRoleCapsTeamRoles(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		svc, err := auth.NewService(d, nil, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		svc.SetPasswordCost(bcrypt.MinCost)
		name := "Payments"
		g, err := svc.CreateGroup(ctx, auth.GroupInput{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		team := &g.ID
		manager := func(email string, role db.Role) *db.User {
			t.Helper()
			password := "long enough password"
			u, err := svc.CreateUser(ctx, auth.UserInput{Email: &email, Password: &password, Role: &role})
			if err != nil {
				t.Fatal(err)
			}
			if err := svc.AddGroupMember(ctx, g.ID, u.ID, db.TeamManager); err != nil {
				t.Fatal(err)
			}
			return u
		}
		rightWithKey := func(owner *db.User, role db.Role) auth.Right {
			t.Helper()
			_, secret, err := svc.CreateAPIKey(ctx, owner, auth.APIKeyInput{Name: string(role) + " key", Role: role})
			if err != nil {
				t.Fatal(err)
			}
			caller, err := svc.Authenticate(ctx, secret)
			if err != nil {
				t.Fatal(err)
			}
			access, err := svc.Access(auth.WithCaller(ctx, caller, secret))
			if err != nil {
				t.Fatal(err)
			}
			return access.Right(team)
		}

		responder := manager("r@example.com", db.RoleResponder)
		member := manager("m@example.com", db.RoleMember)
		cases := []struct {
			owner *db.User
			key   db.Role
			want  auth.Right
		}{
			{responder, db.RoleResponder, auth.RightConfigure},
			{responder, db.RoleViewer, auth.RightRead},
			{responder, db.RoleMember, auth.RightRead},
			{member, db.RoleMember, auth.RightConfigure},
		}
		for _, c := range cases {
			if got := rightWithKey(c.owner, c.key); got != c.want {
				t.Errorf("a %s key of a %s managing the team: right %v, want %v", c.key, c.owner.Role, got, c.want)
			}
		}
		// Signed in with a session, the manager keeps the team role.
		access, err := svc.Access(auth.WithUser(ctx, responder))
		if err != nil {
			t.Fatal(err)
		}
		if got := access.Right(team); got != auth.RightConfigure {
			t.Errorf("the manager's own session: right %v", got)
		}
	})
}
