package heartbeats

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

func recipientIDs(ctx context.Context, idb bun.IDB, monitorID int) (users, groups []int, err error) {
	var rows []*Recipient
	if err := idb.NewSelect().Model(&rows).Where("monitor_id = ?", monitorID).Order("kind", "target_id").Scan(ctx); err != nil {
		return nil, nil, fmt.Errorf("recipients of heartbeat monitor %d: %w", monitorID, err)
	}
	users, groups = []int{}, []int{}
	for _, r := range rows {
		switch r.Kind {
		case db.TargetUser:
			users = append(users, r.TargetID)
		case db.TargetGroup:
			groups = append(groups, r.TargetID)
		}
	}
	return users, groups, nil
}

// Recipients returns the users and groups a monitor's alerts are for;
// deleted ones are left out.
func (s *Store) Recipients(ctx context.Context, monitorID int) ([]*db.User, []*db.Group, error) {
	users, groups, err := db.HeartbeatRecipients.Read(ctx, s.db, monitorID)
	if err != nil {
		return nil, nil, fmt.Errorf("heartbeat monitor %d: %w", monitorID, err)
	}
	return users, groups, nil
}

// record is what the audit log keeps of a monitor, by API names.
type record struct {
	Name               string `json:"name"`
	Token              string `json:"token"`
	IntervalMinutes    int    `json:"intervalMinutes"`
	GraceMinutes       int    `json:"graceMinutes"`
	Severity           string `json:"severity"`
	EscalationPolicyID *int   `json:"escalationPolicyId"`
	RecipientUserIDs   []int  `json:"recipientUserIds"`
	RecipientGroupIDs  []int  `json:"recipientGroupIds"`
	TeamID             *int   `json:"teamId,omitempty"`
}

func recordOf(ctx context.Context, idb bun.IDB, m *Monitor) (*record, error) {
	users, groups, err := recipientIDs(ctx, idb, m.ID)
	if err != nil {
		return nil, err
	}
	return &record{
		Name: m.Name, Token: m.Token, IntervalMinutes: m.IntervalMinutes, GraceMinutes: m.GraceMinutes,
		Severity: m.Severity, EscalationPolicyID: m.EscalationPolicyID, RecipientUserIDs: users, RecipientGroupIDs: groups,
		TeamID: m.TeamID,
	}, nil
}
