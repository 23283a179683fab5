package alerting_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// A team's responder paged for its alert acknowledges by SMS reply and by
// chat button as by link: a team role counts for the replies and buttons
// too, and only on that team's alerts.
func TestRepliesAndChatFollowTheTeamRole(t *testing.T) {
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
		f.insert(group)
		const number = "+15551230077"
		f.insert(&db.ContactMethod{UserID: member, Type: db.ContactSMS, Value: number, Verified: true, CreatedAt: f.clock.Now()})
		exec("UPDATE users SET role = ? WHERE id = ?", db.RoleMember, member)
		exec("INSERT INTO group_members (group_id, user_id, role) VALUES (?, ?, ?)", group.ID, member, db.TeamObserver)
		exec("UPDATE integrations SET team_id = ? WHERE id = ?", group.ID, f.integ.ID)
		reply := func(body string) string {
			t.Helper()
			answer, err := f.svc.ReplyToSMS(f.ctx, number, body)
			if err != nil {
				t.Fatal(err)
			}
			return answer
		}
		status := func(alertID int) db.AlertStatus {
			t.Helper()
			a, err := f.svc.Alert(f.ctx, alertID)
			if err != nil {
				t.Fatal(err)
			}
			return a.Status
		}

		first, second := f.open(), f.open()
		if got := reply("ack " + strconv.Itoa(first)); !strings.Contains(got, "does not allow") || status(first) != db.AlertOpen {
			t.Fatalf("an observer of the team acknowledged by SMS: %q, %s", got, status(first))
		}
		if _, err := f.svc.ActFromChat(f.ctx, first, member, alerting.ChatAcknowledge, "Slack"); !errors.Is(err, alerting.ErrRoleCannotAct) {
			t.Fatalf("an observer of the team acknowledged from chat: %v", err)
		}

		exec("UPDATE group_members SET role = ? WHERE user_id = ?", db.TeamResponder, member)
		if got := reply("ack " + strconv.Itoa(first)); !strings.HasPrefix(got, "Acknowledged") || status(first) != db.AlertAcknowledged {
			t.Fatalf("a responder of the team could not acknowledge by SMS: %q, %s", got, status(first))
		}
		if _, err := f.svc.ActFromChat(f.ctx, second, member, alerting.ChatClose, "Slack"); err != nil || status(second) != db.AlertClosed {
			t.Fatalf("a responder of the team could not close from chat: %v, %s", err, status(second))
		}

		exec("UPDATE integrations SET team_id = NULL WHERE id = ?", f.integ.ID)
		third := f.open()
		if got := reply("close " + strconv.Itoa(third)); !strings.Contains(got, "does not allow") || status(third) != db.AlertOpen {
			t.Fatalf("a MEMBER closed an organisation-wide alert by SMS: %q, %s", got, status(third))
		}
		if _, err := f.svc.ActFromChat(f.ctx, third, member, alerting.ChatEscalate, "Mattermost"); !errors.Is(err, alerting.ErrRoleCannotAct) {
			t.Fatalf("a MEMBER escalated an organisation-wide alert from chat: %v", err)
		}
	})
}
