package notifiers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"syscall"

	"github.com/klaxonhq/klaxon/egress"
)

// Why sanitising matters: a failed send's error is stored in the delivery
// log and the alert's timeline, which every user may read, while a
// contact method's value is its owner's alone. For a webhook, Slack or
// Teams URL the value is the secret (a Slack webhook's path is its key),
// and Go's own transport errors quote it whole: `Post
// "https://hooks.slack.com/services/…": dial tcp: lookup hooks.slack.com
// on 10.0.0.2:53: no such host` also gives away the resolver's address.

// transportError is a request that got no answer, told by its reason
// alone; the error it came from stays reachable with errors.As for
// logs and retry decisions.
type transportError struct {
	reason string
	err    error
}

func (e *transportError) Error() string { return e.reason }
func (e *transportError) Unwrap() error { return e.err }

// noAnswer turns the error of an HTTP round trip into one that carries
// the reason only ("connection refused", "timeout", "no such host", a
// refusal by the outbound guard), never the URL, the address dialled or
// the resolver. A refusal by the guard is permanent: retrying reaches
// the same address.
func noAnswer(err error) error {
	e := &transportError{reason: transportReason(err), err: err}
	var refused *egress.RefusedError
	if errors.As(err, &refused) {
		return Permanent(e)
	}
	return e
}

func transportReason(err error) string {
	var (
		refused  *egress.RefusedError
		dnsErr   *net.DNSError
		netErr   net.Error
		hostErr  x509.HostnameError
		authErr  x509.UnknownAuthorityError
		certErr  x509.CertificateInvalidError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
	)
	switch {
	case errors.As(err, &refused):
		return refused.Error()
	case errors.As(err, &dnsErr):
		switch {
		case dnsErr.IsNotFound:
			return "no such host"
		case dnsErr.IsTimeout:
			return "DNS lookup timed out"
		}
		return "DNS lookup failed"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the receiver"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "host unreachable"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the receiver before it answered"
	case errors.As(err, &hostErr):
		return "TLS certificate is not for this host"
	case errors.As(err, &authErr):
		return "TLS certificate signed by an unknown authority"
	case errors.As(err, &certErr):
		return "TLS certificate not valid"
	case errors.As(err, &recErr):
		return "the receiver does not speak TLS"
	case errors.As(err, &alertErr):
		return "TLS handshake refused by the receiver: " + alertErr.Error()
	}
	// Something rarer: the innermost text, past the URL (*url.Error) and
	// the addresses (*net.OpError) that wrap it.
	for {
		var urlErr *url.Error
		var opErr *net.OpError
		switch {
		case errors.As(err, &urlErr):
			err = urlErr.Err
		case errors.As(err, &opErr) && opErr.Err != nil:
			err = opErr.Err
		default:
			return "request failed: " + err.Error()
		}
	}
}

// redacted replaces a redacted part of a destination.
const redacted = "[redacted]"

// Reason is the text of a failed send as it may be stored and shown to
// any user: the provider's reason, with destination (the contact
// method's value) removed wherever it still appears verbatim, and with
// it its host, path, query and long path segments, in case a receiver's
// own answer echoes them ("Cannot POST /hooks/…"). Senders already keep
// URLs out of their errors; this is the last line.
func Reason(err error, destination string) string {
	if err == nil {
		return ""
	}
	text := err.Error()
	for _, part := range secretParts(destination) {
		text = strings.ReplaceAll(text, part, redacted)
	}
	return text
}

// secretParts lists the strings that give a destination away, longest
// first so a whole URL goes before its pieces.
func secretParts(destination string) []string {
	destination = strings.TrimSpace(destination)
	if destination == "" {
		return nil
	}
	parts := []string{destination}
	var sub PushSubscription
	if json.Unmarshal([]byte(destination), &sub) == nil && sub.Endpoint != "" {
		parts = append(parts, sub.Endpoint)
		destination = sub.Endpoint
	}
	if u, err := url.Parse(destination); err == nil && u.Host != "" {
		parts = append(parts, u.Host, u.Hostname(), u.EscapedPath(), u.Path, u.RawQuery, u.Query().Encode())
		for seg := range strings.SplitSeq(u.Path, "/") {
			if len(seg) >= 8 {
				parts = append(parts, seg)
			}
		}
	}
	parts = slices.DeleteFunc(parts, func(p string) bool { return len(p) < 4 })
	slices.SortFunc(parts, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(parts)
}
