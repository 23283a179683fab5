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
//
// On SQLite a batch holds the one writer, so ingest waits behind it for as
// long as it takes: batches there are a quarter of the size, a few
// milliseconds each, for the same rows a second at the same share of the
// writer's time.
func Kinds(s Settings, d *db.DB, svc *alerting.Service, auditLog *audit.Log) []Kind {
	batch, alerts := DefaultBatch, alerting.DefaultClosedAlertBatch
	if d.Kind != db.Postgres {
		batch, alerts = batch/4, alerts/4
	}
	return []Kind{
		{Name: "bodies", Age: s.Bodies, Batch: batch, Prune: svc.PruneBodies, Backlog: svc.BodiesBacklog},
		{Name: "closed_alerts", Age: s.ClosedAlerts, Batch: alerts, Prune: svc.PruneClosedAlerts, Backlog: svc.ClosedAlertsBacklog},
		{Name: "events", Age: s.Events, Batch: batch,
			Prune: func(ctx context.Context, before time.Time, limit int) (int, error) {
				return events.Prune(ctx, d, before, limit)
			},
			Backlog: func(ctx context.Context, before time.Time) (int64, error) {
				return events.Backlog(ctx, d, before)
			}},
		{Name: "audit", Age: s.Audit, Batch: batch, Prune: auditLog.Prune, Backlog: auditLog.Backlog},
	}
}
