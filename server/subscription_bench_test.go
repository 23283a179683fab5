package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// BenchmarkWebhookToSubscribers posts one webhook per iteration while
// 1,000 subscribers listen (KLAXON_FANOUT_SUBSCRIBERS sets another count), and reports how long each delivery took from
// the moment the webhook was sent (p50-ms, p99-ms), the server's CPU time
// per webhook as the OS counts it (server-cpu-ms/op; the collector's
// share, server-gc-cpu-ms/op, is the Go runtime's estimate), and what an idle subscriber costs
// the server: heap and stacks in use (KiB/subscriber) and goroutines
// (goroutines/subscriber).
//
// The subscribers run in a child process, this test binary re-executed
// as TestFanOutClientProcess, so that the server's memory is measured
// alone and the clients' reading does not share the server's scheduler.
//
//	go test -run '^$' -bench WebhookToSubscribers -benchtime 100x ./server/
//	KLAXON_FANOUT_SUBSCRIBERS=10000 go test -run '^$' -bench WebhookToSubscribers -benchtime 100x -timeout 30m ./server/
func BenchmarkWebhookToSubscribers(b *testing.B) {
	subscribers := 1000
	if v := os.Getenv(fanOutSubscribersEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive count", fanOutSubscribersEnv, v)
		}
		subscribers = n
	}
	// Each subscriber is a socket at both ends, and the two ends are in
	// different processes; the server also needs some for its database
	// and the webhook client.
	if err := ensureOpenFiles(uint64(subscribers) + 1000); err != nil {
		b.Fatal(err)
	}
	for _, kind := range []string{"sqlite", "postgres"} {
		b.Run(kind, func(b *testing.B) {
			var d *db.DB
			if kind == "sqlite" {
				d = dbtest.SQLite(b)
			} else {
				d = dbtest.Postgres(b)
			}
			benchmarkFanOut(b, d, subscribers)
		})
	}
}

// fanOutSubscribersEnv sets how many subscribers the benchmark connects;
// fanOutHeapProfileEnv names a file to write the server's heap profile
// to once they are all idle (suffixed with the database's kind), which
// shows what each one holds.
const (
	fanOutSubscribersEnv = "KLAXON_FANOUT_SUBSCRIBERS"
	fanOutHeapProfileEnv = "KLAXON_FANOUT_HEAPPROFILE"
)

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatalf("heap profile: %v", err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatalf("heap profile: %v", err)
	}
}

// ensureOpenFiles raises this process's limit on open files to at least
// n, as far as the hard limit allows; the child inherits it. Go raises
// the soft limit to the hard one at start, so this only fails with a
// word of advice when the hard limit itself is too low.
func ensureOpenFiles(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read the open-files limit: %w", err)
	}
	if lim.Cur >= n {
		return nil
	}
	if lim.Max < n {
		return fmt.Errorf("the open-files hard limit is %d and the benchmark needs %d; raise it (ulimit -Hn, or LimitNOFILE for a service) and run again", lim.Max, n)
	}
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise the open-files limit to %d: %w", n, err)
	}
	return nil
}

// fanOutClientEnv carries a fanOutClients, as JSON, to the child process.
const fanOutClientEnv = "KLAXON_FANOUT_CLIENT"

// fanOutClients tells the child process what to subscribe to.
type fanOutClients struct {
	URL   string `json:"url"`
	Token string `json:"token"`
	Count int    `json:"count"`
}

// The child's report, one line each, on its standard output:
//
//	subscribed                     every subscriber has connected and
//	                               subscribed
//	live                           every subscriber has received an event
//	got <subject>\t<unixnano>,…    every subscriber has received the event
//	                               about subject, at these times
//
// The times of one event go out together once all have arrived, so that
// reading them does not take this process's CPU while it is still
// delivering. Anything else is the test framework's, kept to explain a
// failure.
const (
	reportSubscribed = "subscribed"
	reportLive       = "live"
	reportGot        = "got "
)

func benchmarkFanOut(b *testing.B, d *db.DB, subscribers int) {
	h := newHarness(b, d, server.Config{})
	integ := h.createIntegration("DETECTIFY")
	token := integ.Token(b)

	before := liveMemory()
	g0 := runtime.NumGoroutine()

	cfg, _ := json.Marshal(fanOutClients{URL: "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/graphql", Token: h.admin.Token, Count: subscribers})
	cmd := exec.Command(os.Args[0], "-test.run=^TestFanOutClientProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), fanOutClientEnv+"="+string(cfg))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the subscribers' process: %v", err)
	}
	exited := make(chan struct{})
	b.Cleanup(func() {
		// Closing its input tells the child to hang up and exit.
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})

	// pending maps the subject of each timed webhook to its delivery.
	type delivery struct {
		sent     int64
		received []int64
		all      chan struct{}
	}
	var mu sync.Mutex
	pending := map[string]*delivery{}
	live := make(chan struct{})
	subscribed := make(chan struct{})
	var lost atomic.Int64
	var said strings.Builder // the child's other output
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			switch line {
			case reportSubscribed:
				close(subscribed)
				continue
			case reportLive:
				close(live)
				continue
			}
			rest, ok := strings.CutPrefix(line, reportGot)
			if !ok {
				if said.Len() < 64<<10 {
					said.WriteString(line + "\n")
				}
				continue
			}
			subject, times, _ := strings.Cut(rest, "\t")
			mu.Lock()
			dl := pending[subject]
			mu.Unlock()
			if dl == nil {
				continue
			}
			for at := range strings.SplitSeq(times, ",") {
				nanos, err := strconv.ParseInt(at, 10, 64)
				if err != nil {
					lost.Add(1)
					continue
				}
				dl.received = append(dl.received, nanos)
			}
			if len(dl.received) != subscribers {
				lost.Add(1)
			}
			close(dl.all)
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
	}()

	// Nothing tells when a subscription has registered: post until every
	// subscriber has seen an event. Posting while they connect would
	// have each webhook delivered to thousands for nothing.
	select {
	case <-subscribed:
	case <-exited:
		b.Fatalf("the subscribers' process exited: %s%s", said.String(), stderr.String())
	}
	warm := time.NewTicker(time.Second)
	defer warm.Stop()
warmUp:
	for {
		h.postWebhook(token, finding(h.unique("warmup"), "high"))
		select {
		case <-live:
			break warmUp
		case <-exited:
			b.Fatalf("the subscribers' process exited: %s%s", said.String(), stderr.String())
		case <-warm.C:
		}
	}
	time.Sleep(500 * time.Millisecond) // let the warm-up events drain
	after := liveMemory()
	if path := os.Getenv(fanOutHeapProfileEnv); path != "" {
		writeHeapProfile(b, path+"-"+string(d.Kind))
	}
	perSubscriber := float64(after.heap+after.stack-before.heap-before.stack) / float64(subscribers)
	goroutines := float64(runtime.NumGoroutine()-g0) / float64(subscribers)
	b.Logf("per subscriber: heap %d B (live objects %d B), stacks %d B, goroutines %.2f",
		(after.heap-before.heap)/int64(subscribers), (after.live-before.live)/int64(subscribers), (after.stack-before.stack)/int64(subscribers), goroutines)

	var latencies []time.Duration
	cpu0 := serverCPU()
	b.ResetTimer()
	for i := range b.N {
		uuid := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)
		dl := &delivery{all: make(chan struct{}), received: make([]int64, 0, subscribers)}
		mu.Lock()
		pending["Finding "+uuid] = dl
		mu.Unlock()
		dl.sent = time.Now().UnixNano()
		if r := h.postWebhook(token, finding(uuid, "high")); r.HTTPStatus != http.StatusAccepted && r.HTTPStatus != http.StatusOK {
			b.Fatalf("webhook: %d %s", r.HTTPStatus, r.Raw)
		}
		select {
		case <-dl.all:
		case <-exited:
			b.Fatalf("the subscribers' process exited: %s%s", said.String(), stderr.String())
		case <-time.After(30 * time.Second):
			b.Fatalf("webhook %d did not reach all %d subscribers in 30s", i, subscribers)
		}
		mu.Lock()
		delete(pending, "Finding "+uuid)
		mu.Unlock()
		for _, at := range dl.received {
			latencies = append(latencies, time.Duration(at-dl.sent))
		}
	}
	b.StopTimer()
	cpu := serverCPU()
	if n := lost.Load(); n > 0 {
		b.Errorf("%d malformed reports from the subscribers' process", n)
	}

	slices.Sort(latencies)
	if len(latencies) > 0 {
		at := func(q float64) time.Duration { return latencies[int(q*float64(len(latencies)-1))] }
		b.Logf("latency: min %v, p10 %v, p50 %v, p90 %v, p99 %v, max %v", at(0), at(0.1), at(0.5), at(0.9), at(0.99), at(1))
		b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.ReportMetric((cpu.total-cpu0.total)*1000/float64(b.N), "server-cpu-ms/op")
	b.ReportMetric((cpu.gc-cpu0.gc)*1000/float64(b.N), "server-gc-cpu-ms/op")
	b.ReportMetric(perSubscriber/1024, "KiB/subscriber")
	b.ReportMetric(goroutines, "goroutines/subscriber")
	b.ReportMetric(0, "ns/op")
}

type memory struct{ heap, stack, live int64 }

// liveMemory is the memory in use after a collection: heap spans, the
// live objects in them, and stacks.
func liveMemory() memory {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	return memory{heap: int64(m.HeapInuse), stack: int64(m.StackInuse), live: int64(live[0].Value.Uint64())}
}

type cpuSeconds struct{ total, gc float64 }

// serverCPU is the CPU time this process has used, user and system, as
// the OS counts it, and the garbage collector's share as the Go runtime
// estimates it. The runtime's own total is brought up to date only by a
// collection, so over a run with few it reads low, or zero.
func serverCPU() cpuSeconds {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	return cpuSeconds{total: seconds(ru.Utime) + seconds(ru.Stime), gc: s[0].Value.Float64()}
}

func seconds(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }

// TestFanOutClientProcess is the subscribers' side of
// BenchmarkWebhookToSubscribers, run in a process of its own. It connects
// the subscribers, reports each event they receive on its standard output
// and exits when its standard input closes.
func TestFanOutClientProcess(t *testing.T) {
	raw := os.Getenv(fanOutClientEnv)
	if raw == "" {
		t.Skip("run by BenchmarkWebhookToSubscribers")
	}
	var cfg fanOutClients
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatalf("decode %s: %v", fanOutClientEnv, err)
	}

	// One goroutine writes every report, so a burst costs one write
	// per burst rather than one per line.
	reports := make(chan string, 4096)
	written := make(chan struct{})
	go func() {
		defer close(written)
		w := bufio.NewWriterSize(os.Stdout, 64<<10)
		for line := range reports {
			w.WriteString(line)
			w.WriteByte('\n')
			if len(reports) == 0 {
				w.Flush()
			}
		}
		w.Flush()
	}()

	init, _ := json.Marshal(map[string]any{"type": "connection_init", "payload": map[string]string{"Authorization": "Bearer " + cfg.Token}})
	sub, _ := json.Marshal(map[string]any{"id": "s", "type": "subscribe", "payload": map[string]any{
		"query": `subscription { alertEvents(filter: {types: [OPENED]}) { alert { subject } } }`,
	}})
	dialer := websocket.Dialer{Subprotocols: []string{protoTransportWS}, ReadBufferSize: 2048, WriteBufferSize: 512, HandshakeTimeout: 10 * time.Second}
	var seen atomic.Int64
	var arrivalsMu sync.Mutex
	arrivals := map[string][]int64{}
	var readers sync.WaitGroup
	listen := func(conn *websocket.Conn) {
		defer readers.Done()
		readFanOut(conn, func(subject []byte, at int64, first bool) {
			if first && seen.Add(1) == int64(cfg.Count) {
				reports <- reportLive
			}
			arrivalsMu.Lock()
			times := append(arrivals[string(subject)], at)
			arrivals[string(subject)] = times
			if len(times) == cfg.Count {
				delete(arrivals, string(subject))
			}
			arrivalsMu.Unlock()
			if len(times) == cfg.Count {
				line := make([]byte, 0, len(reportGot)+len(subject)+20*len(times))
				line = append(append(append(line, reportGot...), subject...), '\t')
				for i, t := range times {
					if i > 0 {
						line = append(line, ',')
					}
					line = strconv.AppendInt(line, t, 10)
				}
				reports <- string(line)
			}
		})
	}
	connect := func(i int) (*websocket.Conn, error) {
		conn, _, err := dialer.Dial(cfg.URL, nil)
		if err != nil {
			return nil, fmt.Errorf("subscriber %d: dial: %w", i, err)
		}
		if err := conn.WriteMessage(websocket.TextMessage, init); err != nil {
			conn.Close()
			return nil, fmt.Errorf("subscriber %d: connection_init: %w", i, err)
		}
		if _, ack, err := conn.ReadMessage(); err != nil || !bytes.Contains(ack, []byte(`"connection_ack"`)) {
			conn.Close()
			return nil, fmt.Errorf("subscriber %d: connection_init: %v %s", i, err, ack)
		}
		if err := conn.WriteMessage(websocket.TextMessage, sub); err != nil {
			conn.Close()
			return nil, fmt.Errorf("subscriber %d: subscribe: %w", i, err)
		}
		return conn, nil
	}

	// A few dial at once: one at a time, 10,000 round trips of
	// connection_init take longer than the benchmark itself.
	const dialers = 8
	conns := make([]*websocket.Conn, cfg.Count)
	errs := make([]error, dialers)
	var next atomic.Int64
	var dialing sync.WaitGroup
	for d := range dialers {
		dialing.Add(1)
		go func() {
			defer dialing.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.Count || errs[d] != nil {
					return
				}
				conn, err := connect(i)
				if err != nil {
					errs[d] = err
					return
				}
				conns[i] = conn
				readers.Add(1)
				go listen(conn)
			}
		}()
	}
	dialing.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	reports <- reportSubscribed

	io.Copy(io.Discard, os.Stdin)
	for _, conn := range conns {
		if conn != nil {
			conn.Close()
		}
	}
	readers.Wait()
	close(reports)
	<-written
}

var (
	nextType  = []byte(`"type":"next"`)
	pingType  = []byte(`"type":"ping"`)
	subjectAt = []byte(`"subject":"`)
)

// readFanOut reads one subscriber's messages until the connection ends,
// answering pings and passing on the subject of each event with the time
// it arrived. Subjects in the benchmark need no unescaping.
func readFanOut(conn *websocket.Conn, got func(subject []byte, at int64, first bool)) {
	var buf bytes.Buffer
	first := true
	for {
		_, r, err := conn.NextReader()
		if err != nil {
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return
		}
		at := time.Now().UnixNano()
		msg := buf.Bytes()
		switch {
		case bytes.Contains(msg, pingType):
			conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`))
		case bytes.Contains(msg, nextType):
			i := bytes.Index(msg, subjectAt)
			if i < 0 {
				continue
			}
			subject := msg[i+len(subjectAt):]
			if j := bytes.IndexByte(subject, '"'); j >= 0 {
				got(subject[:j], at, first)
				first = false
			}
		}
	}
}
