package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/vega-sec/vega/adapters/deadletters"
	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/eventstore/postgres"
	"github.com/vega-sec/vega/eventstore/sqlite"
	"github.com/vega-sec/vega/projections"
)

// system is what every long-running role shares: the event store, the bus
// connection (to the embedded server or a cluster), the events stream, the
// dead-letter table and the metrics registry. close releases them in reverse
// order.
type system struct {
	cfg       Config
	log       *slog.Logger
	store     openedStore
	storeKind string
	nc        *nats.Conn
	js        jetstream.JetStream
	bus       vnats.Config
	dead      *deadletters.Store
	registry  *prometheus.Registry
	codec     *eventstore.Registry
	// writeDB holds the read models (the SQLite writer, or a handle on the
	// PostgreSQL pool); readDB serves queries (a read-only pool on SQLite).
	writeDB, readDB *sql.DB
	dialect         projections.Dialect
	projections     *projections.Runner
	background      sync.WaitGroup
	// failed receives the first error of a background role; serve stops
	// the process with it, so a role that died never leaves a process that
	// looks alive and does nothing.
	failed  chan error
	closers []func() error
}

// natsConfig maps the VEGA_* settings onto the bus adapter's.
func natsConfig(cfg Config) vnats.Config {
	return vnats.Config{
		URL:            cfg.NATSURL,
		Token:          cfg.NATSToken,
		CredsFile:      cfg.NATSCredentials,
		DataDir:        filepath.Join(cfg.DataDir, "nats"),
		Listen:         cfg.NATSListen,
		ConnectionName: "vega",
		StreamName:     cfg.NATSStream,
		SubjectPrefix:  cfg.NATSSubjectPrefix,
		// Appends never wait for the bus: keep trying while it is away.
		RetryOnFailedConnect: true,
	}
}

// withBus says whether openSystem connects to NATS: maintenance commands
// that only read or clean the store must not start an embedded server on a
// data dir that a running `vega dev` owns.
type withBus bool

func openSystem(ctx context.Context, cfg Config, log *slog.Logger, bus withBus) (*system, error) {
	s := &system{cfg: cfg, log: log, registry: prometheus.NewRegistry(), failed: make(chan error, 1)}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store, kind, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("open event store: %w", err)
	}
	s.store, s.storeKind = store, kind
	s.closers = append(s.closers, store.Close)
	switch st := store.(type) {
	case *sqlite.Store:
		s.dead = deadletters.New(st.DB())
		s.writeDB, s.dialect = st.DB(), projections.SQLite
		ro, err := sql.Open("sqlite", "file:"+st.Path()+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
		if err != nil {
			s.close()
			return nil, fmt.Errorf("open sqlite reader: %w", err)
		}
		s.readDB = ro
		s.closers = append(s.closers, ro.Close)
	case *postgres.Store:
		s.dead = deadletters.NewPostgres(st.Pool())
		db := stdlib.OpenDBFromPool(st.Pool())
		s.writeDB, s.readDB, s.dialect = db, db, projections.Postgres
	}
	if s.codec, err = commands.NewRegistry(); err != nil {
		s.close()
		return nil, err
	}

	s.bus = natsConfig(cfg)
	if !bus {
		return s, nil
	}
	nc, closeBus, err := vnats.Connect(ctx, s.bus, log)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	s.nc = nc
	s.closers = append(s.closers, closeBus)
	js, err := jetstream.New(nc)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	s.js = js
	if _, err := vnats.EnsureStream(ctx, js, s.bus); err != nil {
		s.close()
		return nil, fmt.Errorf("ensure stream %s: %w", cfg.NATSStream, err)
	}
	return s, nil
}

// startRelay runs the relay (store → JetStream) in the background until ctx
// ends. Every process may run one: the leader lock keeps one active.
func (s *system) startRelay(ctx context.Context) error {
	relay, err := vnats.NewRelay(s.store, s.nc, s.bus, vnats.RelayOptions{Logger: s.log, Registerer: s.registry})
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	s.goBackground(ctx, "relay", relay.Run)
	return nil
}

// startProjections builds the read models' runner and runs it in the
// background until ctx ends.
func (s *system) startProjections(ctx context.Context) error {
	r, err := projections.NewRunner(ctx, projections.Config{
		DB: s.writeDB, Dialect: s.dialect, Store: s.store, Registry: s.codec,
		Logger: s.log, Metrics: s.registry,
	})
	if err != nil {
		return fmt.Errorf("projections: %w", err)
	}
	s.projections = r
	s.goBackground(ctx, "projections", r.Run)
	return nil
}

// close waits for the background work (whose context the caller ended) and
// releases everything in reverse order.
func (s *system) close() error {
	s.background.Wait()
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}
