package alerting

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// DryRun is what a message would do, computed without writing anything.
type DryRun struct {
	Status   db.InboundStatus
	Detail   string
	Decision rules.Decision
	// Alert is the existing alert the message would append to or close;
	// nil when it would open a new one or touch none.
	Alert *db.Alert
}

// TestIntegration evaluates body as the integration would and reports the
// outcome. It only reads. It settles the plan the way a replay does (see
// simulate.go), against the source's alert as the alerts table holds it.
func (s *Service) TestIntegration(ctx context.Context, id int, body []byte) (*DryRun, error) {
	integ, err := s.config.Integrations.IntegrationByID(ctx, s.db, id)
	if err != nil {
		return nil, err
	}
	r, err := s.routeFor(ctx, integ.Token)
	if err != nil {
		return nil, err
	}
	parsed, parseErr := rules.Parse(body)
	facts, err := s.factsFor(ctx, r, parsed, s.clock())
	if err != nil {
		return nil, err
	}
	v := r.judge(parsed, parseErr, "", facts)
	var state sourceState
	var existing *db.Alert
	if v.plan.Step != stepStore {
		if existing, err = s.openAlertOf(ctx, integ.ID, v.plan.Fields.SourceID); err != nil {
			return nil, fmt.Errorf("test integration %d: %w", id, err)
		}
		if existing != nil {
			state = sourceState{open: true, subject: existing.Subject, lastSeen: existing.LastSeenAt,
				acknowledged: existing.Status == db.AlertAcknowledged && existing.SnoozedUntil == nil}
		}
	}
	out := state.settle(&v.plan, s.clock())
	run := &DryRun{Status: out.Status, Detail: out.Detail, Decision: v.decision}
	if out.Entry != "" {
		// An outcome with a timeline entry is about the existing alert,
		// unless it opened a new one.
		run.Alert = existing
	}
	return run, nil
}

// openAlertOf is the integration's unclosed alert for the source, nil when
// it has none.
func (s *Service) openAlertOf(ctx context.Context, integrationID int, sourceID string) (*db.Alert, error) {
	existing := new(db.Alert)
	err := s.db.NewSelect().Model(existing).
		Where("integration_id = ? AND source_id = ? AND status <> ?", integrationID, sourceID, db.AlertClosed).
		Scan(ctx)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return existing, nil
}
