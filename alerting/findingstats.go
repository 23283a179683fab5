package alerting

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/rules"
)

// FindingStats is what happened to an integration's findings in
// [From, To), per severity.
type FindingStats struct {
	From, To   time.Time
	Severities []*SeverityStats
}

// SeverityStats are the figures of one severity.
type SeverityStats struct {
	Severity                             string
	Opened, Closed, Regressions, Overdue int
	// MedianSecondsToClose is over the alerts closed in the range; nil
	// when none closed.
	MedianSecondsToClose *int
}

// FindingStats counts in SQL what happened to the integration's alerts in
// [from, to), and streams the times to close, in order, to take their
// medians: memory stays bounded by the number of severities.
func (s *Service) FindingStats(ctx context.Context, integrationID int, from, to time.Time) (*FindingStats, error) {
	if !to.After(from) {
		return nil, invalid.New("to", "must be after from")
	}
	if _, err := s.config.Integrations.IntegrationByID(ctx, s.db, integrationID); err != nil {
		return nil, fmt.Errorf("finding stats: %w", err)
	}
	var rows []*SeverityStats
	in := func(column string) string { return "(" + column + " >= ? AND " + column + " < ?)" }
	err := s.db.NewSelect().Table("alerts").
		ColumnExpr("severity").
		ColumnExpr("SUM(CASE WHEN "+in("opened_at")+" THEN 1 ELSE 0 END) AS opened", from, to).
		ColumnExpr("SUM(CASE WHEN "+in("closed_at")+" THEN 1 ELSE 0 END) AS closed", from, to).
		ColumnExpr("SUM(CASE WHEN "+in("opened_at")+" AND previous_alert_id IS NOT NULL THEN 1 ELSE 0 END) AS regressions", from, to).
		ColumnExpr("SUM(CASE WHEN "+in("overdue_at")+" THEN 1 ELSE 0 END) AS overdue", from, to).
		Where("integration_id = ?", integrationID).
		Where("("+in("opened_at")+" OR "+in("closed_at")+" OR "+in("overdue_at")+")", from, to, from, to, from, to).
		Group("severity").Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("finding stats of integration %d: %w", integrationID, err)
	}
	if err := s.mediansToClose(ctx, integrationID, from, to, rows); err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b *SeverityStats) int {
		if r := rules.SeverityRank(b.Severity) - rules.SeverityRank(a.Severity); r != 0 {
			return r
		}
		return cmp.Compare(a.Severity, b.Severity)
	})
	return &FindingStats{From: from, To: to, Severities: rows}, nil
}

// mediansToClose sets the median time to close of each severity in stats
// from the closes in [from, to), read in order of severity and duration.
func (s *Service) mediansToClose(ctx context.Context, integrationID int, from, to time.Time, stats []*SeverityStats) error {
	bySeverity := map[string]*SeverityStats{}
	for _, st := range stats {
		bySeverity[st.Severity] = st
	}
	duration := "EXTRACT(EPOCH FROM (closed_at - opened_at))"
	if s.db.Kind == db.SQLite {
		duration = "(julianday(closed_at) - julianday(opened_at)) * 86400.0"
	}
	rows, err := s.db.NewSelect().Table("alerts").
		ColumnExpr("severity").ColumnExpr(duration+" AS seconds").
		Where("integration_id = ? AND closed_at >= ? AND closed_at < ?", integrationID, from, to).
		OrderExpr("severity, seconds").Rows(ctx)
	if err != nil {
		return fmt.Errorf("times to close of integration %d: %w", integrationID, err)
	}
	defer rows.Close()
	// Each severity's durations arrive sorted: its median is at its
	// middle index (the mean of the two middle ones for an even count).
	var severity string
	var index int
	var lower float64
	for rows.Next() {
		var sev string
		var seconds float64
		if err := rows.Scan(&sev, &seconds); err != nil {
			return fmt.Errorf("times to close of integration %d: %w", integrationID, err)
		}
		if sev != severity {
			severity, index = sev, 0
		}
		st := bySeverity[sev]
		if st == nil || st.Closed == 0 {
			continue
		}
		switch n := st.Closed; {
		case index == (n-1)/2 && n%2 == 1:
			median := int(math.Round(seconds))
			st.MedianSecondsToClose = &median
		case index == n/2-1 && n%2 == 0:
			lower = seconds
		case index == n/2 && n%2 == 0:
			median := int(math.Round((lower + seconds) / 2))
			st.MedianSecondsToClose = &median
		}
		index++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("times to close of integration %d: %w", integrationID, err)
	}
	return nil
}
