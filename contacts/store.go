package contacts

import (
	"log/slog"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/notifiers"
)

// Store keeps the users' contact methods, their notification rules and
// the codes that verify them.
type Store struct {
	db  *db.DB
	now func() time.Time
	log *slog.Logger
	// channels are the senders verification codes go out through and the
	// guard contact URLs are checked against: the same value the engine
	// pages through, so both see one configuration.
	channels *notifiers.Channels
}

// NewStore builds the contact store over d; now is the clock. channels
// may be nil: then no channel is configured and only public addresses
// are accepted.
func NewStore(d *db.DB, now func() time.Time, log *slog.Logger, channels *notifiers.Channels) *Store {
	if channels == nil {
		channels = notifiers.NewChannels(nil, nil)
	}
	return &Store{db: d, now: now, log: log, channels: channels}
}

// ChannelEnabled tells whether notifications on channel can be delivered.
func (s *Store) ChannelEnabled(channel db.ContactType) bool {
	return s.channels.Enabled(channel)
}

// PushPublicKey is the VAPID key browsers subscribe with, or "" when Web
// Push is not configured.
func (s *Store) PushPublicKey() string {
	return s.channels.PushPublicKey()
}

// clock returns the current time as both engines store it: UTC, whole
// microseconds, so a value read back equals the value written.
func (s *Store) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}
