// Package notifiers sends alert notifications, one sender per channel
// behind one small interface. Senders know protocols, not policy: who is
// notified, when, and how often is the escalation engine's business.
package notifiers

import (
	"context"
	"errors"
	"fmt"

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
	// Destination is the contact method's value: an address, a number or
	// a URL, depending on the channel.
	Destination string
	// Recipient is the name (or email) of the person being notified.
	Recipient string
}

// Sender delivers messages over one channel.
type Sender interface {
	// Send delivers msg and returns the provider's id for it, if any. An
	// error that IsPermanent means retrying cannot help (a bad address, a
	// refused request); any other error is temporary and the caller
	// retries with backoff.
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

// Senders maps each configured channel to its sender.
type Senders map[db.ContactType]Sender

// Send delivers msg over channel, or fails with ErrNotConfigured.
func (s Senders) Send(ctx context.Context, channel db.ContactType, msg Message) (string, error) {
	sender, ok := s[channel]
	if !ok {
		return "", ErrNotConfigured
	}
	id, err := sender.Send(ctx, msg)
	if err != nil {
		return "", fmt.Errorf("send %s notification: %w", channel, err)
	}
	return id, nil
}
