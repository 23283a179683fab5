package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// TestAnswersWhileTheDatabaseIsAway cuts the server off from PostgreSQL
// and checks what every route that needs it answers: the routes that
// store (webhooks, Twilio's callbacks, action links) 503 with Retry-After
// and nothing stored, /readyz 503, GraphQL UNAVAILABLE, a new websocket
// 1013 (try again later); a websocket opened before stays open and
// delivers what is stored once the database is back.
func TestAnswersWhileTheDatabaseIsAway(t *testing.T) {
	d, relay := dbtest.PostgresBehindRelay(t)
	h := newHarness(t, d, server.Config{PublicURL: twilioPublic, TwilioAuthToken: twilioToken})
	token := h.createIntegration("DETECTIFY").Token(t)
	alertID, _ := strconv.Atoi(h.postWebhook(token, finding(h.unique("f"), "high")).alert())
	userID, _ := strconv.Atoi(h.admin.ID)
	const linkToken = "Zq1Jx0V7b2mQe9sWq4YtH8uLc1PzN6aRf5DgE-oIyTn"
	sum := sha256.Sum256([]byte(linkToken))
	now := time.Now().UTC()
	link := &db.ActionLink{TokenHash: hex.EncodeToString(sum[:]), AlertID: alertID, UserID: userID, Action: db.LinkAcknowledge, ExpiresAt: now.Add(time.Hour), CreatedAt: now}
	if _, err := d.NewInsert().Model(link).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	ws := h.connect(protoTransportWS, h.admin.Token)
	ws.subscribe("log", `subscription { inboundLog { id } }`, nil)
	h.postUntilLive(ws, token, "log")
	before := h.inboundCount()

	relay.Cut()
	wantUnavailable := func(what string, resp *http.Response) {
		t.Helper()
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: HTTP %d, Retry-After %q: %s; want 503 with Retry-After", what, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	if r := h.postWebhook(token, finding(h.unique("f"), "high")); r.HTTPStatus != http.StatusServiceUnavailable || r.RetryAfter == "" || r.Error == "" {
		t.Errorf("webhook: HTTP %d, Retry-After %q: %s; want 503 with Retry-After and a JSON error", r.HTTPStatus, r.RetryAfter, r.Raw)
	}
	twilio := func(path string, form url.Values) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", twilioSign(twilioPublic+path, form))
		resp, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	wantUnavailable("Twilio status", twilio("/twilio/status", url.Values{"MessageSid": {"SM0001"}, "MessageStatus": {"delivered"}}))
	wantUnavailable("Twilio SMS", twilio("/twilio/sms", url.Values{"From": {"+15551230001"}, "Body": {"ack"}, "MessageSid": {"SMreply"}}))
	wantUnavailable("Twilio voice", twilio("/twilio/voice", url.Values{"CallSid": {"CA0001"}, "Digits": {"4"}}))
	resp, err := h.client.Post(h.srv.URL+"/actions/"+linkToken, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantUnavailable("action link", resp)
	resp, err = h.client.Get(h.srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz: HTTP %d, want 503", resp.StatusCode)
	}
	if r := h.gql(h.admin.Token, `{ alerts(first: 1) { totalCount } }`, nil); len(r.Errors) == 0 || r.Errors[0].Extensions.Code != "UNAVAILABLE" {
		t.Errorf("GraphQL: HTTP %d %s, want UNAVAILABLE", r.HTTPStatus, r.Raw)
	}
	fresh, _, err := h.dialWS(protoTransportWS, nil)
	if err != nil {
		t.Fatal(err)
	}
	fresh.init(h.admin.Token)
	if code := fresh.closeCode(5 * time.Second); code != 1013 {
		t.Errorf("new websocket: closed with %d, want 1013 (try again later)", code)
	}
	relay.Restore()

	r := h.postWebhook(token, finding(h.unique("f"), "high"))
	if r.HTTPStatus != http.StatusOK {
		t.Fatalf("webhook once the database is back: HTTP %d %s", r.HTTPStatus, r.Raw)
	}
	for {
		m, err := ws.read(10 * time.Second)
		if err != nil {
			t.Fatalf("the websocket opened before did not deliver the message stored after: %v", err)
		}
		var next struct{ InboundLog struct{ ID string } }
		if jsonUnmarshalData(m.Payload, &next) == nil && next.InboundLog.ID == r.MessageID {
			break
		}
	}
	if n := h.inboundCount(); n != before+1 {
		t.Errorf("inbound log holds %d messages, want %d: nothing stored while the database was away", n, before+1)
	}
}
