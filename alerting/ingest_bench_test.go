package alerting_test

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// BenchmarkIngest measures the whole ingest path (token lookup, rules,
// inbound log, alert, timeline, commit) on each database, for new findings
// and for duplicates of an open one, one sender and many at once.
func BenchmarkIngest(b *testing.B) {
	for _, kind := range []db.Kind{db.SQLite, db.Postgres} {
		b.Run(string(kind), func(b *testing.B) {
			var d *db.DB
			if kind == db.SQLite {
				d = dbtest.SQLite(b)
			} else {
				d = dbtest.Postgres(b)
			}
			svc := newService(b, d)
			integ := detectify(b, d, svc)
			template := sample(b, "new_finding_high.json")
			const uuid = "3f9c2a8e-6b1d-4c57-9e0a-5d2b7c41f8a3"
			var seq atomic.Int64
			newFinding := func() []byte {
				return bytes.Replace(template, []byte(uuid), fmt.Appendf(nil, "bench-%d", seq.Add(1)), 1)
			}
			ingest := func(b *testing.B, body []byte) {
				res, err := svc.Ingest(context.Background(), alerting.Inbound{Token: integ.Token, Body: body})
				if err != nil {
					b.Fatal(err)
				}
				if res.Status != db.InboundOpened && res.Status != db.InboundAppended {
					b.Fatalf("status %s: %s", res.Status, res.Detail)
				}
			}
			b.Run("open", func(b *testing.B) {
				for b.Loop() {
					ingest(b, newFinding())
				}
			})
			b.Run("append", func(b *testing.B) {
				body := newFinding()
				for b.Loop() {
					ingest(b, body)
				}
			})
			b.Run("open-parallel", func(b *testing.B) {
				b.SetParallelism(4) // 4×GOMAXPROCS senders
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						ingest(b, newFinding())
					}
				})
			})
		})
	}
}
