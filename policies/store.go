package policies

import (
	"time"

	"github.com/klaxonhq/klaxon/db"
)

// Store keeps the escalation policies with their steps and targets.
type Store struct {
	db       *db.DB
	now      func() time.Time
	onChange func()
}

// NewStore builds the escalation policy store over d; now is the clock.
// onChange, when not nil, is called after every change to a policy, so
// that whoever keeps copies (the webhook routes of alerting) drops them.
func NewStore(d *db.DB, now func() time.Time, onChange func()) *Store {
	if onChange == nil {
		onChange = func() {}
	}
	return &Store{db: d, now: now, onChange: onChange}
}

// clock returns the current time as both engines store it: UTC, whole
// microseconds, so a value read back equals the value written.
func (s *Store) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}
