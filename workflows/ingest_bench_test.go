package workflows_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/rules"
	"github.com/klaxonhq/klaxon/workflows"
)

// BenchmarkIngestWithWorkflows measures opening alerts on each database
// with no workflow, with one on another integration (the fast path
// still), and with one on the integration whose condition no alert meets
// (the generic path, nothing queued).
func BenchmarkIngestWithWorkflows(b *testing.B) {
	for _, kind := range []db.Kind{db.SQLite, db.Postgres} {
		for _, setup := range []string{"none", "elsewhere", "watched"} {
			b.Run(fmt.Sprintf("%s/%s", kind, setup), func(b *testing.B) {
				d := dbtest.SQLite(b)
				if kind == db.Postgres {
					d = dbtest.Postgres(b)
				}
				ctx := context.Background()
				var svc *alerting.Service
				store := workflows.NewStore(d, time.Now, nil, func() { svc.RoutesChanged() })
				integs := integrations.NewStore(d, "https://klaxon.example", time.Now, func() { svc.RoutesChanged() })
				svc = alerting.NewService(alerting.Options{DB: d, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
					Config: alerting.Config{Integrations: integs, Workflows: store}})
				var list []*db.Integration
				for _, name := range []string{"bench", "other"} {
					typ := rules.TypeGeneric
					integ, err := integs.CreateIntegration(ctx, integrations.IntegrationInput{Name: &name, Type: &typ})
					if err != nil {
						b.Fatal(err)
					}
					list = append(list, integ)
				}
				in := workflows.Input{Name: "w", On: []db.WorkflowEvent{db.WorkflowOpened}, Method: "POST", URL: "https://hooks.example.com/x",
					Conditions: []rules.Condition{{Field: "severity", Op: rules.OpEquals, Value: "never"}}}
				switch setup {
				case "elsewhere":
					in.IntegrationID = &list[1].ID
				case "watched":
					in.IntegrationID = &list[0].ID
				}
				if setup != "none" {
					if _, err := store.CreateWorkflow(ctx, in); err != nil {
						b.Fatal(err)
					}
				}
				n := 0
				for b.Loop() {
					n++
					res, err := svc.Ingest(ctx, alerting.Inbound{Token: list[0].Token,
						Body: fmt.Appendf(nil, `{"dedup_key":"k-%d","summary":"disk full","severity":"high"}`, n)})
					if err != nil || res.Status != db.InboundOpened {
						b.Fatalf("ingest: %+v, %v", res, err)
					}
				}
			})
		}
	}
}
