package server_test

import (
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// harnessEmailDomain is the inbound mail domain of the harness's
// resolvers.
const harnessEmailDomain = "alerts.klaxon.example"

// TestEmailAddressVisibility checks that an EMAIL integration's address
// is its routing key at the inbound domain, shown to admins only, and
// that other types have none.
func TestEmailAddressVisibility(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		mail, generic := h.createIntegration("EMAIL"), h.createIntegration("GENERIC")
		read := func(token, id string) *string {
			t.Helper()
			var data struct {
				Integration struct {
					EmailAddress *string `json:"emailAddress"`
				} `json:"integration"`
			}
			h.mustGQL(token, `query($id: ID!) { integration(id: $id) { emailAddress } }`, map[string]any{"id": id}, &data)
			return data.Integration.EmailAddress
		}
		key := h.routingKey(h.admin.Token, mail.ID)
		if got := read(h.admin.Token, mail.ID); got == nil || key == nil || *got != *key+"@"+harnessEmailDomain {
			t.Errorf("admin reads emailAddress %v; want the routing key %v at %s", got, key, harnessEmailDomain)
		}
		if got := read(h.admin.Token, generic.ID); got != nil {
			t.Errorf("a GENERIC integration has emailAddress %q", *got)
		}
		for _, role := range []db.Role{db.RoleViewer, db.RoleResponder} {
			if got := read(h.newUser(role).Token, mail.ID); got != nil {
				t.Errorf("%s reads emailAddress %q", role, *got)
			}
		}
	})
}
