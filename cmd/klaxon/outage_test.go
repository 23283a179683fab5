package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/klaxonhq/klaxon/db"
)

// TestDatabaseOutage takes the database away from the real binary under
// webhook load and gives it back, without restarting the binary. While
// it is away every webhook must be answered 2xx (stored) or 503 with
// Retry-After (not accepted), never 500; afterwards every message
// answered 2xx must be in the inbound log, the server must take webhooks
// again by itself, a websocket opened before must still be open and
// deliver, and the engine must have paged every open alert exactly once,
// saying once that it paused and once that it resumed.
func TestDatabaseOutage(t *testing.T) {
	bin := buildKlaxon(t)
	t.Run("postgres", func(t *testing.T) {
		pg := startPrivatePostgres(t)
		args := []string{"serve", "--addr", "127.0.0.1:0", "--database-url", pg.url}
		testOutage(t, bin, args, pg.url, outage{
			begin: pg.stop,
			end:   pg.start,
			// Long enough for the load, the engine and the probes below to
			// meet the outage many times over; short like a restart.
			length: 2500 * time.Millisecond,
			// Reads fail too, and every poll of the engine.
			readsFail: true,
		})
	})
	t.Run("sqlite", func(t *testing.T) {
		dataDir := t.TempDir()
		databaseURL := db.DefaultURL(dataDir)
		var release func()
		testOutage(t, bin, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir}, databaseURL, outage{
			begin: func(t *testing.T) { release = lockSQLite(t, filepath.Join(dataDir, "klaxon.db")) },
			end:   func(t *testing.T) { release() },
			// SQLite waits out a lock for its busy timeout (10 s) before it
			// refuses a write, and the server's one connection serves its
			// waiting writers one at a time, the engine's polls among them,
			// in no set order: the lock is held until a webhook has met it.
			untilRefused: true,
		})
	})
}

// outage takes the database away (begin) and gives it back (end), after
// length or, with untilRefused, once a webhook has been refused.
type outage struct {
	begin, end   func(t *testing.T)
	length       time.Duration
	untilRefused bool
	// readsFail says reads fail too, so /readyz, GraphQL and the
	// engine's polls must meet the outage; on SQLite reads go on (WAL)
	// and the engine may poll between the lock's two refusals.
	readsFail bool
}

func testOutage(t *testing.T, bin string, args []string, databaseURL string, o outage) {
	ctx := context.Background()
	recv := &deliveries{byAlert: map[string]int{}, heldAlerts: map[string]bool{}}
	receiver := httptest.NewServer(recv)
	t.Cleanup(receiver.Close)

	p := startKlaxon(t, bin, args)
	logTailOnFailure(t, "around the outage", p)
	base := "http://" + p.addr
	setup := setUpPaging(t, base, receiver.URL, 0)
	ws := subscribeInboundLog(t, p.addr, setup.bearer)

	load := &webhookLoad{url: base + setup.hookPath, retryable: true, client: &http.Client{
		// On SQLite a webhook may wait out several busy timeouts, one per
		// writer queued before it on the server's one connection; a sender
		// that gave up first would not see its 503.
		Timeout:   90 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 4},
	}}
	waitLoad := load.run(4)
	t.Cleanup(func() { load.stop.Store(true); waitLoad() })
	waitUntil(t, "100 webhooks answered", func() bool { return load.ok.Load() >= 100 })

	o.begin(t)
	away := time.Now()
	if o.readsFail {
		waitUntil(t, "/readyz to answer 503", func() bool { return getStatus(t, base+"/readyz") == http.StatusServiceUnavailable })
		if code := graphQLErrorCode(t, base, setup.bearer); code != "UNAVAILABLE" {
			t.Errorf("GraphQL while the database is away: error code %q, want UNAVAILABLE", code)
		}
	}
	if o.untilRefused {
		waitFor(t, "a webhook to be refused", 80*time.Second, func() bool { return load.unavailable.Load() > 0 })
	} else {
		time.Sleep(time.Until(away.Add(o.length)))
	}
	o.end(t)
	okAtEnd := load.ok.Load()
	waitUntil(t, "webhooks to be stored again", func() bool { return load.ok.Load() >= okAtEnd+50 })
	load.stop.Store(true)
	waitLoad()
	if status := getStatus(t, base+"/readyz"); status != http.StatusOK {
		t.Errorf("/readyz after the outage: %d, want 200", status)
	}
	t.Logf("%d webhooks stored, %d answered 503 with Retry-After", len(load.replies), load.unavailable.Load())
	if n := len(load.refused); n > 0 {
		t.Errorf("%d answers other than 2xx or 503 with Retry-After, the first: %v", n, load.refused[:min(n, 5)])
	}
	if load.unavailable.Load() == 0 {
		t.Error("no webhook was answered 503: the outage was not met")
	}

	// The socket opened before the outage is still open and delivers
	// a message stored after it.
	resp, err := http.Post(base+setup.hookPath, "application/json", bytes.NewReader(detectifyFinding("after-outage", "high")))
	if err != nil {
		t.Fatal(err)
	}
	var last reply
	json.NewDecoder(resp.Body).Decode(&last)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook after the outage: HTTP %d", resp.StatusCode)
	}
	ws.waitFor(t, last.MessageID)

	d, err := db.Open(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	waitUntil(t, "every open alert to be notified after the outage", func() bool {
		unsent, err := d.NewSelect().Model((*db.Alert)(nil)).
			Where("status = ?", db.AlertOpen).
			Where("NOT EXISTS (SELECT 1 FROM notifications n WHERE n.alert_id = alert.id AND n.status = ?)", db.NotificationSent).
			Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The pruning turn's row stays for good; it is no alert's work.
		jobs, err := d.NewSelect().Model((*db.AlertJob)(nil)).Where("kind <> 'prune'").Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return unsent == 0 && jobs == 0
	})
	load.replies = append(load.replies, last)
	checkInboundLog(t, d, load)
	checkOneUnclosedAlertPerFinding(t, d)
	checkPagedOnce(t, d, recv, nil)

	// The engine backs off rather than failing every poll, and says when
	// it is back.
	var logs string
	var paused, resumed int
	waitUntil(t, "the engine to say it resumed", func() bool {
		logs = p.logs()
		paused, resumed = strings.Count(logs, "engine paused"), strings.Count(logs, "engine resumed")
		return resumed >= paused && (paused > 0 || !o.readsFail)
	})
	if paused != resumed {
		t.Errorf("engine logged %d pauses and %d resumes, want as many of each", paused, resumed)
	}
	if n := strings.Count(logs, `msg="engine run"`); n > 0 {
		t.Errorf("engine logged %d failed runs during the outage, want none", n)
	}
	if n := strings.Count(logs, "level=ERROR"); n > 0 {
		t.Errorf("%d errors logged; an outage is not an error of ours", n)
	}
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// graphQLErrorCode runs a query as the signed-in admin and returns its
// first error's code.
func graphQLErrorCode(t *testing.T, base, bearer string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", strings.NewReader(`{"query":"{ alerts(first: 5) { totalCount } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Errors []struct {
			Extensions struct{ Code string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Errors) == 0 {
		t.Fatalf("GraphQL while the database is away: HTTP %d, %v, %+v; want an error", resp.StatusCode, err, out)
	}
	return out.Errors[0].Extensions.Code
}

// inboundSocket is a graphql-transport-ws subscription to the inbound log.
type inboundSocket struct {
	conn *websocket.Conn
	seen chan string
	done chan error
}

func subscribeInboundLog(t *testing.T, addr, bearer string) *inboundSocket {
	t.Helper()
	dialer := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	conn, _, err := dialer.Dial("ws://"+addr+"/graphql", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	send := func(v any) {
		if err := conn.WriteJSON(v); err != nil {
			t.Fatal(err)
		}
	}
	send(map[string]any{"type": "connection_init", "payload": map[string]string{"Authorization": "Bearer " + bearer}})
	var ack struct{ Type string }
	if err := conn.ReadJSON(&ack); err != nil || ack.Type != "connection_ack" {
		t.Fatalf("connection_init: %v %+v", err, ack)
	}
	send(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": "subscription { inboundLog { id } }"}})
	s := &inboundSocket{conn: conn, seen: make(chan string, 100_000), done: make(chan error, 1)}
	go func() {
		for {
			var m struct {
				Type    string
				Payload json.RawMessage
			}
			if err := conn.ReadJSON(&m); err != nil {
				s.done <- err
				return
			}
			if m.Type == "ping" {
				conn.WriteJSON(map[string]string{"type": "pong"})
				continue
			}
			if m.Type != "next" {
				s.done <- fmt.Errorf("unexpected %s: %s", m.Type, m.Payload)
				return
			}
			var next struct {
				Data struct{ InboundLog struct{ ID string } }
			}
			json.Unmarshal(m.Payload, &next)
			s.seen <- next.Data.InboundLog.ID
		}
	}()
	return s
}

// waitFor waits until the socket delivers message id, failing if it
// ends first.
func (s *inboundSocket) waitFor(t *testing.T, id string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case got := <-s.seen:
			if got == id {
				return
			}
		case err := <-s.done:
			t.Fatalf("the websocket ended: %v", err)
		case <-timeout:
			t.Fatalf("the websocket did not deliver message %s", id)
		}
	}
}

// lockSQLite takes SQLite's write lock on the file from a connection of
// its own, as another process would, and returns its release. The
// server's writes then wait out their busy timeout and fail with
// SQLITE_BUSY, while its reads go on (WAL). This is chosen over making
// the file or its directory read-only because tests run as root in CI,
// and permissions do not stop root; a held lock fails writes for every
// user, and really, inside SQLite itself.
func lockSQLite(t *testing.T, path string) (release func()) {
	t.Helper()
	ctx := context.Background()
	holder, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := holder.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatalf("take the write lock: %v", err)
	}
	released := false
	release = func() {
		if released {
			return
		}
		released = true
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Errorf("release the write lock: %v", err)
		}
		conn.Close()
		holder.Close()
	}
	t.Cleanup(release)
	return release
}

// privatePostgres is a PostgreSQL cluster of the test's own, which it
// may stop and start: the shared one serves other tests meanwhile.
type privatePostgres struct {
	bin, dataDir, sockDir, logFile string
	port                           int
	url                            string
}

// startPrivatePostgres creates and starts a cluster in a temporary
// directory, on a free port. It skips without PostgreSQL's server
// binaries, except under CI=true, where they are required.
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) are required under CI")
		}
		t.Skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
	}
	sort.Slice(bins, func(i, j int) bool { return pgVersion(bins[i]) < pgVersion(bins[j]) })
	// Not t.TempDir: its parents are private to this user, and as root
	// the cluster runs as postgres, which must reach it.
	dir, err := os.MkdirTemp("", "klaxon-outage-")
	if err != nil {
		t.Fatal(err)
	}
	pg := &privatePostgres{
		bin:     filepath.Dir(bins[len(bins)-1]),
		dataDir: filepath.Join(dir, "data"),
		sockDir: dir,
		logFile: filepath.Join(dir, "postgres.log"),
		port:    freePort(t),
	}
	pg.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
	t.Cleanup(func() {
		pg.run(t, "pg_ctl", "-D", pg.dataDir, "-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a postgres user to run the cluster: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	// No fsync: the test stops the server cleanly, which writes
	// everything out anyway, and speed matters more here.
	if out, err := pg.run(t, "initdb", "-D", pg.dataDir, "-U", "postgres", "-A", "trust", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	pg.start(t)
	return pg
}

func (pg *privatePostgres) start(t *testing.T) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", pg.port, pg.sockDir)
	if out, err := pg.run(t, "pg_ctl", "-D", pg.dataDir, "-o", opts, "-l", pg.logFile, "-w", "start"); err != nil {
		logs, _ := os.ReadFile(pg.logFile)
		t.Fatalf("start PostgreSQL: %v\n%s\n%s", err, out, logs)
	}
}

// stop shuts the server down the way a restart does: it ends every
// session with "terminating connection due to administrator command".
func (pg *privatePostgres) stop(t *testing.T) {
	t.Helper()
	if out, err := pg.run(t, "pg_ctl", "-D", pg.dataDir, "-m", "fast", "-w", "stop"); err != nil {
		t.Fatalf("stop PostgreSQL: %v\n%s", err, out)
	}
}

func (pg *privatePostgres) run(t *testing.T, name string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(pg.bin, name), args...)
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(pg.bin, name)}, args...)...)
	}
	return cmd.CombinedOutput()
}

// pgVersion is the major version in a /usr/lib/postgresql/N/bin path.
func pgVersion(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
