package notifiers

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// delivery is what the test SMTP server saw for one message.
type delivery struct {
	from, authUser, authPass string
	to                       []string
	tls                      bool
	data                     []byte
}

// smtpBackend is a minimal mail server: it records deliveries and can
// require authentication or refuse recipients the way real relays do.
type smtpBackend struct {
	user, pass string
	rejectRcpt map[string]*smtp.SMTPError
	delivered  chan delivery
}

func (b *smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &smtpSession{b: b, c: c}, nil
}

type smtpSession struct {
	b *smtpBackend
	c *smtp.Conn
	d delivery
}

func (s *smtpSession) AuthMechanisms() []string {
	if s.b.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.b.user || password != s.b.pass {
			// What real relays answer for bad credentials (RFC 4954).
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		s.d.authUser, s.d.authPass = username, password
		_, s.d.tls = s.c.TLSConnectionState()
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.b.user != "" && s.d.authUser == "" {
		return smtp.ErrAuthRequired
	}
	s.d.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err, ok := s.b.rejectRcpt[to]; ok {
		return err
	}
	s.d.to = append(s.d.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.d.data = data
	if !s.d.tls {
		_, s.d.tls = s.c.TLSConnectionState()
	}
	s.b.delivered <- s.d
	return nil
}

func (s *smtpSession) Reset() {
	s.d = delivery{authUser: s.d.authUser, authPass: s.d.authPass, tls: s.d.tls}
}
func (s *smtpSession) Logout() error { return nil }

// startSMTP serves be on loopback; with cert, STARTTLS is offered, and
// implicit wraps the listener in TLS from the first byte.
func startSMTP(t *testing.T, be *smtpBackend, cert *tls.Certificate, implicit bool) (host string, port int) {
	t.Helper()
	if be.delivered == nil {
		be.delivered = make(chan delivery, 4)
	}
	srv := smtp.NewServer(be)
	srv.Domain = "mx.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = discardLogger{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
		if implicit {
			ln = tls.NewListener(ln, srv.TLSConfig)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) })
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	addr := ln.Addr().(*net.TCPAddr)
	return addr.IP.String(), addr.Port
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

// selfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (*tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "klaxon test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func receive(t *testing.T, be *smtpBackend) delivery {
	t.Helper()
	select {
	case d := <-be.delivered:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no message delivered")
		return delivery{}
	}
}

func TestEmailContent(t *testing.T) {
	be := &smtpBackend{}
	host, port := startSMTP(t, be, nil, false)
	sender, err := NewEmail(EmailConfig{Host: host, Port: port, TLS: SMTPNoTLS, From: "Klaxon <klaxon@example.com>"})
	if err != nil {
		t.Fatal(err)
	}
	msg := testMessage("ada@example.com")
	msg.Details = "Only 2% left on /var.\n<script>alert(1)</script>"

	id, err := sender.Send(context.Background(), msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	d := receive(t, be)
	if d.from != "klaxon@example.com" || len(d.to) != 1 || d.to[0] != "ada@example.com" {
		t.Errorf("envelope from %q to %v", d.from, d.to)
	}

	m, err := netmail.ReadMessage(strings.NewReader(string(d.data)))
	if err != nil {
		t.Fatalf("parse mail: %v", err)
	}
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "[Klaxon #42] HIGH: Disk full on db-1"; subject != want {
		t.Errorf("Subject = %q, want %q", subject, want)
	}
	from, err := m.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "klaxon@example.com" || from[0].Name != "Klaxon" {
		t.Errorf("From = %v (%v)", from, err)
	}
	to, err := m.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "ada@example.com" {
		t.Errorf("To = %v (%v)", to, err)
	}
	if got := m.Header.Get("Message-Id"); got == "" || !strings.Contains(got, id) {
		t.Errorf("Message-ID header %q, provider id %q", got, id)
	}
	if m.Header.Get("Auto-Submitted") != "auto-generated" {
		t.Errorf("Auto-Submitted = %q", m.Header.Get("Auto-Submitted"))
	}

	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q (%v)", m.Header.Get("Content-Type"), err)
	}
	parts := map[string]string{}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		var r io.Reader = p
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			r = quotedprintable.NewReader(p)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		parts[ct] = string(b)
	}
	text, html := parts["text/plain"], parts["text/html"]
	for _, want := range []string{"[Klaxon #42] HIGH: Disk full on db-1", "Severity: HIGH", "Source:   Detectify",
		"<script>alert(1)</script>", msg.URL, msg.AckURL, msg.CloseURL, "Klaxon paged Ada about alert #42."} {
		if !strings.Contains(text, want) {
			t.Errorf("text body lacks %q:\n%s", want, text)
		}
	}
	for _, want := range []string{`<a href="` + msg.URL + `"`, `<a href="` + msg.AckURL + `"`, `<a href="` + msg.CloseURL + `"`,
		"&lt;script&gt;alert(1)&lt;/script&gt;", "<td>HIGH</td>"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML body lacks %q:\n%s", want, html)
		}
	}
	if strings.Contains(html, "<script>") {
		t.Error("HTML body carries unescaped alert text")
	}
}

func TestEmailStartTLSAuth(t *testing.T) {
	cert, pool := selfSigned(t)
	be := &smtpBackend{user: "klaxon", pass: "hunter2"}
	host, port := startSMTP(t, be, cert, false)
	cfg := EmailConfig{Host: host, Port: port, TLS: SMTPStartTLS, Username: "klaxon", Password: "hunter2",
		From: "klaxon@example.com", TLSConfig: &tls.Config{RootCAs: pool}}

	sender, err := NewEmail(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sender.Send(context.Background(), testMessage("ada@example.com")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	d := receive(t, be)
	if !d.tls || d.authUser != "klaxon" || d.authPass != "hunter2" {
		t.Errorf("tls=%v user=%q pass=%q", d.tls, d.authUser, d.authPass)
	}

	t.Run("wrong password is permanent", func(t *testing.T) {
		cfg := cfg
		cfg.Password = "wrong"
		sender, err := NewEmail(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = sender.Send(context.Background(), testMessage("ada@example.com"))
		if err == nil || !IsPermanent(err) {
			t.Fatalf("want permanent error, got %v", err)
		}
	})
	t.Run("untrusted certificate fails", func(t *testing.T) {
		cfg := cfg
		cfg.TLSConfig = &tls.Config{RootCAs: x509.NewCertPool()}
		sender, err := NewEmail(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sender.Send(context.Background(), testMessage("ada@example.com")); err == nil {
			t.Fatal("sent over an unverified connection")
		}
	})
}

func TestEmailStartTLSRequired(t *testing.T) {
	be := &smtpBackend{}
	host, port := startSMTP(t, be, nil, false) // offers no STARTTLS
	sender, err := NewEmail(EmailConfig{Host: host, Port: port, TLS: SMTPStartTLS, From: "klaxon@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sender.Send(context.Background(), testMessage("ada@example.com")); err == nil {
		t.Fatal("sent in the clear although STARTTLS was required")
	}
}

func TestEmailImplicitTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	be := &smtpBackend{user: "klaxon", pass: "hunter2"}
	host, port := startSMTP(t, be, cert, true)
	sender, err := NewEmail(EmailConfig{Host: host, Port: port, TLS: SMTPImplicitTLS, Username: "klaxon", Password: "hunter2",
		From: "klaxon@example.com", TLSConfig: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sender.Send(context.Background(), testMessage("ada@example.com")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if d := receive(t, be); !d.tls || d.authUser != "klaxon" {
		t.Errorf("tls=%v user=%q", d.tls, d.authUser)
	}
}

func TestEmailErrors(t *testing.T) {
	be := &smtpBackend{rejectRcpt: map[string]*smtp.SMTPError{
		"gone@example.com": {Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"},
		"full@example.com": {Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"},
	}}
	host, port := startSMTP(t, be, nil, false)
	sender, err := NewEmail(EmailConfig{Host: host, Port: port, TLS: SMTPNoTLS, From: "klaxon@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		to        string
		permanent bool
	}{
		{to: "gone@example.com", permanent: true},
		{to: "full@example.com", permanent: false},
		{to: "not an address", permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.to, func(t *testing.T) {
			_, err := sender.Send(context.Background(), testMessage(tt.to))
			if err == nil {
				t.Fatal("want error")
			}
			if IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v: %v", IsPermanent(err), tt.permanent, err)
			}
		})
	}

	t.Run("connection refused is temporary", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		sender, err := NewEmail(EmailConfig{Host: "127.0.0.1", Port: port, TLS: SMTPNoTLS, From: "klaxon@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = sender.Send(context.Background(), testMessage("ada@example.com"))
		if err == nil || IsPermanent(err) {
			t.Fatalf("want temporary error, got %v", err)
		}
	})
}

func TestNewEmailValidates(t *testing.T) {
	for name, cfg := range map[string]EmailConfig{
		"no host":  {From: "a@example.com"},
		"bad from": {Host: "mx", From: "nobody"},
		"bad tls":  {Host: "mx", From: "a@example.com", TLS: "sometimes"},
		"bad port": {Host: "mx", From: "a@example.com", Port: 70000},
	} {
		if _, err := NewEmail(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseSMTPURL(t *testing.T) {
	cfg, err := ParseSMTPURL("smtp://user:p%40ss@mail.example.com:2525?tls=implicit", "klaxon@example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := EmailConfig{Host: "mail.example.com", Port: 2525, TLS: SMTPImplicitTLS, Username: "user", Password: "p@ss", From: "klaxon@example.com"}
	if cfg.Host != want.Host || cfg.Port != want.Port || cfg.TLS != want.TLS || cfg.Username != want.Username ||
		cfg.Password != want.Password || cfg.From != want.From {
		t.Errorf("got %+v, want %+v", cfg, want)
	}
	if _, err := ParseSMTPURL("http://mail.example.com", ""); err == nil {
		t.Error("http scheme accepted")
	}
	if cfg, _ := ParseSMTPURL("smtp://mail.example.com", "a@example.com"); cfg.Port != 0 || cfg.TLS != "" {
		t.Errorf("defaults not left to NewEmail: %+v", cfg)
	}
}

func TestEmailBundleListsTheOtherAlerts(t *testing.T) {
	msg := testMessage("ada@example.com")
	msg.Others = []AlertSummary{{AlertID: 43, AlertNumber: 43, Severity: "low", Subject: "<b>Cert</b> expires"}}
	if got, want := title(msg), "[Klaxon #42] HIGH: Disk full on db-1 (+1 more alert)"; got != want {
		t.Errorf("title = %q, want %q", got, want)
	}
	data := emailData{Title: title(msg), Number: msg.AlertNumber, Others: summaries(msg)[1:]}
	var text, html strings.Builder
	if err := emailText.Execute(&text, data); err != nil {
		t.Fatal(err)
	}
	if err := emailHTML.Execute(&html, data); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "the links above are for #42):\n  #43 LOW: <b>Cert</b> expires\n") {
		t.Errorf("text body:\n%s", text.String())
	}
	if !strings.Contains(html.String(), "<li>#43 LOW: &lt;b&gt;Cert&lt;/b&gt; expires</li>") {
		t.Errorf("HTML body:\n%s", html.String())
	}
}
