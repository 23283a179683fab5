package alerting_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// replayBenchMessages is the size of the stored log the replay benchmark
// reads; replayBenchFindings how many distinct findings it holds.
const (
	replayBenchMessages = 100_000
	replayBenchFindings = 5_000
)

// BenchmarkReplay replays a stored Detectify log of 100,000 messages under
// a proposed ruleset, and a tenth of it, on each database. Besides the
// time it reports the peak of the heap in use while a replay runs, over
// the heap before it: the two sizes should need about the same, since a
// replay streams the log.
func BenchmarkReplay(b *testing.B) {
	for _, kind := range []db.Kind{db.SQLite, db.Postgres} {
		b.Run(string(kind), func(b *testing.B) {
			var d *db.DB
			if kind == db.SQLite {
				d = dbtest.SQLite(b)
			} else {
				d = dbtest.Postgres(b)
			}
			f := newReplayFixture(b, d, 0)
			integ := f.integration("Detectify", nil)
			from := f.clock.Now()
			seedStart := time.Now()
			seedLog(b, f, integ.ID, from)
			b.Logf("seeded %d messages in %s", replayBenchMessages, time.Since(seedStart).Round(time.Millisecond))
			for _, n := range []int{replayBenchMessages / 10, replayBenchMessages} {
				b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
					req := alerting.ReplayRequest{IntegrationID: integ.ID, Rules: proposedRules(), From: from, To: from.Add(time.Duration(n) * time.Second)}
					var peak uint64
					cpuBefore := cpuTime(b)
					for b.Loop() {
						got, p := replayWatchingHeap(b, f, req)
						if got.Messages != n {
							b.Fatalf("replayed %d messages, want %d", got.Messages, n)
						}
						peak = max(peak, p)
					}
					b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/replay")
					// CPU time says how much work a replay is whatever else
					// the machine is doing; on a busy machine the wall time
					// above grows, this does not.
					b.ReportMetric((cpuTime(b)-cpuBefore).Seconds()/float64(b.N), "cpu-s/replay")
					b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
				})
			}
		})
	}
}

// cpuTime is the CPU time the process has used so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// replayWatchingHeap runs one replay while sampling the heap in use, and
// returns the replay and the most the heap grew over its size before. It
// samples through runtime/metrics, which, unlike runtime.ReadMemStats,
// does not stop the world and so leaves the replay's time alone.
func replayWatchingHeap(b *testing.B, f *replayFixture, req alerting.ReplayRequest) (*alerting.Replay, uint64) {
	runtime.GC()
	base := heapInUse()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if h := heapInUse(); h > base && h-base > peak.Load() {
				peak.Store(h - base)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	got, err := f.svc.ReplayRuleset(context.Background(), req)
	close(stop)
	wg.Wait()
	if err != nil {
		b.Fatalf("replay: %v", err)
	}
	return got, peak.Load()
}

// heapInUse is what runtime.MemStats calls HeapInuse: the heap's spans
// holding objects, live or not yet swept, and their free slots.
func heapInUse() uint64 {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(samples)
	return samples[0].Value.Uint64() + samples[1].Value.Uint64()
}

// seedLog stores replayBenchMessages Detectify messages for the
// integration, one a second from start, with multi-row inserts: findings
// of every severity across replayBenchFindings uuids, and scan events.
func seedLog(b *testing.B, f *replayFixture, integrationID int, start time.Time) {
	severities := []string{"critical", "high", "medium", "medium", "low", "low", "information"}
	scans := [][]byte{sample(b, "scan_started.json"), sample(b, "scan_completed.json")}
	bodies := make([][]byte, 0, replayBenchFindings*len(severities))
	for i := range replayBenchFindings {
		for _, sev := range severities {
			bodies = append(bodies, finding(b, fmt.Sprintf("finding-%05d", i), fmt.Sprintf("Finding %d", i), sev))
		}
	}
	const batch = 1000
	rows := make([]db.InboundMessage, 0, batch)
	for i := range replayBenchMessages {
		body := bodies[(i*7919)%len(bodies)]
		if i%50 == 49 {
			body = scans[(i/50)%2]
		}
		rows = append(rows, db.InboundMessage{IntegrationID: integrationID, ReceivedAt: start.Add(time.Duration(i) * time.Second),
			Headers: map[string]string{}, Body: body, Status: db.InboundIgnored})
		if len(rows) == batch || i == replayBenchMessages-1 {
			if _, err := f.d.NewInsert().Model(&rows).Exec(f.ctx); err != nil {
				b.Fatalf("seed the inbound log: %v", err)
			}
			rows = rows[:0]
		}
	}
}
