package server_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

const (
	twilioToken  = "twilio-auth-token"
	twilioPublic = "https://klaxon.example"
)

// twilioSign signs like Twilio: base64 HMAC-SHA1 of the URL followed by
// every parameter name and value, sorted by name.
func twilioSign(fullURL string, form url.Values) string {
	mac := hmac.New(sha1.New, []byte(twilioToken))
	mac.Write([]byte(fullURL))
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range form {
			if !yield(k) {
				return
			}
		}
	}) {
		mac.Write([]byte(k + form.Get(k)))
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func (h *harness) twilioPost(path string, form url.Values, signature string) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", signature)
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestTwilioRepliesAndStatusCallbacks(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		h := newHarness(t, d, server.Config{PublicURL: twilioPublic, TwilioAuthToken: twilioToken})
		integ := h.createIntegration("DETECTIFY")
		responder := h.createUser(db.RoleResponder)
		userID, _ := strconv.Atoi(responder.ID)
		now := time.Now().UTC()
		phone := &db.ContactMethod{UserID: userID, Name: "phone", Type: db.ContactSMS, Value: "+15551230001", Verified: true, CreatedAt: now}
		if _, err := d.NewInsert().Model(phone).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		// Two alerts this person was paged about by SMS.
		var alerts []int
		for i, sid := range []string{"SM0001", "SM0002"} {
			id, _ := strconv.Atoi(h.postWebhook(integ.Token(t), finding(h.unique("f"), "high")).alert())
			alerts = append(alerts, id)
			note := &db.Notification{AlertID: id, UserID: &userID, ContactMethodID: &phone.ID, Channel: db.ContactSMS, Destination: phone.Value,
				Status: db.NotificationSent, Attempts: 1, ProviderID: sid, DedupKey: "test-" + sid, CreatedAt: now.Add(time.Duration(i) * time.Second), UpdatedAt: now}
			if _, err := d.NewInsert().Model(note).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		status := func(id int) db.AlertStatus {
			a, err := h.alerting.Alert(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return a.Status
		}
		sms := func(from, body string, sign bool) (int, string) {
			form := url.Values{"From": {from}, "To": {"+15005550006"}, "Body": {body}, "MessageSid": {"SMreply"}}
			sig := "bm90IGEgc2lnbmF0dXJlIGF0IGFsbA=="
			if sign {
				sig = twilioSign(twilioPublic+"/twilio/sms", form)
			}
			return h.twilioPost("/twilio/sms", form, sig)
		}

		if code, _ := sms(phone.Value, "close "+strconv.Itoa(alerts[0]), false); code != http.StatusUnauthorized || status(alerts[0]) != db.AlertOpen {
			t.Fatalf("forged reply: %d, alert %s", code, status(alerts[0]))
		}
		// A bare "ack" is about the latest page.
		if code, body := sms(phone.Value, "ACK", true); code != http.StatusOK || !strings.Contains(body, "<Message>Acknowledged #"+strconv.Itoa(alerts[1])) || status(alerts[1]) != db.AlertAcknowledged {
			t.Fatalf("ack: %d %s, alert %s", code, body, status(alerts[1]))
		}
		if code, body := sms(phone.Value, "close "+strconv.Itoa(alerts[0]), true); code != http.StatusOK || !strings.Contains(body, "Closed #") || status(alerts[0]) != db.AlertClosed {
			t.Fatalf("close by number: %d %s, alert %s", code, body, status(alerts[0]))
		}
		if _, body := sms(phone.Value, "ack "+strconv.Itoa(alerts[0]), true); !strings.Contains(body, "Nothing changed") {
			t.Fatalf("ack of a closed alert: %s", body)
		}
		if _, body := sms("+15559999999", "ack", true); !strings.Contains(body, "not a Klaxon contact method") {
			t.Fatalf("stranger: %s", body)
		}
		if _, body := sms(phone.Value, "hello there", true); !strings.Contains(body, "Reply &#34;ack&#34; or &#34;close&#34;") {
			t.Fatalf("help: %s", body)
		}

		callback := func(form url.Values) int {
			code, _ := h.twilioPost("/twilio/status", form, twilioSign(twilioPublic+"/twilio/status", form))
			return code
		}
		note := func(sid string) db.Notification {
			var n db.Notification
			if err := d.NewSelect().Model(&n).Where("provider_id = ?", sid).Scan(ctx); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if code := callback(url.Values{"MessageSid": {"SM0001"}, "MessageStatus": {"delivered"}}); code != http.StatusNoContent || note("SM0001").Status != db.NotificationDelivered {
			t.Fatalf("delivered callback: %d %+v", code, note("SM0001"))
		}
		if code := callback(url.Values{"MessageSid": {"SM0002"}, "MessageStatus": {"undelivered"}, "ErrorCode": {"30003"}}); code != http.StatusNoContent ||
			note("SM0002").Status != db.NotificationFailed || !strings.Contains(note("SM0002").Error, "30003") {
			t.Fatalf("failed callback: %d %+v", code, note("SM0002"))
		}
		if code, _ := h.twilioPost("/twilio/status", url.Values{"MessageSid": {"SM0001"}, "MessageStatus": {"failed"}}, "x"); code != http.StatusUnauthorized || note("SM0001").Status != db.NotificationDelivered {
			t.Fatalf("forged callback: %d", code)
		}
	})
}
