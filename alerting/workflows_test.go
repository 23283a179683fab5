package alerting

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/workflows"
)

// A message takes the fast path of its database unless a workflow could
// follow its alert: one on its integration or a global one. Then the
// generic path carries it out and queues the request with the alert, on
// both databases; a workflow on another integration changes nothing.
func TestIngestLeavesTheFastPathOnlyForWatchedIntegrations(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		now := func() time.Time { return clock }
		var svc *Service
		store := workflows.NewStore(d, now, nil, func() { svc.RoutesChanged() })
		svc = NewService(Options{DB: d, PublicURL: "https://klaxon.example", Now: now, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Config: Config{Integrations: integrations.NewStore(d, "https://klaxon.example", now, nil), Workflows: store}})
		tokens := storyIntegrations(t, svc)
		body, err := os.ReadFile(filepath.Join("..", "rules", "testdata", "detectify", "new_finding_high.json"))
		if err != nil {
			t.Fatal(err)
		}
		watched := func(token string) bool {
			t.Helper()
			r, err := svc.routeFor(ctx, token)
			if err != nil {
				t.Fatal(err)
			}
			decision, _, err := svc.decideBody(ctx, r, body, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			p := &pendingIngest{integ: r.integ, decision: decision, watched: svc.workflowsMayFire(ctx, r.integ.ID)}
			plan := p.plan()
			return plan.genericOnly()
		}
		if watched(tokens[0]) {
			t.Fatal("without workflows the message leaves the fast path")
		}
		other, err := svc.routeFor(ctx, tokens[1])
		if err != nil {
			t.Fatal(err)
		}
		in := workflows.Input{Name: "elsewhere", IntegrationID: &other.integ.ID, On: []db.WorkflowEvent{db.WorkflowOpened},
			Method: "POST", URL: "https://hooks.example.com/x"}
		if _, err := store.CreateWorkflow(ctx, in); err != nil {
			t.Fatal(err)
		}
		if watched(tokens[0]) || !watched(tokens[1]) {
			t.Fatal("a workflow on one integration moves the other's messages, or not its own")
		}
		in.Name, in.IntegrationID = "everywhere", nil
		if _, err := store.CreateWorkflow(ctx, in); err != nil {
			t.Fatal(err)
		}
		if !watched(tokens[0]) {
			t.Fatal("a global workflow leaves messages on the fast path")
		}
		res, err := svc.Ingest(ctx, Inbound{Token: tokens[0], Body: body})
		if err != nil || res.AlertID == nil {
			t.Fatalf("ingest: %+v, %v", res, err)
		}
		n, err := d.NewSelect().Table("alert_jobs").Where("kind = ? AND alert_id = ?", jobWorkflow, *res.AlertID).Count(ctx)
		if err != nil || n != 1 {
			t.Fatalf("%d workflow jobs for the opened alert, want 1 (%v)", n, err)
		}
	})
}
