// Command vega is Vega's one binary: one subcommand per process role (see
// DESIGN.md) plus maintenance. It is the only place that wires concrete
// types together.
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

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// runFunc runs a subcommand with the configuration and the arguments left
// after the flags.
type runFunc func(ctx context.Context, cfg Config, args []string, stdout, stderr io.Writer) error

type command struct {
	name, summary string
	run           runFunc
	// flags, when set, defines the subcommand's own flags on the same flag
	// set as the VEGA_* ones (so they may come first) and returns the run
	// function that reads them.
	flags func(fs *flag.FlagSet) runFunc
}

func subcommands() []command {
	return []command{
		{name: "api", summary: "serve the HTTP API and the dashboard", run: runAPI},
		{name: "audit", summary: "audit verify [-stream S]: check the hash chain of every stream (or one)", run: runAudit},
		{name: "cleanup", summary: "cleanup [-apply] [-grace D]: list (or remove) blobs and working directories nothing references", flags: cleanupFlags},
		{name: "deadletters", summary: "deadletters list|replay: show and re-drive messages the bus consumers gave up on", run: runDeadLetters},
		{name: "dev", summary: "run the whole system in one process on the embedded defaults", run: runDev},
		{name: "llm-proxy", summary: "serve the OpenAI-compatible LLM proxy that holds the provider key and enforces scan budgets", run: runLLMProxy},
		{name: "migrate", summary: "apply the database schema migrations (PostgreSQL; SQLite migrates on open)", run: runMigrate},
		{name: "projections", summary: "projections status | rebuild [name…]: read-model positions and lag; rebuild aside and swap", run: runProjections},
		{name: "runner", summary: "runner --scan ID [--fence N]: run one scan and exit (launched by a worker)", flags: runnerFlags},
		{name: "version", summary: "print the version", run: runVersion},
		{name: "worker", summary: "dispatch scans to runners, reap lost ones, capture git snapshots, classify findings", run: runWorker},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "vega:", err)
		}
		os.Exit(exitCode(err))
	}
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if errors.Is(err, errChainBroken) {
		return 3
	}
	return 1
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return usageError{"no subcommand"}
		}
		return nil
	}
	for _, c := range subcommands() {
		if c.name != args[0] {
			continue
		}
		fs := flag.NewFlagSet("vega "+c.name, flag.ContinueOnError)
		fs.SetOutput(stderr)
		if c.flags != nil {
			c.run = c.flags(fs)
		}
		cfg, err := loadConfig(fs, args[1:], getenv)
		if err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("%s: configuration: %w", c.name, err)
		}
		return c.run(ctx, cfg, fs.Args(), stdout, stderr)
	}
	usage(stderr)
	return usageError{fmt.Sprintf("unknown subcommand %q", args[0])}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: vega <subcommand> [flags]")
	fmt.Fprintln(w)
	for _, c := range subcommands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every flag is also a VEGA_* environment variable; see docs/configuration.md or `vega <subcommand> -h`.")
}

func runVersion(_ context.Context, _ Config, _ []string, stdout, _ io.Writer) error {
	_, err := fmt.Fprintf(stdout, "vega %s\n", buildVersion())
	return err
}

// buildVersion is the -ldflags version, else the VCS revision, else "dev".
func buildVersion() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v = "dev-" + s.Value[:12]
			}
		}
	}
	return v
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
