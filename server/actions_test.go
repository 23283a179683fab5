package server_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

func TestActionLinkPages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("DETECTIFY")
		alertID, _ := strconv.Atoi(h.postWebhook(integ.Token(t), finding(h.unique("f"), "high")).alert())
		userID, _ := strconv.Atoi(h.admin.ID)
		const token = "k3Jx0V7b2mQe9sWq4YtH8uLc1PzN6aRf5DgE-oIyTnU"
		sum := sha256.Sum256([]byte(token))
		now := time.Now().UTC()
		link := &db.ActionLink{TokenHash: hex.EncodeToString(sum[:]), AlertID: alertID, UserID: userID, Action: db.LinkAcknowledge, ExpiresAt: now.Add(time.Hour), CreatedAt: now}
		if _, err := d.NewInsert().Model(link).Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
		call := func(method, token string) (int, string) {
			t.Helper()
			req, _ := http.NewRequest(method, h.srv.URL+"/actions/"+token, nil)
			resp, err := h.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Fatalf("%s: content type %s", method, ct)
			}
			return resp.StatusCode, string(body)
		}
		status := func() string {
			a, err := h.alerting.Alert(context.Background(), alertID)
			if err != nil {
				t.Fatal(err)
			}
			return string(a.Status)
		}

		// Opening the link, as a mail scanner would, changes nothing.
		if code, body := call(http.MethodGet, token); code != http.StatusOK || !strings.Contains(body, `<form method="post">`) || status() != "OPEN" {
			t.Fatalf("GET: %d %s, alert %s", code, body, status())
		}
		if code, body := call(http.MethodPost, token); code != http.StatusOK || !strings.Contains(body, "Acknowledged") || status() != "ACKNOWLEDGED" {
			t.Fatalf("POST: %d %s, alert %s", code, body, status())
		}
		if code, body := call(http.MethodPost, token); code != http.StatusGone || !strings.Contains(body, "already been used") {
			t.Fatalf("second POST: %d %s", code, body)
		}
		if code, _ := call(http.MethodGet, token); code != http.StatusGone {
			t.Fatalf("GET of a used link: %d", code)
		}
		if code, _ := call(http.MethodPost, "not-a-token"); code != http.StatusNotFound {
			t.Fatalf("unknown token: %d", code)
		}
	})
}

// The action page refuses, with 403 and the reason, a link whose person
// may not act on alerts now: a VIEWER recipient, or a RESPONDER demoted
// after the page went out. acknowledgeAlert is FORBIDDEN to both.
func TestActionLinkRefusesWhoMayNotAct(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		ctx := context.Background()
		integ := h.createIntegration("DETECTIFY")
		link := func(userID string) (alertID int, token string) {
			t.Helper()
			alertID, _ = strconv.Atoi(h.postWebhook(integ.Token(t), finding(h.unique("f"), "high")).alert())
			uid, _ := strconv.Atoi(userID)
			token = h.unique("k3Jx0V7b2mQe9sWq4YtH8uLc1PzN6aRf5DgE-oIyTnU")
			sum := sha256.Sum256([]byte(token))
			now := time.Now().UTC()
			if _, err := d.NewInsert().Model(&db.ActionLink{TokenHash: hex.EncodeToString(sum[:]), AlertID: alertID, UserID: uid, Action: db.LinkAcknowledge, ExpiresAt: now.Add(time.Hour), CreatedAt: now}).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			return alertID, token
		}
		refused := func(what string, alertID int, token string) {
			t.Helper()
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				req, _ := http.NewRequest(method, h.srv.URL+"/actions/"+token, nil)
				resp, err := h.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "does not allow acting on alerts") || strings.Contains(string(body), "<form") {
					t.Fatalf("%s, %s: %d %s", what, method, resp.StatusCode, body)
				}
			}
			if a, err := h.alerting.Alert(ctx, alertID); err != nil || a.Status != db.AlertOpen {
				t.Fatalf("%s: alert %+v %v", what, a, err)
			}
		}

		viewer := h.newUser(db.RoleViewer)
		alertID, token := link(viewer.ID)
		h.wantGQLError(viewer.Token, `mutation($id: ID!) { acknowledgeAlert(id: $id) { id } }`, map[string]any{"id": strconv.Itoa(alertID)}, "FORBIDDEN")
		refused("a VIEWER recipient", alertID, token)

		responder := h.newUser(db.RoleResponder)
		alertID, token = link(responder.ID)
		h.mustGQL(h.admin.Token, `mutation($id: ID!) { updateUser(id: $id, input: {role: VIEWER}) { id } }`, map[string]any{"id": responder.ID}, nil)
		refused("a RESPONDER demoted after the page", alertID, token)
	})
}
