// Package projectiontest gives tests of the read side a real event store
// (SQLite in a temp dir, or PostgreSQL in a schema of its own), the database
// handle the read models live in, and helpers to append domain events and
// run the projections.
package projectiontest

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/oklog/ulid/v2"
	_ "modernc.org/sqlite" // the read-only reader's driver

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/eventstore/postgres"
	"github.com/vega-sec/vega/eventstore/sqlite"
	"github.com/vega-sec/vega/internal/pgtest"
	"github.com/vega-sec/vega/projections"
)

// Env is one test's event store and read-model database.
type Env struct {
	Name     string // "sqlite" or "postgres"
	Store    eventstore.Store
	DB       *sql.DB // the projections' handle (the SQLite writer)
	ReadDB   *sql.DB // a handle for queries (read-only on SQLite)
	Dialect  projections.Dialect
	Registry *eventstore.Registry
}

// Opener opens an Env for a test.
type Opener struct {
	Name string
	Open func(t testing.TB) *Env
}

// Openers returns the SQLite and PostgreSQL openers.
func Openers() []Opener {
	return []Opener{{"sqlite", OpenSQLite}, {"postgres", OpenPostgres}}
}

func registry(t testing.TB) *eventstore.Registry {
	t.Helper()
	reg, err := commands.NewRegistry()
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	return reg
}

// OpenSQLite opens a SQLite store in a temp dir, with a read-only pool on
// the same file for queries.
func OpenSQLite(t testing.TB) *Env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vega.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.WithPollInterval(20*time.Millisecond))
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ro, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=query_only(1)")
	if err != nil {
		t.Fatalf("open sqlite reader: %v", err)
	}
	t.Cleanup(func() { _ = ro.Close() })
	return &Env{Name: "sqlite", Store: s, DB: s.DB(), ReadDB: ro, Dialect: projections.SQLite, Registry: registry(t)}
}

// OpenPostgres opens a PostgreSQL store in a fresh schema, migrates the
// events and the read models, and returns a database/sql handle on the
// store's pool. It skips (or fails with CI=true) when PostgreSQL is
// unreachable.
func OpenPostgres(t testing.TB) *Env {
	t.Helper()
	url := pgtest.Schema(t)
	ctx := t.Context()
	pool, err := postgres.NewPool(ctx, url, 2)
	if err != nil {
		t.Fatalf("postgres pool: %v", err)
	}
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		pool.Close()
		t.Fatalf("migrate events: %v", err)
	}
	pool.Close()
	s, err := postgres.Open(ctx, url, postgres.Options{PollInterval: 50 * time.Millisecond, MaxConns: 8})
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	db := stdlib.OpenDBFromPool(s.Pool())
	t.Cleanup(func() {
		_ = db.Close()
		_ = s.Close()
	})
	if err := projections.Migrate(ctx, db, projections.Postgres); err != nil {
		t.Fatalf("migrate read models: %v", err)
	}
	return &Env{Name: "postgres", Store: s, DB: db, ReadDB: db, Dialect: projections.Postgres, Registry: registry(t)}
}

// Append appends events to stream (expected version: any) as actor and
// returns the position of the last one.
func (e *Env) Append(t testing.TB, actor string, stream eventstore.StreamID, events ...domain.Event) eventstore.Position {
	t.Helper()
	var nes []eventstore.NewEvent
	for _, ev := range events {
		ne, err := commands.EncodeEvent(e.Registry, ulid.Make().String(), ev, eventstore.Metadata{Actor: actor})
		if err != nil {
			t.Fatalf("encode %s: %v", ev.EventName(), err)
		}
		nes = append(nes, ne)
	}
	res, err := e.Store.Append(t.Context(), stream, eventstore.Any, nes...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res.Position
}

// AppendRaw appends one event with the given type and raw data.
func (e *Env) AppendRaw(t testing.TB, stream eventstore.StreamID, typ, data string) eventstore.Position {
	t.Helper()
	res, err := e.Store.Append(t.Context(), stream, eventstore.Any, eventstore.NewEvent{
		ID: ulid.Make().String(), Type: typ, SchemaVersion: 1, Data: []byte(data)})
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return res.Position
}

// Config returns a runner configuration for the Env.
func (e *Env) Config() projections.Config {
	return projections.Config{DB: e.DB, Dialect: e.Dialect, Store: e.Store, Registry: e.Registry,
		RetryInterval: 20 * time.Millisecond, FailedPollInterval: 50 * time.Millisecond}
}

// Start creates a runner with cfg and runs it until the test ends.
func Start(t testing.TB, cfg projections.Config) *projections.Runner {
	t.Helper()
	r, err := projections.NewRunner(t.Context(), cfg)
	if err != nil {
		t.Fatalf("new runner: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

// WaitFor waits, at most 20 s, for the runner to reach pos.
func WaitFor(t testing.TB, r *projections.Runner, pos eventstore.Position) {
	t.Helper()
	WaitForWithin(t, r, pos, 20*time.Second)
}

// WaitForWithin waits, at most d, for the runner to reach pos.
func WaitForWithin(t testing.TB, r *projections.Runner, pos eventstore.Position, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	if err := r.WaitFor(ctx, pos); err != nil {
		st, _ := r.Status(t.Context())
		t.Fatalf("wait for %s: %v; status %+v", pos, err, st)
	}
}
