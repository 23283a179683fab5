package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// badInputLimit is the webhook body limit of the bad-input matrix: large
// enough for a body nested 100,000 levels deep to be refused by the parser
// rather than by the size check.
const badInputLimit = 256 << 10

// badInput is one row of the matrix in docs/SECURITY.md.
type badInput struct {
	name string
	// setup returns the token to send to and anything check needs; nil
	// sends to a fresh DETECTIFY integration.
	setup func(t *testing.T, h *harness) (token, other string)
	// method is POST when empty.
	method      string
	body        func(t *testing.T) []byte
	headers     func(body []byte) map[string]string
	wantHTTP    int
	wantStatus  string // the reply's inbound status; "" when nothing is stored
	wantError   string // in the reply's "error"; "" for a 2xx
	wantInbound map[string]int
	wantAlerts  int
	// check looks further at what was stored: the message row (nil when
	// none) and its alert (nil when none).
	check func(t *testing.T, h *harness, other string, r *webhookReply, msg *db.InboundMessage, alert *db.Alert)
}

// TestWebhookBadInput runs the bad-input matrix of docs/SECURITY.md.
func TestWebhookBadInput(t *testing.T) {
	t.Parallel()
	cases := slices.Concat(badBodySizes(), badEncodings(), badJSONShapes(), badAddressing(), badSignatures(), overRateLimit())
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{MaxBodyBytes: badInputLimit})
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				runBadInput(t, h.with(t), tc)
			})
		}
	})
}

func runBadInput(t *testing.T, h *harness, tc badInput) {
	var token, other string
	if tc.setup != nil {
		token, other = tc.setup(t, h)
	} else {
		token = h.createIntegration("DETECTIFY").Token(t)
	}
	body := tc.body(t)
	headers := map[string]string{"Content-Type": "application/json"}
	if tc.headers != nil {
		maps.Copy(headers, tc.headers(body))
	}
	method := tc.method
	if method == "" {
		method = http.MethodPost
	}
	inboundBefore, alertsBefore := h.stored()
	r := h.webhook(method, token, body, headers)
	inboundAfter, alertsAfter := h.stored()

	if r.HTTPStatus != tc.wantHTTP {
		t.Fatalf("HTTP %d, want %d: %s", r.HTTPStatus, tc.wantHTTP, r.Raw)
	}
	if !strings.HasPrefix(r.ContentType, "application/json") || !json.Valid(r.Raw) {
		t.Errorf("reply is not JSON (Content-Type %q): %q", r.ContentType, r.Raw)
	}
	if tc.wantError != "" && !strings.Contains(r.Error, tc.wantError) {
		t.Errorf("reply error %q, want it to say %q", r.Error, tc.wantError)
	}
	if tc.wantError == "" && r.Error != "" {
		t.Errorf("reply error %q on a success", r.Error)
	}
	if r.Status != tc.wantStatus {
		t.Errorf("reply status %q, want %q: %s", r.Status, tc.wantStatus, r.Raw)
	}
	if (r.MessageID != "") != (tc.wantStatus != "") {
		t.Errorf("reply messageId %q with status %q", r.MessageID, tc.wantStatus)
	}

	added := map[string]int{}
	for status, n := range inboundAfter {
		if n != inboundBefore[status] {
			added[status] = n - inboundBefore[status]
		}
	}
	if !maps.Equal(added, tc.wantInbound) {
		t.Errorf("inbound log gained %v, want %v", added, tc.wantInbound)
	}
	if alertsAfter-alertsBefore != tc.wantAlerts {
		t.Errorf("%d alerts opened, want %d", alertsAfter-alertsBefore, tc.wantAlerts)
	}

	var msg *db.InboundMessage
	var alert *db.Alert
	if tc.wantStatus != "" && r.MessageID != "" {
		msg = h.inboundMessage(r.MessageID)
		if string(msg.Status) != tc.wantStatus || !bytes.Equal(msg.Body, body) {
			t.Errorf("stored status %s with a body of %d bytes; want %s with the %d bytes sent",
				msg.Status, len(msg.Body), tc.wantStatus, len(body))
		}
		if tc.wantError != "" && !strings.Contains(msg.Detail, tc.wantError) {
			t.Errorf("stored detail %q, want it to say %q", msg.Detail, tc.wantError)
		}
		if (msg.AlertID != nil) != (tc.wantAlerts > 0) || (r.AlertID != nil) != (tc.wantAlerts > 0) {
			t.Errorf("stored alert %v, replied alert %v; want one only when an alert opened", msg.AlertID, r.AlertID)
		}
		if msg.AlertID != nil {
			alert = h.alertRow(*msg.AlertID)
			if alert.IntegrationID == nil || *alert.IntegrationID != msg.IntegrationID || alert.Status != db.AlertOpen {
				t.Errorf("alert %+v does not belong to message %+v", alert, msg)
			}
		}
	}
	if tc.check != nil {
		tc.check(t, h, other, r, msg, alert)
	}
}

// stored is the inbound log's rows by status and the number of alerts,
// straight from the database.
func (h *harness) stored() (inbound map[string]int, alerts int) {
	h.t.Helper()
	ctx := context.Background()
	var rows []struct {
		Status string `bun:"status"`
		N      int    `bun:"n"`
	}
	if err := h.db.NewSelect().Model((*db.InboundMessage)(nil)).
		ColumnExpr("status").ColumnExpr("count(*) AS n").Group("status").Scan(ctx, &rows); err != nil {
		h.t.Fatalf("count inbound messages by status: %v", err)
	}
	inbound = map[string]int{}
	for _, r := range rows {
		inbound[r.Status] = r.N
	}
	n, err := h.db.NewSelect().Model((*db.Alert)(nil)).Count(ctx)
	if err != nil {
		h.t.Fatalf("count alerts: %v", err)
	}
	return inbound, int(n)
}

func (h *harness) inboundMessage(id string) *db.InboundMessage {
	h.t.Helper()
	msg := new(db.InboundMessage)
	if err := h.db.NewSelect().Model(msg).Where("id = ?", id).Scan(context.Background()); err != nil {
		h.t.Fatalf("load inbound message %s: %v", id, err)
	}
	return msg
}

func (h *harness) alertRow(id int) *db.Alert {
	h.t.Helper()
	a := new(db.Alert)
	if err := h.db.NewSelect().Model(a).Where("id = ?", id).Scan(context.Background()); err != nil {
		h.t.Fatalf("load alert %d: %v", id, err)
	}
	return a
}
