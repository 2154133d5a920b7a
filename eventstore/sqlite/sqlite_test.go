package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/eventstore/sqlite"
	"github.com/vega-sec/vega/eventstore/storetest"
)

func openStore(t *testing.T, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return s
}

// rawDB opens the file with plain database/sql, bypassing the store.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) eventstore.Store {
			return openStore(t, filepath.Join(t.TempDir(), "nested", "vega.db"), sqlite.WithPollInterval(20*time.Millisecond))
		},
		Tamper: func(t *testing.T, s eventstore.Store, stream eventstore.StreamID, version int64, data string) {
			t.Helper()
			db := rawDB(t, s.(*sqlite.Store).Path())
			ctx := t.Context()
			for _, q := range []string{
				`DROP TRIGGER events_no_update`,
				fmt.Sprintf(`UPDATE events SET data = '%s' WHERE stream_id = '%s' AND version = %d`,
					strings.ReplaceAll(data, "'", "''"), stream, version),
			} {
				if _, err := db.ExecContext(ctx, q); err != nil {
					t.Fatalf("tamper: %s: %v", q, err)
				}
			}
		},
	})
}

func newEvents(n int) []eventstore.NewEvent {
	evs := make([]eventstore.NewEvent, n)
	for i := range evs {
		evs[i] = eventstore.NewEvent{ID: ulid.Make().String(), Type: "Happened", SchemaVersion: 1, Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}
	}
	return evs
}

func TestRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "vega.db")
	s := openStore(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	newer := sqlite.SchemaVersion() + 41
	if _, err := rawDB(t, path).ExecContext(t.Context(),
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from_the_future.sql', 0)`, newer); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(t.Context(), path)
	if !errors.Is(err, sqlite.ErrSchemaTooNew) {
		t.Fatalf("open of a newer database: %v, want ErrSchemaTooNew", err)
	}
	for _, v := range []int{newer, sqlite.SchemaVersion()} {
		if !strings.Contains(err.Error(), fmt.Sprint(v)) {
			t.Errorf("error %q does not name version %d", err, v)
		}
	}
}

func TestReopenKeepsEventsAndChain(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vega.db")
	stream := eventstore.NewStreamIDULID("reopen")
	s := openStore(t, path)
	first, err := s.Append(ctx, stream, eventstore.NoStream, newEvents(3)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveCheckpoint(ctx, "relay", first.Position); err != nil {
		t.Fatal(err)
	}
	before, err := s.ReadStream(ctx, stream, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, path)
	t.Cleanup(func() { _ = s.Close() })
	if head, err := s.Head(ctx); err != nil || head != first.Position {
		t.Errorf("head after reopen %s (%v), want %s", head, err, first.Position)
	}
	if cp, err := s.LoadCheckpoint(ctx, "relay"); err != nil || cp != first.Position {
		t.Errorf("checkpoint after reopen %s (%v), want %s", cp, err, first.Position)
	}
	// The chain continues from the stored last hash.
	second, err := s.Append(ctx, stream, eventstore.Exact(3), newEvents(2)...)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Position.Less(second.Position) {
		t.Errorf("position after reopen %s is not after %s", second.Position, first.Position)
	}
	after, err := s.ReadStream(ctx, stream, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 5 || eventstore.VerifyChain(after) != 0 {
		t.Fatalf("after reopen: %d events, chain broken at %d", len(after), eventstore.VerifyChain(after))
	}
	for i, e := range before {
		a := after[i]
		if a.ID != e.ID || !a.RecordedAt.Equal(e.RecordedAt) || string(a.Hash) != string(e.Hash) || string(a.Data) != string(e.Data) {
			t.Errorf("version %d changed across reopen", e.Version)
		}
	}
	// Migrations are not applied twice.
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != sqlite.SchemaVersion() {
		t.Errorf("schema_migrations has %d rows (%v), want %d", n, err, sqlite.SchemaVersion())
	}
}

// A second Store on the same file stands in for a child process: its appends
// wake a waiter of the first Store through polling.
func TestWaitSeesOtherWriter(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "vega.db")
	a := openStore(t, path, sqlite.WithPollInterval(10*time.Millisecond))
	t.Cleanup(func() { _ = a.Close() })
	b := openStore(t, path)
	t.Cleanup(func() { _ = b.Close() })

	head, err := a.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	woke := make(chan error, 1)
	go func() { woke <- a.Wait(ctx, head) }()
	evs := newEvents(1)
	if _, err := b.Append(ctx, eventstore.NewStreamIDULID("child"), eventstore.NoStream, evs...); err != nil {
		t.Fatal(err)
	}
	if err := <-woke; err != nil {
		t.Fatalf("wait for another store's append: %v", err)
	}
	page, _, err := a.ReadAll(ctx, eventstore.Query{After: head})
	if err != nil || len(page) != 1 || page[0].ID != evs[0].ID {
		t.Fatalf("read after wake-up: %d events, %v", len(page), err)
	}
	// Both stores write the same file without breaking versions or the chain.
	stream := eventstore.NewStreamIDULID("shared")
	for i := range 6 {
		w := a
		if i%2 == 1 {
			w = b
		}
		if _, err := w.Append(ctx, stream, eventstore.Exact(int64(i)), newEvents(1)...); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	got, err := b.ReadStream(ctx, stream, 1, 0)
	if err != nil || len(got) != 6 || eventstore.VerifyChain(got) != 0 {
		t.Fatalf("shared stream: %d events (%v), chain broken at %d", len(got), err, eventstore.VerifyChain(got))
	}
}

func TestOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		opts []sqlite.Option
	}{
		{"empty path", "", nil},
		{"query in path", filepath.Join(dir, "a.db?mode=ro"), nil},
		{"zero poll interval", filepath.Join(dir, "b.db"), []sqlite.Option{sqlite.WithPollInterval(0)}},
		{"parent is a file", filepath.Join(dir, "file", "c.db"), nil},
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := sqlite.Open(t.Context(), tt.path, tt.opts...); err == nil {
				_ = s.Close()
				t.Errorf("Open(%q) succeeded", tt.path)
			}
		})
	}
}

func TestEventsAreAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, filepath.Join(t.TempDir(), "vega.db"))
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Append(ctx, eventstore.NewStreamIDULID("ro"), eventstore.NoStream, newEvents(1)...); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE events SET data = '{}'`, `DELETE FROM events`} {
		if _, err := s.DB().ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want the append-only trigger's refusal", q, err)
		}
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, filepath.Join(t.TempDir(), "vega.db"))
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() { waiting <- s.Wait(ctx, head) }()
	leading := make(chan error, 1)
	go func() {
		leading <- s.Lead(ctx, "closing", func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
	}()
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := <-waiting; !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("wait across close: %v, want ErrClosed", err)
	}
	if err := <-leading; err == nil {
		t.Error("lead across close returned nil")
	}
	if _, err := s.Append(ctx, eventstore.NewStreamIDULID("closed"), eventstore.Any, newEvents(1)...); !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("append after close: %v, want ErrClosed", err)
	}
	if _, _, err := s.ReadAll(ctx, eventstore.Query{}); !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("read after close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestSaveCheckpointTx(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, filepath.Join(t.TempDir(), "vega.db"))
	t.Cleanup(func() { _ = s.Close() })
	res, err := s.Append(ctx, eventstore.NewStreamIDULID("cp"), eventstore.NoStream, newEvents(1)...)
	if err != nil {
		t.Fatal(err)
	}
	// A read model and its checkpoint commit together or not at all.
	for _, commit := range []bool{false, true} {
		tx, err := s.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS rm (id INTEGER PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		if err := sqlite.SaveCheckpointTx(ctx, tx, "rm", res.Position); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
		want := eventstore.Position{}
		if commit {
			want = res.Position
		}
		if got, err := s.LoadCheckpoint(ctx, "rm"); err != nil || got != want {
			t.Errorf("commit %v: checkpoint %s (%v), want %s", commit, got, err, want)
		}
	}
	if err := s.SaveCheckpoint(ctx, "pg", eventstore.Position{Tx: 5, Seq: 1}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Errorf("save of a PostgreSQL position: %v, want ErrInvalid", err)
	}
}

// BenchmarkAppend measures appends on one file: b.N calls of batch events
// each, from one goroutine or from 8. It reports events/s.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name           string
		writers, batch int
	}{
		{"w1_b1", 1, 1},
		{"w1_b100", 1, 100},
		{"w8_b1", 8, 1},
		{"w8_b100", 8, 100},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "vega.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			batches := make([][]eventstore.NewEvent, b.N)
			for i := range batches {
				batches[i] = newEvents(bc.batch)
			}
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range bc.writers {
				wg.Go(func() {
					stream := eventstore.NewStreamIDULID(fmt.Sprintf("bench%d", w))
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						if _, err := s.Append(b.Context(), stream, eventstore.Any, batches[i]...); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N*bc.batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// Another process holding the write lock makes Append wait; a caller's
// deadline ends the wait with the context's error, and nothing is written.
func TestAppendWaitsForOtherProcessLock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "vega.db")
	s := openStore(t, path)
	t.Cleanup(func() { _ = s.Close() })
	stream := eventstore.NewStreamIDULID("locked")

	conn, err := rawDB(t, path).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = s.Append(short, stream, eventstore.NoStream, newEvents(1)...)
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, sqlite.ErrBusy) {
		t.Fatalf("append while another connection holds the lock: %v, want the deadline or ErrBusy", err)
	}
	t.Logf("append under a held lock: %v", err)
	if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, stream, eventstore.NoStream, newEvents(1)...); err != nil {
		t.Fatalf("append after the lock was released: %v", err)
	}
}

// BenchmarkReadAll measures a global read of 20,000 events in pages of
// 5,000, the shape of a projection catching up. It reports events/s.
func BenchmarkReadAll(b *testing.B) {
	const total, page = 20_000, 5000
	s, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "vega.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	stream := eventstore.NewStreamIDULID("read")
	for range total / 500 {
		evs := newEvents(500)
		for i := range evs {
			evs[i].Metadata = eventstore.Metadata{Actor: "bench", CorrelationID: "01JBENCH0000000000000000000"}
		}
		if _, err := s.Append(b.Context(), stream, eventstore.Any, evs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		q := eventstore.Query{Limit: page}
		n := 0
		for {
			evs, next, err := s.ReadAll(b.Context(), q)
			if err != nil {
				b.Fatal(err)
			}
			n += len(evs)
			if len(evs) < page {
				break
			}
			q.After = next
		}
		if n != total {
			b.Fatalf("read %d events, want %d", n, total)
		}
	}
	b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "events/s")
}

// Concurrent appends share commits (group commit); each call must still
// succeed or fail on its own, and DB() transactions interleave with them.
func TestGroupedAppendsFailAlone(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, filepath.Join(t.TempDir(), "vega.db"))
	t.Cleanup(func() { _ = s.Close() })
	conflicted := eventstore.NewStreamIDULID("conflicted")
	seeded := newEvents(1)
	if _, err := s.Append(ctx, conflicted, eventstore.NoStream, seeded...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `CREATE TABLE rm (n INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	const rounds = 40
	var wg sync.WaitGroup
	errs := make(chan error, 4*rounds)
	for i := range rounds {
		wg.Go(func() { // a good append
			stream := eventstore.NewStreamIDULID(fmt.Sprintf("good%d", i))
			if _, err := s.Append(ctx, stream, eventstore.NoStream, newEvents(1+i%5)...); err != nil {
				errs <- fmt.Errorf("good append %d: %w", i, err)
			}
		})
		wg.Go(func() { // a conflict
			if _, err := s.Append(ctx, conflicted, eventstore.NoStream, newEvents(2)...); !errors.Is(err, eventstore.ErrConcurrency) {
				errs <- fmt.Errorf("conflicting append %d: %v, want ErrConcurrency", i, err)
			}
		})
		wg.Go(func() { // a repeat of the seeded event
			if res, err := s.Append(ctx, conflicted, eventstore.Any, seeded...); err != nil || res.Written {
				errs <- fmt.Errorf("repeat %d: %+v, %v, want a repeat", i, res, err)
			}
		})
		wg.Go(func() { // a read-model write on the shared connection
			tx, err := s.DB().BeginTx(ctx, nil)
			if err == nil {
				_, err = tx.ExecContext(ctx, `INSERT INTO rm (n) VALUES (?)`, i)
				err = errors.Join(err, tx.Commit())
			}
			if err != nil {
				errs <- fmt.Errorf("read-model write %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, _, err := s.ReadAll(ctx, eventstore.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	want := 1
	for i := range rounds {
		want += 1 + i%5
	}
	if len(all) != want {
		t.Errorf("store holds %d events, want %d", len(all), want)
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*) FROM rm`).Scan(&n); err != nil || n != rounds {
		t.Errorf("read model holds %d rows (%v), want %d", n, err, rounds)
	}
}
