package mailin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// Config is the SMTP listener's share of the settings.
type Config struct {
	// Domain is the part after the @ of every address mail is taken for.
	Domain string
	// MaxBytes caps a message, headers and encoded attachments included;
	// larger ones get 552.
	MaxBytes int64
	// Hostname is the name the listener greets with; Domain by default.
	Hostname string
	// Timeout bounds each read and write of a connection, and the storing
	// of a message.
	Timeout time.Duration
}

// maxLineBytes is the longest line taken, in commands and messages.
const maxLineBytes = 64 << 10

// DefaultMaxBytes is the default message size limit. It is larger than
// the webhook body limit because mail carries its attachments, encoded,
// before they are dropped.
const DefaultMaxBytes = 10 << 20

// Listener is the SMTP server.
type Listener struct {
	cfg      Config
	alerting *alerting.Service
	log      *slog.Logger
	server   *smtp.Server

	// mu guards ln, stopping and the adding to storing: a message is
	// either counted in storing, and finished before Shutdown closes the
	// connections, or refused with 421.
	mu       sync.Mutex
	ln       net.Listener
	stopping bool
	storing  sync.WaitGroup
}

// New builds a listener that feeds svc.
func New(cfg Config, svc *alerting.Service, log *slog.Logger) *Listener {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Hostname == "" {
		cfg.Hostname = cfg.Domain
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	l := &Listener{cfg: cfg, alerting: svc, log: log}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{l: l, remote: remoteHost(c)}, nil
	}))
	s.Domain = cfg.Hostname
	s.MaxMessageBytes = cfg.MaxBytes
	// One integration per message (see Rcpt); the other recipients of a
	// mail are sent in transactions of their own.
	s.MaxRecipients = 1
	// RFC 5322 caps lines at 998 characters, but HTML sent 8bit often
	// runs longer; the message size limit bounds what a line may hold.
	s.MaxLineLength = maxLineBytes
	s.ReadTimeout, s.WriteTimeout = cfg.Timeout, cfg.Timeout
	s.ErrorLog = slogPrinter{log}
	l.server = s
	return l
}

// Serve takes connections on ln until Shutdown.
func (l *Listener) Serve(ln net.Listener) error {
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	err := l.server.Serve(ln)
	l.mu.Lock()
	stopping := l.stopping
	l.mu.Unlock()
	if errors.Is(err, smtp.ErrServerClosed) || stopping && errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops taking mail and waits, until ctx ends, for the messages
// being stored to be answered; then it closes every connection. A sender
// cut off before its message was answered keeps it and sends it again.
func (l *Listener) Shutdown(ctx context.Context) error {
	l.mu.Lock()
	l.stopping = true
	ln := l.ln
	l.mu.Unlock()
	if ln != nil {
		// New connections are refused at once, while the messages in
		// hand are finished.
		ln.Close()
	}
	stored := make(chan struct{})
	go func() { l.storing.Wait(); close(stored) }()
	var err error
	select {
	case <-stored:
	case <-ctx.Done():
		err = fmt.Errorf("messages still being stored: %w", ctx.Err())
	}
	// Idle sessions would otherwise hold the stop until their timeout.
	if cerr := l.server.Close(); cerr != nil && !errors.Is(cerr, smtp.ErrServerClosed) && !errors.Is(cerr, net.ErrClosed) && err == nil {
		err = cerr
	}
	return err
}

var errStopping = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Shutting down; try again later"}

// begin counts a transaction whose mail is in hand (see session.held),
// or refuses it once stopping.
func (l *Listener) begin() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopping {
		return false
	}
	l.storing.Add(1)
	return true
}

// session is one SMTP connection's transaction state.
type session struct {
	l      *Listener
	remote string
	from   string
	// key is the routing key of the one recipient taken.
	key string
	// held says the session's transaction is counted in the listener's
	// storing: from its accepted recipient on, since the server answers
	// DATA with 354 before Data runs, and a stop must not refuse a mail
	// whose sender was told to go ahead. A sender that stalls after its
	// recipient holds the stop up to its deadline at most. Atomic, as a
	// stop's Close may log the session out while Data runs.
	held atomic.Bool
}

// release ends the count of the session's transaction, if it has one.
func (s *session) release() {
	if s.held.CompareAndSwap(true, false) {
		s.l.storing.Done()
	}
}

var (
	errNoMailbox = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such mailbox here"}
	errDisabled  = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 2, 1}, Message: "This mailbox is disabled"}
	errNoRelay   = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Relaying denied: mail is taken only for this server's own addresses"}
	errTryLater  = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "The message could not be stored; try again later"}
)

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

// Rcpt takes an address of an enabled EMAIL integration, and nothing else.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	local, domain, ok := strings.Cut(to, "@")
	if !ok || !strings.EqualFold(domain, s.l.cfg.Domain) {
		return errNoRelay
	}
	// Keys are lowercase hex; some mail systems change the case of
	// addresses.
	key := strings.ToLower(local)
	ctx, cancel := context.WithTimeout(context.Background(), s.l.cfg.Timeout)
	defer cancel()
	integ, err := s.l.alerting.IntegrationByKey(ctx, rules.TypeEmail, key)
	switch {
	case errors.Is(err, alerting.ErrUnknownToken):
		return errNoMailbox
	case err != nil:
		s.l.log.Warn("inbound mail: recipient not checked", "err", err)
		return errTryLater
	case !integ.Enabled:
		return errDisabled
	}
	if !s.held.Load() {
		if !s.l.begin() {
			return errStopping
		}
		s.held.Store(true)
	}
	s.key = key
	return nil
}

// Data stores the message and answers 250 once it is committed.
func (s *session) Data(r io.Reader) error {
	// The count is released by Reset, which the server calls once it
	// has answered: a stop that closed the connection on Data's return
	// would cut the 250 off.
	if !s.held.Load() {
		return errStopping
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		// smtp.ErrDataTooLarge answers 552 itself.
		var smtpErr *smtp.SMTPError
		if errors.As(err, &smtpErr) {
			return smtpErr
		}
		if errors.Is(err, smtp.ErrTooLongLine) {
			return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: fmt.Sprintf("A line is longer than %d bytes", maxLineBytes)}
		}
		return fmt.Errorf("read message: %w", err)
	}
	msg, problem := parseMail(raw, envelopeAddress(s.from))
	body, err := json.Marshal(msg)
	if err != nil {
		s.l.log.Error("inbound mail: encode message", "err", err)
		return errTryLater
	}
	// The address is the integration's credential, and more people read
	// the inbound log than may see it: wherever the mail repeats it (To,
	// Delivered-To, Received, the text), it is not stored.
	body = redactKey(body, s.key)
	ctx, cancel := context.WithTimeout(context.Background(), s.l.cfg.Timeout)
	defer cancel()
	headers := map[string]string{"Mail-From": s.from}
	if id := msg.Headers["Message-Id"]; id != "" {
		headers["Message-Id"] = id
	}
	res, err := s.l.alerting.Ingest(ctx, alerting.Inbound{
		Type: rules.TypeEmail, RoutingKey: s.key, Body: body, Headers: headers, RemoteAddr: s.remote,
		Invalid: problem,
	})
	var rateErr *db.RateLimitError
	switch {
	case errors.As(err, &rateErr):
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too much mail for this address: " + rateErr.Error()}
	case errors.Is(err, alerting.ErrUnknownToken):
		return errNoMailbox
	case errors.Is(err, alerting.ErrIntegrationDisabled):
		return errDisabled
	case errors.Is(db.Classify(err), db.ErrUnavailable):
		s.l.log.Warn("inbound mail not stored: database unavailable", "err", err)
		return errTryLater
	case err != nil:
		s.l.log.Error("inbound mail not stored", "err", err)
		return errTryLater
	}
	if res.Status == db.InboundMappingFailed || res.Status == db.InboundRefused {
		// Stored for the operator to see; the sender learns of it from
		// its own server's bounce.
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message stored but not read: " + oneLine(res.Detail)}
	}
	return nil
}

func (s *session) Reset() {
	s.from, s.key = "", ""
	s.release()
}

func (s *session) Logout() error {
	s.release()
	return nil
}

// redactedKey stands for the routing key in a stored mail.
const redactedKey = "[address key]"

// redactKey replaces key, in any case, in body. A key is hex, which JSON
// never escapes, so each occurrence is there as it is.
func redactKey(body []byte, key string) []byte {
	return regexp.MustCompile("(?i)"+regexp.QuoteMeta(key)).ReplaceAll(body, []byte(redactedKey))
}

// envelopeAddress is the MAIL FROM path as an address; the null path of
// a bounce is empty.
func envelopeAddress(from string) string {
	if a, err := mail.ParseAddress("<" + from + ">"); err == nil {
		return a.Address
	}
	return from
}

func remoteHost(c *smtp.Conn) string {
	addr := c.Conn().RemoteAddr().String()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}

// oneLine keeps an SMTP reply on one line of reasonable length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400]
	}
	return s
}

// slogPrinter is go-smtp's error log, written through slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.log.Warn("smtp: " + fmt.Sprintf(format, v...))
}
func (p slogPrinter) Println(v ...any) { p.log.Warn("smtp: " + strings.TrimSpace(fmt.Sprintln(v...))) }
