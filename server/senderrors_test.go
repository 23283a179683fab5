package server_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/egress"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/server"
)

// A VIEWER reads every alert's notifications and timeline, but not other
// users' contact methods. When a send to a webhook or Slack URL fails,
// what is stored and what the API shows says why (connection refused, no
// such host, the status) and gives away no part of the URL — its path is
// the webhook's key — nor the resolver's address.
func TestFailedSendsKeepContactURLsSecret(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		h := newHarness(t, d, server.Config{})
		const resolver = "10.53.0.2:53"
		guard := egress.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, func(_ context.Context, _, host string) ([]netip.Addr, error) {
			return nil, &net.DNSError{Err: "no such host", Name: host, Server: resolver, IsNotFound: true}
		})
		h.channels.SetGuard(guard)
		h.channels.SetSenders(notifiers.Senders{db.ContactWebhook: notifiers.NewWebhook(guard), db.ContactSlack: notifiers.NewSlack(guard)})

		closed := httptest.NewServer(http.NotFoundHandler())
		closedHost := closed.Listener.Addr().String()
		closed.Close()
		echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Cannot POST "+r.URL.Path, http.StatusInternalServerError)
		}))
		t.Cleanup(echo.Close)
		echoHost := echo.Listener.Addr().String()

		owner := h.newUser(db.RoleResponder)
		methods := []struct{ typ, value, want string }{
			{"WEBHOOK", "http://" + closedHost + "/hooks/closedSECRET1", "connection refused"},
			{"SLACK", "https://hooks.internal.example/services/T0/B0/dnsSECRET2", "no such host"},
			{"WEBHOOK", "http://" + echoHost + "/hooks/statusSECRET3", "500"},
		}
		for _, m := range methods {
			var cm struct {
				C struct{ ID string } `json:"createContactMethod"`
			}
			h.mustGQL(owner.Token, `mutation($user: ID!, $type: ContactType!, $value: String!) {
				createContactMethod(input: {userId: $user, type: $type, value: $value}) { id } }`,
				map[string]any{"user": owner.ID, "type": m.typ, "value": m.value}, &cm)
			h.mustGQL(owner.Token, `mutation($cm: ID!) { createNotificationRule(input: {contactMethodId: $cm, delayMinutes: 0}) { id } }`,
				map[string]any{"cm": cm.C.ID}, nil)
		}
		var policy struct {
			P struct{ ID string } `json:"createEscalationPolicy"`
		}
		h.mustGQL(h.admin.Token, `mutation($user: ID!) {
			createEscalationPolicy(input: {name: "secret keeping", steps: [{delayMinutes: 30, targets: [{type: USER, id: $user}]}]}) { id } }`,
			map[string]any{"user": owner.ID}, &policy)
		var integ struct {
			I integration `json:"createIntegration"`
		}
		h.mustGQL(h.admin.Token, `mutation($policy: ID!) {
			createIntegration(input: {name: "paged", type: DETECTIFY, escalationPolicyId: $policy}) { id url } }`,
			map[string]any{"policy": policy.P.ID}, &integ)
		alertID := h.postWebhook(integ.I.Token(t), finding(h.unique("f"), "high")).alert()
		for range 3 { // the step, then its notifications
			if _, err := h.alerting.RunDueJobs(ctx); err != nil {
				t.Fatal(err)
			}
		}

		viewer := h.newUser(db.RoleViewer)
		var seen struct {
			Alert struct {
				Notifications []struct{ Status, Error string } `json:"notifications"`
				Timeline      []struct{ Message string }       `json:"timeline"`
			} `json:"alert"`
		}
		h.mustGQL(viewer.Token, `query($id: ID!) { alert(id: $id) { notifications { status error } timeline { message } } }`,
			map[string]any{"id": alertID}, &seen)
		var shown []string
		for _, n := range seen.Alert.Notifications {
			shown = append(shown, n.Error)
		}
		for _, e := range seen.Alert.Timeline {
			shown = append(shown, e.Message)
		}
		var stored []string
		if err := d.NewSelect().Model((*db.Notification)(nil)).Column("error").Scan(ctx, &stored); err != nil {
			t.Fatal(err)
		}
		var jobErrors []string
		if err := d.NewSelect().Model((*db.AlertJob)(nil)).Column("last_error").Where("last_error <> ''").Scan(ctx, &jobErrors); err != nil {
			t.Fatal(err)
		}
		all := strings.Join(append(append(shown, stored...), jobErrors...), "\n")
		if len(seen.Alert.Notifications) != len(methods) || len(jobErrors) == 0 {
			t.Fatalf("notifications %+v, job errors %q", seen.Alert.Notifications, jobErrors)
		}
		for _, leak := range []string{"SECRET", "/hooks/", "/services/", "hooks.internal.example", closedHost, echoHost, "127.0.0.1", resolver, "10.53.0.2"} {
			if strings.Contains(all, leak) {
				t.Errorf("%q is given away in:\n%s", leak, all)
			}
		}
		for _, m := range methods {
			if !strings.Contains(strings.Join(shown, "\n"), m.want) {
				t.Errorf("no error says %q:\n%s", m.want, all)
			}
		}
	})
}
