package mailin

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/klaxonhq/klaxon/rules"
)

// readmeMail is the example of the README's "Inbound email" section.
const readmeMail = `From: Backup <backup@nas-1.example.com>
To: 3f9c0a4e8b7d41c2a6e5f0d9b8c7a6e5@alerts.example.com
Subject: Backup job 1187 failed on nas-1
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/html; charset=iso-8859-1

<p>Job <b>1187</b> failed: <a href="https://nas-1.example.com/log">log</a></p>
--b
Content-Type: text/plain; name=job.log
Content-Disposition: attachment; filename=job.log

...
--b--
`

func TestParseMail(t *testing.T) {
	crlf := func(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }
	msg, problem := parseMail(crlf(readmeMail), "envelope@example.com")
	if problem != "" {
		t.Fatalf("problem %q", problem)
	}
	msg.Headers = nil
	want := rules.EmailMessage{
		From: "backup@nas-1.example.com", To: []string{"3f9c0a4e8b7d41c2a6e5f0d9b8c7a6e5@alerts.example.com"},
		Subject: "Backup job 1187 failed on nas-1", SubjectKey: "Backup job failed on nas-",
		Text:        "Job 1187 failed: log (https://nas-1.example.com/log)",
		Attachments: []rules.EmailAttachment{{Name: "job.log", Type: "text/plain", Size: 3}},
	}
	if !reflect.DeepEqual(msg, want) {
		t.Errorf("README example\n got %+v\nwant %+v", msg, want)
	}

	tests := []struct {
		name, raw, problem string
		check              func(rules.EmailMessage) bool
	}{
		{"no header", "just text without a blank line", "no readable header", func(m rules.EmailMessage) bool { return m.From == "envelope@example.com" }},
		{"plain wins over html", "Subject: s\nContent-Type: multipart/alternative; boundary=x\n\n--x\nContent-Type: text/html\n\n<p>html</p>\n--x\nContent-Type: text/plain\n\nplain\n--x--\n", "",
			func(m rules.EmailMessage) bool { return m.Text == "plain" }},
		{"base64 windows-1252", "Subject: s\nContent-Type: text/plain; charset=windows-1252\nContent-Transfer-Encoding: base64\n\nQ2Fm6SCAIDU=\n", "",
			func(m rules.EmailMessage) bool { return m.Text == "Café € 5" }},
		{"bad base64", "Subject: s\nContent-Transfer-Encoding: base64\n\n!!!!\n", "does not decode", nil},
		{"too deep", "Subject: s\n" + nested(10), "nest deeper", nil},
		{"deep enough", "Subject: s\n" + nested(maxPartDepth-1), "", func(m rules.EmailMessage) bool { return m.Text == "x" }},
		{"long text cut", "Subject: s\n\n" + strings.Repeat("é", maxTextBytes) + "\n", "",
			func(m rules.EmailMessage) bool {
				return len(m.Text) <= maxTextBytes && strings.HasSuffix(m.Text, "é […]") && utf8.ValidString(m.Text)
			}},
		{"long header cut", "X-Filler: " + strings.Repeat("v", 2000) + "\n\nbody\n", "",
			func(m rules.EmailMessage) bool {
				return len(m.Headers["X-Filler"]) == maxHeaderBytes && strings.HasSuffix(m.Headers["X-Filler"], "v […]")
			}},
		{"many headers", manyHeaders(300) + "\nbody\n", "", func(m rules.EmailMessage) bool { return len(m.Headers) == maxHeaders }},
		{"no From header", "Subject: s\n\nbody\n", "", func(m rules.EmailMessage) bool { return m.From == "envelope@example.com" && m.Text == "body" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, problem := parseMail(crlf(tt.raw), "envelope@example.com")
			if tt.problem == "" && problem != "" || !strings.Contains(problem, tt.problem) {
				t.Errorf("problem %q; want one with %q", problem, tt.problem)
			}
			if tt.check != nil && !tt.check(m) {
				t.Errorf("read as %+v", m)
			}
		})
	}
}

// nested is a header and body of multiparts n deep around a text part.
func nested(n int) string {
	if n == 0 {
		return "Content-Type: text/plain\n\nx"
	}
	b := fmt.Sprintf("z%d", n)
	return "Content-Type: multipart/mixed; boundary=" + b + "\n\n--" + b + "\n" + nested(n-1) + "\n--" + b + "--"
}

func manyHeaders(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "X-H%d: v\n", i)
	}
	return b.String()
}
