package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/vega-sec/vega/projections"
)

// runProjections implements `vega projections status` and `vega projections
// rebuild [name…]`. A rebuild builds the read model aside from position zero
// and swaps it in while the API keeps serving the old one.
func runProjections(ctx context.Context, cfg Config, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: vega projections status | vega projections rebuild [name…]"
	if len(args) == 0 || (args[0] != "status" && args[0] != "rebuild") {
		return usageError{usage}
	}
	log := newLogger(cfg, stderr)
	sys, err := openSystem(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer sys.close()
	r, err := projections.NewRunner(ctx, projections.Config{DB: sys.writeDB, Dialect: sys.dialect, Store: sys.store, Registry: sys.codec, Logger: log})
	if err != nil {
		return err
	}
	if args[0] == "rebuild" {
		names := args[1:]
		if len(names) == 0 {
			names = projections.Names()
		}
		for _, n := range names {
			fmt.Fprintf(stdout, "rebuilding %s…\n", n)
			if err := r.Rebuild(ctx, n); err != nil {
				return fmt.Errorf("rebuild %s: %w", n, err)
			}
			fmt.Fprintf(stdout, "rebuilt %s\n", n)
		}
		return nil
	}
	st, err := r.Status(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PROJECTION\tSTATE\tPOSITION\tHEAD\tLAG EVENTS\tLAG SECONDS\tERROR")
	for _, s := range st {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%.1f\t%s\n", s.Name, s.State, s.Position, s.Head, s.LagEvents, s.LagSeconds, s.Error)
	}
	return w.Flush()
}
