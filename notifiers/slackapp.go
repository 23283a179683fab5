package notifiers

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultSlackAPIURL is the base of Slack's Web API.
const DefaultSlackAPIURL = "https://slack.com/api"

// SlackAPI calls Slack's Web API as Klaxon's Slack app, with its bot
// token.
type SlackAPI struct {
	BaseURL string
	Token   string
	Client  *http.Client
}

// NewSlackAPI returns a client for the Web API at baseURL ("" means
// Slack's own). The API is an address the operator configured, so it is
// not held to the guard that keeps user-entered URLs public.
func NewSlackAPI(baseURL, token string) *SlackAPI {
	if baseURL == "" {
		baseURL = DefaultSlackAPIURL
	}
	return &SlackAPI{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, Client: newHTTPClient()}
}

// slackAPIError is Slack's {"ok":false,"error":"..."}.
type slackAPIError struct{ code string }

func (e *slackAPIError) Error() string { return "slack answered " + e.code }

// call POSTs to a Web API method and decodes its answer into out. Slack
// answers most failures with 200 and "ok": false; those are permanent
// unless Slack says it is briefly unable.
func (a *SlackAPI) call(ctx context.Context, method, contentType string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.BaseURL+"/"+method, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("slack %s request: the API URL is not valid", method))
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+a.Token)
	req.Header.Set("User-Agent", "Klaxon")
	client := a.Client
	if client == nil {
		client = newHTTPClient()
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("slack %s: %w", method, noAnswer(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return statusError("slack "+method, resp, string(readErrorBody(resp)))
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return fmt.Errorf("slack %s: read answer: %w", method, err)
	}
	var status struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &status); err != nil {
		return Permanent(fmt.Errorf("slack %s: answer is not JSON", method))
	}
	if !status.OK {
		err := fmt.Errorf("slack %s: %w", method, &slackAPIError{code: clip(oneLine(status.Error), 100)})
		switch status.Error {
		case "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			return err
		}
		return Permanent(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return Permanent(fmt.Errorf("slack %s: decode answer: %w", method, err))
		}
	}
	return nil
}

func (a *SlackAPI) callJSON(ctx context.Context, method string, body, out any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return Permanent(fmt.Errorf("encode slack %s: %w", method, err))
	}
	return a.call(ctx, method, "application/json; charset=utf-8", payload, out)
}

// UserEmail returns the email address of a Slack user (users.info, which
// needs the users:read.email scope). An address Slack has not confirmed
// is refused: anyone could otherwise claim a Klaxon user's address.
func (a *SlackAPI) UserEmail(ctx context.Context, slackUserID string) (string, error) {
	var out struct {
		User struct {
			Deleted          bool  `json:"deleted"`
			IsBot            bool  `json:"is_bot"`
			IsEmailConfirmed *bool `json:"is_email_confirmed"`
			Profile          struct {
				Email string `json:"email"`
			} `json:"profile"`
		} `json:"user"`
	}
	form := url.Values{"user": {slackUserID}}
	if err := a.call(ctx, "users.info", "application/x-www-form-urlencoded", []byte(form.Encode()), &out); err != nil {
		return "", err
	}
	u := out.User
	if u.Deleted || u.IsBot || u.Profile.Email == "" || (u.IsEmailConfirmed != nil && !*u.IsEmailConfirmed) {
		return "", nil
	}
	return u.Profile.Email, nil
}

// SlackAlert is what a page in Slack shows of its alert now.
type SlackAlert struct {
	Message Message
	// Status is the alert's status (OPEN, ACKNOWLEDGED, CLOSED): it
	// decides which buttons still apply.
	Status string
	// Done says who did what, after a button was pressed.
	Done string
}

// Slack action ids of the buttons; each carries the alert id as value.
const (
	SlackActionAcknowledge = "klaxon_acknowledge"
	SlackActionClose       = "klaxon_close"
	SlackActionEscalate    = "klaxon_escalate"
)

type slackButton struct {
	Type     string    `json:"type"`
	Text     slackText `json:"text"`
	ActionID string    `json:"action_id"`
	Value    string    `json:"value"`
	Style    string    `json:"style,omitempty"`
}

type slackButtons struct {
	Type     string        `json:"type"`
	BlockID  string        `json:"block_id"`
	Elements []slackButton `json:"elements"`
}

type slackAppMessage struct {
	Channel string `json:"channel"`
	TS      string `json:"ts,omitempty"`
	Text    string `json:"text"`
	Blocks  []any  `json:"blocks"`
}

// slackAppPayload is the incoming-webhook message with interactive
// buttons in place of the action links: in app mode the button press
// reaches Klaxon signed by Slack, and acts as whoever pressed it.
func slackAppPayload(channel string, a SlackAlert) slackAppMessage {
	msg := a.Message
	msg.AckURL, msg.CloseURL = "", ""
	base := slackPayload(msg)
	out := slackAppMessage{Channel: channel, Text: base.Text}
	for _, b := range base.Blocks {
		out.Blocks = append(out.Blocks, b)
	}
	if a.Done != "" {
		out.Blocks = append(out.Blocks, slackContext{Type: "context", Elements: []slackText{
			{Type: "mrkdwn", Text: slackEscape(clipRunes(oneLine(a.Done), slackSectionMax))},
		}})
	}
	value := strconv.Itoa(msg.AlertID)
	button := func(label, actionID, style string) slackButton {
		return slackButton{Type: "button", Text: slackText{Type: "plain_text", Text: label}, ActionID: actionID, Value: value, Style: style}
	}
	var buttons []slackButton
	switch a.Status {
	case "OPEN", "":
		buttons = []slackButton{button("Acknowledge", SlackActionAcknowledge, "primary"), button("Close", SlackActionClose, "danger"), button("Escalate", SlackActionEscalate, "")}
	case "ACKNOWLEDGED":
		buttons = []slackButton{button("Close", SlackActionClose, "danger")}
	}
	if len(buttons) > 0 {
		out.Blocks = append(out.Blocks, slackButtons{Type: "actions", BlockID: "klaxon_alert_" + value, Elements: buttons})
	}
	return out
}

// slackContext is a context block: one line of small text.
type slackContext struct {
	Type     string      `json:"type"`
	Elements []slackText `json:"elements"`
}

// PostAlert posts a page to a Slack channel or user (chat.postMessage)
// and returns the message's ts.
func (a *SlackAPI) PostAlert(ctx context.Context, channel string, alert SlackAlert) (string, error) {
	var out struct {
		TS string `json:"ts"`
	}
	if err := a.callJSON(ctx, "chat.postMessage", slackAppPayload(channel, alert), &out); err != nil {
		return "", err
	}
	return out.TS, nil
}

// UpdateAlert rewrites the page at channel and ts in place (chat.update).
func (a *SlackAPI) UpdateAlert(ctx context.Context, channel, ts string, alert SlackAlert) error {
	msg := slackAppPayload(channel, alert)
	msg.TS = ts
	return a.callJSON(ctx, "chat.update", msg, nil)
}

// Ephemeral shows text to one user only, in channel (chat.postEphemeral).
func (a *SlackAPI) Ephemeral(ctx context.Context, channel, slackUserID, text string) error {
	return a.callJSON(ctx, "chat.postEphemeral", map[string]string{"channel": channel, "user": slackUserID, "text": text}, nil)
}

// SlackApp pages through Klaxon's Slack app; the contact method's value
// is a Slack user id (a direct message from the app) or a channel id.
type SlackApp struct{ API *SlackAPI }

// Send posts msg with Acknowledge, Close and Escalate buttons and
// returns the message's ts.
func (s *SlackApp) Send(ctx context.Context, msg Message) (string, error) {
	ts, err := s.API.PostAlert(ctx, msg.Destination, SlackAlert{Message: msg, Status: "OPEN"})
	if err != nil {
		return "", fmt.Errorf("send slack app message: %w", err)
	}
	return ts, nil
}

// SlackMaxSkew is how far a signed Slack request's timestamp may be
// from now: Slack's own advice, and what bounds a replay.
const SlackMaxSkew = 5 * time.Minute

// ErrSlackSignature is a request that Slack did not sign, or signed too
// long ago.
var ErrSlackSignature = errors.New("bad, missing or expired X-Slack-Signature")

// VerifySlackSignature checks a request's X-Slack-Signature: "v0=" and
// the hex HMAC-SHA256, under the app's signing secret, of
// "v0:{timestamp}:{raw body}", with the timestamp within SlackMaxSkew of
// now.
func VerifySlackSignature(secret, timestamp string, body []byte, signature string, now time.Time) error {
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || secret == "" {
		return ErrSlackSignature
	}
	if skew := now.Sub(time.Unix(secs, 0)); skew > SlackMaxSkew || skew < -SlackMaxSkew {
		return ErrSlackSignature
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + timestamp + ":"))
	mac.Write(body)
	want := "v0=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return ErrSlackSignature
	}
	return nil
}
