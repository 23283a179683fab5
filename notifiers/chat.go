package notifiers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/klaxonhq/klaxon/egress"
)

// postJSON POSTs body to a chat webhook and maps the answer onto the
// Sender contract. Chat webhooks return no message id.
func postJSON(ctx context.Context, client *http.Client, what, endpoint string, body any) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return Permanent(fmt.Errorf("encode %s message: %w", what, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		// Its text would quote the URL.
		return Permanent(fmt.Errorf("%s request: the URL is not valid", what))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Klaxon")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, noAnswer(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Slack explains failures in a plain-text body ("invalid_payload",
		// "channel_is_archived"); keep it for the delivery log.
		return statusError(what, resp, string(readErrorBody(resp)))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return nil
}

// Slack posts notifications to a Slack incoming webhook; the contact
// method's value is the webhook URL.
type Slack struct{ Client *http.Client }

// NewSlack returns a Slack sender whose bounded client reaches only what
// guard allows (nil: public addresses only).
func NewSlack(guard *egress.Guard) *Slack { return &Slack{Client: outboundClient(guard)} }

// Slack's Block Kit limits, in characters.
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
)

type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string         `json:"type"`
	Text     *slackText     `json:"text,omitempty"`
	Fields   []slackText    `json:"fields,omitempty"`
	Elements []slackElement `json:"elements,omitempty"`
}

type slackText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

type slackElement struct {
	Type     string    `json:"type"`
	Text     slackText `json:"text"`
	URL      string    `json:"url"`
	ActionID string    `json:"action_id"`
	Style    string    `json:"style,omitempty"`
}

// slackEscape escapes the three characters Slack's mrkdwn treats as
// control syntax, so alert text cannot forge links or mentions.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func slackPayload(msg Message) slackMessage {
	msg = links(msg)
	headline := title(msg)
	blocks := []slackBlock{{
		Type: "header",
		Text: &slackText{Type: "plain_text", Text: clipRunes(headline, slackHeaderMax)},
	}}
	var fields []slackText
	if sev := strings.ToUpper(oneLine(msg.Severity)); sev != "" {
		fields = append(fields, slackText{Type: "mrkdwn", Text: "*Severity*\n" + slackEscape(sev)})
	}
	if src := oneLine(msg.SourceName); src != "" {
		fields = append(fields, slackText{Type: "mrkdwn", Text: "*Source*\n" + slackEscape(clipRunes(src, 1000))})
	}
	if len(fields) > 0 {
		blocks = append(blocks, slackBlock{Type: "section", Fields: fields})
	}
	if d := strings.TrimSpace(msg.Details); d != "" {
		blocks = append(blocks, slackBlock{Type: "section", Text: &slackText{
			Type: "mrkdwn", Text: clipRunes(slackEscape(d), slackSectionMax),
		}})
	}
	var buttons []slackElement
	if msg.AckURL != "" {
		buttons = append(buttons, slackElement{Type: "button", ActionID: "klaxon_ack", Style: "primary",
			Text: slackText{Type: "plain_text", Text: "Acknowledge"}, URL: msg.AckURL})
	}
	if msg.CloseURL != "" {
		buttons = append(buttons, slackElement{Type: "button", ActionID: "klaxon_close", Style: "danger",
			Text: slackText{Type: "plain_text", Text: "Close"}, URL: msg.CloseURL})
	}
	if msg.URL != "" {
		buttons = append(buttons, slackElement{Type: "button", ActionID: "klaxon_view",
			Text: slackText{Type: "plain_text", Text: "View details"}, URL: msg.URL})
	}
	if len(buttons) > 0 {
		blocks = append(blocks, slackBlock{Type: "actions", Elements: buttons})
	}
	// text is what notifications and clients without blocks show.
	return slackMessage{Text: slackEscape(headline), Blocks: blocks}
}

// Send posts msg to the webhook URL in msg.Destination.
func (s *Slack) Send(ctx context.Context, msg Message) (string, error) {
	client := s.Client
	if client == nil {
		client = outboundClient(nil)
	}
	if err := postJSON(ctx, client, "slack", msg.Destination, slackPayload(msg)); err != nil {
		return "", fmt.Errorf("send slack message: %w", err)
	}
	return "", nil
}

// Teams posts notifications as Adaptive Cards to a Microsoft Teams
// webhook (a Workflows "post to a channel when a webhook request is
// received" URL); the contact method's value is the webhook URL.
type Teams struct{ Client *http.Client }

// NewTeams returns a Teams sender whose bounded client reaches only what
// guard allows (nil: public addresses only).
func NewTeams(guard *egress.Guard) *Teams { return &Teams{Client: outboundClient(guard)} }

type teamsMessage struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string       `json:"contentType"`
	ContentURL  *string      `json:"contentUrl"`
	Content     adaptiveCard `json:"content"`
}

type adaptiveCard struct {
	Schema  string           `json:"$schema"`
	Type    string           `json:"type"`
	Version string           `json:"version"`
	Body    []map[string]any `json:"body"`
	Actions []cardAction     `json:"actions,omitempty"`
}

type cardAction struct {
	Type  string `json:"type"`
	Title string `json:"title"`
	URL   string `json:"url"`
	Style string `json:"style,omitempty"`
}

type cardFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

// teamsDetailsMax keeps the card well under Teams' 28 KB message limit.
const teamsDetailsMax = 8000

func teamsPayload(msg Message) teamsMessage {
	msg = links(msg)
	body := []map[string]any{{
		"type": "TextBlock", "text": title(msg), "weight": "Bolder", "size": "Medium", "wrap": true,
		"style": "heading",
	}}
	var facts []cardFact
	if sev := strings.ToUpper(oneLine(msg.Severity)); sev != "" {
		facts = append(facts, cardFact{Title: "Severity", Value: sev})
	}
	if src := oneLine(msg.SourceName); src != "" {
		facts = append(facts, cardFact{Title: "Source", Value: src})
	}
	if len(facts) > 0 {
		body = append(body, map[string]any{"type": "FactSet", "facts": facts})
	}
	if d := strings.TrimSpace(msg.Details); d != "" {
		body = append(body, map[string]any{"type": "TextBlock", "text": clip(d, teamsDetailsMax), "wrap": true})
	}
	var actions []cardAction
	if msg.AckURL != "" {
		actions = append(actions, cardAction{Type: "Action.OpenUrl", Title: "Acknowledge", URL: msg.AckURL, Style: "positive"})
	}
	if msg.CloseURL != "" {
		actions = append(actions, cardAction{Type: "Action.OpenUrl", Title: "Close", URL: msg.CloseURL, Style: "destructive"})
	}
	if msg.URL != "" {
		actions = append(actions, cardAction{Type: "Action.OpenUrl", Title: "View details", URL: msg.URL})
	}
	return teamsMessage{
		Type: "message",
		Attachments: []teamsAttachment{{
			ContentType: "application/vnd.microsoft.card.adaptive",
			Content: adaptiveCard{
				Schema: "http://adaptivecards.io/schemas/adaptive-card.json", Type: "AdaptiveCard", Version: "1.4",
				Body: body, Actions: actions,
			},
		}},
	}
}

// Send posts msg to the webhook URL in msg.Destination.
func (t *Teams) Send(ctx context.Context, msg Message) (string, error) {
	client := t.Client
	if client == nil {
		client = outboundClient(nil)
	}
	if err := postJSON(ctx, client, "teams", msg.Destination, teamsPayload(msg)); err != nil {
		return "", fmt.Errorf("send teams message: %w", err)
	}
	return "", nil
}
