package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vega-sec/vega/adapters/web"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/eventstore/sqlite"
	"github.com/vega-sec/vega/internal/bench"
	"github.com/vega-sec/vega/projections"
	"github.com/vega-sec/vega/projections/projectiontest"
	"github.com/vega-sec/vega/queries"
)

// Read-model figures: how fast projections rebuild beside the store's own
// global-order read, and the dashboard's findings page at 100,000 findings
// in one repository (issue 8: p99 ≤ 200 ms server time).
const (
	rebuildFindings   = 20_000
	dashboardFindings = 100_000
	dashboardRequests = 200
)

func readModelFigures(ctx context.Context, progress func(bench.Line)) ([]bench.Line, error) {
	var lines []bench.Line
	add := func(l bench.Line) {
		l.Store = "sqlite"
		lines = append(lines, l)
		progress(l)
	}
	if err := withSeeded(ctx, rebuildFindings, func(r *projections.Runner, _ *sqlite.Store, _ *sql.DB, _ *commands.Handlers) error {
		rebuild, read, err := projections.BenchRebuildRatio(ctx, r, "findings")
		if err != nil {
			return err
		}
		add(bench.Line{Figure: "projection_rebuild", Value: rebuild, Unit: "events/s", Ceiling: read, Target: ">=0.5",
			Note: fmt.Sprintf("the findings projection rebuilt aside from position zero over a %d-finding scan, beside the store's global-order read of the same events", rebuildFindings)})
		return nil
	}); err != nil {
		return lines, fmt.Errorf("projection rebuild: %w", err)
	}
	err := withSeeded(ctx, dashboardFindings, func(r *projections.Runner, store *sqlite.Store, ro *sql.DB, h *commands.Handlers) error {
		q, err := queries.New(ro, projections.SQLite, store, queries.Options{})
		if err != nil {
			return err
		}
		const token = "vega_bench_dashboard_token_0123456789abcdef"
		dash, err := web.New(web.Deps{Commands: h, Queries: q, Events: store, Consistency: r}, web.Config{BootstrapToken: token})
		if err != nil {
			return err
		}
		p99, err := web.BenchFindingsPage(ctx, dash.Handler(), token, projectiontest.BigScanID, dashboardRequests)
		if err != nil {
			return err
		}
		add(bench.Line{Figure: "dashboard_findings_page_p99", Value: float64(p99.Microseconds()) / 1000, Unit: "ms", Target: "<=200",
			Note: fmt.Sprintf("%d scan pages (filters, group-by-rule, cursors up to 20 deep) rendered by the dashboard handler over a scan with %d findings", dashboardRequests, dashboardFindings)})
		return nil
	})
	if err != nil {
		return lines, fmt.Errorf("dashboard: %w", err)
	}
	return lines, nil
}

// withSeeded makes a SQLite store with a scan of n findings, projects it,
// and hands the caught-up runner to fn.
func withSeeded(ctx context.Context, n int, fn func(*projections.Runner, *sqlite.Store, *sql.DB, *commands.Handlers) error) error {
	dir, err := os.MkdirTemp("", "vegabench-rm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "vega.db")
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer store.Close()
	reg, err := commands.NewRegistry()
	if err != nil {
		return err
	}
	last, err := projectiontest.SeedBig(ctx, store, reg, projectiontest.BigScan{Findings: n})
	if err != nil {
		return err
	}
	r, err := projections.NewRunner(ctx, projections.Config{DB: store.DB(), Dialect: projections.SQLite, Store: store, Registry: reg})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	defer func() {
		cancel()
		<-done
	}()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer wcancel()
	if err := r.WaitFor(wctx, last); err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	ro, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		return err
	}
	defer ro.Close()
	h, err := commands.New(store, commands.Options{})
	if err != nil {
		return err
	}
	if err := fn(r, store, ro, h); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
