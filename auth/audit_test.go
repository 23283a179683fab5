package auth_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// trail reads the audit entries recorded since it last looked.
type trail struct {
	t    *testing.T
	log  *audit.Log
	seen int
	all  []*audit.Entry
}

// one returns the single new entry, checked against what it is about,
// and its changes by field.
func (tr *trail) one(typ audit.EntityType, id int, action audit.Action, actor string) map[string]string {
	tr.t.Helper()
	fresh := tr.next()
	if len(fresh) != 1 {
		tr.t.Fatalf("%d new entries, want one %s of %s %d: %+v", len(fresh), action, typ, id, fresh)
	}
	e := fresh[0]
	if e.EntityType != typ || e.EntityID != id || e.Action != action || e.Actor != actor {
		tr.t.Fatalf("entry %+v, want %s of %s %d by %s", e, action, typ, id, actor)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(e.Changes), &raw); err != nil {
		tr.t.Fatal(err)
	}
	changes := map[string]string{}
	for k, v := range raw {
		changes[k] = string(v)
	}
	return changes
}

func (tr *trail) none(what string) {
	tr.t.Helper()
	if fresh := tr.next(); len(fresh) > 0 {
		tr.t.Fatalf("%s: recorded %+v, want nothing", what, fresh[0])
	}
}

func (tr *trail) next() []*audit.Entry {
	tr.t.Helper()
	fresh, err := tr.log.Since(context.Background(), tr.seen)
	if err != nil {
		tr.t.Fatal(err)
	}
	if len(fresh) > 0 {
		tr.seen = fresh[len(fresh)-1].ID
	}
	tr.all = append(tr.all, fresh...)
	return fresh
}

func wantExactly(t *testing.T, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok || (w != "*" && g != w) {
			t.Errorf("%s: got %q, want %s", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s recorded (%s), but it did not change", k, g)
		}
	}
}

func TestAuditOfUsersGroupsAndKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		now := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
		svc := newAuth(t, d, now)
		tr := &trail{t: t, log: audit.NewLog(d)}
		bg := context.Background()
		id := strconv.Itoa

		// The first admin is made by the system.
		admin, _, err := svc.EnsureAdmin(bg, "root@example.com", "first-password")
		if err != nil {
			t.Fatal(err)
		}
		wantExactly(t, tr.one(audit.User, admin.ID, audit.Created, audit.SystemName), map[string]string{
			"email": `{"to":"root@example.com"}`, "name": `{"to":"Administrator"}`, "role": `{"to":"ADMIN"}`,
			"password": `{"to":"[redacted]"}`, "tokenVersion": `{"to":0}`,
		})
		// Everything after is done by the admin as a signed-in caller.
		ctx := auth.WithUser(bg, admin)

		email, password, role := "ann@example.com", "ann-password", db.RoleViewer
		ann, err := svc.CreateUser(ctx, auth.UserInput{Email: &email, Password: &password, Role: &role})
		if err != nil {
			t.Fatal(err)
		}
		wantExactly(t, tr.one(audit.User, ann.ID, audit.Created, "root@example.com"), map[string]string{
			"email": `{"to":"ann@example.com"}`, "name": `{"to":""}`, "role": `{"to":"VIEWER"}`,
			"password": `{"to":"[redacted]"}`, "tokenVersion": `{"to":0}`,
		})
		if entry := tr.all[len(tr.all)-1]; entry.ActorUserID == nil || *entry.ActorUserID != admin.ID {
			t.Errorf("actor user %v, want %d", entry.ActorUserID, admin.ID)
		}
		if _, err := svc.CreateUser(ctx, auth.UserInput{Email: &email, Password: &password}); err == nil {
			t.Fatal("a second user with the same email was created")
		}
		tr.none("a user refused by the unique email")

		responder, newPassword := db.RoleResponder, "another-password"
		if _, err := svc.UpdateUser(ctx, ann.ID, auth.UserInput{Role: &responder, Password: &newPassword}); err != nil {
			t.Fatal(err)
		}
		// A new password ends the user's sessions, which the entry shows.
		wantExactly(t, tr.one(audit.User, ann.ID, audit.Updated, "root@example.com"), map[string]string{
			"role": `{"from":"VIEWER","to":"RESPONDER"}`, "password": `{"from":"[redacted]","to":"[changed]"}`,
			"tokenVersion": `{"from":0,"to":1}`,
		})
		viewer := db.RoleViewer
		if _, err := svc.UpdateUser(ctx, admin.ID, auth.UserInput{Role: &viewer}); err == nil {
			t.Fatal("the last admin was demoted")
		}
		tr.none("demoting the last admin, refused inside the transaction")

		if err := svc.SignOut(ctx, ann.ID); err != nil {
			t.Fatal(err)
		}
		wantExactly(t, tr.one(audit.User, ann.ID, audit.SignedOut, "root@example.com"), map[string]string{
			"tokenVersion": `{"from":1,"to":2}`,
		})

		// Groups and their members.
		ops := "Ops"
		g, err := svc.CreateGroup(ctx, auth.GroupInput{Name: &ops, MemberIDs: []int{ann.ID}})
		if err != nil {
			t.Fatal(err)
		}
		wantExactly(t, tr.one(audit.Group, g.ID, audit.Created, "root@example.com"), map[string]string{
			"name": `{"to":"Ops"}`, "description": `{"to":""}`, "memberIds": `{"to":[` + id(ann.ID) + `]}`,
		})
		if err := svc.AddGroupMember(ctx, g.ID, admin.ID, ""); err != nil {
			t.Fatal(err)
		}
		both := "[" + id(min(ann.ID, admin.ID)) + "," + id(max(ann.ID, admin.ID)) + "]"
		wantExactly(t, tr.one(audit.Group, g.ID, audit.MemberAdded, "root@example.com"), map[string]string{
			"memberIds": `{"from":[` + id(ann.ID) + `],"to":` + both + `}`,
		})
		if err := svc.AddGroupMember(ctx, g.ID, admin.ID, ""); err != nil {
			t.Fatal(err)
		}
		tr.none("adding a member already in the group")
		if err := svc.AddGroupMember(ctx, g.ID, 999999, ""); err == nil {
			t.Fatal("a missing user was added")
		}
		tr.none("adding a missing user")
		if err := svc.RemoveGroupMember(ctx, g.ID, ann.ID); err != nil {
			t.Fatal(err)
		}
		wantExactly(t, tr.one(audit.Group, g.ID, audit.MemberRemoved, "root@example.com"), map[string]string{
			"memberIds": `{"from":` + both + `,"to":[` + id(admin.ID) + `]}`,
		})
		desc := "On call for everything"
		if _, err := svc.UpdateGroup(ctx, g.ID, auth.GroupInput{Description: &desc}); err != nil {
			t.Fatal(err)
		}
		wantExactly(t, tr.one(audit.Group, g.ID, audit.Updated, "root@example.com"), map[string]string{
			"description": `{"from":"","to":"On call for everything"}`,
		})
		if err := svc.DeleteGroup(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		wantExactly(t, tr.one(audit.Group, g.ID, audit.Deleted, "root@example.com"), map[string]string{
			"name": `{"from":"Ops"}`, "description": "*", "memberIds": `{"from":[` + id(admin.ID) + `]}`,
		})

		// API keys: the key and its hash are never kept.
		key, secret, err := svc.CreateAPIKey(ctx, admin, auth.APIKeyInput{Name: "deploys", Role: db.RoleResponder})
		if err != nil {
			t.Fatal(err)
		}
		wantExactly(t, tr.one(audit.APIKey, key.ID, audit.Created, "root@example.com"), map[string]string{
			"name": `{"to":"deploys"}`, "userId": `{"to":` + id(admin.ID) + `}`, "role": `{"to":"RESPONDER"}`,
			"keyHash": `{"to":"[redacted]"}`, "prefix": `{"to":"` + key.Prefix + `"}`, "expiresAt": "*",
		})
		if err := svc.RevokeAPIKey(ctx, key.ID); err != nil {
			t.Fatal(err)
		}
		tr.one(audit.APIKey, key.ID, audit.Deleted, "root@example.com")

		if err := svc.DeleteUser(ctx, ann.ID); err != nil {
			t.Fatal(err)
		}
		wantExactly(t, tr.one(audit.User, ann.ID, audit.Deleted, "root@example.com"), map[string]string{
			"email": `{"from":"ann@example.com"}`, "name": "*", "role": `{"from":"RESPONDER"}`,
			"password": `{"from":"[redacted]"}`, "tokenVersion": `{"from":2}`,
		})

		for _, e := range tr.all {
			for _, s := range []string{secret, key.KeyHash, admin.PasswordHash, "ann-password", "another-password", "first-password"} {
				if strings.Contains(e.Changes, s) {
					t.Errorf("entry %d holds a secret: %s", e.ID, e.Changes)
				}
			}
		}
	})
}
