package llm

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
)

// Usage batching: settled calls accumulate per (scan, model) and are
// recorded as one LLMUsageRecorded each when FlushEveryCalls calls are
// pending or FlushInterval has passed, whichever comes first.
const (
	FlushEveryCalls = 32
	FlushInterval   = 200 * time.Millisecond
)

// ProxyActor is the principal the proxy's commands run as.
const ProxyActor = "system:llm-proxy"

type usageKey struct{ scan, model string }

// usageRecorder batches usage into RecordLLMUsage commands. It is safe for
// concurrent use.
type usageRecorder struct {
	record commands.Handler[commands.RecordLLMUsage, commands.ScanResult]
	log    *slog.Logger

	mu      sync.Mutex
	pending map[usageKey]domain.LLMUsage
	calls   int
	kick    chan struct{}
	flushMu sync.Mutex // one flush at a time
}

func newUsageRecorder(record commands.Handler[commands.RecordLLMUsage, commands.ScanResult], log *slog.Logger) *usageRecorder {
	return &usageRecorder{record: record, log: log, pending: map[usageKey]domain.LLMUsage{}, kick: make(chan struct{}, 1)}
}

// add queues one settled call's usage.
func (r *usageRecorder) add(scan, model string, u domain.LLMUsage) {
	r.mu.Lock()
	k := usageKey{scan, model}
	r.pending[k] = r.pending[k].Add(u)
	r.calls++
	full := r.calls >= FlushEveryCalls
	r.mu.Unlock()
	if full {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// run flushes on every kick and every FlushInterval until ctx ends, then
// flushes what is left with a context that outlives ctx by at most
// finalFlushTimeout.
func (r *usageRecorder) run(ctx context.Context) {
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
			r.flush(fctx, "")
			cancel()
			return
		case <-t.C:
		case <-r.kick:
		}
		r.flush(ctx, "")
	}
}

// finalFlushTimeout bounds the flush at shutdown.
const finalFlushTimeout = 5 * time.Second

// flush records the pending usage of scan (every scan when scan is ""). A
// store failure puts the usage back for the next flush; a scan that cannot
// take usage (never claimed, unknown) is logged and dropped. It returns the
// first error.
func (r *usageRecorder) flush(ctx context.Context, scan string) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.mu.Lock()
	batch := map[usageKey]domain.LLMUsage{}
	for k, u := range r.pending {
		if scan == "" || k.scan == scan {
			batch[k] = u
			delete(r.pending, k)
		}
	}
	if scan == "" {
		r.calls = 0
	}
	r.mu.Unlock()
	ctx = commands.WithRequest(ctx, commands.Request{Actor: ProxyActor})
	var first error
	for k, u := range batch {
		_, err := r.record.Handle(ctx, commands.RecordLLMUsage{ScanID: k.scan, Model: k.model, Usage: u})
		if err == nil {
			continue
		}
		if first == nil {
			first = err
		}
		if errors.Is(err, domain.ErrConflict) || errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrInvalidArgument) {
			r.log.Error("llm proxy: usage dropped", "scan_id", k.scan, "model", k.model, "error", err)
			continue
		}
		r.log.Warn("llm proxy: usage not recorded, will retry", "scan_id", k.scan, "error", err)
		r.mu.Lock()
		r.pending[k] = r.pending[k].Add(u)
		r.mu.Unlock()
	}
	return first
}
