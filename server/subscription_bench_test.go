package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// BenchmarkWebhookToSubscribers posts one webhook per iteration while
// 1,000 subscribers listen, and reports how long each delivery took from
// the moment the webhook was sent, and the memory an idle subscriber costs
// (both ends of its socket live in this process, so the figure is an upper
// bound for the server's share).
//
//	go test -run '^$' -bench WebhookToSubscribers -benchtime 200x ./server/
func BenchmarkWebhookToSubscribers(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres"} {
		b.Run(kind, func(b *testing.B) {
			var d *db.DB
			if kind == "sqlite" {
				d = dbtest.SQLite(b)
			} else {
				d = dbtest.Postgres(b)
			}
			benchmarkFanOut(b, d, 1000)
		})
	}
}

// delivery is one webhook whose event the subscribers are waiting for.
type delivery struct {
	sent time.Time
	wg   sync.WaitGroup
}

func benchmarkFanOut(b *testing.B, d *db.DB, subscribers int) {
	h := newHarness(b, d, server.Config{})
	integ := h.createIntegration("DETECTIFY")
	token := integ.Token(b)

	var pending sync.Map // subject → *delivery
	var ready atomic.Int64
	latencies := make([][]time.Duration, subscribers)

	before := liveBytes()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	g0 := runtime.NumGoroutine()
	dialer := websocket.Dialer{Subprotocols: []string{protoTransportWS}, ReadBufferSize: 512, WriteBufferSize: 512}
	url := "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/graphql"
	init, _ := json.Marshal(wsMessage{Type: "connection_init", Payload: json.RawMessage(fmt.Sprintf(`{"Authorization":"Bearer %s"}`, h.admin.Token))})
	sub, _ := json.Marshal(map[string]any{"id": "s", "type": "subscribe", "payload": map[string]any{
		"query": `subscription { alertEvents(filter: {types: [OPENED]}) { alert { subject } } }`,
	}})
	var readers sync.WaitGroup
	for i := range subscribers {
		conn, _, err := dialer.Dial(url, nil)
		if err != nil {
			b.Fatalf("subscriber %d: %v", i, err)
		}
		b.Cleanup(func() { conn.Close() })
		if err := conn.WriteMessage(websocket.TextMessage, init); err != nil {
			b.Fatal(err)
		}
		var ack wsMessage
		if err := conn.ReadJSON(&ack); err != nil || ack.Type != "connection_ack" {
			b.Fatalf("subscriber %d: %v %+v", i, err, ack)
		}
		if err := conn.WriteMessage(websocket.TextMessage, sub); err != nil {
			b.Fatal(err)
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			seen := false
			for {
				var m struct {
					Type    string `json:"type"`
					Payload struct {
						Data struct {
							AlertEvents struct {
								Alert struct {
									Subject string `json:"subject"`
								} `json:"alert"`
							} `json:"alertEvents"`
						} `json:"data"`
					} `json:"payload"`
				}
				if err := conn.ReadJSON(&m); err != nil {
					return
				}
				if m.Type == "ping" {
					conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`))
				}
				if m.Type != "next" {
					continue
				}
				if !seen {
					seen = true
					ready.Add(1)
				}
				if v, ok := pending.Load(m.Payload.Data.AlertEvents.Alert.Subject); ok {
					dl := v.(*delivery)
					latencies[i] = append(latencies[i], time.Since(dl.sent))
					dl.wg.Done()
				}
			}
		}()
	}
	// Nothing tells when a subscription has registered: post until every
	// subscriber has seen an event.
	for ready.Load() < int64(subscribers) {
		h.postWebhook(token, finding(h.unique("warmup"), "high"))
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // let the warm-up events drain
	perSubscriber := float64(liveBytes()-before) / float64(subscribers)
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	b.Logf("heap %d stack %d goroutines %d per subscriber", (int64(ms1.HeapInuse)-int64(ms0.HeapInuse))/int64(subscribers), (int64(ms1.StackInuse)-int64(ms0.StackInuse))/int64(subscribers), (runtime.NumGoroutine()-g0)/subscribers)

	b.ResetTimer()
	for i := range b.N {
		uuid := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)
		dl := &delivery{}
		dl.wg.Add(subscribers)
		pending.Store("Finding "+uuid, dl)
		dl.sent = time.Now()
		if r := h.postWebhook(token, finding(uuid, "high")); r.HTTPStatus != http.StatusAccepted && r.HTTPStatus != http.StatusOK {
			b.Fatalf("webhook: %d %s", r.HTTPStatus, r.Raw)
		}
		dl.wg.Wait()
	}
	b.StopTimer()

	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.ReportMetric(perSubscriber/1024, "KiB/subscriber")
	b.ReportMetric(0, "ns/op")
}

// liveBytes is the heap and stack memory in use after a collection.
func liveBytes() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}
