// Command klaxon-bench measures webhook ingest of a running Klaxon server
// and checks that nothing it accepted was lost or doubled.
//
// It signs in over GraphQL, creates a fresh DETECTIFY integration and, for
// a set duration, has a number of concurrent senders post Detectify
// findings to its webhook: new findings, repeats of open ones and closes
// (severity "low"). Then it reads the integration's inbound log and alerts
// back and compares them with every 2xx answer. With -baseline it runs the
// same load (senders, duration and mix of new, repeated and closing
// findings) against cmd/klaxon-baseline, which only stores each body, and
// prints both side by side.
//
// Two more modes measure Klaxon at realistic data sizes: `klaxon-bench
// fill` fills an empty database with a year of seeded history (fill.go),
// and `klaxon-bench queries` times the list and detail queries people run
// against a server over such a database (queries.go).
//
// It exits 1 when the check fails or the run cannot be done, 2 after -h.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "klaxon-bench:", err)
		os.Exit(1)
	}
}

type config struct {
	URL string
	// Also are more instances sharing URL's database.
	Also        []string
	Email       string
	Password    string
	Concurrency int
	Duration    time.Duration
	Mix         mix
	Baseline    string
	JSON        bool
	Timeout     time.Duration
}

func parseConfig(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := flag.NewFlagSet("klaxon-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: klaxon-bench [flags]\n       klaxon-bench fill -h\n       klaxon-bench queries -h\n\nDrives Detectify webhooks against a running Klaxon server, then checks\nthat every accepted message is stored once.\n\nflags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.URL, "url", "http://localhost:8080", "base URL of the Klaxon server")
	also := fs.String("also", "", "comma-separated base URLs of more Klaxon instances on the same database; senders take -url and these in turn")
	fs.StringVar(&cfg.Email, "email", os.Getenv("KLAXON_ADMIN_EMAIL"), "admin email to sign in with (KLAXON_ADMIN_EMAIL)")
	fs.StringVar(&cfg.Password, "password", os.Getenv("KLAXON_ADMIN_PASSWORD"), "admin password (KLAXON_ADMIN_PASSWORD)")
	fs.IntVar(&cfg.Concurrency, "c", 32, "concurrent senders, each with its own connection")
	fs.DurationVar(&cfg.Duration, "d", 20*time.Second, "how long to send; requests in flight at the end still finish")
	fs.IntVar(&cfg.Mix.New, "new", 60, "percent of messages that are new findings (open an alert)")
	fs.IntVar(&cfg.Mix.Duplicate, "dup", 30, "percent that repeat an open finding (append)")
	fs.IntVar(&cfg.Mix.Close, "close", 10, "percent that close an open finding (severity low)")
	fs.StringVar(&cfg.Baseline, "baseline", "", "base URL of a klaxon-baseline server to run the same load against (same senders, duration and mix)")
	fs.BoolVar(&cfg.JSON, "json", false, "print the results as JSON")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "timeout of one request")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	for _, u := range strings.Split(*also, ",") {
		if u = strings.TrimSpace(u); u != "" {
			cfg.Also = append(cfg.Also, strings.TrimRight(u, "/"))
		}
	}
	switch {
	case cfg.Email == "" || cfg.Password == "":
		return nil, errors.New("an admin email and password are needed (-email, -password or KLAXON_ADMIN_EMAIL, KLAXON_ADMIN_PASSWORD)")
	case cfg.Concurrency < 1:
		return nil, errors.New("-c must be at least 1")
	case cfg.Duration <= 0:
		return nil, errors.New("-d must be positive")
	case cfg.Mix.New < 0 || cfg.Mix.Duplicate < 0 || cfg.Mix.Close < 0:
		return nil, errors.New("-new, -dup and -close must not be negative")
	case cfg.Mix.New == 0:
		// Repeats and closes need findings that were opened first.
		return nil, errors.New("-new must be positive")
	case cfg.Timeout <= 0:
		return nil, errors.New("-timeout must be positive")
	}
	return cfg, nil
}

// Report is everything a run prints.
type Report struct {
	Klaxon   Result  `json:"klaxon"`
	Check    *Check  `json:"check"`
	Baseline *Result `json:"baseline,omitempty"`
	// Ratio is Klaxon's accepted messages per second over the baseline's.
	Ratio float64 `json:"ratio,omitempty"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "fill":
			return runFill(ctx, args[1:], stdout, stderr)
		case "queries":
			return runQueries(ctx, args[1:], stdout, stderr)
		}
	}
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	client := newClient(cfg.Concurrency, cfg.Timeout)
	defer client.CloseIdleConnections()

	a := &api{base: cfg.URL, http: client}
	if err := a.login(ctx, cfg.Email, cfg.Password); err != nil {
		return err
	}
	integ, err := a.createIntegration(ctx, "klaxon-bench "+time.Now().UTC().Format(time.RFC3339Nano))
	if err != nil {
		return err
	}
	var targets []string
	for _, base := range append([]string{cfg.URL}, cfg.Also...) {
		target, err := webhookURL(base, integ.URL)
		if err != nil {
			return err
		}
		targets = append(targets, target)
	}
	log.Info("sending", "target", "klaxon", "instances", len(targets), "integration", integ.ID, "concurrency", cfg.Concurrency, "duration", cfg.Duration,
		"new", cfg.Mix.New, "dup", cfg.Mix.Duplicate, "close", cfg.Mix.Close)
	kl := &load{client: client, urls: targets, concurrency: cfg.Concurrency, duration: cfg.Duration, mix: cfg.Mix, klaxon: true, findings: newFindings()}
	out, err := kl.run(ctx)
	if err != nil {
		return err
	}
	rep := &Report{Klaxon: out.result("klaxon", cfg.Concurrency)}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	log.Info("checking the inbound log and alerts", "integration", integ.ID)
	rep.Check, err = verify(ctx, a, integ.ID, out, kl.findings.snapshot())
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}

	if cfg.Baseline != "" {
		target := strings.TrimRight(cfg.Baseline, "/")
		if !strings.Contains(target, "/webhooks/") {
			target += "/webhooks/klaxon-bench"
		}
		log.Info("sending", "target", "baseline", "url", target, "concurrency", cfg.Concurrency, "duration", cfg.Duration)
		bl := &load{client: client, urls: []string{target}, concurrency: cfg.Concurrency, duration: cfg.Duration, mix: cfg.Mix, findings: newFindings()}
		out, err := bl.run(ctx)
		if err != nil {
			return err
		}
		r := out.result("baseline", cfg.Concurrency)
		rep.Baseline = &r
		if r.PerSecond > 0 {
			rep.Ratio = rep.Klaxon.PerSecond / r.PerSecond
		}
	}

	if cfg.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	} else {
		printReport(stdout, rep)
	}
	if !rep.Check.OK {
		return fmt.Errorf("check failed: %d problems", len(rep.Check.Problems)+rep.Check.MoreProblems)
	}
	return nil
}

// newClient keeps one connection per sender alive across requests, so the
// run measures the server rather than TCP set-up.
func newClient(concurrency int, timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = concurrency + 4
	t.MaxIdleConnsPerHost = concurrency + 4
	t.MaxConnsPerHost = concurrency + 4
	return &http.Client{Transport: t, Timeout: timeout}
}

func printReport(w io.Writer, r *Report) {
	results := []Result{r.Klaxon}
	if r.Baseline != nil {
		results = append(results, *r.Baseline)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, f func(Result) string) {
		fmt.Fprint(tw, name+"\t")
		for _, res := range results {
			fmt.Fprint(tw, f(res)+"\t")
		}
		fmt.Fprintln(tw)
	}
	row("", func(r Result) string { return r.Target })
	row("concurrency", func(r Result) string { return fmt.Sprint(r.Concurrency) })
	row("seconds", func(r Result) string { return fmt.Sprintf("%.2f", r.Seconds) })
	row("requests", func(r Result) string { return fmt.Sprint(r.Requests) })
	row("2xx", func(r Result) string { return fmt.Sprint(r.OK) })
	row("non-2xx", func(r Result) string { return fmt.Sprint(r.Non2xx) })
	row("no answer", func(r Result) string { return fmt.Sprint(r.Failed) })
	row("2xx/s", func(r Result) string { return fmt.Sprintf("%.1f", r.PerSecond) })
	row("p50 ms", func(r Result) string { return fmt.Sprintf("%.2f", r.P50ms) })
	row("p95 ms", func(r Result) string { return fmt.Sprintf("%.2f", r.P95ms) })
	row("p99 ms", func(r Result) string { return fmt.Sprintf("%.2f", r.P99ms) })
	row("max ms", func(r Result) string { return fmt.Sprintf("%.2f", r.MaxMs) })
	row("mean body B", func(r Result) string { return fmt.Sprint(r.MeanBodyB) })
	tw.Flush()
	fmt.Fprintf(w, "\nklaxon mix: new %d, duplicate %d, close %d\n", r.Klaxon.ByKind["new"], r.Klaxon.ByKind["duplicate"], r.Klaxon.ByKind["close"])
	if r.Baseline != nil {
		fmt.Fprintf(w, "baseline mix: new %d, duplicate %d, close %d\n", r.Baseline.ByKind["new"], r.Baseline.ByKind["duplicate"], r.Baseline.ByKind["close"])
		fmt.Fprintf(w, "throughput klaxon/baseline: %.2f  (p99 %.2f ms vs %.2f ms)\n", r.Ratio, r.Klaxon.P99ms, r.Baseline.P99ms)
	}
	for _, res := range results {
		for _, e := range res.Errors {
			fmt.Fprintf(w, "%s error: %s\n", res.Target, e)
		}
	}
	c := r.Check
	verdict := "OK"
	if !c.OK {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "check %s: inbound log %d entries for %d answered 2xx (%d unanswered); alerts %d, open %d, expected open %d\n",
		verdict, c.InboundLog, c.Accepted, c.Unsure, c.Alerts, c.OpenAlerts, c.ExpectedOpen)
	for _, p := range c.Problems {
		fmt.Fprintln(w, "  "+p)
	}
	if c.MoreProblems > 0 {
		fmt.Fprintf(w, "  … and %d more\n", c.MoreProblems)
	}
}
