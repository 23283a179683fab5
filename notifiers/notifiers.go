// Package notifiers sends alert notifications, one sender per channel
// behind one small interface. Senders know protocols, not policy: who is
// notified, when, and how often is the escalation engine's business.
package notifiers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/klaxonhq/klaxon/db"
)

// Message is one notification about one alert to one destination.
type Message struct {
	AlertID     int
	AlertNumber int
	Subject     string
	Severity    string
	Details     string
	SourceName  string
	URL         string
	// AckURL and CloseURL are signed one-click action links; either may be
	// empty, and channels then simply offer fewer actions.
	AckURL   string
	CloseURL string
	// Destination is the contact method's value: an address, a number or
	// a URL, depending on the channel.
	Destination string
	// Recipient is the name (or email) of the person being notified.
	Recipient string
	// VerificationCode, when set, makes this message the code that
	// proves a new contact method reaches its owner, not an alert.
	VerificationCode string
	// Others are further alerts for the same person sent along with this
	// one, because the contact method's rate limit held them back. The
	// action links are the first alert's only.
	Others []AlertSummary
	// Grouped is how many alerts joined this alert's group, which it
	// pages for: "(+12 grouped)" in the headline.
	Grouped int
	// UserID is the Klaxon user being notified: the person a signed
	// Mattermost button acts as.
	UserID int
	// Notice, when set, makes this message a notice to the person about
	// something other than an alert (a shift swap asked of them, or its
	// answer); the alert fields are then empty.
	Notice *Notice
}

// Notice is a message to a person that is not about an alert.
type Notice struct {
	// Title is one line, the subject of an email.
	Title string `json:"title"`
	Text  string `json:"text"`
	// Links are what the person can do, each a signed single-use link.
	Links []NoticeLink `json:"links,omitempty"`
}

// NoticeLink is one labelled link of a notice.
type NoticeLink struct {
	Label string `json:"label"`
	URL   string `json:"url"`
}

// NoticeChannel tells whether notices can go out on channel: those that
// carry a text and its links to a person. A call cannot give a link, and
// chat and outbound webhooks are for alerts.
func NoticeChannel(channel db.ContactType) bool {
	return channel == db.ContactEmail || channel == db.ContactSMS
}

// noticeText is the whole text of a notice with its links, one a line,
// for channels without markup.
func noticeText(n *Notice) string {
	var b strings.Builder
	b.WriteString(oneLine(n.Text))
	for _, l := range n.Links {
		if u := linkURL(l.URL); u != "" {
			b.WriteString("\n" + l.Label + ": " + u)
		}
	}
	return b.String()
}

// AlertSummary is the one line a bundled message gives each further
// alert.
type AlertSummary struct {
	AlertID     int
	AlertNumber int
	Subject     string
	Severity    string
}

// Sender delivers messages over one channel.
type Sender interface {
	// Send delivers msg and returns the provider's id for it, if any. An
	// error that IsPermanent means retrying cannot help (a bad address, a
	// refused request); any other error is temporary and the caller
	// retries with backoff, waiting at least RetryAfter(err) when the
	// provider asked for that.
	Send(ctx context.Context, msg Message) (providerID string, err error)
}

// ErrNotConfigured is returned for a channel that has no sender; it is
// permanent.
var ErrNotConfigured = Permanent(errors.New("channel not configured"))

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix.
func Permanent(err error) error { return &permanentError{err: err} }

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// RetryAfterError is a temporary failure for which the provider named the
// earliest moment to try again (HTTP Retry-After on a 429 or 503).
// Retrying sooner only burns rate limit.
type RetryAfterError struct {
	Wait time.Duration
	Err  error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.Wait)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter reports how long the provider asked the caller to wait
// before retrying err, if it asked.
func RetryAfter(err error) (time.Duration, bool) {
	var r *RetryAfterError
	if errors.As(err, &r) {
		return r.Wait, true
	}
	return 0, false
}

// Senders maps each configured channel to its sender.
type Senders map[db.ContactType]Sender

// Send delivers msg over channel, or fails with ErrNotConfigured.
func (s Senders) Send(ctx context.Context, channel db.ContactType, msg Message) (string, error) {
	sender, ok := s[channel]
	if !ok {
		return "", ErrNotConfigured
	}
	if msg.Notice != nil && !NoticeChannel(channel) {
		return "", Permanent(fmt.Errorf("send %s notice: the channel does not carry notices", channel))
	}
	id, err := sender.Send(ctx, msg)
	if err != nil {
		return "", fmt.Errorf("send %s notification: %w", channel, err)
	}
	return id, nil
}

// Two bounds keep a slow provider from holding up the engine, which
// retries later anyway: roundTripTimeout bounds each request to a
// provider (an HTTP call, an SMTP session), SendTimeout a whole Send,
// which may take more than one.
const (
	roundTripTimeout = 10 * time.Second
	SendTimeout      = 30 * time.Second
)

func newHTTPClient() *http.Client { return &http.Client{Timeout: roundTripTimeout} }

// nowFunc is the clock for parsing HTTP-date Retry-After values.
var nowFunc = time.Now

// maxErrorBody caps how much of a provider's error answer is read and
// kept: enough for its reason, never a whole HTML error page.
const maxErrorBody = 64 << 10

// readErrorBody reads a failed answer's body for its reason.
func readErrorBody(resp *http.Response) []byte {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return b
}

// statusError maps a non-2xx answer onto the Sender contract: 408, 429
// and 5xx are temporary (with the provider's Retry-After when given),
// anything else means the request itself is wrong and is permanent.
// detail is the provider's own reason, if one could be read.
func statusError(what string, resp *http.Response, detail string) error {
	err := fmt.Errorf("%s answered %s", what, resp.Status)
	if detail = clip(oneLine(detail), 300); detail != "" {
		err = fmt.Errorf("%s answered %s: %s", what, resp.Status, detail)
	}
	code := resp.StatusCode
	switch {
	case code == http.StatusTooManyRequests || code >= 500:
		if wait, ok := parseRetryAfter(resp.Header.Get("Retry-After"), nowFunc()); ok {
			return &RetryAfterError{Wait: wait, Err: err}
		}
		return err
	case code == http.StatusRequestTimeout:
		return err
	default:
		return Permanent(err)
	}
}

// parseRetryAfter reads either form RFC 9110 allows: delay seconds or an
// HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		// A day is already far beyond any escalation step; a larger value
		// is a provider bug we should not sleep through.
		return time.Duration(min(secs, 86400)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// title is the one-line headline every channel leads with, e.g.
// "[Klaxon #42] HIGH: disk full", with "(+2 more alerts)" when others
// were bundled in.
func title(msg Message) string {
	if msg.Notice != nil {
		return "[Klaxon] " + oneLine(msg.Notice.Title)
	}
	if msg.VerificationCode != "" {
		return "Klaxon verification code: " + msg.VerificationCode
	}
	t := fmt.Sprintf("[Klaxon #%d] %s%s", msg.AlertNumber, headline(msg.Severity, msg.Subject), groupedSuffix(msg))
	switch n := len(msg.Others); n {
	case 0:
	case 1:
		t += " (+1 more alert)"
	default:
		t += fmt.Sprintf(" (+%d more alerts)", n)
	}
	return t
}

// groupedSuffix is " (+12 grouped)" for an alert that pages for a group.
func groupedSuffix(msg Message) string {
	if msg.Grouped == 0 {
		return ""
	}
	return fmt.Sprintf(" (+%d grouped)", msg.Grouped)
}

// headline is an alert's severity and subject on one line: "HIGH: disk
// full".
func headline(severity, subject string) string {
	var b strings.Builder
	if sev := strings.ToUpper(oneLine(severity)); sev != "" {
		b.WriteString(sev)
		b.WriteString(": ")
	}
	subject = oneLine(subject)
	if subject == "" {
		subject = "alert"
	}
	b.WriteString(subject)
	return b.String()
}

// verificationText is the whole text of a verification message, the code
// first so it shows in a phone's notification preview.
func verificationText(msg Message) string {
	return msg.VerificationCode + " is your Klaxon verification code. It expires in 15 minutes. If you did not add this contact method to Klaxon, ignore this message."
}

// summaries lists msg's alerts, its own first, one line each: "#42 HIGH:
// disk full".
func summaries(msg Message) []string {
	lines := []string{fmt.Sprintf("#%d %s%s", msg.AlertNumber, headline(msg.Severity, msg.Subject), groupedSuffix(msg))}
	for _, o := range msg.Others {
		lines = append(lines, fmt.Sprintf("#%d %s", o.AlertNumber, headline(o.Severity, o.Subject)))
	}
	return lines
}

// oneLine collapses all whitespace runs, newlines included, to single
// spaces: alert text is attacker-influenced and must not break out of
// headers or one-line fields.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// clip shortens s to at most n bytes without splitting a UTF-8 sequence,
// marking the cut with an ellipsis.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := max(n-len(ellipsis), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// clipRunes is clip for limits counted in characters (Slack's), not bytes.
func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(n-1, 0)]) + "…"
}

// linkURL returns s if it is an absolute http or https URL, else "".
// Message.URL comes from the inbound payload: a javascript: or malformed
// link must not be rendered, and Slack refuses a whole message over one
// bad button URL.
func linkURL(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.String()
}

// links is msg with only renderable links left in it.
func links(msg Message) Message {
	msg.URL, msg.AckURL, msg.CloseURL = linkURL(msg.URL), linkURL(msg.AckURL), linkURL(msg.CloseURL)
	return msg
}
