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

func TestTwilioVoiceKeys(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		h := newHarness(t, d, server.Config{PublicURL: twilioPublic, TwilioAuthToken: twilioToken})
		integ := h.createIntegration("DETECTIFY")
		now := time.Now().UTC()
		// page records a notification of alert id to userID (nil: a user
		// since deleted) on channel, as if the provider had taken it as sid.
		page := func(userID *int, channel db.ContactType, sid string) int {
			t.Helper()
			id, _ := strconv.Atoi(h.postWebhook(integ.Token(t), finding(h.unique("f"), "high")).alert())
			note := &db.Notification{AlertID: id, UserID: userID, Channel: channel, Destination: "+15551230002",
				Status: db.NotificationSent, Attempts: 1, ProviderID: sid, DedupKey: h.unique("test"), CreatedAt: now, UpdatedAt: now}
			if _, err := d.NewInsert().Model(note).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			return id
		}
		userID := func(s session) *int {
			id, _ := strconv.Atoi(s.ID)
			return &id
		}
		responder, viewer := userID(h.createUser(db.RoleResponder)), userID(h.createUser(db.RoleViewer))
		toAck := page(responder, db.ContactVoice, "CA0001")
		toClose := page(responder, db.ContactVoice, "CA0002")
		fumbled := page(responder, db.ContactVoice, "CA0003")
		viewed := page(viewer, db.ContactVoice, "CA0004")
		texted := page(responder, db.ContactSMS, "SM0005")
		unplaced := page(responder, db.ContactVoice, "")
		orphaned := page(nil, db.ContactVoice, "CA0007")

		alert := func(id int) *db.Alert {
			t.Helper()
			a, err := h.alerting.Alert(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		logCount := func() int64 {
			t.Helper()
			n, err := d.NewSelect().Model((*db.AlertLog)(nil)).Count(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		// press posts a key press on call sid as Twilio would, to path
		// (the Gather action), signed unless forged.
		press := func(path, sid, digits string, forged bool) (int, string) {
			t.Helper()
			form := url.Values{"CallSid": {sid}, "Digits": {digits}, "From": {"+15005550006"}, "To": {"+15551230002"}, "AccountSid": {"AC0001"}}
			sig := twilioSign(twilioPublic+path, form)
			if forged {
				sig = twilioSign(twilioPublic+"/twilio/sms", form)
			}
			req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Twilio-Signature", sig)
			resp, err := h.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") != "text/xml; charset=utf-8" {
				t.Errorf("Content-Type = %q", resp.Header.Get("Content-Type"))
			}
			return resp.StatusCode, string(body)
		}
		// unchanged runs f and fails if it changed any alert's timeline.
		unchanged := func(what string, f func()) {
			t.Helper()
			before := logCount()
			f()
			if after := logCount(); after != before {
				t.Errorf("%s: timeline grew from %d to %d entries", what, before, after)
			}
		}

		unchanged("forged", func() {
			if code, _ := press("/twilio/voice", "CA0001", "4", true); code != http.StatusUnauthorized || alert(toAck).Status != db.AlertOpen {
				t.Fatalf("forged key press: %d, alert %s", code, alert(toAck).Status)
			}
		})

		code, body := press("/twilio/voice", "CA0001", "4", false)
		if a := alert(toAck); code != http.StatusOK || !strings.Contains(body, "<Say>Alert "+strconv.Itoa(toAck)+" acknowledged") ||
			a.Status != db.AlertAcknowledged || a.AcknowledgedBy == nil || *a.AcknowledgedBy != *responder {
			t.Fatalf("key 4: %d %s, alert %+v", code, body, a)
		}
		timeline, err := h.alerting.Timeline(ctx, toAck)
		if err != nil {
			t.Fatal(err)
		}
		if last := timeline[len(timeline)-1]; last.Type != db.LogAcknowledged || last.UserID == nil || *last.UserID != *responder || !strings.Contains(last.Message, "voice call") {
			t.Fatalf("key 4 timeline entry: %+v", last)
		}

		code, body = press("/twilio/voice", "CA0002", "6", false)
		if a := alert(toClose); code != http.StatusOK || !strings.Contains(body, "<Say>Alert "+strconv.Itoa(toClose)+" closed") ||
			a.Status != db.AlertClosed || a.ClosedBy == nil || *a.ClosedBy != *responder {
			t.Fatalf("key 6: %d %s, alert %+v", code, body, a)
		}
		unchanged("key 4 on a closed alert", func() {
			if _, body := press("/twilio/voice", "CA0002", "4", false); !strings.Contains(body, "Nothing changed: alert "+strconv.Itoa(toClose)+" is closed") || alert(toClose).Status != db.AlertClosed {
				t.Fatalf("key 4 on a closed alert: %s", body)
			}
		})

		// A wrong key (or none) is offered the options once more, through a
		// Gather that says it is the second try.
		for _, digits := range []string{"5", ""} {
			unchanged("key "+digits, func() {
				_, body := press("/twilio/voice", "CA0003", digits, false)
				if !strings.Contains(body, `<Gather numDigits="1" action="`+twilioPublic+`/twilio/voice?again=1" method="POST"`) ||
					!strings.Contains(body, "Press 4 to acknowledge, 6 to close.") || alert(fumbled).Status != db.AlertOpen {
					t.Fatalf("key %q: %s", digits, body)
				}
			})
		}
		unchanged("second wrong key", func() {
			if _, body := press("/twilio/voice?again=1", "CA0003", "9", false); strings.Contains(body, "<Gather") || !strings.Contains(body, "Goodbye") || alert(fumbled).Status != db.AlertOpen {
				t.Fatalf("second wrong key: %s", body)
			}
		})
		if _, body := press("/twilio/voice?again=1", "CA0003", "4", false); !strings.Contains(body, "acknowledged") || alert(fumbled).Status != db.AlertAcknowledged {
			t.Fatalf("key 4 on the second try: %s", body)
		}

		for _, c := range []struct {
			what, sid string
			alert     int
			want      string
		}{
			{"unknown call", "CA9999", 0, "cannot be matched"},
			{"an SMS's SID", "SM0005", texted, "cannot be matched"},
			{"no SID", "", unplaced, "cannot be matched"},
			{"a VIEWER's call", "CA0004", viewed, "role does not allow"},
			{"a deleted user's call", "CA0007", orphaned, "no longer a Klaxon user"},
		} {
			unchanged(c.what, func() {
				for _, digits := range []string{"4", "6"} {
					code, body := press("/twilio/voice", c.sid, digits, false)
					if code != http.StatusOK || !strings.Contains(body, c.want) || strings.Contains(body, "<Gather") {
						t.Errorf("%s, key %s: %d %s", c.what, digits, code, body)
					}
					if c.alert != 0 && alert(c.alert).Status != db.AlertOpen {
						t.Errorf("%s, key %s: alert %s", c.what, digits, alert(c.alert).Status)
					}
				}
			})
		}
	})
}
