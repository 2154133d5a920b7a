package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/eventstore/postgres"
	"github.com/vega-sec/vega/eventstore/sqlite"
	"github.com/vega-sec/vega/projections"
)

// openedStore is the event store of the configured shape, with the optional
// ports both implementations offer.
type openedStore interface {
	eventstore.Store
	eventstore.Checkpoints
	eventstore.Leader
}

// openStore opens PostgreSQL when VEGA_DATABASE_URL is set, else the SQLite
// file under the data dir (which migrates itself on open).
func openStore(ctx context.Context, cfg Config, log *slog.Logger) (openedStore, string, error) {
	if cfg.DatabaseURL != "" {
		s, err := postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{Logger: log})
		if err != nil {
			return nil, "", err
		}
		return s, "postgres", nil
	}
	s, err := sqlite.Open(ctx, cfg.SQLitePath(), sqlite.WithLogger(log))
	if err != nil {
		return nil, "", err
	}
	return s, "sqlite", nil
}

func runMigrate(ctx context.Context, cfg Config, _ []string, stdout, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	if cfg.DatabaseURL == "" {
		s, err := sqlite.Open(ctx, cfg.SQLitePath(), sqlite.WithLogger(log))
		if err != nil {
			return fmt.Errorf("migrate sqlite %s: %w", cfg.SQLitePath(), err)
		}
		defer s.Close()
		_, err = fmt.Fprintf(stdout, "sqlite %s: schema is current\n", cfg.SQLitePath())
		return err
	}
	pool, err := postgres.NewPool(ctx, cfg.DatabaseURL, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	applied, err := postgres.Migrate(ctx, pool)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	if err := projections.Migrate(ctx, db, projections.Postgres); err != nil {
		return fmt.Errorf("migrate read models: %w", err)
	}
	if len(applied) == 0 {
		_, err = fmt.Fprintf(stdout, "postgres: schema is current (version %d)\n", postgres.LatestVersion())
		return err
	}
	_, err = fmt.Fprintf(stdout, "postgres: applied migrations %v; schema at version %d\n", applied, postgres.LatestVersion())
	return err
}
