package server_test

import (
	"bytes"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// lockedBuffer is a log destination the server writes from its request
// goroutines while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines(substr string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for line := range strings.Lines(b.buf.String()) {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return out
}

// Every stored webhook is in the inbound log already; at info the access
// log only tells of the refused ones, and of every other route.
func TestRequestLogLeavesStoredWebhooksToDebug(t *testing.T) {
	logs := &lockedBuffer{}
	h := newHarnessLogging(t, dbtest.SQLite(t), server.Config{}, logs)
	token := h.createIntegration("DETECTIFY").Token(t)
	body, err := os.ReadFile("../rules/testdata/detectify/new_finding_high.json")
	if err != nil {
		t.Fatal(err)
	}
	if r := h.postWebhook(token, body); r.HTTPStatus >= 300 {
		t.Fatalf("webhook answered %d: %s", r.HTTPStatus, r.Raw)
	}
	if r := h.postWebhook("no-such-token", body); r.HTTPStatus != http.StatusNotFound {
		t.Fatalf("webhook to an unknown token answered %d, want 404", r.HTTPStatus)
	}

	webhookLines := logs.lines(`route="POST /webhooks/{token}"`)
	if len(webhookLines) != 1 || !strings.Contains(webhookLines[0], "status=404") {
		t.Fatalf("webhook request lines at info:\n%s\nwant only the refused one (404)", strings.Join(webhookLines, ""))
	}
	if len(logs.lines(`route="POST /graphql"`)) == 0 {
		t.Fatalf("no request line for the GraphQL requests; the log:\n%s", strings.Join(logs.lines(""), ""))
	}
}
