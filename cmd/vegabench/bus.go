package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/oklog/ulid/v2"

	"github.com/nats-io/nats.go"

	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/eventstore/postgres"
	"github.com/vega-sec/vega/eventstore/sqlite"
	"github.com/vega-sec/vega/internal/bench"
)

// Bus figures: how fast the relay moves events from the store to JetStream
// beside raw JetStream async publishes of the same messages, and how long an
// event takes from the start of its append to a durable consumer's handler.
const (
	relayEvents   = 20000
	latencySample = 300
)

// busSQLite measures the one-machine shape: SQLite and the embedded server.
func busSQLite(ctx context.Context, progress func(bench.Line)) ([]bench.Line, error) {
	dir, err := os.MkdirTemp("", "vegabench-bus-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "vega.db"))
	if err != nil {
		return nil, err
	}
	defer store.Close()
	cfg := vnats.Config{DataDir: filepath.Join(dir, "nats")}
	nc, closeBus, err := vnats.Connect(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	defer closeBus()
	return busFigures(ctx, "sqlite", store, nc, cfg, "embedded NATS", progress)
}

// busPostgres measures the distributed shape: PostgreSQL and an external
// NATS server.
func busPostgres(ctx context.Context, pgURL, natsURL string, progress func(bench.Line)) ([]bench.Line, error) {
	schema := "bench_bus_" + strings.ToLower(ulid.Make().String())
	dsn, drop, err := benchSchema(ctx, pgURL, schema)
	if err != nil {
		return nil, err
	}
	defer drop()
	store, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	cfg := vnats.Config{URL: natsURL}
	nc, closeBus, err := vnats.Connect(ctx, cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("nats at %s: %w", natsURL, err)
	}
	defer closeBus()
	return busFigures(ctx, "postgres", store, nc, cfg, "external NATS "+natsURL, progress)
}

func busFigures(ctx context.Context, kind string, store vnats.BenchStore, nc *nats.Conn, cfg vnats.Config, where string, progress func(bench.Line)) ([]bench.Line, error) {
	var lines []bench.Line
	add := func(l bench.Line) {
		l.Store = kind
		lines = append(lines, l)
		progress(l)
	}
	rf, err := vnats.BenchRelay(ctx, store, nc, cfg, relayEvents)
	if err != nil {
		return lines, fmt.Errorf("relay: %w", err)
	}
	add(bench.Line{Figure: "relay_throughput", Value: rf.RelayPerSec, Unit: "events/s", Ceiling: rf.RawPerSec, Target: ">=0.5",
		Note: fmt.Sprintf("%d events, store → relay → %s, acks and checkpoints included; ceiling: raw JetStream async publishes of the same messages", rf.Events, where)})
	lf, err := vnats.BenchLatency(ctx, store, nc, cfg, latencySample)
	if err != nil {
		return lines, fmt.Errorf("consumer latency: %w", err)
	}
	ms := func(d interface{ Microseconds() int64 }) float64 { return float64(d.Microseconds()) / 1000 }
	add(bench.Line{Figure: "consumer_p50", Value: ms(lf.P50), Unit: "ms"})
	add(bench.Line{Figure: "consumer_p99", Value: ms(lf.P99), Unit: "ms", Target: "<=25",
		Note: fmt.Sprintf("%d appends, from the start of Append to a durable consumer's handler, through the relay and %s", lf.Samples, where)})
	return lines, nil
}
