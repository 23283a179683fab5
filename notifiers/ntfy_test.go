package notifiers

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type ntfyPublish struct {
	path, title, priority, tags, click, auth, body string
	actions                                        [][]string
}

// parseNtfyActions splits ntfy's short action syntax the way the ntfy
// server does: ";" between actions, "," between fields, quotes protect
// either.
func parseNtfyActions(s string) [][]string {
	var actions [][]string
	var fields []string
	var cur strings.Builder
	var quote rune
	flush := func() { fields = append(fields, strings.TrimSpace(cur.String())); cur.Reset() }
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote = r
		case r == ',':
			flush()
		case r == ';':
			flush()
			actions, fields = append(actions, fields), nil
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return append(actions, fields)
}

func fakeNtfy(t *testing.T, status int, answer string) (*httptest.Server, chan ntfyPublish) {
	t.Helper()
	got := make(chan ntfyPublish, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var dec mime.WordDecoder
		title, err := dec.DecodeHeader(r.Header.Get("Title"))
		if err != nil {
			t.Errorf("Title header: %v", err)
		}
		p := ntfyPublish{
			path: r.URL.Path, title: title, priority: r.Header.Get("Priority"), tags: r.Header.Get("Tags"),
			click: r.Header.Get("Click"), auth: r.Header.Get("Authorization"), body: string(b),
		}
		if a := r.Header.Get("Actions"); a != "" {
			p.actions = parseNtfyActions(a)
		}
		got <- p
		w.Header().Set("Content-Type", "application/json")
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "12")
		}
		w.WriteHeader(status)
		if answer != "" {
			io.WriteString(w, answer)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "hwQ2YpKdmg", "time": time.Now().Unix(), "event": "message",
			"topic": strings.TrimPrefix(r.URL.Path, "/"), "title": title, "message": string(b),
		})
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestNtfy(t *testing.T) {
	srv, got := fakeNtfy(t, http.StatusOK, "")
	sender, err := NewNtfy(NtfyConfig{ServerURL: srv.URL, Token: "tk_secret", Guard: localSinks})
	if err != nil {
		t.Fatal(err)
	}
	msg := testMessage("oncall-ada")
	msg.Subject = "Disk full on db-1 ✓"
	msg.CloseURL = "https://klaxon.example/actions/close,token;x"
	id, err := sender.Send(context.Background(), msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if id != "hwQ2YpKdmg" {
		t.Errorf("provider id = %q", id)
	}
	p := <-got
	if p.path != "/oncall-ada" || p.auth != "Bearer tk_secret" {
		t.Errorf("path %q auth %q", p.path, p.auth)
	}
	if p.title != "[Klaxon #42] HIGH: Disk full on db-1 ✓" || p.priority != "4" || p.click != msg.URL {
		t.Errorf("title %q priority %q click %q", p.title, p.priority, p.click)
	}
	if p.tags != "rotating_light,klaxon,high" {
		t.Errorf("tags = %q", p.tags)
	}
	if !strings.Contains(p.body, msg.Details) || !strings.Contains(p.body, "Source: Detectify") {
		t.Errorf("body = %q", p.body)
	}
	want := [][]string{
		{"view", "Acknowledge", msg.AckURL, "clear=true"},
		{"view", "Close", msg.CloseURL, "clear=true"},
		{"view", "Details", msg.URL},
	}
	if len(p.actions) != len(want) {
		t.Fatalf("actions = %q", p.actions)
	}
	for i := range want {
		if strings.Join(p.actions[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("action %d = %q, want %q", i, p.actions[i], want[i])
		}
	}
}

func TestNtfyFullTopicURL(t *testing.T) {
	srv, got := fakeNtfy(t, http.StatusOK, "")
	sender, err := NewNtfy(NtfyConfig{Guard: localSinks})
	if err != nil {
		t.Fatal(err)
	}
	msg := testMessage(srv.URL + "/team-topic")
	msg.AckURL, msg.CloseURL, msg.URL = "", "", ""
	msg.Severity = "low"
	if _, err := sender.Send(context.Background(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	p := <-got
	if p.path != "/team-topic" || p.auth != "" || p.priority != "2" || p.actions != nil || p.click != "" {
		t.Errorf("publish = %+v", p)
	}
}

func TestNtfyPriority(t *testing.T) {
	for sev, want := range map[string]string{
		"critical": "5", "High": "4", "medium": "3", "low": "2", "information": "1", "": "3", "weird": "3",
	} {
		if got := ntfyPriority(sev); got != want {
			t.Errorf("ntfyPriority(%q) = %s, want %s", sev, got, want)
		}
	}
}

func TestNtfyErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		answer    string
		dest      string
		permanent bool
		wait      time.Duration
	}{
		{name: "forbidden", status: http.StatusForbidden, answer: `{"code":40301,"http":403,"error":"forbidden"}`, permanent: true},
		{name: "rate limited", status: http.StatusTooManyRequests, answer: `{"code":42901,"http":429,"error":"limit reached: too many requests"}`, wait: 12 * time.Second},
		{name: "server error", status: http.StatusBadGateway, answer: "bad gateway"},
		{name: "bad destination", dest: "ftp://example.com/topic", permanent: true},
		{name: "empty destination", dest: " ", permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeNtfy(t, tt.status, tt.answer)
			sender, err := NewNtfy(NtfyConfig{ServerURL: srv.URL, Guard: localSinks})
			if err != nil {
				t.Fatal(err)
			}
			dest := "alerts"
			if tt.dest != "" {
				dest = tt.dest
			}
			_, err = sender.Send(context.Background(), testMessage(dest))
			if err == nil {
				t.Fatal("want error")
			}
			if IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v: %v", IsPermanent(err), tt.permanent, err)
			}
			if wait, ok := RetryAfter(err); ok != (tt.wait > 0) || wait != tt.wait {
				t.Errorf("RetryAfter = %v, %v; want %v", wait, ok, tt.wait)
			}
		})
	}
}
