package notifiers

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// chatReceiver answers like a chat webhook and hands over each body.
func chatReceiver(t *testing.T, status int, answer string) (*httptest.Server, chan []byte) {
	t.Helper()
	bodies := make(chan []byte, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(r.Body)
		bodies <- b
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "3")
		}
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv, bodies
}

func TestSlack(t *testing.T) {
	srv, bodies := chatReceiver(t, http.StatusOK, "ok")
	msg := testMessage(srv.URL)
	msg.Details = "db-1 <!channel> & friends"
	if _, err := NewSlack(localSinks).Send(context.Background(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	var got struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text *struct {
				Type, Text string
			} `json:"text"`
			Fields   []struct{ Type, Text string } `json:"fields"`
			Elements []struct {
				Type     string `json:"type"`
				Text     struct{ Type, Text string }
				URL      string `json:"url"`
				ActionID string `json:"action_id"`
				Style    string `json:"style"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(<-bodies, &got); err != nil {
		t.Fatal(err)
	}
	if got.Text != "[Klaxon #42] HIGH: Disk full on db-1" {
		t.Errorf("text = %q", got.Text)
	}
	types := []string{}
	for _, b := range got.Blocks {
		types = append(types, b.Type)
	}
	if strings.Join(types, ",") != "header,section,section,actions" {
		t.Fatalf("blocks = %v", types)
	}
	if h := got.Blocks[0].Text; h.Type != "plain_text" || h.Text != got.Text {
		t.Errorf("header = %+v", h)
	}
	if f := got.Blocks[1].Fields; len(f) != 2 || f[0].Text != "*Severity*\nHIGH" || f[1].Text != "*Source*\nDetectify" {
		t.Errorf("fields = %+v", f)
	}
	if d := got.Blocks[2].Text.Text; d != "db-1 &lt;!channel&gt; &amp; friends" {
		t.Errorf("details not escaped: %q", d)
	}
	buttons := got.Blocks[3].Elements
	want := []struct{ text, url, style string }{
		{"Acknowledge", msg.AckURL, "primary"}, {"Close", msg.CloseURL, "danger"}, {"View details", msg.URL, ""},
	}
	if len(buttons) != len(want) {
		t.Fatalf("buttons = %+v", buttons)
	}
	for i, w := range want {
		b := buttons[i]
		if b.Type != "button" || b.Text.Text != w.text || b.URL != w.url || b.Style != w.style || b.ActionID == "" {
			t.Errorf("button %d = %+v, want %+v", i, b, w)
		}
	}
}

func TestSlackDropsUnsafeLinksAndClipsHeader(t *testing.T) {
	msg := testMessage("")
	msg.URL = "javascript:alert(1)"
	msg.CloseURL = ""
	msg.Subject = strings.Repeat("x", 500)
	p := slackPayload(msg)
	if n := len([]rune(p.Blocks[0].Text.Text)); n > slackHeaderMax {
		t.Errorf("header has %d characters", n)
	}
	last := p.Blocks[len(p.Blocks)-1]
	if len(last.Elements) != 1 || last.Elements[0].URL != msg.AckURL {
		t.Errorf("actions = %+v", last.Elements)
	}
}

func TestTeams(t *testing.T) {
	srv, bodies := chatReceiver(t, http.StatusAccepted, "")
	msg := testMessage(srv.URL)
	if _, err := NewTeams(localSinks).Send(context.Background(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	var got struct {
		Type        string `json:"type"`
		Attachments []struct {
			ContentType string `json:"contentType"`
			Content     struct {
				Schema  string           `json:"$schema"`
				Type    string           `json:"type"`
				Version string           `json:"version"`
				Body    []map[string]any `json:"body"`
				Actions []struct {
					Type, Title, URL string
				} `json:"actions"`
			} `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal(<-bodies, &got); err != nil {
		t.Fatal(err)
	}
	if got.Type != "message" || len(got.Attachments) != 1 {
		t.Fatalf("message = %+v", got)
	}
	a := got.Attachments[0]
	if a.ContentType != "application/vnd.microsoft.card.adaptive" || a.Content.Type != "AdaptiveCard" || a.Content.Version == "" {
		t.Errorf("attachment = %+v", a)
	}
	if len(a.Content.Body) < 3 || a.Content.Body[0]["text"] != "[Klaxon #42] HIGH: Disk full on db-1" || a.Content.Body[1]["type"] != "FactSet" {
		t.Errorf("body = %+v", a.Content.Body)
	}
	if a.Content.Body[2]["text"] != msg.Details {
		t.Errorf("details block = %+v", a.Content.Body[2])
	}
	wantActions := map[string]string{"Acknowledge": msg.AckURL, "Close": msg.CloseURL, "View details": msg.URL}
	if len(a.Content.Actions) != len(wantActions) {
		t.Fatalf("actions = %+v", a.Content.Actions)
	}
	for _, act := range a.Content.Actions {
		if act.Type != "Action.OpenUrl" || wantActions[act.Title] != act.URL {
			t.Errorf("action = %+v", act)
		}
	}
}

func TestChatErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		answer    string
		permanent bool
		wait      time.Duration
	}{
		{name: "archived channel", status: http.StatusGone, answer: "channel_is_archived", permanent: true},
		{name: "bad payload", status: http.StatusBadRequest, answer: "invalid_blocks", permanent: true},
		{name: "rate limited", status: http.StatusTooManyRequests, answer: "rate_limited", wait: 3 * time.Second},
		{name: "outage", status: http.StatusInternalServerError, answer: "rollup_error"},
	}
	senders := map[string]Sender{"slack": NewSlack(localSinks), "teams": NewTeams(localSinks)}
	for _, tt := range tests {
		for name, sender := range senders {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				srv, _ := chatReceiver(t, tt.status, tt.answer)
				_, err := sender.Send(context.Background(), testMessage(srv.URL))
				if err == nil {
					t.Fatal("want error")
				}
				if IsPermanent(err) != tt.permanent {
					t.Errorf("IsPermanent = %v, want %v: %v", IsPermanent(err), tt.permanent, err)
				}
				if wait, ok := RetryAfter(err); ok != (tt.wait > 0) || wait != tt.wait {
					t.Errorf("RetryAfter = %v, %v; want %v", wait, ok, tt.wait)
				}
				if !strings.Contains(err.Error(), tt.answer) {
					t.Errorf("error %q lacks provider reason %q", err, tt.answer)
				}
			})
		}
	}
}
