package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

var listeningAddr = regexp.MustCompile(`msg="klaxon listening" addr=(\S+)`)

// TestServeAndStop runs the real binary, signs in, sends a webhook, then
// stops it with SIGTERM and expects a clean exit.
func TestServeAndStop(t *testing.T) {
	bin := buildKlaxon(t)
	for _, kind := range []db.Kind{db.SQLite, db.Postgres} {
		t.Run(string(kind), func(t *testing.T) {
			p := startKlaxon(t, bin, []string{"serve", "--addr", "127.0.0.1:0", "--database-url", dbtest.URL(t, kind)})
			base := "http://" + p.addr

			if code := get(t, base+"/readyz"); code != http.StatusOK {
				t.Fatalf("readyz: %d", code)
			}
			var login struct{ Login struct{ Token string } }
			decode(t, gqlData(t, base, "", `mutation { login(email: "admin@example.com", password: "change-me-now") { token } }`, nil), &login)
			token := login.Login.Token
			var created struct{ CreateIntegration map[string]any }
			decode(t, gqlData(t, base, token, `mutation { createIntegration(input: {name: "d", type: DETECTIFY}) { url } }`, nil), &created)
			integ := created.CreateIntegration
			token2 := integ["url"].(string)[strings.LastIndex(integ["url"].(string), "/")+1:]
			body, _ := os.ReadFile("../../rules/testdata/detectify/new_finding_high.json")
			resp, err := http.Post(base+"/webhooks/"+token2, "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			reply, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(reply), "MAPPED_OPENED") {
				t.Fatalf("webhook: %d %s", resp.StatusCode, reply)
			}

			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-p.exited:
				if err != nil {
					t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("no exit after SIGTERM\n%s", p.logs())
			}
			if !strings.Contains(p.logs(), "klaxon stopped") {
				t.Fatalf("no clean stop in the logs:\n%s", p.logs())
			}
		})
	}
}

func TestMigrateAndUserCreate(t *testing.T) {
	dataDir := t.TempDir()
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"migrate", "--data-dir", dataDir}, &out, &errOut); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errOut.String())
	}
	args := []string{"user", "create", "--data-dir", dataDir, "--email", "Resp@Example.com", "--password", "long-enough", "--role", "RESPONDER"}
	if err := run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("user create: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "<resp@example.com> with role RESPONDER") {
		t.Fatalf("user create output: %q", out.String())
	}
	if err := run(ctx, args, &out, &errOut); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("creating the same user twice: %v", err)
	}
	bad := []string{"user", "create", "--data-dir", dataDir, "--email", "x@example.com", "--password", "short"}
	if err := run(ctx, bad, &out, &errOut); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("short password: %v", err)
	}
	store, err := db.Open(ctx, db.DefaultURL(dataDir))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	entries, total, _, err := audit.NewLog(store).List(ctx, audit.Filter{EntityType: audit.User}, db.PageRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if total != 1 || entries[0].Action != audit.Created || entries[0].Actor != "cli" || entries[0].ActorUserID != nil {
		t.Fatalf("audit log after user create: %d entries, first %+v; want one creation by the cli", total, entries)
	}
}

func TestConfigFlagsWinOverEnvironment(t *testing.T) {
	t.Setenv("KLAXON_ADDR", ":9000")
	t.Setenv("KLAXON_ALLOWED_ORIGINS", "https://a.example, https://b.example")
	t.Setenv("KLAXON_SHUTDOWN_TIMEOUT", "5s")
	cfg, err := parseConfig("serve", []string{"--addr", ":9001", "--data-dir", "/tmp/x"}, io.Discard, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":9001" || cfg.ShutdownTimeout != 5*time.Second || len(cfg.AllowedOrigins) != 2 || cfg.AllowedOrigins[1] != "https://b.example" {
		t.Fatalf("config: %+v", cfg)
	}
	if cfg.DatabaseURL != "sqlite:///tmp/x/klaxon.db" {
		t.Fatalf("default database URL: %s", cfg.DatabaseURL)
	}
	if cfg.EngineJobLease != 2*time.Minute {
		t.Fatalf("default job lease: %s", cfg.EngineJobLease)
	}
	if got := cfg.Channels.rateLimits(); got[db.ContactSMS] != time.Minute || got[db.ContactVoice] != time.Minute || got[db.ContactEmail] != 0 {
		t.Fatalf("default rate limits: %v", got)
	}
	t.Run("graphql", func(t *testing.T) {
		if !cfg.GraphQL.Introspection || cfg.GraphQL.MaxDepth != 15 || cfg.GraphQL.MaxComplexity != 5000 || cfg.GraphQL.MaxBodyBytes != 1<<20 {
			t.Fatalf("GraphQL defaults: %+v", cfg.GraphQL)
		}
		t.Setenv("KLAXON_GRAPHQL_INTROSPECTION", "false")
		t.Setenv("KLAXON_GRAPHQL_MAX_DEPTH", "8")
		off, err := parseConfig("serve", nil, io.Discard, false, nil)
		if err != nil || off.GraphQL.Introspection || off.GraphQL.MaxDepth != 8 {
			t.Fatalf("KLAXON_GRAPHQL_INTROSPECTION=false, KLAXON_GRAPHQL_MAX_DEPTH=8: %+v %v", off, err)
		}
		on, err := parseConfig("serve", []string{"--graphql-introspection=true"}, io.Discard, false, nil)
		if err != nil || !on.GraphQL.Introspection {
			t.Fatalf("--graphql-introspection=true over the variable: %+v %v", on, err)
		}
	})
	t.Run("metrics token", func(t *testing.T) {
		if cfg.MetricsToken != "" {
			t.Fatalf("metrics token set by default: %q", cfg.MetricsToken)
		}
		t.Setenv("KLAXON_METRICS_TOKEN", "from-the-environment")
		env, err := parseConfig("serve", nil, io.Discard, false, nil)
		if err != nil || env.MetricsToken != "from-the-environment" {
			t.Fatalf("KLAXON_METRICS_TOKEN: %q %v", env.MetricsToken, err)
		}
		flag, err := parseConfig("serve", []string{"--metrics-token", "from-the-flag"}, io.Discard, false, nil)
		if err != nil || flag.MetricsToken != "from-the-flag" {
			t.Fatalf("--metrics-token over the variable: %q %v", flag.MetricsToken, err)
		}
	})
	t.Run("replay limit", func(t *testing.T) {
		if cfg.ReplayMaxMessages != 500_000 {
			t.Fatalf("default replay limit: %d", cfg.ReplayMaxMessages)
		}
		t.Setenv("KLAXON_REPLAY_MAX_MESSAGES", "5000")
		env, err := parseConfig("serve", nil, io.Discard, false, nil)
		if err != nil || env.ReplayMaxMessages != 5000 {
			t.Fatalf("KLAXON_REPLAY_MAX_MESSAGES=5000: %v %v", env, err)
		}
		if _, err := parseConfig("serve", []string{"--replay-max-messages", "0"}, io.Discard, false, nil); err == nil {
			t.Fatal("a replay limit of 0 was taken")
		}
	})
	t.Run("ingest lanes", func(t *testing.T) {
		if cfg.IngestLanes != 1 {
			t.Fatalf("default ingest lanes: %d", cfg.IngestLanes)
		}
		t.Setenv("KLAXON_INGEST_LANES", "8")
		env, err := parseConfig("serve", nil, io.Discard, false, nil)
		if err != nil || env.IngestLanes != 8 {
			t.Fatalf("KLAXON_INGEST_LANES=8: %v %v", env, err)
		}
		for _, bad := range []string{"0", "65"} {
			if _, err := parseConfig("serve", []string{"--ingest-lanes", bad}, io.Discard, false, nil); err == nil {
				t.Fatalf("%s ingest lanes were taken", bad)
			}
		}
	})
	t.Run("rate limit", func(t *testing.T) {
		t.Setenv("KLAXON_SMS_RATE_LIMIT", "0")
		off, err := parseConfig("serve", nil, io.Discard, false, nil)
		if err != nil || off.Channels.rateLimits()[db.ContactSMS] != 0 {
			t.Fatalf("KLAXON_SMS_RATE_LIMIT=0: %v %v", off, err)
		}
		five, err := parseConfig("serve", []string{"--sms-rate-limit", "5m"}, io.Discard, false, nil)
		if err != nil || five.Channels.rateLimits()[db.ContactVoice] != 5*time.Minute {
			t.Fatalf("--sms-rate-limit 5m: %v %v", five, err)
		}
	})
	for name, env := range map[string][2]string{
		"bad duration":   {"KLAXON_SHUTDOWN_TIMEOUT", "soon"},
		"bad public url": {"KLAXON_PUBLIC_URL", "localhost"},
		"bad body limit": {"KLAXON_MAX_BODY_BYTES", "-1"},
		"bad log level":  {"KLAXON_LOG_LEVEL", "loud"},
		"bad rate limit": {"KLAXON_SMS_RATE_LIMIT", "-1m"},
		"bad depth":      {"KLAXON_GRAPHQL_MAX_DEPTH", "0"},
		"bad body size":  {"KLAXON_GRAPHQL_MAX_BODY_BYTES", "-5"},
		"bad switch":     {"KLAXON_GRAPHQL_INTROSPECTION", "maybe"},
		"no timeout":     {"KLAXON_SHUTDOWN_TIMEOUT", "0s"},
		"tiny lease":     {"KLAXON_ENGINE_JOB_LEASE", "10ms"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(env[0], env[1])
			if _, err := parseConfig("serve", nil, io.Discard, false, nil); err == nil {
				t.Fatalf("%s=%s accepted", env[0], env[1])
			}
		})
	}
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
