package alerting

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// InboundFilter narrows the inbound log; zero values match everything.
type InboundFilter struct {
	IntegrationID *int
	Statuses      []db.InboundStatus
	AlertID       *int
	// Teams, when set, keeps only the messages of these owners: those of
	// their integrations.
	Teams *db.TeamScope
}

// InboundMessages returns one page of the inbound log, newest first, the
// total matching the filter (counted up to db.CountCap + 1), and whether
// more follow.
func (s *Service) InboundMessages(ctx context.Context, f InboundFilter, p db.PageRequest) ([]*db.InboundMessage, int, bool, error) {
	return listPage[db.InboundMessage](ctx, s.db, p, "inbound messages", func(q *bun.SelectQuery) *bun.SelectQuery {
		if f.IntegrationID != nil {
			q = q.Where("integration_id = ?", *f.IntegrationID)
		}
		if len(f.Statuses) > 0 {
			q = q.Where("status IN (?)", bun.In(f.Statuses))
		}
		if f.AlertID != nil {
			q = q.Where("alert_id = ?", *f.AlertID)
		}
		if f.Teams != nil {
			// The owners' integrations' messages, which an index answers,
			// rather than each message's owner looked up.
			q = q.Where("inbound_message.integration_id IN (?)",
				f.Teams.Apply(q.DB().NewSelect().Table("integrations").Column("id"), "team_id"))
		}
		return q
	})
}

func (s *Service) InboundMessage(ctx context.Context, id int) (*db.InboundMessage, error) {
	m := new(db.InboundMessage)
	if err := s.db.NewSelect().Model(m).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load inbound message %d: %w", id, db.Classify(err))
	}
	return m, nil
}
