// Command vegabench prints Vega's benchmark table (`make bench`): every
// figure beside a ceiling measured in the same run on the same machine, in
// the line format of DESIGN.md, and records the table in docs/benchmarks.md.
// It measures; it does not judge: a MISS still exits 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vega-sec/vega/eventstore/postgres"

	"github.com/vega-sec/vega/eventstore/storebench"
	"github.com/vega-sec/vega/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "vegabench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	out := flag.String("out", "", "write the table to this markdown file")
	only := flag.String("only", "", "comma-separated sections to run (store-postgres, store-sqlite, bus-sqlite, bus-postgres, engine, proxy, api, readmodels); default all")
	pgURL := flag.String("pg", envOr("VEGA_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "PostgreSQL server")
	dur := flag.Duration("duration", storebench.DefaultConfig().Duration, "time per throughput figure")
	readEvents := flag.Int("read-events", storebench.DefaultConfig().ReadEvents, "events in the read_all figure")
	vegaBin := flag.String("vega", "bin/vega", "the vega binary the api figures run (make bench builds it)")
	figures := flag.String("figures", "", "comma-separated store figures to run (append_w8_b1, read_all, wake, …); default all")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	cfg := storebench.DefaultConfig()
	cfg.Duration, cfg.ReadEvents = *dur, *readEvents
	if *figures != "" {
		cfg.Figures = strings.Split(*figures, ",")
	}
	want := func(name string) bool {
		if *only == "" {
			return true
		}
		for _, s := range strings.Split(*only, ",") {
			if strings.TrimSpace(s) == name {
				return true
			}
		}
		return false
	}
	progress := func(l bench.Line) {
		fmt.Println(l.String())
		if l.Note != "" {
			fmt.Println("#   " + l.Note)
		}
	}
	var lines []bench.Line
	var notes []string
	started := time.Now()

	if want("store-postgres") {
		if err := pgReachable(ctx, *pgURL); err != nil {
			note := fmt.Sprintf("store=postgres skipped: PostgreSQL unreachable (%v)", err)
			fmt.Println("# " + note)
			notes = append(notes, note)
		} else {
			ls, err := storebench.Run(ctx, storebench.Postgres(*pgURL), cfg, progress)
			lines = append(lines, ls...)
			if err != nil {
				return fmt.Errorf("store postgres: %w", err)
			}
		}
	}
	if want("store-sqlite") {
		dir, err := os.MkdirTemp("", "vegabench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		ls, err := storebench.Run(ctx, storebench.SQLite(dir), cfg, progress)
		lines = append(lines, ls...)
		if err != nil {
			return fmt.Errorf("store sqlite: %w", err)
		}
	}
	natsURL := envOr("VEGA_TEST_NATS_URL", "nats://127.0.0.1:4222")
	if want("bus-sqlite") {
		ls, err := busSQLite(ctx, progress)
		lines = append(lines, ls...)
		if err != nil {
			return fmt.Errorf("bus sqlite: %w", err)
		}
	}
	if want("bus-postgres") {
		if err := pgReachable(ctx, *pgURL); err != nil {
			notes = append(notes, fmt.Sprintf("bus store=postgres skipped: PostgreSQL unreachable (%v)", err))
		} else {
			ls, err := busPostgres(ctx, *pgURL, natsURL, progress)
			lines = append(lines, ls...)
			if err != nil {
				note := fmt.Sprintf("bus store=postgres failed: %v", err)
				fmt.Println("# " + note)
				notes = append(notes, note)
			}
		}
	}
	if want("api") {
		ls, err := apiFigures(ctx, *vegaBin, progress)
		lines = append(lines, ls...)
		if err != nil {
			note := fmt.Sprintf("api failed: %v", err)
			fmt.Println("# " + note)
			notes = append(notes, note)
		}
	}
	for _, sec := range []struct {
		name string
		fn   func(context.Context, func(bench.Line)) ([]bench.Line, error)
	}{{"engine", engineFigures}, {"proxy", proxyFigures}, {"readmodels", readModelFigures}} {
		if !want(sec.name) {
			continue
		}
		ls, err := sec.fn(ctx, progress)
		lines = append(lines, ls...)
		if err != nil {
			note := fmt.Sprintf("%s failed: %v", sec.name, err)
			fmt.Println("# " + note)
			notes = append(notes, note)
		}
	}
	if *out != "" {
		return writeTable(*out, lines, notes, started)
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// benchSchema makes a migrated schema on the server and returns its URL and
// a function that drops it.
func benchSchema(ctx context.Context, serverURL, schema string) (string, func(), error) {
	admin, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", nil, err
	}
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close(ctx)
		return "", nil, err
	}
	drop := func() {
		_, _ = admin.Exec(context.WithoutCancel(ctx), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close(context.WithoutCancel(ctx))
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		drop()
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	pool, err := postgres.NewPool(ctx, u.String(), 2)
	if err != nil {
		drop()
		return "", nil, err
	}
	defer pool.Close()
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		drop()
		return "", nil, err
	}
	return u.String(), drop, nil
}

func pgReachable(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	return c.Close(ctx)
}

func writeTable(path string, lines []bench.Line, notes []string, started time.Time) error {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Written by `make bench` (cmd/vegabench); do not edit by hand. Each figure stands beside a\n")
	b.WriteString("ceiling measured in the same run on the same machine, because a shared 2-core machine makes\n")
	b.WriteString("absolute figures noisy; the ratio is what to watch. See docs/operations.md for what each\n")
	b.WriteString("figure measures.\n\n")
	fmt.Fprintf(&b, "Latest run: %s, %s/%s, %d CPUs, %s, took %s.\n\n", started.UTC().Format(time.RFC3339), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), runtime.Version(), time.Since(started).Round(time.Second))
	b.WriteString("```\n")
	for _, l := range lines {
		b.WriteString(l.String() + "\n")
	}
	b.WriteString("```\n")
	var noted []string
	for _, l := range lines {
		if l.Note != "" {
			noted = append(noted, fmt.Sprintf("- `%s` (%s): %s", l.Figure, l.Store, l.Note))
		}
	}
	for _, n := range notes {
		noted = append(noted, "- "+n)
	}
	if len(noted) > 0 {
		b.WriteString("\nNotes:\n\n" + strings.Join(noted, "\n") + "\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
