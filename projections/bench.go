package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/vega-sec/vega/eventstore"
)

// BenchRebuild rebuilds the named projection once (see Rebuild) and returns
// how many events it applied and how long it took, for the bench harness's
// rebuild-rate figure (events/s = events / elapsed). The runner need not
// be running.
func BenchRebuild(ctx context.Context, r *Runner, name string) (events int, elapsed time.Duration, err error) {
	start := time.Now()
	n, err := r.rebuild(ctx, name)
	return n, time.Since(start), err
}

// BenchRebuildRatio measures, in one run, the rebuild rate of the named
// projection (BenchRebuild) beside its ceiling: the store's raw read rate
// of the same events in global order (ReadAll with the projection's
// filters and the rebuild's page size, events neither decoded nor
// applied). It reads once to warm the caches, then reads, rebuilds and
// reads again, and returns the rebuild's events per second and the faster
// read's. The figure projection_rebuild is rebuildPerSec / readPerSec
// (target >= 0.5). It returns ErrUnknownProjection for an unknown name; an
// empty store is an error (there is nothing to measure).
func BenchRebuildRatio(ctx context.Context, r *Runner, name string) (rebuildPerSec, readPerSec float64, err error) {
	w, ok := r.byName[name]
	if !ok {
		return 0, 0, fmt.Errorf("bench rebuild %q: %w", name, ErrUnknownProjection)
	}
	read := func() (float64, error) {
		start := time.Now()
		n, err := r.readThrough(ctx, w.p)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, fmt.Errorf("bench rebuild %s: no events to read", name)
		}
		return float64(n) / time.Since(start).Seconds(), nil
	}
	if _, err := read(); err != nil {
		return 0, 0, err
	}
	before, err := read()
	if err != nil {
		return 0, 0, err
	}
	n, d, err := BenchRebuild(ctx, r, name)
	if err != nil {
		return 0, 0, fmt.Errorf("bench rebuild %s: %w", name, err)
	}
	after, err := read()
	if err != nil {
		return 0, 0, err
	}
	return float64(n) / d.Seconds(), max(before, after), nil
}

// readThrough reads every event p reads, as a rebuild does, and returns
// their number.
func (r *Runner) readThrough(ctx context.Context, p *projection) (int, error) {
	var (
		pos eventstore.Position
		n   int
	)
	for {
		page, next, err := r.cfg.Store.ReadAll(ctx, r.query(p, pos, r.cfg.CatchUpPageSize))
		if err != nil {
			return n, fmt.Errorf("read after %s: %w", pos, err)
		}
		n += len(page)
		pos = next
		if len(page) < r.cfg.CatchUpPageSize {
			return n, nil
		}
	}
}
