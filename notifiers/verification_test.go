package notifiers

import (
	"context"
	"io"
	"mime"
	netmail "net/mail"
	"strings"
	"testing"
)

// A verification message carries the code and nothing of an alert: no
// alert number, no action links.
func TestVerificationMessages(t *testing.T) {
	code := Message{Destination: "+15551230000", VerificationCode: "042917"}

	t.Run("sms", func(t *testing.T) {
		f := newFakeTwilio(t)
		sms, err := NewTwilioSMS(twilioConfig(f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sms.Send(context.Background(), code); err != nil {
			t.Fatal(err)
		}
		body := (<-f.requests).Get("Body")
		if !strings.HasPrefix(body, "042917 is your Klaxon verification code") || strings.Contains(body, "#0") {
			t.Errorf("Body = %q", body)
		}
	})

	t.Run("voice", func(t *testing.T) {
		f := newFakeTwilio(t)
		voice, err := NewTwilioVoice(twilioConfig(f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := voice.Send(context.Background(), code); err != nil {
			t.Fatal(err)
		}
		twiml := (<-f.requests).Get("Twiml")
		if !strings.Contains(twiml, "0, 4, 2, 9, 1, 7") || strings.Contains(twiml, "<Gather") {
			t.Errorf("Twiml = %s", twiml)
		}
	})

	t.Run("email", func(t *testing.T) {
		be := &smtpBackend{}
		host, port := startSMTP(t, be, nil, false)
		sender, err := NewEmail(EmailConfig{Host: host, Port: port, TLS: SMTPNoTLS, From: "klaxon@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		mail := code
		mail.Destination = "ada@example.com"
		if _, err := sender.Send(context.Background(), mail); err != nil {
			t.Fatal(err)
		}
		m, err := netmail.ReadMessage(strings.NewReader(string(receive(t, be).data)))
		if err != nil {
			t.Fatal(err)
		}
		subject, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		body, _ := io.ReadAll(m.Body)
		if subject != "Klaxon verification code: 042917" || !strings.Contains(string(body), "042917 is your Klaxon verification code") {
			t.Errorf("Subject %q, body:\n%s", subject, body)
		}
	})
}
