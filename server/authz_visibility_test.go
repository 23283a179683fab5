package server_test

import (
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// TestAuthzFieldVisibility checks the fields that every signed-in user
// may query but whose contents depend on who asks.
func TestAuthzFieldVisibility(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f0 := newAuthzFixture(t, d)
		cmID, address := f0.newContactMethod()
		ruleID := f0.adminID(`mutation($cm: ID!) { createNotificationRule(input: {contactMethodId: $cm, delayMinutes: 0}) { id } }`,
			map[string]any{"cm": cmID})
		var created struct {
			Key struct {
				APIKey struct{ ID string } `json:"apiKey"`
			} `json:"createApiKey"`
		}
		f0.mustGQL(f0.owner.Token, `mutation { createApiKey(input: {name: "owner's", role: VIEWER}) { apiKey { id } } }`, nil, &created)
		keyID := created.Key.APIKey.ID

		for _, c := range []authzCaller{callerViewer, callerResponder, callerOwner, callerAdmin} {
			t.Run(c.name, func(t *testing.T) {
				f := f0.with(t)
				as := map[string]session{"VIEWER": f.viewer, "RESPONDER": f.responder, "owner": f.owner, "ADMIN": f.admin}[c.name]
				mayManage := ruleSelfOrAdmin.allows(c)
				var data struct {
					User struct {
						ContactMethods []struct {
							ID, Value string
						} `json:"contactMethods"`
						NotificationRules []struct{ ID string } `json:"notificationRules"`
					} `json:"user"`
					Users []struct {
						ID             string
						ContactMethods []struct{ ID string } `json:"contactMethods"`
					} `json:"users"`
					APIKeys []struct {
						ID    string
						Owner struct{ ID string }
					} `json:"apiKeys"`
					Integrations []struct {
						URL        *string `json:"url"`
						RoutingKey *string `json:"routingKey"`
					} `json:"integrations"`
					Integration struct {
						URL        *string `json:"url"`
						RoutingKey *string `json:"routingKey"`
					} `json:"integration"`
				}
				f.mustGQL(as.Token, `query($owner: ID!, $integ: ID!) {
					user(id: $owner) { contactMethods { id value } notificationRules { id } }
					users { id contactMethods { id } }
					apiKeys { id owner { id } }
					integrations { url routingKey }
					integration(id: $integ) { url routingKey } }`,
					map[string]any{"owner": f.owner.ID, "integ": f.integ.ID}, &data)

				// Someone else's contact methods and notification rules are
				// hidden altogether, not just refused on edit.
				cms, rules := data.User.ContactMethods, data.User.NotificationRules
				if mayManage {
					if len(cms) != 1 || cms[0].ID != cmID || cms[0].Value != address || len(rules) != 1 || rules[0].ID != ruleID {
						t.Errorf("%s sees the owner's contact methods %+v and rules %+v", c.name, cms, rules)
					}
				} else if len(cms) != 0 || len(rules) != 0 {
					t.Errorf("%s sees the owner's contact methods %+v and rules %+v", c.name, cms, rules)
				}
				for _, u := range data.Users {
					if u.ID == f.owner.ID && len(u.ContactMethods) != len(cms) {
						t.Errorf("users lists %d contact methods of the owner, user %d", len(u.ContactMethods), len(cms))
					}
				}

				// API keys: one's own; everyone's for admins.
				sawOwners := false
				for _, k := range data.APIKeys {
					if k.ID == keyID {
						sawOwners = true
					}
					if c.role != db.RoleAdmin && k.Owner.ID != as.ID {
						t.Errorf("%s sees API key %s of user %s", c.name, k.ID, k.Owner.ID)
					}
				}
				if sawOwners != mayManage {
					t.Errorf("%s sees the owner's API key: %v", c.name, sawOwners)
				}

				// The webhook URL carries the integration's secret token.
				urls := []*string{data.Integration.URL}
				for _, i := range data.Integrations {
					urls = append(urls, i.URL)
				}
				for _, u := range urls {
					if c.role == db.RoleAdmin && (u == nil || !strings.Contains(*u, "/webhooks/")) {
						t.Errorf("admin sees url %v", u)
					}
					if c.role != db.RoleAdmin && u != nil {
						t.Errorf("%s sees url %q", c.name, *u)
					}
				}

				// So is the routing key, the integration's other secret.
				keys := []*string{data.Integration.RoutingKey}
				for _, i := range data.Integrations {
					keys = append(keys, i.RoutingKey)
				}
				for _, k := range keys {
					if c.role == db.RoleAdmin && (k == nil || len(*k) != 32) {
						t.Errorf("admin sees routing key %v", k)
					}
					if c.role != db.RoleAdmin && k != nil {
						t.Errorf("%s sees routing key %q", c.name, *k)
					}
				}
			})
		}
	})
}

// TestAuthzAPIKeyCannotTakeOverItsOwner: a key calls the API with the
// lesser of its own and its owner's role, and must not be able to change
// the owner's credentials and so sign in with the owner's full role, nor
// outlive its revocation.
func TestAuthzAPIKeyCannotTakeOverItsOwner(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	keyOf := func(owner session, role string) string {
		var data struct {
			Key struct{ Secret string } `json:"createApiKey"`
		}
		h.mustGQL(owner.Token, `mutation($role: Role!) { createApiKey(input: {name: "key", role: $role}) { secret } }`,
			map[string]any{"role": role}, &data)
		return data.Key.Secret
	}
	const update = `mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id } }`
	readOnly := keyOf(h.admin, "VIEWER")
	for _, input := range []map[string]any{
		{"password": "a password of my choosing"},
		{"email": "attacker@example.com"},
	} {
		h.wantGQLError(readOnly, update, map[string]any{"id": h.admin.ID, "input": input}, "FORBIDDEN")
	}
	h.wantGQLError("", `mutation { login(email: "`+h.admin.Email+`", password: "a password of my choosing") { token } }`, nil, "UNAUTHENTICATED")
	h.login(h.admin.Email, h.admin.Password)

	// What the key's role allows on its own is still allowed; but no key,
	// even one with its owner's full role, changes the owner's
	// credentials or makes further keys, so revoking it ends it.
	h.mustGQL(readOnly, update, map[string]any{"id": h.admin.ID, "input": map[string]any{"name": "Renamed by key"}}, nil)
	viewer := h.newUser(db.RoleViewer)
	full := keyOf(viewer, "VIEWER")
	h.wantGQLError(full, update, map[string]any{"id": viewer.ID, "input": map[string]any{"password": "a password of my choosing"}}, "FORBIDDEN")
	h.wantGQLError(full, `mutation { createApiKey(input: {name: "another", role: VIEWER}) { secret } }`, nil, "FORBIDDEN")
	h.mustGQL(viewer.Token, update, map[string]any{"id": viewer.ID, "input": map[string]any{"password": "a password of my choosing"}}, nil)
	h.login(viewer.Email, "a password of my choosing")
}
