package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/eventstore/postgres"
	"github.com/vega-sec/vega/internal/pgtest"
)

// open migrates a fresh schema and opens a store on it.
func open(t testing.TB) (*postgres.Store, string) {
	t.Helper()
	url := pgtest.Schema(t)
	ctx := context.Background()
	pool, err := postgres.NewPool(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	pool.Close()
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, url
}

func ev(typ string, data string) eventstore.NewEvent {
	return eventstore.NewEvent{ID: ulid.Make().String(), Type: typ, SchemaVersion: 1, Data: json.RawMessage(data)}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := pgtest.Schema(t)
	pool, err := postgres.NewPool(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := postgres.Open(ctx, url, postgres.Options{}); !errors.Is(err, postgres.ErrSchemaBehind) {
		t.Fatalf("open before migrate: %v, want ErrSchemaBehind", err)
	}
	applied, err := postgres.Migrate(ctx, pool)
	if err != nil || len(applied) != postgres.LatestVersion() {
		t.Fatalf("first migrate applied %v, err %v", applied, err)
	}
	applied, err = postgres.Migrate(ctx, pool)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second migrate applied %v, err %v; want nothing", applied, err)
	}
	newer := postgres.LatestVersion() + 1
	if _, err := pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future')`, newer); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.Migrate(ctx, pool)
	if !errors.Is(err, postgres.ErrSchemaTooNew) {
		t.Fatalf("migrate newer db: %v, want ErrSchemaTooNew", err)
	}
	if want := fmt.Sprintf("version %d", newer); !contains(err.Error(), want) {
		t.Errorf("error %q does not name %q", err, want)
	}
	if _, err := postgres.Open(ctx, url, postgres.Options{}); !errors.Is(err, postgres.ErrSchemaTooNew) {
		t.Fatalf("open newer db: %v, want ErrSchemaTooNew", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// rawAppend calls vega_append inside an open transaction, as a writer
// that has inserted but not yet committed.
func rawAppend(ctx context.Context, tx pgx.Tx, stream string) error {
	_, err := tx.Exec(ctx, `SELECT * FROM vega_append($1, 't', -1, ARRAY[$2], ARRAY['T'], ARRAY[1],
		ARRAY['{}']::jsonb[], ARRAY['{}']::jsonb[], now(), ARRAY['\x00'::bytea])`, stream, ulid.Make().String())
	return err
}

func TestOutOfOrderCommitIsNotSkipped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, url := open(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	t1, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rawAppend(ctx, t1, "t-one"); err != nil {
		t.Fatal(err)
	}
	// T2 inserts and commits while T1 is still open.
	if _, err := s.Append(ctx, "t-two", eventstore.NoStream, ev("T", `{}`)); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.ReadAll(ctx, eventstore.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("reader saw %d events while an earlier transaction was open; it could skip T1", len(got))
	}
	if err := t1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Visibility waits for every older transaction on the cluster, which
	// parallel tests may hold for a moment: follow, do not poll once.
	got = readN(t, s, eventstore.Position{}, 2)
	if len(got) != 2 || got[0].StreamID != "t-one" || got[1].StreamID != "t-two" {
		t.Fatalf("after T1 commits the reader got %v, want t-one then t-two", streams(got))
	}

	// A rolled-back writer must not stall readers for good.
	t3, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rawAppend(ctx, t3, "t-three"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "t-four", eventstore.NoStream, ev("T", `{}`)); err != nil {
		t.Fatal(err)
	}
	if err := t3.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	more := readN(t, s, got[1].Position, 1)
	if len(more) != 1 || more[0].StreamID != "t-four" {
		t.Fatalf("after a rollback the reader got %v, want t-four", streams(more))
	}
}

// readN follows the global order from after until n events arrived or a
// generous hang guard expires.
func readN(t *testing.T, s *postgres.Store, after eventstore.Position, n int) []eventstore.RecordedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []eventstore.RecordedEvent
	err := eventstore.Follow(ctx, s, eventstore.Query{After: after}, func(_ context.Context, page []eventstore.RecordedEvent, _ eventstore.Position) error {
		out = append(out, page...)
		if len(out) >= n {
			return errDone
		}
		return nil
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("following from %v: got %d of %d events: %v", after, len(out), n, err)
	}
	return out
}

var errDone = errors.New("done")

func streams(evs []eventstore.RecordedEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, string(e.StreamID))
	}
	return out
}

func TestAppendReadVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := open(t)
	res, err := s.Append(ctx, "scan-1", eventstore.NoStream, ev("A", `{"n":1,"s":"ünï"}`), ev("B", `{"n":2}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstVersion != 1 || res.LastVersion != 2 || !res.Written {
		t.Fatalf("result %+v", res)
	}
	_, err = s.Append(ctx, "scan-1", eventstore.Exact(1), ev("C", `{}`))
	var ce *eventstore.ConcurrencyError
	if !errors.As(err, &ce) || ce.Actual != 2 {
		t.Fatalf("stale append: %v", err)
	}
	if _, err := s.Append(ctx, "scan-1", eventstore.Exact(2), ev("C", `{"z":[1,2.5,"x"]}`)); err != nil {
		t.Fatal(err)
	}
	evs, err := s.ReadStream(ctx, "scan-1", 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Fatalf("read %d events", len(evs))
	}
	if b := eventstore.VerifyChain(evs); b != 0 {
		t.Fatalf("chain broken at %d", b)
	}
	readN(t, s, eventstore.Position{}, 3) // visible to global readers
	head, err := s.Head(ctx)
	if err != nil || head != evs[2].Position {
		t.Fatalf("head %v err %v, want %v", head, err, evs[2].Position)
	}
}

// TestAppendDuringClose: appends racing with Close end (with an error or a
// result), never hang.
func TestAppendDuringClose(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := context.Background() // no deadline: a hang would show as a test timeout
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for j := 0; ; j++ {
				if _, err := s.Append(ctx, eventstore.StreamID(fmt.Sprintf("close-%d", i)), eventstore.Any, ev("T", `{}`)); err != nil {
					return
				}
			}
		}()
	}
	readN(t, s, eventstore.Position{}, 8) // appends are flowing
	s.Close()
	for range 8 {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("an append racing with Close never returned")
		}
	}
	if _, err := s.Append(ctx, "close-after", eventstore.Any, ev("T", `{}`)); err == nil {
		t.Error("append after Close succeeded")
	}
}
