package schedules

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// TargetGuard refuses to delete what an escalation step still targets;
// the escalation policies implement it.
type TargetGuard interface {
	RefuseIfTargeted(ctx context.Context, idb bun.IDB, t db.Target) error
}

// Store keeps the on-call schedules, their layers and overrides.
type Store struct {
	db      *db.DB
	now     func() time.Time
	targets TargetGuard
	notices Notices
}

// NewStore builds the schedule store over d; now is the clock, and targets
// is asked before a schedule is deleted.
func NewStore(d *db.DB, now func() time.Time, targets TargetGuard) *Store {
	return &Store{db: d, now: now, targets: targets}
}

// clock returns the current time as both engines store it: UTC, whole
// microseconds, so a value read back equals the value written.
func (s *Store) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}
