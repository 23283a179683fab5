package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

var smallFill = fillSpec{Messages: 3000, Alerts: 900, Integrations: 8, Users: 6, Teams: 2, Days: 60, Seed: 7,
	Until: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), AdminEmail: adminEmail, AdminPassword: adminPassword}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestFillWritesTheHistoryKlaxonServes fills a small database on each
// engine, checks every table holds what fill reported, that the same seed
// writes the same rows, and that Klaxon then serves the history and takes
// new webhooks on top of it.
func TestFillWritesTheHistoryKlaxonServes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		counts, err := fill(ctx, d, smallFill, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		if counts.Messages != smallFill.Messages || counts.Alerts != smallFill.Alerts || counts.Integrations != smallFill.Integrations ||
			counts.Users != smallFill.Users || counts.Teams != smallFill.Teams || counts.Audit != 50 {
			t.Fatalf("counts %+v", counts)
		}
		// Every alert has at least its opening entry and event.
		if counts.Timeline < counts.Alerts || counts.Events < counts.Messages+counts.Alerts || counts.Notifications == 0 {
			t.Fatalf("counts %+v", counts)
		}
		if counts.OpenAlerts == 0 || counts.OpenAlerts > counts.Alerts/5 {
			t.Fatalf("%d of %d alerts not closed; want a few", counts.OpenAlerts, counts.Alerts)
		}
		for table, want := range map[string]int{"alerts": counts.Alerts, "inbound_messages": counts.Messages, "alert_log": counts.Timeline,
			"notifications": counts.Notifications, "events": counts.Events, "users": counts.Users, "user_groups": counts.Teams, "integrations": counts.Integrations} {
			if got := countRows(t, d, "SELECT count(*) FROM "+table); got != want {
				t.Errorf("%s: %d rows, fill reported %d", table, got, want)
			}
		}
		// The integrations' creation recorded theirs through the store.
		if got := countRows(t, d, "SELECT count(*) FROM audit_log"); got < counts.Audit+counts.Integrations {
			t.Errorf("audit_log: %d rows, want at least %d", got, counts.Audit+counts.Integrations)
		}
		bodyText := "CAST(body AS TEXT)"
		if d.Kind == db.Postgres {
			bodyText = "convert_from(body, 'UTF8')"
		}
		for what, q := range map[string]string{
			"team-owned integrations":                "SELECT count(*) FROM integrations WHERE team_id IS NOT NULL",
			"closed alerts":                          "SELECT count(*) FROM alerts WHERE status = 'CLOSED' AND closed_at IS NOT NULL",
			"acknowledged alerts":                    "SELECT count(*) FROM alerts WHERE acknowledged_at IS NOT NULL",
			"overdue alerts":                         "SELECT count(*) FROM alerts WHERE overdue_at IS NOT NULL",
			"regressions":                            "SELECT count(*) FROM alerts WHERE previous_alert_id IS NOT NULL",
			"repeats":                                "SELECT count(*) FROM inbound_messages WHERE status = 'MAPPED_APPENDED'",
			"messages that touched no alert":         "SELECT count(*) FROM inbound_messages WHERE alert_id IS NULL AND status = 'FILTERED'",
			"failed notifications":                   "SELECT count(*) FROM notifications WHERE status = 'FAILED'",
			"notifications to a contact method":      "SELECT count(*) FROM notifications n JOIN contact_methods c ON c.id = n.contact_method_id AND c.user_id = n.user_id",
			"closes by a message on the timeline":    "SELECT count(*) FROM alert_log WHERE type = 'CLOSED' AND inbound_message_id IS NOT NULL",
			"closes by a person on the timeline":     "SELECT count(*) FROM alert_log WHERE type = 'CLOSED' AND user_id IS NOT NULL",
			"bodies in the Detectify samples' shape": "SELECT count(*) FROM inbound_messages WHERE status = 'MAPPED_OPENED' AND " + bodyText + ` LIKE '%"finding": {%'`,
			"bodies in Alertmanager's shape":         "SELECT count(*) FROM inbound_messages WHERE " + bodyText + ` LIKE '%"groupKey"%'`,
		} {
			if countRows(t, d, q) == 0 {
				t.Errorf("no %s", what)
			}
		}
		if got := countRows(t, d, "SELECT count(*) FROM inbound_messages a JOIN inbound_messages b ON b.id = a.id + 1 WHERE b.received_at < a.received_at"); got != 0 {
			t.Errorf("%d messages received before the one with the id before theirs", got)
		}
		if got := countRows(t, d, "SELECT count(*) FROM alerts a WHERE a.append_count <> (SELECT count(*) FROM inbound_messages m WHERE m.alert_id = a.id AND m.status = 'MAPPED_APPENDED')"); got != 0 {
			t.Errorf("%d alerts whose append count is not their repeats", got)
		}

		// The same seed writes the same rows.
		again := dbtest.SQLite(t)
		if _, err := fill(ctx, again, smallFill, quietLog()); err != nil {
			t.Fatal(err)
		}
		if a, b := fingerprint(t, d), fingerprint(t, again); a != b {
			t.Fatalf("the same seed wrote different rows: %s, then %s", a, b)
		}
		// A database with history already is refused, not doubled.
		if _, err := fill(ctx, d, smallFill, quietLog()); err == nil || !strings.Contains(err.Error(), "already holds") {
			t.Fatalf("second fill: %v, want a refusal", err)
		}

		base := startKlaxon(t, d, nil)
		a := &api{base: base, http: newClient(1, 30*time.Second)}
		if err := a.login(ctx, adminEmail, adminPassword); err != nil {
			t.Fatal(err)
		}
		var list struct {
			Alerts struct {
				TotalCount int `json:"totalCount"`
				Nodes      []struct {
					ID     string `json:"id"`
					Status string `json:"status"`
				} `json:"nodes"`
			} `json:"alerts"`
		}
		if err := a.do(ctx, `query { alerts(first: 50) { totalCount nodes { id status } } }`, nil, &list); err != nil {
			t.Fatal(err)
		}
		if list.Alerts.TotalCount != smallFill.Alerts || len(list.Alerts.Nodes) != 50 || list.Alerts.Nodes[0].ID != fmt.Sprint(smallFill.Alerts) {
			t.Fatalf("alerts: total %d, %d nodes, first %+v", list.Alerts.TotalCount, len(list.Alerts.Nodes), list.Alerts.Nodes[:min(1, len(list.Alerts.Nodes))])
		}
		integrationID, alertID, teamID, err := queryTargets(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range listQueries(integrationID, alertID, teamID) {
			var reply map[string]any
			if err := a.do(ctx, q.Query, q.Vars, &reply); err != nil {
				t.Fatalf("%s: %v", q.Name, err)
			}
		}
		var one struct {
			Alert struct {
				Timeline []struct {
					Type string `json:"type"`
				} `json:"timeline"`
				Messages struct {
					TotalCount int `json:"totalCount"`
				} `json:"messages"`
			} `json:"alert"`
		}
		if err := a.do(ctx, `query($id: ID!) { alert(id: $id) { timeline { type } messages { totalCount } } }`, map[string]any{"id": alertID}, &one); err != nil {
			t.Fatal(err)
		}
		if len(one.Alert.Timeline) < 2 || one.Alert.Timeline[0].Type != "OPENED" || one.Alert.Messages.TotalCount < 2 {
			t.Fatalf("alert %s: %+v", alertID, one.Alert)
		}

		// New webhooks land after the history: the id sequences moved past it.
		var integ struct {
			Integrations []struct {
				ID   string `json:"id"`
				Type string `json:"type"`
				URL  string `json:"url"`
			} `json:"integrations"`
		}
		if err := a.do(ctx, `query { integrations { id type url } }`, nil, &integ); err != nil {
			t.Fatal(err)
		}
		target, err := webhookURL(base, integ.Integrations[0].URL)
		if err != nil {
			t.Fatal(err)
		}
		body, err := detectifyBody("0d6f1c3e-2a4b-4c8d-9e7f-1a2b3c4d5e6f", "high", "finding", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(target, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		reply, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantID := fmt.Sprintf(`"messageId":"%d"`, smallFill.Messages+1)
		if resp.StatusCode/100 != 2 || !bytes.Contains(reply, []byte(wantID)) || !bytes.Contains(reply, []byte(fmt.Sprintf(`"alertId":"%d"`, smallFill.Alerts+1))) {
			t.Fatalf("webhook after the fill: %d %s; want 2xx with %s and alert %d", resp.StatusCode, reply, wantID, smallFill.Alerts+1)
		}
	})
}

func TestFillRefusesBadSpecs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "-database-url is required"},
		{[]string{"-database-url", "sqlite:///x.db", "-alerts", "10", "-messages", "5"}, "-messages must be at least -alerts"},
		{[]string{"-database-url", "sqlite:///x.db", "-users", "1"}, "-users must be at least 2"},
		{[]string{"-database-url", "sqlite:///x.db", "-until", "yesterday"}, "-until"},
	} {
		err := run(context.Background(), append([]string{"fill"}, tc.args...), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("fill %q: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func countRows(t *testing.T, d *db.DB, q string) int {
	t.Helper()
	var n int
	if err := d.DB.DB.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// fingerprint digests the rows fill drew, in a form both engines read
// alike.
func fingerprint(t *testing.T, d *db.DB) string {
	t.Helper()
	h := sha256.New()
	for _, q := range []string{
		"SELECT id, integration_id, source_id, status, severity, append_count, COALESCE(previous_alert_id, 0), CASE WHEN overdue_at IS NULL THEN 0 ELSE 1 END FROM alerts ORDER BY id",
		"SELECT id, integration_id, status, source_id, COALESCE(alert_id, 0), body FROM inbound_messages ORDER BY id",
		"SELECT alert_id, type, COALESCE(user_id, 0), COALESCE(inbound_message_id, 0) FROM alert_log ORDER BY id",
	} {
		rows, err := d.DB.DB.QueryContext(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(h, "%v|", v)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return hex.EncodeToString(h.Sum(nil))
}
