package maintenance

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// Paging is what holds back and later starts the paging of alerts opened
// during a window (package alerting). It is told of every change to a
// window inside the change's transaction, so alerts held back by the
// window follow the change exactly when it commits, and after the commit,
// so copies of the windows it keeps are dropped.
type Paging interface {
	// WindowChanged follows a change to w, which is the window as it now
	// is, or as it was when deleted (which ends it at now).
	WindowChanged(ctx context.Context, tx bun.Tx, w *db.MaintenanceWindow, deleted bool, now time.Time) error
	// RoutesChanged drops the copies.
	RoutesChanged()
}

// Store keeps the maintenance windows.
type Store struct {
	db     *db.DB
	now    func() time.Time
	paging Paging
}

// NewStore builds the maintenance window store over d; now is the clock.
// SetPaging must be called before the first change.
func NewStore(d *db.DB, now func() time.Time) *Store {
	return &Store{db: d, now: now}
}

// SetPaging names what follows changes to the windows. It is separate
// from NewStore because the paging reads the windows through this store.
func (s *Store) SetPaging(p Paging) { s.paging = p }

// clock returns the current time as both engines store it: UTC, whole
// microseconds, so a value read back equals the value written.
func (s *Store) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}
