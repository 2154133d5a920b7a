// Package storebench measures an event store beside ceilings measured in the
// same run on the same database: raw single-row and multi-row INSERTs into a
// bare table of the events table's shape, and a raw sequential read of the
// events table. cmd/vegabench prints its lines.
package storebench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/eventstore/postgres"
	"github.com/vega-sec/vega/internal/bench"
)

// Raw is the same database without the store: the ceilings.
type Raw interface {
	// InsertRows inserts n rows of the events table's shape into a bare
	// table (no indexes, no constraints) in one statement; with keyed, into
	// a table that also has the events table's keys and indexes (unique
	// event ID, unique stream and version, the global-order index): the
	// part of the cost the store's contract makes unavoidable.
	InsertRows(ctx context.Context, n int, keyed bool) error
	// Analyze refreshes the planner's statistics after a bulk fill, as
	// autovacuum would soon do by itself.
	Analyze(ctx context.Context) error
	// ReadEvents reads the whole events table in global order without
	// decoding beyond what the driver must, and returns the row count.
	ReadEvents(ctx context.Context) (int64, error)
}

// Instance is one fresh, empty database with a store on it.
type Instance struct {
	Store eventstore.Store
	// Follower is the store a wake-up reader uses: another instance on the
	// same database where readers live in other processes (PostgreSQL), the
	// same one where one process owns the database (SQLite).
	Follower eventstore.Store
	Raw      Raw
	Close    func()
}

// Target is one kind of store.
type Target struct {
	Name string
	// New makes a fresh instance.
	New func(ctx context.Context) (*Instance, error)
}

// Config sizes the run.
type Config struct {
	Duration   time.Duration // per throughput figure
	ReadEvents int           // events in the read_all figure
	WakeSample int           // appends timed for wake-up latency
	// Figures, when not empty, limits the run to these figure names
	// (wake covers wake_p50 and wake_p99); for profiling one figure.
	Figures []string
}

// DefaultConfig is what `make bench` runs.
func DefaultConfig() Config {
	return Config{Duration: 3 * time.Second, ReadEvents: 1_000_000, WakeSample: 300}
}

// Run measures every figure of the target and returns the lines.
func Run(ctx context.Context, t Target, cfg Config, progress func(bench.Line)) ([]bench.Line, error) {
	var lines []bench.Line
	add := func(l bench.Line) {
		l.Store = t.Name
		lines = append(lines, l)
		progress(l)
	}
	type appendFig struct {
		writers, batch int
		target         string
	}
	figs := []appendFig{{1, 1, ""}, {8, 1, ">=0.7"}, {1, 10, ""}, {8, 10, ""}, {1, 100, ""}, {8, 100, ">=0.7"}}
	for _, f := range figs {
		if !cfg.want(fmt.Sprintf("append_w%d_b%d", f.writers, f.batch)) {
			continue
		}
		err := withInstance(ctx, t, func(in *Instance) error {
			ceiling, err := rawInserts(ctx, in.Raw, f.writers, f.batch, false, cfg.Duration)
			if err != nil {
				return fmt.Errorf("raw inserts: %w", err)
			}
			var keyed float64
			if f.target != "" {
				if keyed, err = rawInserts(ctx, in.Raw, f.writers, f.batch, true, cfg.Duration); err != nil {
					return fmt.Errorf("raw keyed inserts: %w", err)
				}
			}
			value, err := appends(ctx, in.Store, f.writers, f.batch, cfg.Duration)
			if err != nil {
				return fmt.Errorf("appends: %w", err)
			}
			l := bench.Line{Figure: fmt.Sprintf("append_w%d_b%d", f.writers, f.batch), Value: value, Unit: "events/s", Ceiling: ceiling, Target: f.target}
			if st, ok := in.Store.(interface{ AppendStats() postgres.AppendStats }); ok {
				a := st.AppendStats()
				if a.Statements > 0 {
					l.Note = fmt.Sprintf("group commit: %.1f appends per statement", float64(a.Appends)/float64(a.Statements))
				}
			}
			add(l)
			if keyed > 0 {
				add(bench.Line{Figure: l.Figure + "_keyed", Value: value, Unit: "events/s", Ceiling: keyed,
					Note: "the same appends beside raw inserts into a table with the events table's keys and indexes"})
			}
			return nil
		})
		if err != nil {
			return lines, err
		}
	}
	err := cfg.run("append_contended", func() error {
		return withInstance(ctx, t, func(in *Instance) error {
			ceiling, err := rawInserts(ctx, in.Raw, 8, 1, false, cfg.Duration)
			if err != nil {
				return err
			}
			value, err := contended(ctx, in.Store, 8, cfg.Duration)
			if err != nil {
				return err
			}
			add(bench.Line{Figure: "append_contended", Value: value, Unit: "events/s", Ceiling: ceiling,
				Note: "8 writers on one stream at exact expected versions, retrying conflicts; ceiling: raw single-row inserts by 8 writers"})
			return nil
		})
	})
	if err != nil {
		return lines, err
	}
	err = cfg.run("read_all", func() error {
		return withInstance(ctx, t, func(in *Instance) error {
			if err := fill(ctx, in.Store, cfg.ReadEvents); err != nil {
				return fmt.Errorf("fill: %w", err)
			}
			if err := in.Raw.Analyze(ctx); err != nil {
				return fmt.Errorf("analyze: %w", err)
			}
			ceiling, err := timeRead(ctx, in.Raw.ReadEvents, cfg.ReadEvents)
			if err != nil {
				return fmt.Errorf("raw read: %w", err)
			}
			value, err := timeRead(ctx, func(ctx context.Context) (int64, error) { return readAll(ctx, in.Store) }, cfg.ReadEvents)
			if err != nil {
				return fmt.Errorf("read all: %w", err)
			}
			add(bench.Line{Figure: "read_all", Value: value, Unit: "events/s", Ceiling: ceiling, Target: ">=0.5"})
			return nil
		})
	})
	if err != nil {
		return lines, err
	}
	err = cfg.run("wake", func() error {
		return withInstance(ctx, t, func(in *Instance) error {
			lat, err := wake(ctx, in.Store, in.Follower, cfg.WakeSample)
			if err != nil {
				return err
			}
			target := ""
			if t.Name == "postgres" {
				target = "<=20"
			}
			add(bench.Line{Figure: "wake_p50", Value: bench.Percentile(lat, 50), Unit: "ms"})
			add(bench.Line{Figure: "wake_p99", Value: bench.Percentile(lat, 99), Unit: "ms", Target: target})
			return nil
		})
	})
	return lines, err
}

func (c Config) want(figure string) bool {
	if len(c.Figures) == 0 {
		return true
	}
	for _, f := range c.Figures {
		if f == figure {
			return true
		}
	}
	return false
}

func (c Config) run(figure string, fn func() error) error {
	if !c.want(figure) {
		return nil
	}
	return fn()
}

func withInstance(ctx context.Context, t Target, fn func(*Instance) error) error {
	in, err := t.New(ctx)
	if err != nil {
		return err
	}
	defer in.Close()
	return fn(in)
}

func newEvents(n int) []eventstore.NewEvent {
	evs := make([]eventstore.NewEvent, n)
	for i := range evs {
		evs[i] = eventstore.NewEvent{ID: ulid.Make().String(), Type: "ScanProgressed", SchemaVersion: 1, Data: sampleData,
			Metadata: eventstore.Metadata{Actor: "bench", CorrelationID: "01JBENCH0000000000000000000"}}
	}
	return evs
}

// sampleData is the size of a typical progress or finding event.
var sampleData = json.RawMessage(`{"fence":1,"phase":"scanning","progress":42,"file":"src/main/java/com/example/App.java","at":"2026-11-29T18:00:00Z"}`)

// forDuration runs fn on w goroutines until d passes and sums what they count.
func forDuration(ctx context.Context, w int, d time.Duration, fn func(ctx context.Context, worker int) (int64, error)) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, w)
	start := time.Now()
	for i := range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n, err := fn(ctx, i)
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
						cancel()
					}
					return
				}
				total.Add(n)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return bench.Rate(total.Load(), elapsed), nil
}

func rawInserts(ctx context.Context, raw Raw, writers, batch int, keyed bool, d time.Duration) (float64, error) {
	return forDuration(ctx, writers, d, func(ctx context.Context, _ int) (int64, error) {
		return int64(batch), raw.InsertRows(ctx, batch, keyed)
	})
}

func appends(ctx context.Context, s eventstore.Store, writers, batch int, d time.Duration) (float64, error) {
	const streamsPerWriter = 16
	versions := make([][]int64, writers)
	for i := range versions {
		versions[i] = make([]int64, streamsPerWriter)
	}
	prefix := ulid.Make().String()
	calls := make([]int, writers)
	return forDuration(ctx, writers, d, func(ctx context.Context, w int) (int64, error) {
		k := calls[w] % streamsPerWriter
		calls[w]++
		stream := eventstore.StreamID(fmt.Sprintf("bench-%s_w%d_s%d", prefix, w, k))
		_, err := s.Append(ctx, stream, eventstore.Exact(versions[w][k]), newEvents(batch)...)
		if err != nil {
			return 0, err
		}
		versions[w][k] += int64(batch)
		return int64(batch), nil
	})
}

func contended(ctx context.Context, s eventstore.Store, writers int, d time.Duration) (float64, error) {
	stream := eventstore.StreamID("bench-" + ulid.Make().String())
	var version atomic.Int64
	return forDuration(ctx, writers, d, func(ctx context.Context, _ int) (int64, error) {
		v := version.Load()
		res, err := s.Append(ctx, stream, eventstore.Exact(v), newEvents(1)...)
		var ce *eventstore.ConcurrencyError
		if errors.As(err, &ce) {
			for {
				cur := version.Load()
				if cur >= ce.Actual || version.CompareAndSwap(cur, ce.Actual) {
					break
				}
			}
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		for {
			cur := version.Load()
			if cur >= res.LastVersion || version.CompareAndSwap(cur, res.LastVersion) {
				break
			}
		}
		return 1, nil
	})
}

// fill appends n events in batches of 500 from 4 writers.
func fill(ctx context.Context, s eventstore.Store, n int) error {
	const batch, writers = 500, 4
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	per := (n + writers - 1) / writers
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done, version := 0, int64(0)
			stream := eventstore.StreamID(fmt.Sprintf("fill-%s", ulid.Make()))
			for done < per && (w*per+done) < n {
				k := min(batch, per-done, n-(w*per+done))
				if _, err := s.Append(ctx, stream, eventstore.Exact(version), newEvents(k)...); err != nil {
					errs <- err
					return
				}
				done += k
				version += int64(k)
				if version >= 10_000 {
					stream, version = eventstore.StreamID(fmt.Sprintf("fill-%s", ulid.Make())), 0
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// timeRead times a read of the whole store and checks it saw n events.
func timeRead(ctx context.Context, read func(context.Context) (int64, error), n int) (float64, error) {
	start := time.Now()
	got, err := read(ctx)
	if err != nil {
		return 0, err
	}
	if got != int64(n) {
		return 0, fmt.Errorf("read %d events, want %d", got, n)
	}
	return bench.Rate(got, time.Since(start)), nil
}

func readAll(ctx context.Context, s eventstore.Store) (int64, error) {
	var n int64
	q := eventstore.Query{Limit: 5000}
	for {
		evs, next, err := s.ReadAll(ctx, q)
		if err != nil {
			return n, err
		}
		n += int64(len(evs))
		if len(evs) < q.Limit {
			return n, nil
		}
		q.After = next
	}
}

// wake appends sample single events, one every few milliseconds, and times
// each from the start of its Append to its arrival at a follower.
func wake(ctx context.Context, writer, follower eventstore.Store, sample int) ([]time.Duration, error) {
	head, err := follower.Head(ctx)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	started := make(map[string]time.Time, sample)
	lat := make([]time.Duration, 0, sample)
	fctx, cancel := context.WithTimeout(ctx, time.Duration(sample)*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- eventstore.Follow(fctx, follower, eventstore.Query{After: head}, func(_ context.Context, page []eventstore.RecordedEvent, _ eventstore.Position) error {
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			for _, e := range page {
				if t, ok := started[e.ID]; ok {
					lat = append(lat, now.Sub(t))
				}
			}
			if len(lat) >= sample {
				return errDone
			}
			return nil
		})
	}()
	stream := eventstore.StreamID("wake-" + ulid.Make().String())
	for i := range sample {
		ev := newEvents(1)
		mu.Lock()
		started[ev[0].ID] = time.Now()
		mu.Unlock()
		if _, err := writer.Append(ctx, stream, eventstore.Exact(int64(i)), ev...); err != nil {
			return nil, err
		}
		time.Sleep(3 * time.Millisecond)
	}
	if err := <-done; !errors.Is(err, errDone) {
		return nil, fmt.Errorf("follower: %v (saw %d of %d)", err, len(lat), sample)
	}
	return lat, nil
}

var errDone = errors.New("done")
