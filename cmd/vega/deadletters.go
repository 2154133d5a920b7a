package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	vnats "github.com/vega-sec/vega/adapters/nats"
)

// runDeadLetters implements `vega deadletters list|replay [-id ID] [-all]`.
func runDeadLetters(ctx context.Context, cfg Config, args []string, stdout, stderr io.Writer) error {
	const usage = "usage: vega deadletters list [-limit N] | vega deadletters replay (-id ID | -all)"
	if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
		return usageError{usage}
	}
	fs := flag.NewFlagSet("vega deadletters "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	limit := fs.Int("limit", 100, "most messages to list or replay")
	id := fs.String("id", "", "replay this dead letter")
	all := fs.Bool("all", false, "replay every dead letter (up to -limit)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	sys, err := openSystem(ctx, cfg, newLogger(cfg, stderr), true)
	if err != nil {
		return err
	}
	defer sys.close()
	q := vnats.NewDeadLetterQueue(sys.js, cfg.NATSStream, sys.dead)
	switch args[0] {
	case "list":
		dls, err := q.List(ctx, *limit)
		if err != nil {
			return err
		}
		if len(dls) == 0 {
			fmt.Fprintln(stdout, "no dead letters")
			return nil
		}
		fmt.Fprintf(stdout, "%-26s  %-28s  %-8s  %-10s  %s\n", "ID", "CONSUMER", "SEQ", "DELIVERIES", "ERROR")
		for _, dl := range dls {
			fmt.Fprintf(stdout, "%-26s  %-28s  %-8d  %-10d  %s\n", dl.ID, dl.Consumer, dl.StreamSeq, dl.Deliveries, oneLine(dl.Error))
		}
		return nil
	default:
		switch {
		case *all:
			n, err := q.ReplayAll(ctx, *limit)
			fmt.Fprintf(stdout, "replayed %d dead letters\n", n)
			return err
		case *id != "":
			dl, err := sys.dead.Get(ctx, *id)
			if err != nil {
				return err
			}
			if err := q.Replay(ctx, dl); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "replayed %s to %s\n", dl.ID, dl.Consumer)
			return nil
		}
		return usageError{usage}
	}
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
