package notifiers

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/egress"
)

// MattermostActionTTL is how long a Mattermost button works: as long as
// an action link.
const MattermostActionTTL = 24 * time.Hour

// MattermostContext is what each button of a Mattermost page carries
// and Mattermost posts back when it is pressed. Token signs the rest:
// the button acts for UserID, the person the page went to, and only on
// AlertID, only for Action, and only until Expires.
type MattermostContext struct {
	AlertID int    `json:"alert_id"`
	Action  string `json:"action"`
	UserID  int    `json:"user_id"`
	Expires int64  `json:"expires"`
	Token   string `json:"token"`
}

// ErrMattermostToken is a button whose context Klaxon did not sign, or
// signed too long ago.
var ErrMattermostToken = errors.New("bad, missing or expired action token")

func mattermostToken(key []byte, c MattermostContext) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "mattermost-action:v1:%d:%s:%d:%d", c.AlertID, c.Action, c.UserID, c.Expires)
	return hex.EncodeToString(mac.Sum(nil))
}

// SignMattermostContext returns c with its token.
func SignMattermostContext(key []byte, c MattermostContext) MattermostContext {
	c.Token = mattermostToken(key, c)
	return c
}

// VerifyMattermostContext checks c's token and expiry.
func VerifyMattermostContext(key []byte, c MattermostContext, now time.Time) error {
	if len(key) == 0 || !hmac.Equal([]byte(mattermostToken(key, c)), []byte(c.Token)) {
		return ErrMattermostToken
	}
	if !now.Before(time.Unix(c.Expires, 0)) {
		return ErrMattermostToken
	}
	return nil
}

const mattermostKeyName = "mattermost-actions"

// StoredMattermostKey returns the key that signs Mattermost buttons,
// generating and storing it on first use: a button must work on every
// instance and after a restart.
func StoredMattermostKey(ctx context.Context, d *db.DB, now time.Time) ([]byte, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("generate Mattermost key: %w", err)
	}
	candidate := &db.Secret{Name: mattermostKeyName, Value: base64.RawStdEncoding.EncodeToString(raw), CreatedAt: now}
	if _, err := d.NewInsert().Model(candidate).On("CONFLICT (name) DO NOTHING").Exec(ctx); err != nil {
		return nil, fmt.Errorf("store Mattermost key: %w", err)
	}
	var stored db.Secret
	if err := d.NewSelect().Model(&stored).Where("name = ?", mattermostKeyName).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load Mattermost key: %w", err)
	}
	key, err := base64.RawStdEncoding.DecodeString(stored.Value)
	if err != nil || len(key) < 32 {
		return nil, errors.New("load Mattermost key: stored value is malformed")
	}
	return key, nil
}

// Mattermost posts pages to a Mattermost incoming webhook, with
// interactive buttons that post back to ActionURL; the contact method's
// value is the webhook URL.
type Mattermost struct {
	Client    *http.Client
	ActionURL string
	Key       []byte
	Now       func() time.Time
}

// NewMattermost returns a Mattermost sender whose bounded client reaches
// only what guard allows; buttons post to actionURL and are signed with
// key.
func NewMattermost(guard *egress.Guard, actionURL string, key []byte, now func() time.Time) *Mattermost {
	return &Mattermost{Client: outboundClient(guard), ActionURL: actionURL, Key: key, Now: now}
}

type mattermostMessage struct {
	Text        string                 `json:"text"`
	Attachments []mattermostAttachment `json:"attachments"`
}

type mattermostAttachment struct {
	Fallback string             `json:"fallback"`
	Color    string             `json:"color"`
	Title    string             `json:"title"`
	Text     string             `json:"text,omitempty"`
	Fields   []mattermostField  `json:"fields,omitempty"`
	Actions  []mattermostAction `json:"actions,omitempty"`
}

type mattermostField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

type mattermostAction struct {
	ID          string                `json:"id"`
	Name        string                `json:"name"`
	Style       string                `json:"style,omitempty"`
	Integration mattermostIntegration `json:"integration"`
}

type mattermostIntegration struct {
	URL     string            `json:"url"`
	Context MattermostContext `json:"context"`
}

// mattermostDetailsMax keeps a post well under Mattermost's 16383
// character limit.
const mattermostDetailsMax = 8000

// mattermostPayload is the page for msg, its buttons those that apply
// to an alert of status, and done (who did what) under the title.
func mattermostPayload(key []byte, actionURL string, now time.Time, msg Message, status, done string) mattermostMessage {
	headline := title(msg)
	att := mattermostAttachment{Fallback: headline, Color: "#d0021b", Title: headline, Text: clip(strings.TrimSpace(msg.Details), mattermostDetailsMax)}
	if sev := strings.ToUpper(oneLine(msg.Severity)); sev != "" {
		att.Fields = append(att.Fields, mattermostField{Title: "Severity", Value: sev, Short: true})
	}
	if src := oneLine(msg.SourceName); src != "" {
		att.Fields = append(att.Fields, mattermostField{Title: "Source", Value: clip(src, 1000), Short: true})
	}
	type button struct{ action, label, style string }
	var buttons []button
	switch status {
	case "OPEN", "":
		buttons = []button{{"acknowledge", "Acknowledge", "primary"}, {"close", "Close", "danger"}, {"escalate", "Escalate", "default"}}
	case "ACKNOWLEDGED":
		buttons = []button{{"close", "Close", "danger"}}
	}
	expires := now.Add(MattermostActionTTL).Unix()
	for _, b := range buttons {
		ctx := SignMattermostContext(key, MattermostContext{AlertID: msg.AlertID, Action: b.action, UserID: msg.UserID, Expires: expires})
		att.Actions = append(att.Actions, mattermostAction{ID: b.action, Name: b.label, Style: b.style,
			Integration: mattermostIntegration{URL: actionURL, Context: ctx}})
	}
	return mattermostMessage{Text: clip(oneLine(done), 1000), Attachments: []mattermostAttachment{att}}
}

// MattermostUpdate is the answer to a button press that edits the post
// in place: the alert as it is now, what was done, and the buttons that
// still apply, signed again for the same person.
func MattermostUpdate(key []byte, actionURL string, now time.Time, msg Message, status, done string) map[string]any {
	p := mattermostPayload(key, actionURL, now, msg, status, done)
	return map[string]any{"update": map[string]any{"message": p.Text, "props": map[string]any{"attachments": p.Attachments}}}
}

// Send posts msg to the webhook URL in msg.Destination.
func (m *Mattermost) Send(ctx context.Context, msg Message) (string, error) {
	client := m.Client
	if client == nil {
		client = outboundClient(nil)
	}
	if err := postJSON(ctx, client, "mattermost", msg.Destination, mattermostPayload(m.Key, m.ActionURL, m.Now(), msg, "OPEN", "")); err != nil {
		return "", fmt.Errorf("send mattermost message: %w", err)
	}
	return "", nil
}
