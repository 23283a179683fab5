package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// Helpers for the tests that run the real binary.

// buildKlaxon builds the binary once for a test and its subtests.
func buildKlaxon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "klaxon")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// serveArgs are the arguments of `klaxon serve` on a fresh database of
// kind, on any free port, and that database's URL for reading it
// afterwards. Starting again with the same arguments reopens the same
// database.
func serveArgs(t *testing.T, kind db.Kind) (args []string, databaseURL string) {
	t.Helper()
	args = []string{"serve", "--addr", "127.0.0.1:0"}
	if kind == db.SQLite {
		dataDir := t.TempDir()
		return append(args, "--data-dir", dataDir), db.DefaultURL(dataDir)
	}
	databaseURL = dbtest.URL(t, kind)
	return append(args, "--database-url", databaseURL), databaseURL
}

// pagingSetup is what setUpPaging made: the admin's session and the
// webhook path of a Detectify integration whose alerts page the admin.
type pagingSetup struct {
	bearer   string
	hookPath string
}

// setUpPaging signs in as the first admin and makes every alert of a new
// Detectify integration page that admin, at once, by an outbound webhook
// to receiverURL: one contact method, one notification rule without
// delay, and a one-step policy whose step lasts stepDelayMinutes.
func setUpPaging(t *testing.T, base, receiverURL string, stepDelayMinutes int) pagingSetup {
	t.Helper()
	var login struct {
		Login struct {
			Token string
			User  struct{ ID string }
		}
	}
	decode(t, gqlData(t, base, "", `mutation { login(email: "admin@example.com", password: "change-me-now") { token user { id } } }`, nil), &login)
	bearer, adminID := login.Login.Token, login.Login.User.ID
	var cm struct{ CreateContactMethod struct{ ID string } }
	decode(t, gqlData(t, base, bearer, `mutation($user: ID!, $url: String!) {
		createContactMethod(input: {userId: $user, type: WEBHOOK, value: $url}) { id } }`,
		map[string]any{"user": adminID, "url": receiverURL}), &cm)
	gqlData(t, base, bearer, `mutation($cm: ID!) { createNotificationRule(input: {contactMethodId: $cm, delayMinutes: 0}) { id } }`,
		map[string]any{"cm": cm.CreateContactMethod.ID})
	var policy struct{ CreateEscalationPolicy struct{ ID string } }
	decode(t, gqlData(t, base, bearer, `mutation($user: ID!, $delay: Int!) {
		createEscalationPolicy(input: {name: "on call", steps: [{delayMinutes: $delay, targets: [{type: USER, id: $user}]}]}) { id } }`,
		map[string]any{"user": adminID, "delay": stepDelayMinutes}), &policy)
	var integ struct{ CreateIntegration struct{ URL string } }
	decode(t, gqlData(t, base, bearer, `mutation($policy: ID!) {
		createIntegration(input: {name: "Detectify", type: DETECTIFY, escalationPolicyId: $policy}) { url } }`,
		map[string]any{"policy": policy.CreateEscalationPolicy.ID}), &integ)
	url := integ.CreateIntegration.URL
	return pagingSetup{bearer: bearer, hookPath: "/webhooks/" + url[strings.LastIndex(url, "/")+1:]}
}

// klaxonProcess is the binary running, its stderr collected.
type klaxonProcess struct {
	cmd    *exec.Cmd
	addr   string
	exited chan error
	mu     sync.Mutex
	buf    bytes.Buffer
}

func (p *klaxonProcess) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}

func startKlaxon(t *testing.T, bin string, args []string) *klaxonProcess {
	t.Helper()
	cmd := exec.Command(bin, args...)
	// The receivers the tests page are on this machine, which outbound
	// requests may reach only when allowed.
	cmd.Env = append(os.Environ(), "KLAXON_ADMIN_EMAIL=admin@example.com", "KLAXON_ADMIN_PASSWORD=change-me-now", "KLAXON_OUTBOUND_ALLOW=127.0.0.1/32,::1/128")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	p := &klaxonProcess{cmd: cmd, exited: make(chan error, 1)}
	addrFound := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.buf.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := listeningAddr.FindStringSubmatch(sc.Text()); m != nil {
				addrFound <- m[1]
			}
		}
		p.exited <- cmd.Wait()
	}()
	select {
	case p.addr = <-addrFound:
	case err := <-p.exited:
		t.Fatalf("server exited at start: %v\n%s", err, p.logs())
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start\n%s", p.logs())
	}
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	return c
}

// waitUntil polls cond until it holds, failing after a generous deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitFor(t, what, 30*time.Second, cond)
}

// waitFor is waitUntil with a deadline of the caller's.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// detectifyFinding is a Detectify finding event: high or medium opens an
// alert (or is appended to the open one), low closes it.
func detectifyFinding(uuid, severity string) []byte {
	b, _ := json.Marshal(map[string]any{
		"event_type": "finding",
		"finding":    map[string]any{"uuid": uuid, "title": "Finding " + uuid, "severity": severity, "asset": "app.example.com"},
	})
	return b
}

// gqlData runs a GraphQL operation that must succeed and returns its data.
func gqlData(t *testing.T, base, bearer, query string, vars map[string]any) json.RawMessage {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data   json.RawMessage
		Errors []any
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Errors) > 0 {
		t.Fatalf("graphql %s: %v %v", query, err, out.Errors)
	}
	return out.Data
}

func decode(t *testing.T, data json.RawMessage, out any) {
	t.Helper()
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
}
