package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one versioned schema change embedded in the binary.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// ErrSchemaTooNew is matched by the error of a database that a newer binary
// migrated: this binary does not know its schema and refuses to touch it.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary")

// ErrSchemaBehind is matched by Open's error for a database that needs
// `vega migrate`.
var ErrSchemaBehind = errors.New("database schema is behind this binary")

// Migrations returns the embedded migrations in version order. File names are
// NNNN_name.sql; versions are append-only and never renumbered.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration file %q is not NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations are not numbered 1, 2, 3…: found %d at place %d", m.Version, i+1)
		}
	}
	return out, nil
}

// LatestVersion is the schema version this binary's migrations reach.
func LatestVersion() int {
	ms, err := Migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

const migrationTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

// Migrate applies the embedded migrations that the database (the schema on
// the connection's search_path) lacks, each in its own transaction, under a
// transaction-scoped advisory lock so that concurrent migrators take turns.
// It is idempotent. A database at a version newer than this binary's is
// refused with ErrSchemaTooNew. It returns the versions it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	latest := ms[len(ms)-1].Version
	var applied []int
	for {
		done, v, err := migrateOne(ctx, pool, ms, latest)
		if err != nil {
			return applied, err
		}
		if done {
			return applied, nil
		}
		applied = append(applied, v)
	}
}

func migrateOne(ctx context.Context, pool *pgxpool.Pool, ms []Migration, latest int) (done bool, version int, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('vega.migrate.' || current_schema(), 0))`); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, migrationTable); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if current > latest {
			return fmt.Errorf("%w: database at version %d, this binary knows up to %d; run a newer vega", ErrSchemaTooNew, current, latest)
		}
		if current == latest {
			done = true
			return nil
		}
		m := ms[current]
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		version = m.Version
		return nil
	})
	return done, version, err
}

// SchemaVersion returns the database's schema version (0: never migrated).
func SchemaVersion(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

func checkSchema(ctx context.Context, pool *pgxpool.Pool) error {
	v, err := SchemaVersion(ctx, pool)
	if err != nil {
		return err
	}
	latest := LatestVersion()
	switch {
	case v > latest:
		return fmt.Errorf("%w: database at version %d, this binary knows up to %d; run a newer vega", ErrSchemaTooNew, v, latest)
	case v < latest:
		return fmt.Errorf("%w: database at version %d, this binary needs %d; run `vega migrate`", ErrSchemaBehind, v, latest)
	}
	return nil
}
