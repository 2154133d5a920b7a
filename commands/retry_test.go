package commands_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// interfering is a real store with a concurrent writer injected: before
// forwarding each of the first `remaining` appends to stream, it appends a
// valid event of its own there, as an LLM proxy would between a handler's
// load and its save.
type interfering struct {
	eventstore.Store
	stream    eventstore.StreamID
	mu        sync.Mutex
	remaining int
	appends   int
}

func (s *interfering) Append(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) (eventstore.AppendResult, error) {
	if stream == s.stream {
		s.mu.Lock()
		s.appends++
		inject := s.remaining > 0
		if inject {
			s.remaining--
		}
		s.mu.Unlock()
		if inject {
			reg, err := commands.NewRegistry()
			if err != nil {
				return eventstore.AppendResult{}, err
			}
			ev, err := commands.EncodeEvent(reg, ulid.Make().String(), domain.LLMUsageRecorded{Model: "m", Usage: domain.LLMUsage{Requests: 1}, At: t0},
				eventstore.Metadata{Actor: "llm-proxy"})
			if err != nil {
				return eventstore.AppendResult{}, err
			}
			if _, err := s.Store.Append(ctx, stream, eventstore.Any, ev); err != nil {
				return eventstore.AppendResult{}, err
			}
		}
	}
	return s.Store.Append(ctx, stream, expected, events...)
}

func (s *interfering) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appends
}

func TestRetryRecoversFromInjectedConflict(t *testing.T) {
	t.Parallel()
	base := newEnv(t, openSQLite(t))
	scan := base.scan()
	fence := base.running(scan)
	stream := eventstore.NewStreamID("scan", scan)

	store := &interfering{Store: base.store, stream: stream, remaining: 2}
	e := newEnv(t, store)
	res, err := e.h.ProgressScan.Handle(e.ctx, commands.ProgressScan{ScanID: scan, Fence: fence, Phase: "rules", Progress: 10})
	if err != nil {
		t.Fatalf("progress with two injected conflicts: %v", err)
	}
	if got := store.count(); got != 3 {
		t.Fatalf("%d appends by the handler, want 3 (two conflicts, then success)", got)
	}
	if res.Scan.Progress != 10 || res.Scan.LLMUsage.Requests != 2 {
		t.Fatalf("scan after retry: progress %d, LLM requests %d; the retry must fold the concurrent events", res.Scan.Progress, res.Scan.LLMUsage.Requests)
	}
	recs := e.events(stream)
	if got := types(recs[len(recs)-3:]); got != "LLMUsageRecorded,LLMUsageRecorded,ScanProgressed" {
		t.Fatalf("stream ends with %s", got)
	}
}

func TestRetryGivesUp(t *testing.T) {
	t.Parallel()
	base := newEnv(t, openSQLite(t))
	scan := base.scan()
	fence := base.running(scan)
	store := &interfering{Store: base.store, stream: eventstore.NewStreamID("scan", scan), remaining: 1 << 30}
	e := newEnv(t, store)
	_, err := e.h.ProgressScan.Handle(e.ctx, commands.ProgressScan{ScanID: scan, Fence: fence, Progress: 10})
	wantIs(t, err, eventstore.ErrConcurrency)
	if got := store.count(); got != commands.MaxAttempts {
		t.Fatalf("%d attempts, want MaxAttempts = %d", got, commands.MaxAttempts)
	}
	if got := commands.Outcome(err); got != commands.OutcomeConflict {
		t.Fatalf("outcome %s, want conflict", got)
	}
}

// barrier is a real store whose first n appends wait for each other, so n
// handlers that loaded the same version collide for real in the store.
type barrier struct {
	eventstore.Store
	n         int
	arrived   atomic.Int64
	release   chan struct{}
	conflicts atomic.Int64
}

func newBarrier(s eventstore.Store, n int) *barrier {
	return &barrier{Store: s, n: n, release: make(chan struct{})}
}

func (b *barrier) Append(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) (eventstore.AppendResult, error) {
	if k := b.arrived.Add(1); k <= int64(b.n) {
		if k == int64(b.n) {
			close(b.release)
		}
		select {
		case <-b.release:
		case <-ctx.Done():
			return eventstore.AppendResult{}, ctx.Err()
		}
	}
	res, err := b.Store.Append(ctx, stream, expected, events...)
	if errors.Is(err, eventstore.ErrConcurrency) {
		b.conflicts.Add(1)
	}
	return res, err
}

func TestRetryResolvesRacingWriters(t *testing.T) {
	t.Parallel()
	onStores(t, func(t *testing.T, open func(*testing.T) eventstore.Store) {
		base := newEnv(t, open(t))
		scan := base.scan()
		base.running(scan)
		before := len(base.events(eventstore.NewStreamID("scan", scan)))

		// MaxAttempts writers: each loses at most MaxAttempts-1 times, since
		// every loss means another writer's append landed.
		const writers = commands.MaxAttempts
		store := newBarrier(base.store, writers)
		e := newEnv(t, store)
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for range writers {
			wg.Go(func() {
				_, err := e.h.RecordLLMUsage.Handle(e.ctx, commands.RecordLLMUsage{ScanID: scan, Model: "m",
					Usage: domain.LLMUsage{InputTokens: 10, Requests: 1}})
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("racing writer: %v", err)
			}
		}
		if got := store.conflicts.Load(); got < writers-1 {
			t.Fatalf("%d conflicts seen, want at least %d: the writers did not race", got, writers-1)
		}
		s, v, err := e.h.Streams.Scans.Load(t.Context(), scan)
		if err != nil {
			t.Fatal(err)
		}
		if s.LLMUsage.Requests != writers || s.LLMUsage.InputTokens != 10*writers || v != int64(before+writers) {
			t.Fatalf("usage %+v at version %d, want %d requests at version %d", s.LLMUsage, v, writers, before+writers)
		}
	})
}

func TestClaimRaceHasOneWinner(t *testing.T) {
	t.Parallel()
	base := newEnv(t, openSQLite(t))
	scan := base.scan()
	store := newBarrier(base.store, 2)
	e := newEnv(t, store)
	var wg sync.WaitGroup
	results := make([]error, 2)
	fences := make([]uint64, 2)
	for i := range 2 {
		wg.Go(func() {
			res, err := e.h.ClaimScan.Handle(e.ctx, commands.ClaimScan{ScanID: scan, WorkerID: []string{"w-a", "w-b"}[i]})
			results[i], fences[i] = err, res.Fence
		})
	}
	wg.Wait()
	wins := 0
	for i, err := range results {
		switch {
		case err == nil:
			wins++
			if fences[i] != 1 {
				t.Fatalf("winner's fence %d, want 1", fences[i])
			}
		case errors.Is(err, domain.ErrIllegalTransition):
		default:
			t.Fatalf("loser's error %v, want an illegal transition after a fresh load", err)
		}
	}
	if wins != 1 || store.conflicts.Load() != 1 {
		t.Fatalf("%d winners and %d conflicts, want 1 and 1", wins, store.conflicts.Load())
	}
}

func TestWithRetry(t *testing.T) {
	t.Parallel()
	conflict := &eventstore.ConcurrencyError{Stream: "scan-x", Expected: 3, Actual: 4}
	other := errors.New("disk on fire")
	tests := []struct {
		name      string
		failures  int
		err       error
		wantCalls int
		wantErr   error
	}{
		{"success", 0, nil, 1, nil},
		{"recovers", commands.MaxAttempts - 1, conflict, commands.MaxAttempts, nil},
		{"gives up", 100, conflict, commands.MaxAttempts, eventstore.ErrConcurrency},
		{"other errors are not retried", 100, other, 1, other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			calls := 0
			h := commands.WithRetry(commands.HandlerFunc[string, int](func(ctx context.Context, cmd string) (int, error) {
				calls++
				if calls <= tt.failures {
					return 0, tt.err
				}
				return 42, nil
			}))
			got, err := h.Handle(t.Context(), "cmd")
			if calls != tt.wantCalls {
				t.Fatalf("%d calls, want %d", calls, tt.wantCalls)
			}
			if tt.wantErr == nil && (err != nil || got != 42) {
				t.Fatalf("got %d, %v", got, err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
		})
	}

	t.Run("stops when the context ends", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		h := commands.WithRetry(commands.HandlerFunc[string, int](func(context.Context, string) (int, error) {
			calls++
			cancel()
			return 0, conflict
		}))
		_, err := h.Handle(ctx, "cmd")
		if calls != 1 || !errors.Is(err, context.Canceled) {
			t.Fatalf("%d calls, err %v; want 1 call and context.Canceled", calls, err)
		}
	})
}
