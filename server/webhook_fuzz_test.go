package server_test

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// FuzzWebhook posts bodies to a real server over SQLite, through the
// whole of ingest: whatever the body, the answer is a JSON 200, 400 or
// 413, never a 5xx; a body within the limit is stored exactly once, byte
// for byte, with the status the reply gives; a body over it is refused
// unread and stores nothing.
func FuzzWebhook(f *testing.F) {
	const limit = 4 << 10
	files, err := filepath.Glob(filepath.Join("..", "rules", "testdata", "detectify", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	for _, s := range []string{
		``, `[]`, `null`, `{"a":1} {"b":2}`, "\xef\xbb\xbf{}", "{\"finding\":{\"uuid\":\"\xff\",\"severity\":\"HIGH\"}}",
		`{"finding":{"uuid":"nul\u0000","severity":"high","title":"\u0000"}}`,
		`{"finding":{"uuid":"x","severity":"low","severity":"critical"}}`,
		`{"finding":{"uuid":1e400,"severity":"medium"}}`,
		`{"a":` + strings.Repeat("[", 1000) + strings.Repeat("]", 1000) + `}`,
		strings.Repeat("x", limit+1),
	} {
		f.Add([]byte(s))
	}
	stored := map[string]bool{
		"MAPPED_OPENED": true, "MAPPED_APPENDED": true, "MAPPED_CLOSED": true, "MAPPED_IGNORED": true, "FILTERED": true,
		"PULSE": true,
	}

	h := newHarness(f, dbtest.SQLite(f), server.Config{MaxBodyBytes: limit})
	token := h.createIntegration("DETECTIFY").Token(f)

	f.Fuzz(func(t *testing.T, body []byte) {
		h := h.with(t)
		before := h.inboundCount()
		r := h.postWebhook(token, body)
		after := h.inboundCount()
		if !strings.HasPrefix(r.ContentType, "application/json") {
			t.Fatalf("HTTP %d with Content-Type %q: %q", r.HTTPStatus, r.ContentType, r.Raw)
		}
		if len(body) > limit {
			if r.HTTPStatus != http.StatusRequestEntityTooLarge || r.Error == "" || after != before {
				t.Fatalf("%d bytes over a %d limit: HTTP %d, %d stored: %s", len(body), limit, r.HTTPStatus, after-before, r.Raw)
			}
			return
		}
		switch {
		case r.HTTPStatus == http.StatusOK && stored[r.Status] && r.Error == "":
		case r.HTTPStatus == http.StatusBadRequest && r.Status == "MAPPING_FAILED" && r.Error != "":
		default:
			t.Fatalf("HTTP %d: %s", r.HTTPStatus, r.Raw)
		}
		if after != before+1 {
			t.Fatalf("the inbound log went from %d to %d messages, want one more", before, after)
		}
		msg := h.inboundMessage(r.MessageID)
		if string(msg.Status) != r.Status || !bytes.Equal(msg.Body, body) {
			t.Fatalf("stored %s with %d bytes; replied %s for %d bytes", msg.Status, len(msg.Body), r.Status, len(body))
		}
		if (msg.AlertID == nil) != (r.AlertID == nil) {
			t.Fatalf("stored alert %v, replied %v", msg.AlertID, r.AlertID)
		}
	})
}
