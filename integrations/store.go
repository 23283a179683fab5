package integrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// Store keeps the integrations with their recipients, and the rulesets
// with their rules.
type Store struct {
	db        *db.DB
	publicURL string
	now       func() time.Time
	onChange  func()
	pulses    ScanHeartbeats
}

// ScanHeartbeats is what an integration's scanHeartbeatHours asks of
// alerting, which keeps the pulse keys and their deadline jobs;
// *alerting.Service implements it.
type ScanHeartbeats interface {
	// WatchScanHeartbeats moves the deadlines of the integration's pulse
	// keys to a new window, or drops them for nil, inside tx.
	WatchScanHeartbeats(ctx context.Context, tx bun.Tx, integrationID int, hours *int) error
}

// UseScanHeartbeats sets who follows a change of scanHeartbeatHours. It
// is separate from NewStore because alerting reads the integrations too.
// Without it, the pulse keys take a new window at their next pulse.
func (s *Store) UseScanHeartbeats(p ScanHeartbeats) { s.pulses = p }

// followScanHeartbeat tells alerting of a changed scanHeartbeatHours, so
// the keys already pulsing follow it now rather than at their next pulse.
func (s *Store) followScanHeartbeat(ctx context.Context, tx bun.Tx, before *int, integ *db.Integration) error {
	after := integ.ScanHeartbeatHours
	if s.pulses == nil || (before == nil && after == nil) || (before != nil && after != nil && *before == *after) {
		return nil
	}
	return s.pulses.WatchScanHeartbeats(ctx, tx, integ.ID, after)
}

// NewStore builds the integration store over d; publicURL is where the
// webhooks are reached, now is the clock. onChange, when not nil, is
// called after every change to an integration or a ruleset that an
// existing webhook route depends on, so that whoever keeps copies (the
// webhook routes of alerting) drops them.
func NewStore(d *db.DB, publicURL string, now func() time.Time, onChange func()) *Store {
	if onChange == nil {
		onChange = func() {}
	}
	return &Store{db: d, publicURL: strings.TrimRight(publicURL, "/"), now: now, onChange: onChange}
}

// clock returns the current time as both engines store it: UTC, whole
// microseconds, so a value read back equals the value written.
func (s *Store) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

// IntegrationByToken returns the integration whose webhooks use token,
// or db.ErrNotFound when none does.
func (s *Store) IntegrationByToken(ctx context.Context, token string) (*db.Integration, error) {
	integ := new(db.Integration)
	err := s.db.NewSelect().Model(integ).Where("token = ?", token).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, db.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("look up integration token: %w", err)
	}
	return integ, nil
}

// RecipientsOf returns the users and groups an integration's alerts are
// for, read through idb so the engine can ask inside its own transaction.
func (s *Store) RecipientsOf(ctx context.Context, idb bun.IDB, integrationID int) ([]*db.IntegrationRecipient, error) {
	var recipients []*db.IntegrationRecipient
	err := idb.NewSelect().Model(&recipients).Where("integration_id = ?", integrationID).Order("kind", "target_id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("recipients of integration %d: %w", integrationID, err)
	}
	return recipients, nil
}
