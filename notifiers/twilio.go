package notifiers

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// TwilioConfig is a Twilio account used for SMS and voice.
type TwilioConfig struct {
	AccountSID string
	AuthToken  string
	// From is the Twilio number messages and calls come from, in E.164.
	From string
	// APIURL is Twilio's API base; tests point it at a local server.
	// Empty means https://api.twilio.com.
	APIURL string
	// StatusCallbackURL, when set, is where Twilio reports delivery
	// progress (POST /twilio/status).
	StatusCallbackURL string
	// GatherActionURL, when set, is where Twilio posts the key a callee
	// pressed (POST /twilio/voice). Without it calls only read the alert.
	GatherActionURL string
	// Client overrides the HTTP client; nil means one with a 10 s timeout.
	Client *http.Client
}

// DefaultTwilioAPIURL is Twilio's production API.
const DefaultTwilioAPIURL = "https://api.twilio.com"

type twilioAPI struct {
	cfg    TwilioConfig
	client *http.Client
}

func newTwilioAPI(cfg TwilioConfig) (*twilioAPI, error) {
	if cfg.AccountSID == "" || cfg.AuthToken == "" || cfg.From == "" {
		return nil, errors.New("twilio config: account SID, auth token and from number are required")
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultTwilioAPIURL
	}
	cfg.APIURL = strings.TrimRight(cfg.APIURL, "/")
	if u, err := url.Parse(cfg.APIURL); err != nil || u.Host == "" {
		return nil, fmt.Errorf("twilio config: API URL %q is not absolute", cfg.APIURL)
	}
	client := cfg.Client
	if client == nil {
		client = newHTTPClient()
	}
	return &twilioAPI{cfg: cfg, client: client}, nil
}

// twilioError is the body Twilio answers failures with.
type twilioError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// create POSTs form to the account's resource (Messages or Calls) and
// returns the new resource's SID.
func (t *twilioAPI) create(ctx context.Context, resource string, form url.Values) (string, error) {
	endpoint := fmt.Sprintf("%s/2010-04-01/Accounts/%s/%s.json", t.cfg.APIURL, url.PathEscape(t.cfg.AccountSID), resource)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", Permanent(fmt.Errorf("twilio request: %w", err))
	}
	req.SetBasicAuth(t.cfg.AccountSID, t.cfg.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Klaxon")
	resp, err := t.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("twilio: %w", err)
	}
	defer resp.Body.Close()
	body := readErrorBody(resp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var te twilioError
		detail := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &te) == nil && te.Code != 0 {
			detail = fmt.Sprintf("error %d: %s", te.Code, te.Message)
		}
		return "", statusError("twilio", resp, detail)
	}
	var created struct {
		SID    string `json:"sid"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(body, &created); err != nil || created.SID == "" {
		// Twilio took the request; retrying would page twice, so report
		// success without an id rather than an error.
		return "", nil
	}
	return created.SID, nil
}

// TwilioSMS sends notifications as text messages.
type TwilioSMS struct{ api *twilioAPI }

// NewTwilioSMS returns an SMS sender for cfg.
func NewTwilioSMS(cfg TwilioConfig) (*TwilioSMS, error) {
	api, err := newTwilioAPI(cfg)
	if err != nil {
		return nil, err
	}
	return &TwilioSMS{api: api}, nil
}

// maxSMSBody keeps a page to a handful of segments; Twilio refuses
// bodies over 1600 characters outright.
const maxSMSBody = 600

// Send texts msg to msg.Destination and returns the message SID.
func (s *TwilioSMS) Send(ctx context.Context, msg Message) (string, error) {
	form := url.Values{
		"To":   {msg.Destination},
		"From": {s.api.cfg.From},
		"Body": {smsBody(msg)},
	}
	if s.api.cfg.StatusCallbackURL != "" {
		form.Set("StatusCallback", s.api.cfg.StatusCallbackURL)
	}
	id, err := s.api.create(ctx, "Messages", form)
	if err != nil {
		return "", fmt.Errorf("send sms: %w", err)
	}
	return id, nil
}

// smsBody puts the links first after the headline so a long summary
// is what gets cut, never the way to acknowledge. A bundle lists every
// alert by number, since a reply can act on any of them ("ack 42") while
// the links are the first alert's.
func smsBody(msg Message) string {
	if msg.VerificationCode != "" {
		return verificationText(msg)
	}
	if msg.Notice != nil {
		// The links last and whole: the text is what gets cut.
		var links strings.Builder
		for _, l := range msg.Notice.Links {
			if u := linkURL(l.URL); u != "" {
				links.WriteString("\n" + l.Label + ": " + u)
			}
		}
		return clip(title(msg)+". "+oneLine(msg.Notice.Text), max(maxSMSBody-links.Len(), 40)) + links.String()
	}
	msg = links(msg)
	ref := ""
	if len(msg.Others) > 0 {
		ref = fmt.Sprintf(" #%d", msg.AlertNumber)
	}
	var links strings.Builder
	if msg.AckURL != "" {
		links.WriteString("\nAck" + ref + ": " + msg.AckURL)
	}
	if msg.CloseURL != "" {
		links.WriteString("\nClose" + ref + ": " + msg.CloseURL)
	}
	if msg.URL != "" {
		links.WriteString("\n" + msg.URL)
	}
	head := title(msg)
	if len(msg.Others) > 0 {
		head = fmt.Sprintf("[Klaxon] %d alerts: %s", len(msg.Others)+1, strings.Join(summaries(msg), "; "))
		links.WriteString(fmt.Sprintf("\nReply \"ack %d\" or \"close %d\" to act on one.", msg.Others[0].AlertNumber, msg.Others[0].AlertNumber))
	}
	return clip(head, max(maxSMSBody-links.Len(), 40)) + links.String()
}

// TwilioVoice pages by phone call: the alert is read out and the callee
// can press 4 to acknowledge or 6 to close.
type TwilioVoice struct{ api *twilioAPI }

// NewTwilioVoice returns a voice sender for cfg.
func NewTwilioVoice(cfg TwilioConfig) (*TwilioVoice, error) {
	api, err := newTwilioAPI(cfg)
	if err != nil {
		return nil, err
	}
	return &TwilioVoice{api: api}, nil
}

// Send calls msg.Destination and returns the call SID; the gather
// callback identifies the call by that SID.
func (v *TwilioVoice) Send(ctx context.Context, msg Message) (string, error) {
	twiml, err := voiceTwiML(msg, v.api.cfg.GatherActionURL)
	if err != nil {
		return "", Permanent(fmt.Errorf("send voice call: %w", err))
	}
	form := url.Values{
		"To":    {msg.Destination},
		"From":  {v.api.cfg.From},
		"Twiml": {twiml},
	}
	if v.api.cfg.StatusCallbackURL != "" {
		form.Set("StatusCallback", v.api.cfg.StatusCallbackURL)
	}
	id, err := v.api.create(ctx, "Calls", form)
	if err != nil {
		return "", fmt.Errorf("send voice call: %w", err)
	}
	return id, nil
}

type twimlResponse struct {
	XMLName xml.Name     `xml:"Response"`
	Gather  *twimlGather `xml:"Gather,omitempty"`
	Say     []twimlSay   `xml:"Say"`
}

type twimlGather struct {
	NumDigits int      `xml:"numDigits,attr"`
	Action    string   `xml:"action,attr"`
	Method    string   `xml:"method,attr"`
	Timeout   int      `xml:"timeout,attr"`
	Say       twimlSay `xml:"Say"`
}

type twimlSay struct {
	Loop int    `xml:"loop,attr,omitempty"`
	Text string `xml:",chardata"`
}

// maxSpokenSubject keeps the call short enough that the callee hears the
// options before hanging up.
const maxSpokenSubject = 200

// voiceTwiML builds the call script. encoding/xml escapes the alert
// text, so it cannot inject TwiML verbs.
func voiceTwiML(msg Message, gatherAction string) (string, error) {
	if msg.VerificationCode != "" {
		// Digits spoken one by one, twice: a phone line garbles "123456"
		// read as a number.
		spoken := "This is Klaxon. Your verification code is " + strings.Join(strings.Split(msg.VerificationCode, ""), ", ") + "."
		b, err := xml.Marshal(twimlResponse{Say: []twimlSay{{Loop: 2, Text: spoken}}})
		if err != nil {
			return "", fmt.Errorf("build TwiML: %w", err)
		}
		return xml.Header + string(b), nil
	}
	spoken := "This is Klaxon. "
	if len(msg.Others) > 0 {
		spoken += fmt.Sprintf("%d alerts. ", len(msg.Others)+1)
	}
	spoken += spokenAlert(msg.AlertNumber, msg.Severity, clip(oneLine(msg.Subject), maxSpokenSubject))
	// Further alerts are only named, keeping the call short; the keys
	// act on the first.
	for _, o := range msg.Others {
		spoken += " " + spokenAlert(o.AlertNumber, o.Severity, clip(oneLine(o.Subject), maxSpokenSubject/4))
	}
	if len(msg.Others) > 0 && gatherAction != "" {
		spoken += fmt.Sprintf(" The keys act on alert %d.", msg.AlertNumber)
	}
	r := twimlResponse{}
	if gatherAction != "" {
		r.Gather = &twimlGather{
			NumDigits: 1, Action: gatherAction, Method: http.MethodPost, Timeout: 10,
			Say: twimlSay{Loop: 2, Text: spoken + " Press 4 to acknowledge, 6 to close."},
		}
		r.Say = []twimlSay{{Text: "No input received. Goodbye."}}
	} else {
		r.Say = []twimlSay{{Loop: 2, Text: spoken}}
	}
	b, err := xml.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("build TwiML: %w", err)
	}
	return xml.Header + string(b), nil
}

// spokenAlert is one alert as read out: "Alert 42, severity high: disk
// full."
func spokenAlert(number int, severity, subject string) string {
	spoken := fmt.Sprintf("Alert %d", number)
	if sev := oneLine(severity); sev != "" {
		spoken += ", severity " + strings.ToLower(sev)
	}
	if subject != "" {
		spoken += ": " + subject
	}
	return spoken + "."
}

// VerifyTwilioSignature checks an X-Twilio-Signature header: the
// base64 HMAC-SHA1, keyed with the auth token, of the full URL Twilio
// requested followed by every POST parameter's name and value, sorted by
// name. fullURL must be exactly what Twilio called, query included.
func VerifyTwilioSignature(authToken, fullURL string, form url.Values, signature string) bool {
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signature))
	if err != nil || len(got) != sha1.Size {
		return false
	}
	return hmac.Equal(got, twilioMAC(authToken, fullURL, form))
}

func twilioMAC(authToken, fullURL string, form url.Values) []byte {
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(fullURL))
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		// Repeated parameters are signed with their values sorted, as
		// Twilio's own SDKs do.
		for _, v := range slices.Sorted(slices.Values(form[k])) {
			mac.Write([]byte(k))
			mac.Write([]byte(v))
		}
	}
	return mac.Sum(nil)
}
