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
// outcome. It only reads.
func (s *Service) TestIntegration(ctx context.Context, id int, body []byte) (*DryRun, error) {
	integ, err := s.config.Integrations.IntegrationByID(ctx, s.db, id)
	if err != nil {
		return nil, err
	}
	r, err := s.routeFor(ctx, integ.Token)
	if err != nil {
		return nil, err
	}
	decision, failure := r.decide(body)
	run := &DryRun{Decision: decision, Detail: decision.Detail}
	if failure != "" {
		run.Status, run.Detail = db.InboundMappingFailed, failure
		return run, nil
	}
	switch decision.Action {
	case rules.ActionIgnore:
		run.Status = db.InboundFiltered
		return run, nil
	case rules.ActionOpen, rules.ActionClose, rules.ActionAcknowledge, rules.ActionNote:
	default:
		run.Status = db.InboundIgnored
		return run, nil
	}
	existing := new(db.Alert)
	err = s.db.NewSelect().Model(existing).
		Where("integration_id = ? AND source_id = ? AND status <> ?", integ.ID, decision.Fields.SourceID, db.AlertClosed).
		Scan(ctx)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		existing = nil
	case err != nil:
		return nil, fmt.Errorf("test integration %d: %w", id, err)
	}
	switch {
	case decision.Action == rules.ActionOpen && existing == nil:
		run.Status = db.InboundOpened
	case decision.Action == rules.ActionOpen:
		run.Status, run.Alert = db.InboundAppended, existing
	case existing == nil:
		run.Status = db.InboundIgnored
		run.Detail += "; no open alert for this source"
	case decision.Action == rules.ActionAcknowledge && existing.Status == db.AlertAcknowledged && existing.SnoozedUntil == nil:
		run.Status, run.Alert = db.InboundIgnored, existing
		run.Detail += "; " + alreadyAcknowledged
	case decision.Action == rules.ActionAcknowledge:
		run.Status, run.Alert = db.InboundAcknowledged, existing
	case decision.Action == rules.ActionNote:
		run.Status, run.Alert = db.InboundNoteAdded, existing
	default:
		run.Status, run.Alert = db.InboundClosed, existing
	}
	return run, nil
}
