package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNotMigrated is matched by NewRunner's error when the read-model schema
// of a PostgreSQL database is missing or behind this binary: run `vega
// migrate` (Migrate).
var ErrNotMigrated = errors.New("read-model schema is not migrated")

// ErrSchemaTooNew is matched by errors for a database whose read-model
// bookkeeping a newer binary migrated.
var ErrSchemaTooNew = errors.New("read-model schema is newer than this binary")

// bookkeeping holds the migrations of the tables the runner itself owns,
// append only: readmodel_migrations records which were applied. The read
// models' own tables are not migrated in place: each projection has a
// schema version, and a projection whose stored version differs from the
// binary's is rebuilt aside into a new generation of tables (see Rebuild).
var bookkeeping = []string{
	// 1: one row per projection: its table generation, schema version,
	// checkpoint and state. rebuild_generation is set while a rebuild's
	// tables exist.
	`CREATE TABLE projection_state (
		name               TEXT    NOT NULL PRIMARY KEY,
		generation         BIGINT  NOT NULL,
		version            BIGINT  NOT NULL,
		tx                 BIGINT  NOT NULL,
		seq                BIGINT  NOT NULL,
		state              TEXT    NOT NULL,
		error              TEXT    NOT NULL DEFAULT '',
		rebuild_generation BIGINT,
		updated_at         BIGINT  NOT NULL
	)`,
}

// Migrate brings the read-model schema of db up to this binary: it applies
// the missing bookkeeping migrations and creates the tables (generation 1)
// and views of every projection that has none yet, all in one transaction
// (under an advisory lock on PostgreSQL, so concurrent migrators take
// turns). It is idempotent. `vega migrate` calls it for PostgreSQL; NewRunner
// calls it for SQLite. A database migrated by a newer binary fails with
// ErrSchemaTooNew.
func Migrate(ctx context.Context, db *sql.DB, d Dialect) error {
	if !d.Valid() {
		return fmt.Errorf("migrate read models: %s is not a dialect", d)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate read models: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if d == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('vega.readmodel.migrate.' || current_schema(), 0))`); err != nil {
			return fmt.Errorf("migrate read models: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS readmodel_migrations (
		version    BIGINT NOT NULL PRIMARY KEY,
		applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate read models: create readmodel_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM readmodel_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate read models: read version: %w", err)
	}
	if current > len(bookkeeping) {
		return fmt.Errorf("migrate read models: %w: database at %d, this binary knows %d", ErrSchemaTooNew, current, len(bookkeeping))
	}
	now := time.Now().UnixMicro()
	for v := current + 1; v <= len(bookkeeping); v++ {
		if _, err := tx.ExecContext(ctx, bookkeeping[v-1]); err != nil {
			return fmt.Errorf("migrate read models: migration %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, d.Rebind(`INSERT INTO readmodel_migrations (version, applied_at) VALUES (?, ?)`), v, now); err != nil {
			return fmt.Errorf("migrate read models: record migration %d: %w", v, err)
		}
	}
	for _, p := range all() {
		var n int
		if err := tx.QueryRowContext(ctx, d.Rebind(`SELECT count(*) FROM projection_state WHERE name = ?`), p.name).Scan(&n); err != nil {
			return fmt.Errorf("migrate read models: projection %s: %w", p.name, err)
		}
		if n > 0 {
			continue
		}
		if err := createGeneration(ctx, tx, d, p, 1, false); err != nil {
			return fmt.Errorf("migrate read models: %w", err)
		}
		if err := createViews(ctx, tx, p, 1); err != nil {
			return fmt.Errorf("migrate read models: %w", err)
		}
		if _, err := tx.ExecContext(ctx, d.Rebind(`INSERT INTO projection_state
			(name, generation, version, tx, seq, state, error, updated_at) VALUES (?, 1, ?, 0, 0, ?, '', ?)`),
			p.name, p.version, string(StateCatchingUp), now); err != nil {
			return fmt.Errorf("migrate read models: projection %s: %w", p.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate read models: commit: %w", err)
	}
	return nil
}

// checkMigrated reports ErrNotMigrated unless every projection has its
// state row.
func checkMigrated(ctx context.Context, db *sql.DB, d Dialect) error {
	var current int
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM readmodel_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("%w: %v; run `vega migrate`", ErrNotMigrated, err)
	}
	switch {
	case current > len(bookkeeping):
		return fmt.Errorf("%w: database at %d, this binary knows %d", ErrSchemaTooNew, current, len(bookkeeping))
	case current < len(bookkeeping):
		return fmt.Errorf("%w: database at %d, this binary needs %d; run `vega migrate`", ErrNotMigrated, current, len(bookkeeping))
	}
	for _, p := range all() {
		var n int
		if err := db.QueryRowContext(ctx, d.Rebind(`SELECT count(*) FROM projection_state WHERE name = ?`), p.name).Scan(&n); err != nil {
			return fmt.Errorf("%w: projection %s: %v", ErrNotMigrated, p.name, err)
		}
		if n == 0 {
			return fmt.Errorf("%w: projection %s has no tables; run `vega migrate`", ErrNotMigrated, p.name)
		}
	}
	return nil
}

// physical returns the table name of a logical read-model table in one
// generation.
func physical(table string, gen int64) string {
	return table + "_g" + strconv.FormatInt(gen, 10)
}

// createGeneration creates the tables and indexes of one generation of p.
// With bulk, it leaves out the indexes that constrain nothing (CREATE
// INDEX): a rebuild fills the tables first and then creates them with
// createIndexes, which costs a fraction of maintaining them row by row.
// Unique indexes are always created first, so that a duplicate still
// fails on its event.
func createGeneration(ctx context.Context, tx *sql.Tx, d Dialect, p *projection, gen int64, bulk bool) error {
	return execDDL(ctx, tx, d, p, gen, func(t table, stmt string) bool { return !bulk || !queryIndex(t, stmt) })
}

// createIndexes creates the indexes createGeneration left out in bulk.
func createIndexes(ctx context.Context, tx *sql.Tx, d Dialect, p *projection, gen int64) error {
	return execDDL(ctx, tx, d, p, gen, queryIndex)
}

// queryIndex reports whether stmt creates an index of t that constrains
// nothing and that t's projection does not write through.
func queryIndex(t table, stmt string) bool {
	if !strings.HasPrefix(stmt, "CREATE INDEX ") {
		return false
	}
	for _, w := range t.writeIndexes {
		if strings.HasPrefix(stmt, "CREATE INDEX "+w+" ") {
			return false
		}
	}
	return true
}

// execDDL runs the DDL statements of one generation of p that keep says.
func execDDL(ctx context.Context, tx *sql.Tx, d Dialect, p *projection, gen int64, keep func(table, string) bool) error {
	b := newBinder(d, p, gen)
	for _, t := range p.tables {
		for _, stmt := range t.ddl {
			if !keep(t, stmt) {
				continue
			}
			stmt = strings.ReplaceAll(stmt, "{t}", physical(t.name, gen))
			if _, err := tx.ExecContext(ctx, b.bind(stmt)); err != nil {
				return fmt.Errorf("projection %s: create %s generation %d: %w", p.name, t.name, gen, err)
			}
		}
	}
	return nil
}

// dropGeneration drops the tables of one generation of p, if they exist.
func dropGeneration(ctx context.Context, tx *sql.Tx, p *projection, gen int64) error {
	for _, t := range p.tables {
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+physical(t.name, gen)); err != nil {
			return fmt.Errorf("projection %s: drop %s generation %d: %w", p.name, t.name, gen, err)
		}
	}
	return nil
}

// createViews points the logical names, which queries read, at one
// generation's tables.
func createViews(ctx context.Context, tx *sql.Tx, p *projection, gen int64) error {
	for _, t := range p.tables {
		if _, err := tx.ExecContext(ctx, `DROP VIEW IF EXISTS `+t.name); err != nil {
			return fmt.Errorf("projection %s: drop view %s: %w", p.name, t.name, err)
		}
		if _, err := tx.ExecContext(ctx, `CREATE VIEW `+t.name+` AS SELECT * FROM `+physical(t.name, gen)); err != nil {
			return fmt.Errorf("projection %s: create view %s: %w", p.name, t.name, err)
		}
	}
	return nil
}

// binder turns a projection's statements into ones for one generation and
// dialect: "{table}" becomes the generation's table and '?' placeholders are
// rebound. Results are cached; it is safe for concurrent use.
type binder struct {
	d     Dialect
	names *strings.Replacer
	mu    sync.Mutex
	cache map[string]string
}

func newBinder(d Dialect, p *projection, gen int64) *binder {
	var pairs []string
	for _, t := range p.tables {
		pairs = append(pairs, "{"+t.name+"}", physical(t.name, gen))
	}
	return &binder{d: d, names: strings.NewReplacer(pairs...), cache: map[string]string{}}
}

func (b *binder) bind(q string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.cache[q]; ok {
		return s
	}
	s := b.d.Rebind(b.names.Replace(q))
	b.cache[q] = s
	return s
}

// txn is one projection transaction on one generation's tables. On SQLite
// it prepares each distinct statement once per transaction (a page repeats
// a few statements hundreds of times, and the driver would parse each one
// again); pgx already caches prepared statements per connection, and an
// explicit prepare would cost PostgreSQL two more round trips. A grouped
// txn holds the writes insert and add are given and writes them together
// (see group.go); it is not safe for concurrent use.
type txn struct {
	tx      *sql.Tx
	b       *binder
	stmts   map[string]*sql.Stmt
	grouped bool
	rows    map[string]*heldRows
	counts  map[string]*heldCounts
	// memo caches the project of each stream the activity projection
	// met within the page.
	memo map[string]string
}

func (t *txn) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if s, ok := t.stmts[q]; ok {
		return s, nil
	}
	s, err := t.tx.PrepareContext(ctx, t.b.bind(q))
	if err != nil {
		return nil, err
	}
	if t.stmts == nil {
		t.stmts = map[string]*sql.Stmt{}
	}
	t.stmts[q] = s
	return s, nil
}

// close releases the prepared statements (the transaction's end does too).
func (t *txn) close() {
	for _, s := range t.stmts {
		_ = s.Close()
	}
}

// exec writes what the txn holds for the tables q names, then runs q and
// returns the number of rows it affected.
func (t *txn) exec(ctx context.Context, q string, args ...any) (int64, error) {
	if err := t.flushFor(ctx, q); err != nil {
		return 0, err
	}
	return t.run(ctx, q, args...)
}

// run runs a statement and returns the number of rows it affected.
func (t *txn) run(ctx context.Context, q string, args ...any) (int64, error) {
	if t.b.d == Postgres {
		res, err := t.tx.ExecContext(ctx, t.b.bind(q), args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	s, err := t.stmt(ctx, q)
	if err != nil {
		return 0, err
	}
	res, err := s.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// execOne runs a statement that must change exactly one row; what names
// the row for the error otherwise.
func (t *txn) execOne(ctx context.Context, what, q string, args ...any) error {
	n, err := t.exec(ctx, q, args...)
	if err != nil {
		return err
	}
	if n != 1 {
		return invariantf("%s: %d rows changed, want 1", what, n)
	}
	return nil
}

// scanner is the one method of *sql.Row that queryRow's callers use.
type scanner interface{ Scan(dest ...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (t *txn) queryRow(ctx context.Context, q string, args ...any) scanner {
	if err := t.flushFor(ctx, q); err != nil {
		return errRow{err}
	}
	if t.b.d == Postgres {
		return t.tx.QueryRowContext(ctx, t.b.bind(q), args...)
	}
	s, err := t.stmt(ctx, q)
	if err != nil {
		return t.tx.QueryRowContext(ctx, t.b.bind(q), args...) // reports the same error
	}
	return s.QueryRowContext(ctx, args...)
}

// errInvariant marks an event that contradicts the read model (an update of
// a row that does not exist, a reference to an unknown stream): the
// projection stops on it.
var errInvariant = errors.New("read-model invariant violated")

func invariantf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errInvariant}, args...)...)
}

// micros encodes a time as Unix microseconds, or NULL for the zero time.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}
