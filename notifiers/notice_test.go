package notifiers

import (
	"context"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
)

func swapNotice() *Notice {
	return &Notice{
		Title: "Ann asks you to take their shift on Primary",
		Text:  strings.Repeat("Ann asks you to be on call for Primary instead of them. ", 20),
		Links: []NoticeLink{
			{Label: "Accept", URL: "https://klaxon.example/swaps/tok/accept"},
			{Label: "Decline", URL: "https://klaxon.example/swaps/tok/decline"},
			{Label: "Bad", URL: "javascript:alert(1)"},
		},
	}
}

// A long notice is cut in its text, never in its links, and a link that
// is not http(s) is left out.
func TestNoticeSMSKeepsItsLinks(t *testing.T) {
	body := smsBody(Message{Notice: swapNotice()})
	if len(body) > maxSMSBody {
		t.Fatalf("SMS of %d bytes", len(body))
	}
	if !strings.HasPrefix(body, "[Klaxon] Ann asks you to take their shift on Primary. ") ||
		!strings.HasSuffix(body, "\nAccept: https://klaxon.example/swaps/tok/accept\nDecline: https://klaxon.example/swaps/tok/decline") {
		t.Fatalf("SMS body %q", body)
	}
	if strings.Contains(body, "javascript") {
		t.Fatal("a javascript: link was sent")
	}
}

func TestNoticeOnlyOnChannelsThatCarryIt(t *testing.T) {
	be := &smtpBackend{delivered: make(chan delivery, 1)}
	host, port := startSMTP(t, be, nil, false)
	email, err := NewEmail(EmailConfig{Host: host, Port: port, TLS: SMTPNoTLS, From: "klaxon@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	senders := Senders{db.ContactEmail: email, db.ContactSlack: email}
	msg := Message{Notice: swapNotice(), Destination: "ann@example.com"}
	if _, err := senders.Send(context.Background(), db.ContactEmail, msg); err != nil {
		t.Fatal(err)
	}
	got := receive(t, be)
	text := strings.ReplaceAll(string(got.data), "=\r\n", "")
	for _, want := range []string{"Subject: [Klaxon] Ann asks you to take their shift on Primary", "Accept: https://klaxon.example/swaps/tok/accept"} {
		if !strings.Contains(text, want) {
			t.Fatalf("email lacks %q:\n%s", want, got.data)
		}
	}
	if _, err := senders.Send(context.Background(), db.ContactSlack, msg); !IsPermanent(err) {
		t.Fatalf("a notice on a chat channel: %v, want a permanent refusal", err)
	}
}
