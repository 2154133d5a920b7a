package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/vega-sec/vega/adapters/engine/builtin"
	"github.com/vega-sec/vega/adapters/llm"
	"github.com/vega-sec/vega/internal/bench"
)

// builtinTreeMB is the size of the generated source tree (issue 6: 200 MB).
const builtinTreeMB = 200

// engineFigures measures the builtin engine beside ripgrep running the same
// patterns over the same tree, and its peak memory.
func engineFigures(ctx context.Context, progress func(bench.Line)) ([]bench.Line, error) {
	var notes []string
	if _, err := exec.LookPath("rg"); err != nil && os.Geteuid() == 0 {
		// The ceiling needs ripgrep; install Debian's package when we can.
		cmd := exec.CommandContext(ctx, "sh", "-c", "apt-get install -y -qq ripgrep >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq ripgrep >/dev/null 2>&1)")
		if err := cmd.Run(); err != nil {
			notes = append(notes, "installing ripgrep failed: "+err.Error())
		}
	}
	dir, err := os.MkdirTemp("", "vegabench-tree-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	r, err := builtin.BenchScan(ctx, dir, builtinTreeMB)
	if err != nil {
		return nil, err
	}
	note := fmt.Sprintf("%d files, %.0f MB; ripgrep ran %d of %d patterns. %s", r.Files, float64(r.Bytes)/1e6, r.RipgrepPatterns, r.TotalPatterns, r.Note)
	for _, n := range notes {
		note += " " + n
	}
	l := bench.Line{Store: "-", Figure: "builtin_scan", Value: r.MBPerSec, Unit: "MB/s", Ceiling: r.RipgrepMBPerSec, Target: ">=0.5", Note: note}
	if r.RipgrepMBPerSec == 0 {
		l.Note = "no ripgrep ceiling: rg is not installed (install Debian's ripgrep). " + note
	}
	m := bench.Line{Store: "-", Figure: "builtin_scan_peak_mib", Value: r.PeakMiB, Unit: "MiB", Target: "<=256"}
	progress(l)
	progress(m)
	return []bench.Line{l, m}, nil
}

// proxyRequests is the sample of proxy_overhead.
const proxyRequests = 500

// proxyFigures measures what the LLM proxy adds per request beside direct
// calls to the same fake provider.
func proxyFigures(ctx context.Context, progress func(bench.Line)) ([]bench.Line, error) {
	p50, p99, d50, d99, err := llm.BenchProxyOverhead(ctx, proxyRequests)
	if err != nil {
		return nil, err
	}
	ms := func(d interface{ Microseconds() int64 }) float64 { return float64(d.Microseconds()) / 1000 }
	over50, over99 := max(0, ms(p50)-ms(d50)), max(0, ms(p99)-ms(d99))
	note := fmt.Sprintf("%d requests through the proxy (p50 %.2f ms, p99 %.2f ms) beside direct calls to the fake provider (p50 %.2f ms, p99 %.2f ms)",
		proxyRequests, ms(p50), ms(p99), ms(d50), ms(d99))
	a := bench.Line{Store: "-", Figure: "proxy_overhead_p50", Value: over50, Unit: "ms"}
	b := bench.Line{Store: "-", Figure: "proxy_overhead_p99", Value: over99, Unit: "ms", Target: "<=5", Note: note}
	progress(a)
	progress(b)
	return []bench.Line{a, b}, nil
}
