package resolvers

import (
	"context"

	"github.com/klaxonhq/klaxon/db"
)

// attachIntegrations reads the integrations of a page of alerts in one
// query and hangs each on its alerts, so that a list asking for every
// alert's integration makes one query for the page instead of one per
// alert (see alertResolver.Integration).
func (r *Resolver) attachIntegrations(ctx context.Context, alerts []*db.Alert) error {
	var ids []int
	seen := map[int]bool{}
	for _, a := range alerts {
		if a.IntegrationID != nil && !seen[*a.IntegrationID] {
			seen[*a.IntegrationID] = true
			ids = append(ids, *a.IntegrationID)
		}
	}
	integs, err := r.IntegrationStore.IntegrationsByID(ctx, ids)
	if err != nil {
		return err
	}
	for _, a := range alerts {
		if a.IntegrationID != nil {
			a.Integration = integs[*a.IntegrationID]
		}
	}
	return nil
}
