package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/server"
)

const (
	slackSecret   = "8f742231b10e8888abcd99yyyzzz85a5"
	slackBotToken = "xoxb-1111-2222-klaxon"
)

// fakeSlack speaks the parts of Slack's Web API Klaxon uses: JSON or
// form bodies, Bearer bot-token auth, {"ok": …} answers.
type fakeSlack struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []slackCall
	// emails are the workspace's users by Slack id.
	emails map[string]string
}

type slackCall struct {
	Method string
	Body   map[string]any
}

func startFakeSlack(t *testing.T, emails map[string]string) *fakeSlack {
	f := &fakeSlack{emails: emails}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.Header.Get("Authorization") != "Bearer "+slackBotToken {
			io.WriteString(w, `{"ok":false,"error":"invalid_auth"}`)
			return
		}
		method := strings.TrimPrefix(r.URL.Path, "/api/")
		body := map[string]any{}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				io.WriteString(w, `{"ok":false,"error":"invalid_json"}`)
				return
			}
		} else {
			r.ParseForm()
			for k := range r.PostForm {
				body[k] = r.PostForm.Get(k)
			}
		}
		f.mu.Lock()
		f.calls = append(f.calls, slackCall{Method: method, Body: body})
		f.mu.Unlock()
		switch method {
		case "chat.postMessage":
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": "D0DIRECT1", "ts": "1700000000.000100"})
		case "chat.update":
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": body["channel"], "ts": body["ts"]})
		case "chat.postEphemeral":
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "message_ts": "1700000000.000200"})
		case "users.info":
			id, _ := body["user"].(string)
			f.mu.Lock()
			email, ok := f.emails[id]
			f.mu.Unlock()
			if !ok {
				io.WriteString(w, `{"ok":false,"error":"user_not_found"}`)
				return
			}
			// An id ending in UNCONF is a member whose address Slack has
			// not confirmed.
			json.NewEncoder(w).Encode(map[string]any{"ok": true, "user": map[string]any{
				"id": id, "is_bot": false, "is_email_confirmed": !strings.HasSuffix(id, "UNCONF"), "profile": map[string]any{"email": email},
			}})
		default:
			io.WriteString(w, `{"ok":false,"error":"unknown_method"}`)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// take returns and forgets the calls of method so far.
func (f *fakeSlack) take(method string) []slackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var got, rest []slackCall
	for _, c := range f.calls {
		if c.Method == method {
			got = append(got, c)
		} else {
			rest = append(rest, c)
		}
	}
	f.calls = rest
	return got
}

// chatFixture is a harness whose on-call RESPONDER is paged through the
// Slack app and Mattermost, with a viewer and a server clock to move.
type chatFixture struct {
	*harness
	clock      *testClock
	slack      *fakeSlack
	mattermost chan map[string]any
	key        []byte
	responder  session
	viewer     session
	integ      integration
}

func newChatFixture(t *testing.T, d *db.DB) *chatFixture {
	ctx := context.Background()
	clock := &testClock{now: time.Now().UTC().Truncate(time.Second)}
	key, err := notifiers.StoredMattermostKey(ctx, d, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	f := &chatFixture{clock: clock, key: key, mattermost: make(chan map[string]any, 10)}
	mm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var post map[string]any
		json.NewDecoder(r.Body).Decode(&post)
		f.mattermost <- post
		io.WriteString(w, "ok")
	}))
	t.Cleanup(mm.Close)
	f.slack = startFakeSlack(t, map[string]string{})
	api := notifiers.NewSlackAPI(f.slack.srv.URL+"/api", slackBotToken)
	f.harness = newHarness(t, d, server.Config{
		PublicURL: "https://klaxon.example", SlackSigningSecret: slackSecret, Slack: api, MattermostKey: key, Now: clock.Now,
	})
	f.channels.SetSenders(notifiers.Senders{
		db.ContactSlackApp:   &notifiers.SlackApp{API: api},
		db.ContactMattermost: &notifiers.Mattermost{Client: mm.Client(), ActionURL: "https://klaxon.example/mattermost/actions", Key: key, Now: clock.Now},
	})
	f.responder = f.createUser(db.RoleResponder)
	f.viewer = f.createUser(db.RoleViewer)
	f.slack.mu.Lock()
	f.slack.emails["U0RESPOND1"] = strings.ToUpper(f.responder.Email) // Slack keeps the case people typed
	f.slack.emails["U0VIEWER01"] = f.viewer.Email
	f.slack.emails["U0STRANGER"] = "stranger@example.com"
	f.slack.emails["U0RUNCONF"] = f.responder.Email
	f.slack.mu.Unlock()
	uid, _ := strconv.Atoi(f.responder.ID)
	now := clock.Now()
	for typ, value := range map[db.ContactType]string{db.ContactSlackApp: "U0RESPOND1", db.ContactMattermost: mm.URL + "/hooks/abc"} {
		cm := &db.ContactMethod{UserID: uid, Name: string(typ), Type: typ, Value: value, Verified: true, CreatedAt: now}
		if _, err := d.NewInsert().Model(cm).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := d.NewInsert().Model(&db.NotificationRule{UserID: uid, ContactMethodID: cm.ID, CreatedAt: now}).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	policy := &db.EscalationPolicy{Name: "chat", CreatedAt: now, UpdatedAt: now}
	if _, err := d.NewInsert().Model(policy).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for position := range 2 {
		step := &db.EscalationStep{PolicyID: policy.ID, Position: position, DelayMinutes: 30, Targets: []db.Target{{Type: db.TargetUser, ID: uid}}}
		if _, err := d.NewInsert().Model(step).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	f.integ = f.createIntegration("DETECTIFY")
	if _, err := d.NewUpdate().Table("integrations").Set("escalation_policy_id = ?", policy.ID).Where("id = ?", f.integ.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	f.alerting.RoutesChanged()
	return f
}

// page opens an alert and runs the engine, which pages the responder.
func (f *chatFixture) page() int {
	f.t.Helper()
	id, err := strconv.Atoi(f.postWebhook(f.integ.Token(f.t), finding(f.unique("f"), "high")).alert())
	if err != nil {
		f.t.Fatalf("no alert opened: %v", err)
	}
	if _, err := f.alerting.RunDueJobs(context.Background()); err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *chatFixture) status(alertID int) db.AlertStatus {
	f.t.Helper()
	a, err := f.alerting.Alert(context.Background(), alertID)
	if err != nil {
		f.t.Fatal(err)
	}
	return a.Status
}

func slackSign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:", timestamp)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// slackClick is the block_actions request Slack sends when slackUser
// presses actionID on the page for alertID.
func slackClick(slackUser, actionID string, alertID int) []byte {
	payload, _ := json.Marshal(map[string]any{
		"type": "block_actions", "user": map[string]any{"id": slackUser, "username": "someone"},
		"channel":   map[string]any{"id": "D0DIRECT1"},
		"container": map[string]any{"type": "message", "message_ts": "1700000000.000100", "channel_id": "D0DIRECT1"},
		"actions":   []map[string]any{{"type": "button", "action_id": actionID, "value": strconv.Itoa(alertID), "block_id": "klaxon_alert"}},
	})
	return []byte(url.Values{"payload": {string(payload)}}.Encode())
}

func (f *chatFixture) postSlack(body []byte, timestamp, signature string) int {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/slack/actions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", timestamp)
	req.Header.Set("X-Slack-Signature", signature)
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// click sends a click signed now by the server's clock.
func (f *chatFixture) click(slackUser, actionID string, alertID int) int {
	body := slackClick(slackUser, actionID, alertID)
	ts := strconv.FormatInt(f.clock.Now().Unix(), 10)
	return f.postSlack(body, ts, slackSign(slackSecret, ts, body))
}

func blockText(call slackCall) string {
	b, _ := json.Marshal(call.Body["blocks"])
	return string(b)
}

func actionIDs(call slackCall) []string {
	var ids []string
	blocks, _ := call.Body["blocks"].([]any)
	for _, b := range blocks {
		block, _ := b.(map[string]any)
		if block["type"] != "actions" {
			continue
		}
		elems, _ := block["elements"].([]any)
		for _, e := range elems {
			el, _ := e.(map[string]any)
			ids = append(ids, fmt.Sprintf("%s=%s", el["action_id"], el["value"]))
		}
	}
	return ids
}

func TestSlackAppPagesWithButtonsThatAct(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newChatFixture(t, d)
		alertID := f.page()

		posts := f.slack.take("chat.postMessage")
		if len(posts) != 1 || posts[0].Body["channel"] != "U0RESPOND1" {
			t.Fatalf("chat.postMessage calls: %+v", posts)
		}
		id := strconv.Itoa(alertID)
		if got, want := strings.Join(actionIDs(posts[0]), " "), "klaxon_acknowledge="+id+" klaxon_close="+id+" klaxon_escalate="+id; got != want {
			t.Fatalf("buttons %q, want %q", got, want)
		}
		if text := blockText(posts[0]); !strings.Contains(text, fmt.Sprintf("[Klaxon #%d] HIGH: Finding", alertID)) {
			t.Fatalf("page blocks: %s", text)
		}

		// A viewer may not act: told why, alone, and nothing changes.
		if code := f.click("U0VIEWER01", notifiers.SlackActionAcknowledge, alertID); code != http.StatusOK {
			t.Fatalf("viewer click: %d", code)
		}
		eph := f.slack.take("chat.postEphemeral")
		if len(eph) != 1 || eph[0].Body["user"] != "U0VIEWER01" || !strings.Contains(fmt.Sprint(eph[0].Body["text"]), "role") {
			t.Fatalf("viewer explanation: %+v", eph)
		}
		// Someone in Slack who is not in Klaxon likewise.
		if code := f.click("U0STRANGER", notifiers.SlackActionClose, alertID); code != http.StatusOK {
			t.Fatalf("stranger click: %d", code)
		}
		eph = f.slack.take("chat.postEphemeral")
		if len(eph) != 1 || eph[0].Body["user"] != "U0STRANGER" || !strings.Contains(fmt.Sprint(eph[0].Body["text"]), "not a Klaxon user") {
			t.Fatalf("stranger explanation: %+v", eph)
		}
		// Nor does an address Slack has not confirmed, even a Klaxon
		// user's.
		if code := f.click("U0RUNCONF", notifiers.SlackActionClose, alertID); code != http.StatusOK {
			t.Fatalf("unconfirmed click: %d", code)
		}
		eph = f.slack.take("chat.postEphemeral")
		if len(eph) != 1 || eph[0].Body["user"] != "U0RUNCONF" || !strings.Contains(fmt.Sprint(eph[0].Body["text"]), "not a Klaxon user") {
			t.Fatalf("unconfirmed explanation: %+v", eph)
		}
		if s := f.status(alertID); s != db.AlertOpen {
			t.Fatalf("after refused clicks the alert is %s", s)
		}
		if got := f.slack.take("chat.update"); len(got) != 0 {
			t.Fatalf("refused clicks edited the page: %+v", got)
		}

		// The responder's click acknowledges and edits the page in place.
		if code := f.click("U0RESPOND1", notifiers.SlackActionAcknowledge, alertID); code != http.StatusOK {
			t.Fatalf("responder click: %d", code)
		}
		if s := f.status(alertID); s != db.AlertAcknowledged {
			t.Fatalf("after the responder's click the alert is %s", s)
		}
		updates := f.slack.take("chat.update")
		if len(updates) != 1 || updates[0].Body["ts"] != "1700000000.000100" || updates[0].Body["channel"] != "D0DIRECT1" {
			t.Fatalf("chat.update calls: %+v", updates)
		}
		if text := blockText(updates[0]); !strings.Contains(text, "Acknowledged by User "+f.responder.Email) {
			t.Fatalf("edited page does not say who acknowledged: %s", text)
		}
		if got := actionIDs(updates[0]); len(got) != 1 || got[0] != "klaxon_close="+id {
			t.Fatalf("buttons left on an acknowledged alert: %v", got)
		}
		timeline, err := f.alerting.Timeline(context.Background(), alertID)
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, e := range timeline {
			found = found || (e.Type == db.LogAcknowledged && e.Message == "Acknowledged from Slack" && e.UserID != nil && strconv.Itoa(*e.UserID) == f.responder.ID)
		}
		if !found {
			t.Fatalf("no acknowledgement by the responder from Slack on the timeline: %+v", timeline)
		}

		// Closing from the edited page.
		if code := f.click("U0RESPOND1", notifiers.SlackActionClose, alertID); code != http.StatusOK || f.status(alertID) != db.AlertClosed {
			t.Fatalf("close click: %d, alert %s", code, f.status(alertID))
		}
		if got := f.slack.take("chat.update"); len(got) != 1 || len(actionIDs(got[0])) != 0 {
			t.Fatalf("a closed alert's page keeps buttons: %+v", got)
		}
	})
}

func TestSlackEscalateButtonRunsTheNextStepNow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newChatFixture(t, d)
		alertID := f.page()
		f.slack.take("chat.postMessage")
		if code := f.click("U0RESPOND1", notifiers.SlackActionEscalate, alertID); code != http.StatusOK {
			t.Fatalf("escalate click: %d", code)
		}
		updates := f.slack.take("chat.update")
		if len(updates) != 1 || !strings.Contains(blockText(updates[0]), "Escalated by") {
			t.Fatalf("chat.update after escalate: %+v", updates)
		}
		// The second step runs now, not in 30 minutes; the policy has no
		// third, so a second escalate is explained and changes nothing.
		if _, err := f.alerting.RunDueJobs(context.Background()); err != nil {
			t.Fatal(err)
		}
		if again := f.slack.take("chat.postMessage"); len(again) != 1 {
			t.Fatalf("pages after escalate: %+v", again)
		}
		if code := f.click("U0RESPOND1", notifiers.SlackActionEscalate, alertID); code != http.StatusOK {
			t.Fatalf("second escalate click: %d", code)
		}
		if eph := f.slack.take("chat.postEphemeral"); len(eph) != 1 || !strings.Contains(fmt.Sprint(eph[0].Body["text"]), "Nothing was changed") {
			t.Fatalf("second escalate: %+v", eph)
		}
	})
}

func TestSlackActionsRefuseBadSignatures(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newChatFixture(t, d)
		alertID := f.page()
		body := slackClick("U0RESPOND1", notifiers.SlackActionAcknowledge, alertID)
		now := strconv.FormatInt(f.clock.Now().Unix(), 10)
		old := strconv.FormatInt(f.clock.Now().Add(-6*time.Minute).Unix(), 10)
		for name, c := range map[string]struct{ ts, sig string }{
			"no signature":       {now, ""},
			"other secret":       {now, slackSign("not-the-secret", now, body)},
			"body changed":       {now, slackSign(slackSecret, now, append([]byte("x"), body...))},
			"timestamp replaced": {now, slackSign(slackSecret, old, body)},
			"six minutes old":    {old, slackSign(slackSecret, old, body)},
			"not a timestamp":    {"soon", slackSign(slackSecret, "soon", body)},
		} {
			if code := f.postSlack(body, c.ts, c.sig); code != http.StatusUnauthorized {
				t.Errorf("%s: %d, want 401", name, code)
			}
		}
		// A good request replayed after the window is refused too.
		sig := slackSign(slackSecret, now, body)
		f.clock.Advance(5*time.Minute + time.Second)
		if code := f.postSlack(body, now, sig); code != http.StatusUnauthorized {
			t.Errorf("replayed after 5 minutes: %d, want 401", code)
		}
		if s := f.status(alertID); s != db.AlertOpen {
			t.Fatalf("a refused request changed the alert: %s", s)
		}
		if calls := f.slack.take("users.info"); len(calls) != 0 {
			t.Fatalf("a refused request reached Slack: %+v", calls)
		}
	})
}

// mattermostButtons are the actions of a Mattermost page, by id.
func mattermostButtons(t *testing.T, post map[string]any) map[string]notifiers.MattermostContext {
	t.Helper()
	raw, _ := json.Marshal(post["attachments"])
	var atts []struct {
		Actions []struct {
			ID          string `json:"id"`
			Integration struct {
				URL     string                      `json:"url"`
				Context notifiers.MattermostContext `json:"context"`
			} `json:"integration"`
		} `json:"actions"`
	}
	if err := json.Unmarshal(raw, &atts); err != nil || len(atts) != 1 {
		t.Fatalf("attachments: %s (%v)", raw, err)
	}
	out := map[string]notifiers.MattermostContext{}
	for _, a := range atts[0].Actions {
		if a.Integration.URL != "https://klaxon.example/mattermost/actions" {
			t.Fatalf("button %s posts to %s", a.ID, a.Integration.URL)
		}
		out[a.ID] = a.Integration.Context
	}
	return out
}

func (f *chatFixture) pressMattermost(c notifiers.MattermostContext) (int, map[string]any) {
	f.t.Helper()
	body, _ := json.Marshal(map[string]any{"user_id": "mm0user0id", "user_name": "alice", "channel_id": "ch1", "context": c})
	resp, err := f.client.Post(f.srv.URL+"/mattermost/actions", "application/json", bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestMattermostButtonsAreSignedAndAct(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newChatFixture(t, d)
		alertID := f.page()
		var post map[string]any
		select {
		case post = <-f.mattermost:
		default:
			t.Fatal("nothing was posted to Mattermost")
		}
		buttons := mattermostButtons(t, post)
		ack, ok := buttons["acknowledge"]
		if len(buttons) != 3 || !ok || buttons["close"].Token == "" || buttons["escalate"].Token == "" {
			t.Fatalf("buttons: %+v", buttons)
		}
		if ack.AlertID != alertID || strconv.Itoa(ack.UserID) != f.responder.ID {
			t.Fatalf("acknowledge context: %+v", ack)
		}

		// Forged: another alert, another user, another action, or a token
		// made up; each refused with nothing changed.
		other := f.page()
		forged := map[string]notifiers.MattermostContext{}
		c := ack
		c.AlertID = other
		forged["other alert"] = c
		c = ack
		c.UserID++
		forged["other user"] = c
		c = ack
		c.Action = "close"
		forged["other action"] = c
		c = ack
		c.Expires += 3600
		forged["longer life"] = c
		c = ack
		c.Token = strings.Repeat("0", 64)
		forged["made-up token"] = c
		c = ack
		c.Token = ""
		forged["no token"] = c
		for name, c := range forged {
			if code, _ := f.pressMattermost(c); code != http.StatusUnauthorized {
				t.Errorf("%s: %d, want 401", name, code)
			}
		}
		resp, err := f.client.Post(f.srv.URL+"/mattermost/actions", "application/json", strings.NewReader(`{"context":`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a body that is not JSON: %d, want 400", resp.StatusCode)
		}
		if f.status(alertID) != db.AlertOpen || f.status(other) != db.AlertOpen {
			t.Fatal("a forged button changed an alert")
		}

		// A button signed for a viewer (the person paged lacks the role):
		// explained, nothing changes.
		vid, _ := strconv.Atoi(f.viewer.ID)
		forViewer := notifiers.SignMattermostContext(f.key, notifiers.MattermostContext{AlertID: alertID, Action: "acknowledge", UserID: vid, Expires: f.clock.Now().Add(time.Hour).Unix()})
		if code, out := f.pressMattermost(forViewer); code != http.StatusOK || !strings.Contains(fmt.Sprint(out["ephemeral_text"]), "role") {
			t.Fatalf("viewer's button: %d %v", code, out)
		}
		if s := f.status(alertID); s != db.AlertOpen {
			t.Fatalf("viewer's button changed the alert: %s", s)
		}

		code, out := f.pressMattermost(ack)
		if code != http.StatusOK || f.status(alertID) != db.AlertAcknowledged {
			t.Fatalf("acknowledge: %d %v, alert %s", code, out, f.status(alertID))
		}
		update, _ := out["update"].(map[string]any)
		if msg := fmt.Sprint(update["message"]); !strings.Contains(msg, "Acknowledged by User "+f.responder.Email) || !strings.Contains(msg, "@alice") {
			t.Fatalf("update: %v", out)
		}
		left := mattermostButtons(t, update["props"].(map[string]any))
		if _, ok := left["close"]; len(left) != 1 || !ok {
			t.Fatalf("buttons left on an acknowledged alert: %+v", left)
		}

		// Buttons stop working after a day.
		f.clock.Advance(notifiers.MattermostActionTTL)
		if code, _ := f.pressMattermost(buttons["close"]); code != http.StatusUnauthorized || f.status(alertID) != db.AlertAcknowledged {
			t.Fatalf("expired button: %d, alert %s", code, f.status(alertID))
		}
	})
}

// A Slack user's email address is asked of Slack once per 5 minutes; the
// Klaxon user's role behind it is read at every press.
func TestSlackUserLookupIsCachedBriefly(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newChatFixture(t, d)
		first, second := f.page(), f.page()
		if code := f.click("U0RESPOND1", notifiers.SlackActionAcknowledge, first); code != http.StatusOK || f.status(first) != db.AlertAcknowledged {
			t.Fatalf("first click: %d, alert %s", code, f.status(first))
		}
		f.clock.Advance(4 * time.Minute)
		if code := f.click("U0RESPOND1", notifiers.SlackActionAcknowledge, second); code != http.StatusOK || f.status(second) != db.AlertAcknowledged {
			t.Fatalf("second click: %d, alert %s", code, f.status(second))
		}
		if got := f.slack.take("users.info"); len(got) != 1 {
			t.Fatalf("users.info asked %d times within 5 minutes, want once", len(got))
		}

		// Demoted since: the cached address still maps to them, and the
		// role check refuses.
		f.mustGQL(f.admin.Token, `mutation($id: ID!) { updateUser(id: $id, input: {role: VIEWER}) { id } }`, map[string]any{"id": f.responder.ID}, nil)
		if code := f.click("U0RESPOND1", notifiers.SlackActionClose, first); code != http.StatusOK || f.status(first) != db.AlertAcknowledged {
			t.Fatalf("click after demotion: %d, alert %s", code, f.status(first))
		}
		if eph := f.slack.take("chat.postEphemeral"); len(eph) != 1 || !strings.Contains(fmt.Sprint(eph[0].Body["text"]), "role") {
			t.Fatalf("explanation after demotion: %+v", eph)
		}
		if got := f.slack.take("users.info"); len(got) != 0 {
			t.Fatalf("users.info asked again within 5 minutes: %d", len(got))
		}

		f.clock.Advance(time.Minute + time.Second)
		f.click("U0RESPOND1", notifiers.SlackActionClose, first)
		if got := f.slack.take("users.info"); len(got) != 1 {
			t.Fatalf("users.info after 5 minutes: asked %d times, want once", len(got))
		}
	})
}

// Without their settings the chat routes do not exist.
func TestChatRoutesNeedTheirSettings(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	body := slackClick("U0RESPOND1", notifiers.SlackActionAcknowledge, 1)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	for path, req := range map[string]*http.Request{
		"/slack/actions":      mustRequest(t, h.srv.URL+"/slack/actions", body, map[string]string{"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": slackSign(slackSecret, ts, body)}),
		"/mattermost/actions": mustRequest(t, h.srv.URL+"/mattermost/actions", []byte(`{"context":{}}`), nil),
	} {
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s without settings: %d, want 404", path, resp.StatusCode)
		}
	}
}

func mustRequest(t *testing.T, url string, body []byte, headers map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return req
}
