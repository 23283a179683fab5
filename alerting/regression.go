package alerting

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// A finding that comes back after its alert was closed is a regression:
// the fix did not hold. The new alert links to the source's latest alert
// closed within the integration's regression window (previous_alert_id),
// and its timeline says which one it brings back. Each executor reads
// that alert in the statement that inserts the new one, so the link is
// taken from the same snapshot as the open-or-append decision.

// previousAlertSQL is the source's latest alert closed since a time, as
// an INSERT's value; its arguments are the integration, the source and
// the time (NULL finds none). alerts_source_closed answers it.
const previousAlertSQL = `(SELECT p.id FROM alerts p WHERE p.integration_id = ? AND p.source_id = ? AND p.closed_at >= ? ORDER BY p.closed_at DESC, p.id DESC LIMIT 1)`

// regressionSince is the earliest close an alert opened at now brings
// back; nil when the plan does not look.
func (p *ingestPlan) regressionSince(now time.Time) *time.Time {
	if p.Step != stepOpenOrAppend || p.RegressionDays <= 0 {
		return nil
	}
	since := now.AddDate(0, 0, -p.RegressionDays)
	return &since
}

// regressionFormat is the timeline entry of an alert that brings back
// another, in the one form both Go and PostgreSQL's format() read: the
// earlier alert's number, then when it closed (RFC 3339, whole seconds,
// UTC).
const regressionFormat = "Regression: finding #%s was closed on %s and is back"

// regressionText is the timeline entry of an alert that brings back
// previousID, closed at closedAt.
func regressionText(previousID int, closedAt time.Time) string {
	return fmt.Sprintf(regressionFormat, strconv.Itoa(previousID), closedAt.UTC().Format(time.RFC3339))
}

// noteRegression writes the timeline entry of alertID, which brings back
// previousID. It is the last entry the opening message leaves.
func noteRegression(ctx context.Context, tx bun.Tx, alertID, previousID int, now time.Time) error {
	var closedAt time.Time
	if err := tx.NewSelect().Table("alerts").Column("closed_at").Where("id = ?", previousID).Scan(ctx, &closedAt); err != nil {
		return fmt.Errorf("read alert %d that alert %d brings back: %w", previousID, alertID, err)
	}
	w := &timelineWriter{tx: tx, alertID: alertID, at: now}
	return w.add(ctx, db.LogRegression, regressionText(previousID, closedAt))
}

// regressionFact says whether an alert for sourceID opened at now would be
// a regression: none is open, and one closed within the window. It is
// read before the message's transaction, for the rules alone; the link
// itself is decided by the executor.
func regressionFact(ctx context.Context, idb bun.IDB, integ *db.Integration, sourceID string, now time.Time) (bool, error) {
	if integ.RegressionWindowDays <= 0 || sourceID == "" {
		return false, nil
	}
	since := now.AddDate(0, 0, -integ.RegressionWindowDays)
	closed := idb.NewSelect().Table("alerts").
		Where("integration_id = ? AND source_id = ? AND closed_at >= ?", integ.ID, sourceID, since)
	open := idb.NewSelect().Table("alerts").
		Where("integration_id = ? AND source_id = ? AND status <> ?", integ.ID, sourceID, db.AlertClosed)
	var regression bool
	err := idb.NewSelect().ColumnExpr("EXISTS (?) AND NOT EXISTS (?)", closed.ColumnExpr("1"), open.ColumnExpr("1")).Scan(ctx, &regression)
	if err != nil {
		return false, fmt.Errorf("look up regression of %q: %w", sourceID, db.Classify(err))
	}
	return regression, nil
}

// factsFor looks up what r's rules ask of the stored alerts about a
// parsed body, and nothing when they ask nothing, so plain ingest pays no
// query. A body that did not parse (nil) or does not map has no facts:
// decide reports why.
func (s *Service) factsFor(ctx context.Context, r *route, parsed *rules.Message, now time.Time) (rules.Facts, error) {
	if r.failure != "" || parsed == nil || !r.program.NeedsFacts() {
		return rules.Facts{}, nil
	}
	fields, ok := r.program.MapFields(parsed)
	if !ok {
		return rules.Facts{}, nil
	}
	regression, err := regressionFact(ctx, s.db, r.integ, fields.SourceID, now)
	return rules.Facts{Regression: regression}, err
}

// EarlierOccurrences counts the alerts of a's integration and source that
// opened before it: how often the finding has been seen.
func (s *Service) EarlierOccurrences(ctx context.Context, a *db.Alert) (int, error) {
	if a.IntegrationID == nil {
		return 0, nil
	}
	// A source has one unclosed alert at most, so every earlier one is
	// closed: saying so lets alerts_source_closed answer.
	n, err := s.db.NewSelect().Table("alerts").
		Where("integration_id = ? AND source_id = ? AND closed_at IS NOT NULL AND id < ?", *a.IntegrationID, a.SourceID, a.ID).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("count earlier alerts of alert %d: %w", a.ID, err)
	}
	return int(n), nil
}

// decideBody parses body once, looks up the facts r's rules ask about it
// at now, and decides: ingest's decision for one message.
func (s *Service) decideBody(ctx context.Context, r *route, body []byte, now time.Time) (rules.Decision, string, error) {
	parsed, parseErr := rules.Parse(body)
	facts, err := s.factsFor(ctx, r, parsed, now)
	if err != nil {
		return rules.Decision{}, "", err
	}
	d, failure := r.decide(parsed, parseErr, facts)
	return d, failure, nil
}
