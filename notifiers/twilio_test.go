package notifiers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testSID   = "AC00000000000000000000000000000001"
	testToken = "tw-token"
	testFrom  = "+15005550006"
)

// fakeTwilio speaks the part of Twilio's REST API Klaxon uses: it
// authenticates like Twilio, validates numbers like Twilio and answers
// with Twilio's JSON shapes.
type fakeTwilio struct {
	*httptest.Server
	requests chan url.Values
	paths    chan string
	// failWith, when set, makes every request fail with that status.
	failWith   int
	retryAfter string
	seq        atomic.Int64
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

func newFakeTwilio(t *testing.T) *fakeTwilio {
	f := &fakeTwilio{requests: make(chan url.Values, 8), paths: make(chan string, 8)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{sid}/{resource}", f.create)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeTwilio) fail(w http.ResponseWriter, status, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"code": code, "message": message, "more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), "status": status,
	})
}

func (f *fakeTwilio) create(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || user != testSID || pass != testToken || r.PathValue("sid") != testSID {
		f.fail(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if f.failWith != 0 {
		if f.retryAfter != "" {
			w.Header().Set("Retry-After", f.retryAfter)
		}
		f.fail(w, f.failWith, 20429, http.StatusText(f.failWith))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		f.fail(w, http.StatusBadRequest, 20001, "bad content type "+ct)
		return
	}
	if err := r.ParseForm(); err != nil {
		f.fail(w, http.StatusBadRequest, 20001, err.Error())
		return
	}
	to := r.PostForm.Get("To")
	if !e164.MatchString(to) {
		f.fail(w, http.StatusBadRequest, 21211, fmt.Sprintf("Invalid 'To' Phone Number: %s", to))
		return
	}
	var prefix string
	switch r.PathValue("resource") {
	case "Messages.json":
		prefix = "SM"
		if r.PostForm.Get("Body") == "" {
			f.fail(w, http.StatusBadRequest, 21602, "Message body is required.")
			return
		}
	case "Calls.json":
		prefix = "CA"
		if r.PostForm.Get("Twiml") == "" && r.PostForm.Get("Url") == "" {
			f.fail(w, http.StatusBadRequest, 21205, "Url parameter is required.")
			return
		}
	default:
		f.fail(w, http.StatusNotFound, 20404, "The requested resource was not found")
		return
	}
	f.requests <- r.PostForm
	f.paths <- r.URL.Path
	sid := fmt.Sprintf("%s%032x", prefix, f.seq.Add(1))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"sid": sid, "account_sid": testSID, "to": to, "from": r.PostForm.Get("From"),
		"status": "queued", "date_created": time.Now().UTC().Format(time.RFC1123Z), "api_version": "2010-04-01",
		"uri": fmt.Sprintf("/2010-04-01/Accounts/%s/%s/%s.json", testSID, strings.TrimSuffix(r.PathValue("resource"), ".json"), sid),
	})
}

func twilioConfig(f *fakeTwilio) TwilioConfig {
	return TwilioConfig{
		AccountSID: testSID, AuthToken: testToken, From: testFrom, APIURL: f.URL,
		StatusCallbackURL: "https://klaxon.example/twilio/status", GatherActionURL: "https://klaxon.example/twilio/voice",
	}
}

func TestTwilioSMS(t *testing.T) {
	f := newFakeTwilio(t)
	sms, err := NewTwilioSMS(twilioConfig(f))
	if err != nil {
		t.Fatal(err)
	}
	msg := testMessage("+15551230000")
	id, err := sms.Send(context.Background(), msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if !strings.HasPrefix(id, "SM") {
		t.Errorf("provider id = %q, want a message SID", id)
	}
	form := <-f.requests
	if path := <-f.paths; path != "/2010-04-01/Accounts/"+testSID+"/Messages.json" {
		t.Errorf("path = %s", path)
	}
	if form.Get("To") != "+15551230000" || form.Get("From") != testFrom || form.Get("StatusCallback") != "https://klaxon.example/twilio/status" {
		t.Errorf("form = %v", form)
	}
	body := form.Get("Body")
	for _, want := range []string{"[Klaxon #42] HIGH: Disk full on db-1", "Ack: " + msg.AckURL, "Close: " + msg.CloseURL, msg.URL} {
		if !strings.Contains(body, want) {
			t.Errorf("Body lacks %q:\n%s", want, body)
		}
	}
}

func TestTwilioSMSLongSubjectKeepsLinks(t *testing.T) {
	msg := testMessage("+15551230000")
	msg.Subject = strings.Repeat("very long summary ", 200)
	body := smsBody(msg)
	if len(body) > maxSMSBody+len("…") || !strings.Contains(body, msg.AckURL) || !strings.Contains(body, msg.CloseURL) {
		t.Errorf("len %d, body:\n%s", len(body), body)
	}
}

func TestTwilioSMSBundle(t *testing.T) {
	msg := testMessage("+15551230000")
	msg.Others = []AlertSummary{{AlertID: 43, AlertNumber: 43, Severity: "low", Subject: "Cert expires\nsoon"}, {AlertID: 44, AlertNumber: 44, Subject: "Backup late"}}
	body := smsBody(msg)
	for _, want := range []string{
		"[Klaxon] 3 alerts: #42 HIGH: Disk full on db-1; #43 LOW: Cert expires soon; #44 Backup late",
		"Ack #42: " + msg.AckURL, "Close #42: " + msg.CloseURL, `"ack 43"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("Body lacks %q:\n%s", want, body)
		}
	}

	for i := range 100 {
		msg.Others = append(msg.Others, AlertSummary{AlertNumber: 100 + i, Subject: strings.Repeat("long ", 20)})
	}
	body = smsBody(msg)
	if len(body) > maxSMSBody+len("…") || !strings.Contains(body, msg.AckURL) || !strings.HasPrefix(body, "[Klaxon] 103 alerts: #42") {
		t.Errorf("len %d, body:\n%s", len(body), body)
	}
}

func TestTwilioVoiceBundle(t *testing.T) {
	msg := testMessage("+15551230000")
	msg.Others = []AlertSummary{{AlertID: 43, AlertNumber: 43, Severity: "low", Subject: "Cert expires"}}
	twiml, err := voiceTwiML(msg, "https://klaxon.example/twilio/voice")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 alerts. Alert 42, severity high: Disk full on db-1. Alert 43, severity low: Cert expires.", "The keys act on alert 42."} {
		if !strings.Contains(twiml, want) {
			t.Errorf("TwiML lacks %q: %s", want, twiml)
		}
	}
}

func TestTwilioVoice(t *testing.T) {
	f := newFakeTwilio(t)
	voice, err := NewTwilioVoice(twilioConfig(f))
	if err != nil {
		t.Fatal(err)
	}
	msg := testMessage("+15551230000")
	msg.Subject = `Disk full <Hangup/> & "more"`
	id, err := voice.Send(context.Background(), msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if !strings.HasPrefix(id, "CA") {
		t.Errorf("provider id = %q, want a call SID", id)
	}
	form := <-f.requests
	if path := <-f.paths; !strings.HasSuffix(path, "/Calls.json") {
		t.Errorf("path = %s", path)
	}
	if form.Get("To") != "+15551230000" || form.Get("From") != testFrom || form.Get("StatusCallback") == "" {
		t.Errorf("form = %v", form)
	}

	var resp struct {
		XMLName xml.Name `xml:"Response"`
		Gather  struct {
			NumDigits string `xml:"numDigits,attr"`
			Action    string `xml:"action,attr"`
			Method    string `xml:"method,attr"`
			Say       string `xml:"Say"`
		} `xml:"Gather"`
		Hangup *struct{} `xml:"Hangup"`
		Say    []string  `xml:"Say"`
	}
	if err := xml.Unmarshal([]byte(form.Get("Twiml")), &resp); err != nil {
		t.Fatalf("Twiml does not parse: %v\n%s", err, form.Get("Twiml"))
	}
	if resp.Gather.NumDigits != "1" || resp.Gather.Action != "https://klaxon.example/twilio/voice" || resp.Gather.Method != "POST" {
		t.Errorf("Gather = %+v", resp.Gather)
	}
	for _, want := range []string{"Alert 42", "severity high", `Disk full <Hangup/> & "more"`, "Press 4 to acknowledge, 6 to close."} {
		if !strings.Contains(resp.Gather.Say, want) {
			t.Errorf("Say lacks %q: %q", want, resp.Gather.Say)
		}
	}
	if resp.Hangup != nil || strings.Contains(form.Get("Twiml"), "<Hangup/>") {
		t.Error("alert text injected a TwiML verb")
	}
}

func TestTwilioVoiceWithoutGather(t *testing.T) {
	twiml, err := voiceTwiML(testMessage("+15551230000"), "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(twiml, "<Gather") || !strings.Contains(twiml, "Disk full on db-1") {
		t.Errorf("TwiML = %s", twiml)
	}
}

func TestTwilioErrors(t *testing.T) {
	tests := []struct {
		name       string
		to         string
		token      string
		failWith   int
		retryAfter string
		permanent  bool
		wait       time.Duration
		wantText   string
	}{
		{name: "bad number", to: "12", permanent: true, wantText: "21211"},
		{name: "bad credentials", to: "+15551230000", token: "wrong", permanent: true, wantText: "20003"},
		{name: "rate limited", to: "+15551230000", failWith: 429, retryAfter: "7", wait: 7 * time.Second},
		{name: "rate limited without wait", to: "+15551230000", failWith: 429},
		{name: "outage", to: "+15551230000", failWith: 503, retryAfter: "60", wait: time.Minute},
		{name: "server error", to: "+15551230000", failWith: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTwilio(t)
			f.failWith, f.retryAfter = tt.failWith, tt.retryAfter
			cfg := twilioConfig(f)
			if tt.token != "" {
				cfg.AuthToken = tt.token
			}
			sms, err := NewTwilioSMS(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = sms.Send(context.Background(), testMessage(tt.to))
			if err == nil {
				t.Fatal("want error")
			}
			if IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v: %v", IsPermanent(err), tt.permanent, err)
			}
			if wait, ok := RetryAfter(err); ok != (tt.wait > 0) || wait != tt.wait {
				t.Errorf("RetryAfter = %v, %v; want %v", wait, ok, tt.wait)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q lacks %q", err, tt.wantText)
			}
		})
	}
}

func TestNewTwilioValidates(t *testing.T) {
	if _, err := NewTwilioSMS(TwilioConfig{AccountSID: testSID, AuthToken: testToken}); err == nil {
		t.Error("accepted a config without a from number")
	}
	if _, err := NewTwilioVoice(TwilioConfig{AccountSID: testSID, AuthToken: testToken, From: testFrom, APIURL: "api.twilio.com"}); err == nil {
		t.Error("accepted a relative API URL")
	}
	sms, err := NewTwilioSMS(TwilioConfig{AccountSID: testSID, AuthToken: testToken, From: testFrom})
	if err != nil || sms.api.cfg.APIURL != DefaultTwilioAPIURL {
		t.Errorf("default API URL not applied: %v", err)
	}
}

func TestVerifyTwilioSignatureKnownVectors(t *testing.T) {
	tests := []struct {
		name, token, url, signature string
		form                        url.Values
	}{
		{
			// The worked example in Twilio's webhook security guide.
			name: "docs example", token: "12345", url: "https://mycompany.com/myapp.php?foo=1&bar=2",
			signature: "0/KCTR6DLpKmkAf8muzZqo1nDgQ=",
			form: url.Values{
				"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
				"From": {"+12349013030"}, "To": {"+18005551212"},
			},
		},
		{
			// A real inbound SMS, from twilio-ruby's request validator spec.
			name: "inbound sms", token: "2bd9e9638872de601313dc77410d3b23", url: "http://twiliotests.heroku.com/validate/sms",
			signature: "mxeiv65lEe0b8L6LdVw2jgJi8yw=",
			form: url.Values{
				"ToState": {"CA"}, "FromState": {"CA"}, "AccountSid": {"ACba8bc05eacf94afdae398e642c9cc32d"},
				"SmsMessageSid": {"SM2003cbd5e6a3701999aa3e5f20ff2787"}, "Body": {"Orly"}, "From": {"+14159354345"},
				"FromCity": {"SAN FRANCISCO"}, "SmsStatus": {"received"}, "FromZip": {"94107"}, "FromCountry": {"US"},
				"To": {"+14158141819"}, "ToCity": {"SAN FRANCISCO"}, "ToZip": {"94105"}, "ToCountry": {"US"},
				"ApiVersion": {"2010-04-01"}, "SmsSid": {"SM2003cbd5e6a3701999aa3e5f20ff2787"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !VerifyTwilioSignature(tt.token, tt.url, tt.form, tt.signature) {
				t.Fatal("documented signature rejected")
			}
			tampered := url.Values{}
			for k, v := range tt.form {
				tampered[k] = v
			}
			tampered.Set("To", "+10000000000")
			if VerifyTwilioSignature(tt.token, tt.url, tampered, tt.signature) {
				t.Error("tampered form accepted")
			}
			if VerifyTwilioSignature(tt.token, tt.url+"&x=1", tt.form, tt.signature) {
				t.Error("other URL accepted")
			}
			if VerifyTwilioSignature("other", tt.url, tt.form, tt.signature) {
				t.Error("other token accepted")
			}
		})
	}
}

func TestVerifyTwilioSignatureRoundTrip(t *testing.T) {
	// A callback signed the way Twilio signs it arrives over HTTP; the
	// receiver rebuilds the full URL and verifies.
	form := url.Values{"CallSid": {"CA123"}, "Digits": {"4"}, "From": {"+15551230000"}, "Multi": {"b", "a"}}
	var verified atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		full := "http://" + r.Host + r.URL.RequestURI()
		verified.Store(VerifyTwilioSignature(testToken, full, r.PostForm, r.Header.Get("X-Twilio-Signature")))
	}))
	defer srv.Close()
	target := srv.URL + "/twilio/voice?alert=42"
	req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", base64.StdEncoding.EncodeToString(twilioMAC(testToken, target, form)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !verified.Load() {
		t.Error("round-trip signature rejected")
	}
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString([]byte("short"))} {
		if VerifyTwilioSignature(testToken, target, form, bad) {
			t.Errorf("signature %q accepted", bad)
		}
	}
}
