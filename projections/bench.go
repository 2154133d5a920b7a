package projections

import (
	"context"
	"time"
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
