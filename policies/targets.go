package policies

import (
	"context"
	"fmt"
	"github.com/klaxonhq/klaxon/invalid"
	"slices"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// RefuseIfTargeted reports, as invalid input, an escalation step that
// targets t.
func (s *Store) RefuseIfTargeted(ctx context.Context, idb bun.IDB, t db.Target) error {
	var steps []*db.EscalationStep
	if err := idb.NewSelect().Model(&steps).Order("policy_id", "position").Scan(ctx); err != nil {
		return fmt.Errorf("find escalation steps targeting %s %d: %w", t.Type, t.ID, err)
	}
	for _, step := range steps {
		if slices.Contains(step.Targets, t) {
			var name string
			err := idb.NewSelect().Model((*db.EscalationPolicy)(nil)).Column("name").Where("id = ?", step.PolicyID).Scan(ctx, &name)
			if err != nil {
				return fmt.Errorf("find escalation steps targeting %s %d: %w", t.Type, t.ID, err)
			}
			return invalid.New("id", fmt.Sprintf("step %d of escalation policy %q targets it; change the policy first", step.Position+1, name))
		}
	}
	return nil
}
