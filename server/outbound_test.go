package server_test

import (
	"context"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// A contact method whose URL plainly points at this machine or the
// private network is refused when it is saved, with the reason; the
// check when sending holds for names that resolve there.
func TestContactMethodURLsMustNotBeLocal(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		user := h.newUser(db.RoleViewer)
		for _, c := range []struct{ typ, value, class string }{
			{"WEBHOOK", "http://127.0.0.1:9/hook", "loopback"},
			{"WEBHOOK", "https://localhost/hook", "loopback"},
			{"SLACK", "https://10.0.0.5/services/T/B/X", "private"},
			{"TEAMS", "https://169.254.169.254/latest/meta-data/", "link-local"},
			{"NTFY", "https://[::ffff:192.168.1.10]/alerts", "private"},
			{"WEBHOOK", "https://[fd00::1]/hook", "unique-local"},
		} {
			e := h.wantGQLError(user.Token, `mutation($user: ID!, $type: ContactType!, $value: String!) {
				createContactMethod(input: {userId: $user, type: $type, value: $value}) { id } }`,
				map[string]any{"user": user.ID, "type": c.typ, "value": c.value}, "BAD_USER_INPUT")
			if e.Extensions.Field != "value" || !strings.Contains(e.Message, c.class+" address") || !strings.Contains(e.Message, "KLAXON_OUTBOUND_ALLOW") {
				t.Errorf("%s %s: %+v", c.typ, c.value, e)
			}
		}
		if n, err := d.NewSelect().Model((*db.ContactMethod)(nil)).Count(context.Background()); err != nil || n != 0 {
			t.Fatalf("refused contact methods were stored: %d %v", n, err)
		}
	})
}
