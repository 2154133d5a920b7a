package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// indexTypes are the scan events the index follows: those that change a
// scan's state, lease or cancel flag.
var indexTypes = []string{
	domain.ScanRequested{}.EventName(), domain.ScanClaimed{}.EventName(), domain.ScanLeaseRenewed{}.EventName(),
	domain.ScanRequeued{}.EventName(), domain.ScanStarted{}.EventName(), domain.ScanCancelRequested{}.EventName(),
	domain.ScanCancelled{}.EventName(), domain.ScanCompleted{}.EventName(), domain.ScanFailed{}.EventName(),
	domain.ScanTimedOut{}.EventName(),
}

// entry is what the index knows of a non-terminal scan.
type entry struct {
	state      domain.ScanState
	fence      uint64
	leaseUntil time.Time
	claimedAt  time.Time
}

// index holds every non-terminal scan, built from the store's global order.
// It is safe for concurrent use.
type index struct {
	codec *eventstore.Registry
	left  func(scanID string, fence uint64) // a scan left attempt fence (NoFence: it ended)

	mu    sync.Mutex
	scans map[string]*entry
}

func newIndex(codec *eventstore.Registry, left func(string, uint64)) *index {
	return &index{codec: codec, left: left, scans: map[string]*entry{}}
}

// apply folds a page of recorded scan events.
func (x *index) apply(page []eventstore.RecordedEvent) error {
	for _, rec := range page {
		e, err := commands.DecodeEvent(x.codec, rec)
		if err != nil {
			return err
		}
		id := rec.StreamID.ID()
		x.mu.Lock()
		en := x.scans[id]
		if en == nil {
			en = &entry{}
		}
		var left bool
		var leftFence uint64
		switch e := e.(type) {
		case *domain.ScanRequested:
			x.scans[id] = &entry{state: domain.ScanStateRequested}
		case *domain.ScanClaimed:
			en.state, en.fence, en.leaseUntil, en.claimedAt = domain.ScanStateClaimed, e.Fence, e.LeaseUntil, e.At
			x.scans[id] = en
		case *domain.ScanLeaseRenewed:
			if e.Fence == en.fence {
				en.leaseUntil = e.LeaseUntil
			}
		case *domain.ScanStarted:
			en.state = domain.ScanStateRunning
		case *domain.ScanRequeued:
			en.state, en.leaseUntil = domain.ScanStateRequested, time.Time{}
			left, leftFence = true, e.Fence
		case *domain.ScanCancelled, *domain.ScanCompleted, *domain.ScanFailed, *domain.ScanTimedOut:
			delete(x.scans, id)
			left, leftFence = true, domain.NoFence
		}
		x.mu.Unlock()
		if left {
			x.left(id, leftFence)
		}
	}
	return nil
}

// due returns the claimed or running scans whose lease ended by now, and
// those past timeout since their claim.
func (x *index) due(now time.Time, timeout time.Duration) (expired, timedOut []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, e := range x.scans {
		if e.state != domain.ScanStateClaimed && e.state != domain.ScanStateRunning {
			continue
		}
		switch {
		case now.After(e.claimedAt.Add(timeout)):
			timedOut = append(timedOut, id)
		case !now.Before(e.leaseUntil):
			expired = append(expired, id)
		}
	}
	return expired, timedOut
}

// followIndex keeps the index up to date until ctx ends, restarting after
// a read error.
func (w *Worker) followIndex(ctx context.Context) {
	q := eventstore.Query{Categories: []string{commands.CategoryScan}, Types: indexTypes}
	for {
		err := eventstore.Follow(ctx, w.d.Store, q, func(_ context.Context, page []eventstore.RecordedEvent, next eventstore.Position) error {
			if err := w.index.apply(page); err != nil {
				return err
			}
			q.After = next
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("scan index: following the store failed; retrying", "error", err)
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// reapLoop runs Reap every ReapInterval until ctx ends.
func (w *Worker) reapLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.ReapInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.Reap(ctx)
	}
}

// Reap ends, once, what lost runners left behind at this moment (see the
// package documentation); Run calls it every ReapInterval. It returns the
// number of scans it changed.
func (w *Worker) Reap(ctx context.Context) int {
	ctx = commands.WithRequest(ctx, commands.Request{Actor: Actor})
	expired, timedOut := w.index.due(time.Now(), w.cfg.ScanTimeout+w.cfg.TimeoutGrace)
	changed := 0
	for _, id := range timedOut {
		res, err := w.d.Handlers.TimeOutScan.Handle(ctx, commands.TimeOutScan{ScanID: id, Fence: domain.NoFence,
			Reason: fmt.Sprintf("scan timeout of %s passed and its runner did not end the scan", w.cfg.ScanTimeout)})
		if w.reaped(ctx, id, "timed_out", res.Appended, err) {
			changed++
		}
	}
	for _, id := range expired {
		res, err := w.d.Handlers.ReapScan.Handle(ctx, commands.ReapScan{ScanID: id})
		if w.reaped(ctx, id, string(res.Action), res.Appended, err) {
			changed++
		}
	}
	return changed
}

// reaped logs a reaper decision and stops this worker's runner of the scan,
// if any is left. It reports whether the scan changed.
func (w *Worker) reaped(ctx context.Context, scanID, action string, appended int, err error) bool {
	switch {
	case err != nil && (errors.Is(err, domain.ErrConflict) || errors.Is(err, eventstore.ErrConcurrency) || errors.Is(err, domain.ErrNotFound)):
		w.log.Debug("reaper: scan moved on", "scan_id", scanID, "reason", err)
		return false
	case err != nil:
		w.log.Warn("reaper", "scan_id", scanID, "error", err)
		return false
	case appended == 0:
		return false
	}
	w.log.Info("reaper: scan reaped", "scan_id", scanID, "action", action)
	w.mu.Lock()
	s, ok := w.active[scanID]
	w.mu.Unlock()
	if ok && s.jobID != "" {
		if err := w.d.Launcher.Stop(ctx, s.jobID); err != nil {
			w.log.Warn("stop the runner of a reaped scan", "scan_id", scanID, "job_id", s.jobID, "error", err)
		}
	}
	return true
}
