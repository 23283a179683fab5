package retention_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/retention"
)

// BenchmarkIngestDuringPruning compares ingest latency with a large
// backlog due for pruning, first left alone, then while it is pruned.
// KLAXON_PRUNE_BENCH_ROWS sets the rows to prune (default 1,000,000: four
// fifths message bodies, the rest closed alerts with two log lines each
// and events), KLAXON_PRUNE_BENCH_SENDERS the concurrent senders (32),
// KLAXON_PRUNE_BENCH_IDLE_SECONDS how long ingest runs alone first (30).
// The command and figures are in docs/PERFORMANCE.md. Run it with
// -benchtime 1x: one pass seeds, measures and prunes everything.
func BenchmarkIngestDuringPruning(b *testing.B) {
	rows := envInt(b, "KLAXON_PRUNE_BENCH_ROWS", 1_000_000)
	senders := envInt(b, "KLAXON_PRUNE_BENCH_SENDERS", 32)
	idleFor := time.Duration(envInt(b, "KLAXON_PRUNE_BENCH_IDLE_SECONDS", 30)) * time.Second
	due := backlog{Messages: rows * 8 / 10, ClosedAlerts: rows / 20, Events: rows / 20}
	for _, kind := range []struct {
		name string
		open func(testing.TB) *db.DB
	}{{"sqlite", dbtest.SQLite}, {"postgres", dbtest.Postgres}} {
		b.Run(kind.name, func(b *testing.B) {
			for range b.N {
				w := newWorld(b, kind.open(b))
				w.seed(due)
				w.exec("ANALYZE")
				if w.d.Kind != db.Postgres {
					// The seed's WAL is the set-up's: copied back into
					// the database file now, not by a checkpoint during
					// the phase that measures ingest alone.
					w.exec("PRAGMA wal_checkpoint(TRUNCATE)")
				}
				// Ingest alone first, with the backlog in place, then while
				// it is pruned.
				idle := w.load(senders, func(stop chan<- struct{}) {
					time.AfterFunc(idleFor, func() { close(stop) })
				})
				pruner := w.pruner(defaults)
				start := time.Now()
				pruned := make(chan map[string]int, 1)
				var pruneTook time.Duration
				during := w.load(senders, func(stop chan<- struct{}) {
					go func() {
						r, err := pruner.RunOnce(context.Background())
						if err != nil {
							b.Errorf("prune: %v", err)
						}
						pruneTook = time.Since(start)
						pruned <- r.Pruned
						close(stop)
					}()
				})
				report := <-pruned
				b.ReportMetric(float64(pruneTook.Milliseconds()), "prune-ms")
				b.ReportMetric(float64(total(report)), "rows-pruned")
				b.ReportMetric(idle.p(50), "idle-p50-ms")
				b.ReportMetric(idle.p(99), "idle-p99-ms")
				b.ReportMetric(during.p(50), "pruning-p50-ms")
				b.ReportMetric(during.p(99), "pruning-p99-ms")
				b.ReportMetric(idle.rate(), "idle-msg/s")
				b.ReportMetric(during.rate(), "pruning-msg/s")
				b.Logf("%s: pruned %v in %s; ingest p50/p99 %.2f/%.2f ms at %.0f msg/s while pruning, %.2f/%.2f ms at %.0f msg/s without; batches %s",
					kind.name, report, pruneTook.Round(time.Millisecond), during.p(50), during.p(99), during.rate(), idle.p(50), idle.p(99), idle.rate(), batchTimes(b, pruner))
			}
		})
	}
}

// latencies are one load phase's ingest times.
type latencies struct {
	ms   []float64
	took time.Duration
}

func (l latencies) p(q int) float64 {
	if len(l.ms) == 0 {
		return 0
	}
	return l.ms[min(len(l.ms)-1, len(l.ms)*q/100)]
}

func (l latencies) rate() float64 { return float64(len(l.ms)) / l.took.Seconds() }

// load sends messages from senders goroutines, each alert opened then
// appended to, until the channel that begin is given is closed.
func (w *world) load(senders int, begin func(stop chan<- struct{})) latencies {
	stop := make(chan struct{})
	var sent atomic.Int64
	var mu sync.Mutex
	var all []float64
	var wg sync.WaitGroup
	start := time.Now()
	begin(stop)
	for s := range senders {
		wg.Go(func() {
			var mine []float64
			for i := 0; ; i++ {
				select {
				case <-stop:
					mu.Lock()
					all = append(all, mine...)
					mu.Unlock()
					return
				default:
				}
				body := fmt.Sprintf(`{"dedup_key":"load-%d-%d","summary":"load %d","details":"%0400d"}`, s, i%50, sent.Add(1), 0)
				t0 := time.Now()
				if _, err := w.svc.Ingest(context.Background(), alerting.Inbound{Token: w.integ.Token, Body: []byte(body)}); err != nil {
					w.t.Errorf("ingest: %v", err)
					close(stop)
				}
				mine = append(mine, float64(time.Since(t0).Microseconds())/1000)
			}
		})
	}
	wg.Wait()
	slices.Sort(all)
	return latencies{ms: all, took: time.Since(start)}
}

// batchTimes says, for each kind, how many batches the pruner ran and
// their mean time: what ingest waits behind, at worst, on SQLite.
func batchTimes(b *testing.B, p *retention.Pruner) string {
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.Collectors()...)
	families, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var out []string
	for _, f := range families {
		if f.GetName() != "klaxon_retention_batch_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			h := m.GetHistogram()
			if h.GetSampleCount() == 0 {
				continue
			}
			out = append(out, fmt.Sprintf("%s %d × %.2f ms", m.GetLabel()[0].GetValue(), h.GetSampleCount(), 1000*h.GetSampleSum()/float64(h.GetSampleCount())))
		}
	}
	return strings.Join(out, ", ")
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
