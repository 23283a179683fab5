package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/resolvers"
	"github.com/klaxonhq/klaxon/schedules"
	"github.com/klaxonhq/klaxon/server"
)

const (
	adminEmail    = "admin@example.com"
	adminPassword = "change-me-now"
)

// startKlaxon runs a Klaxon server over d, wired as cmd/klaxon serve does
// it, and returns its handler and URL.
func startKlaxon(t *testing.T, d *db.DB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	key, err := auth.SigningKey(ctx, d, time.Now().UTC())
	if err != nil {
		t.Fatalf("signing key: %v", err)
	}
	tokens, err := auth.NewTokens(key, time.Hour, time.Now)
	if err != nil {
		t.Fatalf("tokens: %v", err)
	}
	authSvc, err := auth.NewService(d, tokens, time.Now)
	if err != nil {
		t.Fatalf("auth service: %v", err)
	}
	authSvc.SetPasswordCost(bcrypt.MinCost)
	if _, _, err := authSvc.EnsureAdmin(ctx, adminEmail, adminPassword); err != nil {
		t.Fatalf("first admin: %v", err)
	}
	var alertingSvc *alerting.Service
	policyStore := policies.NewStore(d, time.Now, func() { alertingSvc.RoutesChanged() })
	scheduleStore := schedules.NewStore(d, time.Now, policyStore)
	integrationStore := integrations.NewStore(d, "https://klaxon.example", time.Now, func() { alertingSvc.RoutesChanged() })
	channels := notifiers.NewChannels(notifiers.Senders{db.ContactWebhook: notifiers.NewWebhook(nil)}, nil)
	contactStore := contacts.NewStore(d, time.Now, log, channels)
	bus := events.NewBus(d, log)
	alertingSvc = alerting.NewService(alerting.Options{DB: d, PublicURL: "https://klaxon.example", Now: time.Now, Log: log, Config: alerting.Config{
		OnCall: scheduleStore, Policies: policyStore, Integrations: integrationStore, Contacts: contactStore, Groups: authSvc,
	}, Channels: channels, Events: bus})
	srv := server.New(server.Config{MaxBodyBytes: 1 << 20, ShutdownTimeout: 5 * time.Second}, d, alertingSvc, authSvc, bus, &resolvers.Resolver{Alerting: alertingSvc, Auth: authSvc, Events: bus, Audit: audit.NewLog(d), ScheduleStore: scheduleStore, PolicyStore: policyStore, ContactStore: contactStore, IntegrationStore: integrationStore}, log)

	background, stop := context.WithCancel(context.Background())
	var workers sync.WaitGroup
	workers.Go(func() { alertingSvc.RunEngine(background, 100*time.Millisecond) })
	workers.Go(func() { bus.Run(background) })
	h := srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		ts.Close()
		stop()
		workers.Wait()
	})
	return ts.URL
}

func runBench(t *testing.T, args ...string) (*Report, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"-email", adminEmail, "-password", adminPassword, "-c", "4", "-d", "1500ms", "-json"}, args...), &stdout, &stderr)
	rep := &Report{}
	if stdout.Len() > 0 {
		if jerr := json.Unmarshal(stdout.Bytes(), rep); jerr != nil {
			t.Fatalf("report is not JSON: %v\n%s", jerr, stdout.String())
		}
	} else if err == nil {
		t.Fatalf("no report; stderr:\n%s", stderr.String())
	}
	return rep, err
}

// TestRunChecksOut runs a short load against a real server and expects
// every accepted message and every finding's alert to be accounted for.
func TestRunChecksOut(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		base := startKlaxon(t, d, nil)
		var baselineHits atomic.Int64
		baseline := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/webhooks/") {
				http.NotFound(w, r)
				return
			}
			io.Copy(io.Discard, r.Body)
			baselineHits.Add(1)
			w.WriteHeader(http.StatusAccepted)
		}))
		defer baseline.Close()

		rep, err := runBench(t, "-url", base, "-baseline", baseline.URL)
		if err != nil {
			t.Fatalf("run: %v\nproblems: %q", err, rep.Check.Problems)
		}
		c := rep.Check
		if !c.OK || c.Accepted == 0 || c.InboundLog != c.Accepted || c.OpenAlerts != c.ExpectedOpen {
			t.Fatalf("check: %+v", c)
		}
		k := rep.Klaxon
		if k.OK != c.Accepted || k.ByKind["new"] == 0 || k.ByKind["duplicate"] == 0 || k.ByKind["close"] == 0 {
			t.Fatalf("klaxon result: %+v", k)
		}
		if k.MeanBodyB < 800 || k.MeanBodyB > 1300 {
			t.Fatalf("mean body %d bytes, want about 1 KB", k.MeanBodyB)
		}
		if rep.Baseline == nil || int64(rep.Baseline.OK) != baselineHits.Load() || rep.Baseline.OK == 0 || rep.Ratio <= 0 {
			t.Fatalf("baseline result %+v, ratio %v, %d hits", rep.Baseline, rep.Ratio, baselineHits.Load())
		}
		// The baseline is sent the same mix: repeats and closes of the
		// findings it was sent, not only new ones.
		if b := rep.Baseline.ByKind; b["new"] == 0 || b["duplicate"] == 0 || b["close"] == 0 {
			t.Fatalf("baseline mix %v, want new, duplicate and close messages", b)
		}
	})
}

// TestRunCatchesLoss answers some webhooks 200 without storing them; the
// check must fail and say which were lost.
func TestRunCatchesLoss(t *testing.T) {
	var n atomic.Int64
	base := startKlaxon(t, dbtest.SQLite(t), func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, "/webhooks/") || n.Add(1)%10 != 0 {
				next.ServeHTTP(w, r)
				return
			}
			body, _ := io.ReadAll(r.Body)
			status := statusAppended
			switch {
			case bytes.Contains(body, []byte(`"severity": "low"`)):
				status = statusClosed
			case bytes.Contains(body, []byte(`"event_type": "finding"`)):
				status = statusOpened
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"messageId":"999999999","status":"`+status+`","alertId":null}`)
		})
	})
	rep, err := runBench(t, "-url", base)
	if err == nil || !strings.Contains(err.Error(), "check failed") {
		t.Fatalf("run: %v, want a failed check", err)
	}
	if !hasProblem(rep.Check, "lost: message 999999999") {
		t.Fatalf("problems do not name the lost message: %q", rep.Check.Problems)
	}
}

// TestRunCatchesDoubles stores some messages twice while answering
// once; the check must fail on the extra inbound message.
func TestRunCatchesDoubles(t *testing.T) {
	var n atomic.Int64
	base := startKlaxon(t, dbtest.SQLite(t), func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, "/webhooks/") || n.Add(1)%10 != 0 {
				next.ServeHTTP(w, r)
				return
			}
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(w, r)
			// The same message again, its reply thrown away.
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(httptest.NewRecorder(), r)
		})
	})
	rep, err := runBench(t, "-url", base)
	if err == nil || !strings.Contains(err.Error(), "check failed") {
		t.Fatalf("run: %v, want a failed check", err)
	}
	if !hasProblem(rep.Check, "doubled:") {
		t.Fatalf("problems do not report doubles: %q", rep.Check.Problems)
	}
}

func hasProblem(c *Check, prefix string) bool {
	if c == nil {
		return false
	}
	for _, p := range c.Problems {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

func TestQuantile(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	sorted := make([]time.Duration, 100)
	for i := range sorted {
		sorted[i] = ms(i + 1)
	}
	for _, tc := range []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{[]time.Duration{ms(7)}, 0.99, ms(7)},
		{sorted, 0.50, ms(50)},
		{sorted, 0.95, ms(95)},
		{sorted, 0.99, ms(99)},
		{sorted, 1, ms(100)},
	} {
		if got := quantile(tc.in, tc.q); got != tc.want {
			t.Errorf("quantile(%d values, %v) = %v, want %v", len(tc.in), tc.q, got, tc.want)
		}
	}
}

func TestDetectifyBodyFollowsThePreset(t *testing.T) {
	body, err := detectifyBody("3f9c2a8e-6b1d-4c57-9e0a-5d2b7c41f8a3", "low", "finding_updated", time.Date(2025, 1, 20, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var msg struct {
		EventType string `json:"event_type"`
		Finding   struct {
			UUID     string `json:"uuid"`
			Severity string `json:"severity"`
		} `json:"finding"`
	}
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.EventType != "finding_updated" || msg.Finding.UUID != "3f9c2a8e-6b1d-4c57-9e0a-5d2b7c41f8a3" || msg.Finding.Severity != "low" {
		t.Fatalf("body: %s", body)
	}
}

// TestListTotalMatches: past the cap a list's total is the cap, flagged,
// and paging returns more; below it the total is exact.
func TestListTotalMatches(t *testing.T) {
	for _, tc := range []struct {
		total listTotal
		read  int
		want  bool
	}{
		{listTotal{17, false}, 17, true},
		{listTotal{17, false}, 18, false},
		{listTotal{db.CountCap, false}, db.CountCap, true},
		{listTotal{db.CountCap, true}, 17_584, true},
		{listTotal{db.CountCap, true}, db.CountCap, false},
		{listTotal{9_000, true}, 17_584, false},
	} {
		if got := tc.total.matches(tc.read); got != tc.want {
			t.Errorf("%s matches %d: %v, want %v", tc.total, tc.read, got, tc.want)
		}
	}
}
