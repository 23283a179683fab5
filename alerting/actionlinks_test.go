package alerting_test

import (
	"errors"
	"github.com/klaxonhq/klaxon/invalid"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// page opens an alert, lets the engine notify alice, and returns the
// alert and the ack and close tokens her notification carried.
func (f *engineFixture) page() (alertID int, ack, closeToken string) {
	f.t.Helper()
	alertID = f.open()
	if _, err := f.svc.RunDueJobs(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	got := f.inbox.takeDeliveries()
	if len(got) != 1 {
		f.t.Fatalf("deliveries: %+v", got)
	}
	const prefix = "https://klaxon.example/actions/"
	if !strings.HasPrefix(got[0].AckURL, prefix) || !strings.HasPrefix(got[0].CloseURL, prefix) || got[0].AckURL == got[0].CloseURL {
		f.t.Fatalf("action links: %+v", got[0])
	}
	return alertID, strings.TrimPrefix(got[0].AckURL, prefix), strings.TrimPrefix(got[0].CloseURL, prefix)
}

func TestActionLinksActOnceAndExpire(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice", 0)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: alice}), step(10, db.Target{Type: db.TargetUser, ID: alice}))

		alertID, ack, closeToken := f.page()
		if _, _, err := f.svc.ActionLink(f.ctx, ack); err != nil {
			t.Fatalf("looking at a fresh link: %v", err)
		}
		a, action, err := f.svc.UseActionLink(f.ctx, ack)
		if err != nil || action != db.LinkAcknowledge || a.Status != db.AlertAcknowledged || a.AcknowledgedBy == nil || *a.AcknowledgedBy != alice {
			t.Fatalf("acknowledge by link: %+v %s %v", a, action, err)
		}
		if _, _, err := f.svc.UseActionLink(f.ctx, ack); !errors.Is(err, alerting.ErrActionLinkUsed) {
			t.Fatalf("second use: %v", err)
		}
		// Acknowledged: the next step never fires.
		if got := f.at(15); len(got) != 0 {
			t.Fatalf("escalated after an acknowledge by link: %v", got)
		}
		if _, _, err := f.svc.UseActionLink(f.ctx, closeToken); err != nil {
			t.Fatalf("close by link: %v", err)
		}
		tl := strings.Join(f.timeline(alertID), "; ")
		if !strings.Contains(tl, "Acknowledged from a notification link") || !strings.Contains(tl, "Closed from a notification link") {
			t.Fatalf("timeline: %s", tl)
		}

		// An acknowledge link for an alert closed meanwhile is refused and
		// stays unused.
		second, ack2, _ := f.page()
		if _, err := f.svc.Close(f.ctx, second, alice); err != nil {
			t.Fatal(err)
		}
		var invalid *invalid.Field
		if _, _, err := f.svc.UseActionLink(f.ctx, ack2); !errors.As(err, &invalid) {
			t.Fatalf("acknowledge of a closed alert: %v", err)
		}
		var used int
		if err := d.NewSelect().Model((*db.ActionLink)(nil)).ColumnExpr("count(*)").Where("alert_id = ? AND used_at IS NOT NULL", second).Scan(f.ctx, &used); err != nil || used != 0 {
			t.Fatalf("a refused link was used up: %d %v", used, err)
		}

		third, ack3, _ := f.page()
		f.clock.Advance(alerting.ActionLinkTTL)
		if _, _, err := f.svc.UseActionLink(f.ctx, ack3); !errors.Is(err, alerting.ErrActionLinkExpired) {
			t.Fatalf("expired link: %v", err)
		}
		if a, _ := f.svc.Alert(f.ctx, third); a.Status != db.AlertOpen {
			t.Fatalf("an expired link changed the alert: %s", a.Status)
		}
		if _, _, err := f.svc.UseActionLink(f.ctx, "forged"+ack3[6:]); !errors.Is(err, alerting.ErrActionLinkUnknown) {
			t.Fatalf("unknown token: %v", err)
		}
	})
}

// A link acts with the role its person has when it is used: a VIEWER's
// link, and a RESPONDER's after a demotion, are refused like
// acknowledgeAlert over the API, change nothing and stay unused.
func TestActionLinksFollowTheRoleNow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		setRole := func(userID int, role db.Role) {
			t.Helper()
			if _, err := d.NewUpdate().Model((*db.User)(nil)).Set("role = ?", role).Where("id = ?", userID).Exec(f.ctx); err != nil {
				t.Fatal(err)
			}
		}
		refused := func(what string, alertID int, tokens ...string) {
			t.Helper()
			for _, token := range tokens {
				if _, _, err := f.svc.ActionLink(f.ctx, token); !errors.Is(err, alerting.ErrRoleCannotAct) {
					t.Fatalf("%s: looking at the link: %v", what, err)
				}
				if _, _, err := f.svc.UseActionLink(f.ctx, token); !errors.Is(err, alerting.ErrRoleCannotAct) {
					t.Fatalf("%s: using the link: %v", what, err)
				}
			}
			if a, _ := f.svc.Alert(f.ctx, alertID); a.Status != db.AlertOpen {
				t.Fatalf("%s: the alert became %s", what, a.Status)
			}
			var used int
			if err := d.NewSelect().Model((*db.ActionLink)(nil)).ColumnExpr("count(*)").Where("alert_id = ? AND used_at IS NOT NULL", alertID).Scan(f.ctx, &used); err != nil || used != 0 {
				t.Fatalf("%s: a refused link was used up: %d %v", what, used, err)
			}
		}

		viewer := f.user("vera", 0)
		setRole(viewer, db.RoleViewer)
		responder := f.user("rita", 0)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: viewer}, db.Target{Type: db.TargetUser, ID: responder}))
		alertID := f.open()
		if _, err := f.svc.RunDueJobs(f.ctx); err != nil {
			t.Fatal(err)
		}
		const prefix = "https://klaxon.example/actions/"
		links := map[string][2]string{}
		for _, got := range f.inbox.takeDeliveries() {
			links[got.Path] = [2]string{strings.TrimPrefix(got.AckURL, prefix), strings.TrimPrefix(got.CloseURL, prefix)}
		}
		vera, rita := links["/vera/0"], links["/rita/0"]
		if len(links) != 2 || vera[0] == "" || rita[0] == "" {
			t.Fatalf("deliveries: %v", links)
		}
		refused("a VIEWER recipient", alertID, vera[0], vera[1])

		setRole(responder, db.RoleViewer)
		refused("a RESPONDER demoted after the page", alertID, rita[0], rita[1])

		// Promoted again, the same link works: the refusal used nothing up.
		setRole(responder, db.RoleResponder)
		if a, _, err := f.svc.UseActionLink(f.ctx, rita[1]); err != nil || a.Status != db.AlertClosed || *a.ClosedBy != responder {
			t.Fatalf("close after promotion: %+v %v", a, err)
		}
	})
}

// A MEMBER acts from a link on the alerts of a team where they are a
// RESPONDER or MANAGER, as acknowledgeAlert allows over the API, and not
// as its OBSERVER or once the alert's integration leaves the team.
func TestActionLinksFollowTheTeamRole(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		member := f.user("mona", 0)
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := d.NewRaw(q, args...).Exec(f.ctx); err != nil {
				t.Fatal(err)
			}
		}
		group := &db.Group{Name: "Payments", CreatedAt: f.clock.Now()}
		if _, err := d.NewInsert().Model(group).Exec(f.ctx); err != nil {
			t.Fatal(err)
		}
		exec("UPDATE users SET role = ? WHERE id = ?", db.RoleMember, member)
		exec("INSERT INTO group_members (group_id, user_id, role) VALUES (?, ?, ?)", group.ID, member, db.TeamObserver)
		exec("UPDATE integrations SET team_id = ? WHERE id = ?", group.ID, f.integ.ID)
		f.policy(0, step(10, db.Target{Type: db.TargetUser, ID: member}))

		alertID, ack, _ := f.page()
		if _, _, err := f.svc.UseActionLink(f.ctx, ack); !errors.Is(err, alerting.ErrRoleCannotAct) {
			t.Fatalf("an observer of the team acknowledged by link: %v", err)
		}
		exec("UPDATE group_members SET role = ? WHERE user_id = ?", db.TeamResponder, member)
		a, _, err := f.svc.UseActionLink(f.ctx, ack)
		if err != nil || a.ID != alertID || a.Status != db.AlertAcknowledged {
			t.Fatalf("a responder of the team acknowledges by link: %+v %v", a, err)
		}

		exec("UPDATE integrations SET team_id = NULL WHERE id = ?", f.integ.ID)
		_, ack, _ = f.page()
		if _, _, err := f.svc.UseActionLink(f.ctx, ack); !errors.Is(err, alerting.ErrRoleCannotAct) {
			t.Fatalf("a MEMBER acknowledged an organisation-wide alert by link: %v", err)
		}
	})
}
