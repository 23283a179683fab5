package rules

import (
	"strings"
	"unicode"
)

// EmailMessage is the body the SMTP listener stores for one mail to an
// EMAIL integration, and so what its mapping and rules read: JSONPath
// such as $.subject, $.headers['X-Mailer'] or $.attachments[0].name.
type EmailMessage struct {
	// From is the address in the From header, or the envelope sender
	// when the header has none.
	From string `json:"from"`
	// To are the addresses in the To header.
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	// SubjectKey is the subject with its digits removed and its spaces
	// collapsed: the preset's dedup key (see SubjectKey).
	SubjectKey string `json:"subjectKey"`
	// Text is the readable body: the text/plain part, or the HTML part
	// turned into text when there is no plain one.
	Text string `json:"text"`
	// Headers are the mail's headers, the first value of each, by their
	// canonical names (Message-Id, X-Mailer).
	Headers map[string]string `json:"headers"`
	// Attachments are noted, never kept.
	Attachments []EmailAttachment `json:"attachments"`
}

// EmailAttachment is what is kept of an attachment: its name, its media
// type and its size in bytes once decoded.
type EmailAttachment struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Size int    `json:"size"`
}

// SubjectKey is subject without digits, its runs of spaces made one:
// the numbers in a subject are usually a measurement or a count that
// changes from one mail about a condition to the next.
func SubjectKey(subject string) string {
	var b strings.Builder
	space := false
	for _, r := range subject {
		switch {
		case unicode.IsDigit(r):
			continue
		case unicode.IsSpace(r):
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}
