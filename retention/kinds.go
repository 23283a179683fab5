package retention

import (
	"context"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
)

// Settings are how long each kind of record is kept; 0 keeps it for ever.
type Settings struct {
	// Bodies: inbound message bodies (the message row stays).
	Bodies time.Duration
	// ClosedAlerts: closed alerts, with their timelines, notifications,
	// recipients and action links.
	ClosedAlerts time.Duration
	// Events: delivered events, what subscribers resume from.
	Events time.Duration
	// Audit: audit log entries.
	Audit time.Duration
}

// Kinds are the four kinds Klaxon prunes, in the order a run takes them,
// each pruned by the package that owns its table.
func Kinds(s Settings, d *db.DB, svc *alerting.Service, auditLog *audit.Log) []Kind {
	return []Kind{
		{Name: "bodies", Age: s.Bodies, Prune: svc.PruneBodies, Backlog: svc.BodiesBacklog},
		{Name: "closed_alerts", Age: s.ClosedAlerts, Batch: alerting.DefaultClosedAlertBatch, Prune: svc.PruneClosedAlerts, Backlog: svc.ClosedAlertsBacklog},
		{Name: "events", Age: s.Events,
			Prune: func(ctx context.Context, before time.Time, limit int) (int, error) {
				return events.Prune(ctx, d, before, limit)
			},
			Backlog: func(ctx context.Context, before time.Time) (int64, error) {
				return events.Backlog(ctx, d, before)
			}},
		{Name: "audit", Age: s.Audit, Prune: auditLog.Prune, Backlog: auditLog.Backlog},
	}
}
