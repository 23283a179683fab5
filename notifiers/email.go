package notifiers

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	netmail "net/mail"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	texttemplate "text/template"

	"github.com/wneessen/go-mail"
)

//go:embed templates/email.txt.tmpl templates/email.html.tmpl
var emailTemplates embed.FS

var (
	emailText = texttemplate.Must(texttemplate.ParseFS(emailTemplates, "templates/email.txt.tmpl"))
	emailHTML = htmltemplate.Must(htmltemplate.ParseFS(emailTemplates, "templates/email.html.tmpl"))
)

// SMTPTLS is how the connection to the SMTP server is secured. The values
// match the tls= parameter of KLAXON_SMTP_URL.
type SMTPTLS string

const (
	// SMTPNoTLS sends in the clear; only for a relay on a trusted network.
	SMTPNoTLS SMTPTLS = "none"
	// SMTPStartTLS upgrades a plain connection and refuses servers that
	// cannot, so credentials never cross the wire unencrypted.
	SMTPStartTLS SMTPTLS = "starttls"
	// SMTPImplicitTLS speaks TLS from the first byte (SMTPS, port 465).
	SMTPImplicitTLS SMTPTLS = "implicit"
)

// EmailConfig is the SMTP relay email goes through.
type EmailConfig struct {
	Host string
	// Port defaults by TLS mode: 25 for none, 587 for STARTTLS, 465 for
	// implicit TLS.
	Port int
	// TLS defaults to SMTPStartTLS.
	TLS      SMTPTLS
	Username string
	Password string
	// From is the sender, a bare address or "Name <address>".
	From string
	// TLSConfig overrides certificate checks, e.g. a private CA; nil
	// means the system roots with Host as the server name.
	TLSConfig *tls.Config
}

// Email sends notifications as multipart (plain text and HTML) mail.
type Email struct {
	cfg  EmailConfig
	from string
}

// NewEmail checks cfg and returns an email sender.
func NewEmail(cfg EmailConfig) (*Email, error) {
	if cfg.Host == "" {
		return nil, errors.New("email config: host is required")
	}
	if cfg.TLS == "" {
		cfg.TLS = SMTPStartTLS
	}
	switch cfg.TLS {
	case SMTPNoTLS:
		if cfg.Port == 0 {
			cfg.Port = 25
		}
	case SMTPStartTLS:
		if cfg.Port == 0 {
			cfg.Port = 587
		}
	case SMTPImplicitTLS:
		if cfg.Port == 0 {
			cfg.Port = 465
		}
	default:
		return nil, fmt.Errorf("email config: unknown TLS mode %q (want none, starttls or implicit)", cfg.TLS)
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("email config: port %d out of range", cfg.Port)
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("email config: from address %q: %w", cfg.From, err)
	}
	if cfg.TLSConfig == nil {
		cfg.TLSConfig = &tls.Config{}
	} else {
		cfg.TLSConfig = cfg.TLSConfig.Clone()
	}
	if cfg.TLSConfig.ServerName == "" {
		cfg.TLSConfig.ServerName = cfg.Host
	}
	if cfg.TLSConfig.MinVersion == 0 {
		cfg.TLSConfig.MinVersion = tls.VersionTLS12
	}
	return &Email{cfg: cfg, from: from.String()}, nil
}

// ParseSMTPURL reads KLAXON_SMTP_URL, e.g.
// smtp://user:pass@host:587?tls=starttls, into a config sending as from.
func ParseSMTPURL(raw, from string) (EmailConfig, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return EmailConfig{}, fmt.Errorf("parse SMTP URL: %w", err)
	}
	if u.Scheme != "smtp" && u.Scheme != "smtps" {
		return EmailConfig{}, fmt.Errorf("parse SMTP URL: scheme %q, want smtp or smtps", u.Scheme)
	}
	cfg := EmailConfig{Host: u.Hostname(), From: from, TLS: SMTPTLS(strings.ToLower(u.Query().Get("tls")))}
	if u.Scheme == "smtps" && cfg.TLS == "" {
		cfg.TLS = SMTPImplicitTLS
	}
	if p := u.Port(); p != "" {
		if cfg.Port, err = strconv.Atoi(p); err != nil {
			return EmailConfig{}, fmt.Errorf("parse SMTP URL: port %q: %w", p, err)
		}
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	return cfg, nil
}

type emailData struct {
	Title, Severity, Source, Details string
	URL, AckURL, CloseURL, Recipient string
	Number                           int
	// Others are the bundled further alerts, one line each.
	Others []string
}

// Send mails msg to msg.Destination and returns the Message-ID.
func (e *Email) Send(ctx context.Context, msg Message) (string, error) {
	m := mail.NewMsg()
	if err := m.From(e.from); err != nil {
		return "", Permanent(fmt.Errorf("send email: from %q: %w", e.from, err))
	}
	if err := m.To(msg.Destination); err != nil {
		return "", Permanent(fmt.Errorf("send email: recipient %q: %w", msg.Destination, err))
	}
	m.Subject(title(msg))
	m.SetDate()
	m.SetMessageID()
	// RFC 3834: keeps vacation responders from answering pages.
	m.SetGenHeader(mail.Header("Auto-Submitted"), "auto-generated")
	if msg.VerificationCode != "" {
		m.SetBodyString(mail.TypeTextPlain, verificationText(msg))
		return e.deliver(ctx, m)
	}
	if msg.Notice != nil {
		m.SetBodyString(mail.TypeTextPlain, noticeText(msg.Notice)+"\n")
		return e.deliver(ctx, m)
	}
	msg = links(msg)
	data := emailData{
		Title: title(msg), Severity: strings.ToUpper(oneLine(msg.Severity)), Source: oneLine(msg.SourceName),
		Details: msg.Details, URL: msg.URL, AckURL: msg.AckURL, CloseURL: msg.CloseURL,
		Recipient: oneLine(msg.Recipient), Number: msg.AlertNumber,
	}
	if len(msg.Others) > 0 {
		data.Others = summaries(msg)[1:]
	}
	if err := m.SetBodyTextTemplate(emailText, data); err != nil {
		return "", Permanent(fmt.Errorf("send email: render text body: %w", err))
	}
	if err := m.AddAlternativeHTMLTemplate(emailHTML, data); err != nil {
		return "", Permanent(fmt.Errorf("send email: render HTML body: %w", err))
	}
	return e.deliver(ctx, m)
}

// deliver hands a composed message to the relay and returns its
// Message-ID.
func (e *Email) deliver(ctx context.Context, m *mail.Msg) (string, error) {
	client, err := e.client()
	if err != nil {
		return "", Permanent(fmt.Errorf("send email: %w", err))
	}
	err = client.DialAndSendWithContext(ctx, m)
	// A failure after the server took the message (RSET or QUIT) must not
	// be retried: that would page the person twice.
	if err != nil && !m.IsDelivered() {
		return "", smtpError(err)
	}
	return m.GetMessageID(), nil
}

// client builds a go-mail client per message: it holds connection state
// and is cheap, so sharing one would only add locking.
func (e *Email) client() (*mail.Client, error) {
	opts := []mail.Option{
		mail.WithPort(e.cfg.Port),
		mail.WithTimeout(roundTripTimeout),
		mail.WithTLSConfig(e.cfg.TLSConfig),
	}
	switch e.cfg.TLS {
	case SMTPNoTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	case SMTPStartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case SMTPImplicitTLS:
		opts = append(opts, mail.WithSSL())
	}
	if e.cfg.Username != "" {
		// Discovery picks the strongest mechanism the server offers and
		// never a cleartext one over an unencrypted connection.
		opts = append(opts,
			mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(e.cfg.Username),
			mail.WithPassword(e.cfg.Password))
	}
	return mail.NewClient(e.cfg.Host, opts...)
}

// smtpError classifies by the SMTP reply code: 5xx replies (unknown
// mailbox, refused sender, failed authentication) are permanent; 4xx
// replies and network failures are worth retrying.
func smtpError(err error) error {
	err = fmt.Errorf("send email: %w", err)
	var sendErr *mail.SendError
	if errors.As(err, &sendErr) {
		if sendErr.Reason == mail.ErrGetSender || sendErr.Reason == mail.ErrGetRcpts {
			return Permanent(err)
		}
		if code := sendErr.ErrorCode(); code >= 500 && code < 600 {
			return Permanent(err)
		}
		return err
	}
	var replyErr *textproto.Error
	if errors.As(err, &replyErr) && replyErr.Code >= 500 && replyErr.Code < 600 {
		return Permanent(err)
	}
	return err
}
