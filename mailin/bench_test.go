package mailin_test

import (
	"net/smtp"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// BenchmarkMail sends a multipart HTML mail with an attachment per
// iteration over one SMTP connection, each a new subject (a new alert),
// answered once committed: what one sending server gets through.
func BenchmarkMail(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchmarkMail(b, dbtest.SQLite(b)) })
	b.Run("postgres", func(b *testing.B) { benchmarkMail(b, dbtest.Postgres(b)) })
}

func benchmarkMail(b *testing.B, d *db.DB) {
	f := newFixture(b, d, 0)
	integ := f.createIntegration()
	c, err := smtp.Dial(f.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	base := strings.ReplaceAll(strings.Replace(htmlMail, "%s", address(integ), 1), "\n", "\r\n")
	b.ResetTimer()
	for i := range b.N {
		// Digits would be dropped from the dedup key: letters make it new.
		mail := strings.Replace(base, "Subject: =?iso-8859-1?q?Backup", "Subject: =?iso-8859-1?q?Backup_"+letters(i), 1)
		if err := c.Mail("monitor@ops.example"); err != nil {
			b.Fatal(err)
		}
		if err := c.Rcpt(address(integ)); err != nil {
			b.Fatal(err)
		}
		w, err := c.Data()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write([]byte(mail)); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// letters spells n in base 26 with the letters a to z.
func letters(n int) string {
	s := string(rune('a' + n%26))
	for n /= 26; n > 0; n /= 26 {
		s = string(rune('a'+n%26)) + s
	}
	return s
}
