package runner

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
)

// recorder turns engine findings and progress into RecordFindings and
// ProgressScan commands: findings in batches of FindingBatchSize (and
// whatever is pending every ProgressInterval), progress at most every
// ProgressInterval. Writes are serialised. A write refused for the fence
// or the scan's state marks the claim as lost and stops the run.
type recorder struct {
	r *run

	mu        sync.Mutex
	batch     []domain.Finding
	seen      map[string]struct{} // fingerprints of this attempt
	phase     string
	pct       int
	dirty     bool // progress changed since the last write
	isStarted bool
	count     int
	dropped   int
	err       error
	lostClaim bool

	writeMu   sync.Mutex // serialises the recorder's commands
	lastWrite time.Time  // of the last ProgressScan, under writeMu
}

func newRecorder(r *run) *recorder {
	return &recorder{r: r, seen: map[string]struct{}{}}
}

// started allows writes: the scan is running.
func (c *recorder) started() {
	c.mu.Lock()
	c.isStarted = true
	c.mu.Unlock()
}

// progress sets the phase and percentage that the next write reports.
func (c *recorder) progress(phase string, pct int) {
	c.mu.Lock()
	c.phase, c.pct, c.dirty = phase, pct, true
	c.mu.Unlock()
}

func (c *recorder) recorded() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

func (c *recorder) lost() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lostClaim
}

// add queues one finding; it writes the batch when it is full. It drops a
// finding the domain would refuse (invalid, or a fingerprint already seen
// in this attempt) rather than fail the whole batch, and logs its rule and
// file only.
func (c *recorder) add(ctx context.Context, f engine.Finding) error {
	df := toDomain(c.r.d.IDs(), f)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	if _, dup := c.seen[df.Fingerprint]; dup {
		c.dropped++
		c.mu.Unlock()
		return nil
	}
	if err := df.Validate(); err != nil {
		c.dropped++
		c.mu.Unlock()
		c.r.log.Warn("dropping an invalid finding", "rule_id", f.RuleID, "file", f.File, "error", err)
		return nil
	}
	c.seen[df.Fingerprint] = struct{}{}
	c.batch = append(c.batch, df)
	full := len(c.batch) >= FindingBatchSize
	c.mu.Unlock()
	if full {
		return c.flush(ctx)
	}
	return nil
}

// flush writes the pending findings.
func (c *recorder) flush(ctx context.Context) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.mu.Lock()
	batch := c.batch
	c.batch = nil
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return err
	}
	for len(batch) > 0 {
		n := min(len(batch), FindingBatchSize, commands.MaxFindingsPerBatch)
		_, err := c.r.d.Handlers.RecordFindings.Handle(ctx, commands.RecordFindings{ScanID: c.r.scan.ID, Fence: c.r.fence, Findings: batch[:n]})
		if err != nil {
			return c.failed(err)
		}
		c.mu.Lock()
		c.count += n
		c.mu.Unlock()
		batch = batch[n:]
	}
	return nil
}

// flushProgress writes the progress if it changed and ProgressInterval
// passed since the last write; with final it waits for the interval to
// pass instead of skipping the write.
func (c *recorder) flushProgress(ctx context.Context, final bool) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if wait := ProgressInterval - time.Since(c.lastWrite); wait > 0 {
		if !final {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	c.mu.Lock()
	phase, pct, dirty, ok := c.phase, c.pct, c.dirty, c.isStarted && c.err == nil
	c.dirty = false
	c.mu.Unlock()
	if !dirty || !ok {
		return
	}
	c.lastWrite = time.Now()
	if _, err := c.r.d.Handlers.ProgressScan.Handle(ctx, commands.ProgressScan{ScanID: c.r.scan.ID, Fence: c.r.fence, Phase: phase, Progress: pct}); err != nil {
		_ = c.failed(err)
	}
}

// failed records a write error; a conflict means the claim is lost.
func (c *recorder) failed(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	if errors.Is(err, domain.ErrConflict) {
		c.lostClaim = true
		c.r.stop(ErrLeaseLost)
	}
	return err
}

// loop writes progress and pending findings every ProgressInterval until
// ctx ends.
func (c *recorder) loop(ctx context.Context) {
	t := time.NewTicker(ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		ok := c.isStarted
		c.mu.Unlock()
		if !ok {
			continue
		}
		c.flushProgress(ctx, false)
		if err := c.flush(ctx); err != nil && ctx.Err() == nil {
			c.r.log.Warn("recording findings failed", "error", err)
		}
	}
}
