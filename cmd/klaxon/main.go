// Command klaxon runs the Klaxon alert-management server and its
// administrative tasks:
//
//	klaxon serve          run the server (migrates first)
//	klaxon migrate        apply database migrations and exit
//	klaxon user create    add a user
//
// Every flag has an environment variable of the same meaning
// (--database-url and KLAXON_DATABASE_URL); a flag wins over the variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// defaultGCPercent trades memory for CPU: a webhook burst allocates
// mostly short-lived garbage, and collecting half as often left more of
// two cores for ingest and fan-out (docs/PERFORMANCE.md) while the
// resident size under load stayed near 100 MiB. GOGC, when set, wins.
const defaultGCPercent = 200

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "klaxon:", err)
		os.Exit(1)
	}
}

const usage = `usage: klaxon <command> [flags]

commands:
  serve         run the server
  migrate       apply database migrations and exit
  user create   add a user (--email, --name, --role, --password)
  keys rotate   replace the stored session signing key; sessions signed
                with the old one stay valid until they expire

Run "klaxon <command> -h" for the command's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	switch {
	case args[0] == "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case args[0] == "migrate":
		return migrate(ctx, args[1:], stdout, stderr)
	case args[0] == "user" && len(args) > 1 && args[1] == "create":
		return createUser(ctx, args[2:], stdout, stderr)
	case args[0] == "keys" && len(args) > 1 && args[1] == "rotate":
		return rotateKeys(ctx, args[2:], stdout, stderr)
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
