package storebench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/eventstore/postgres"
	"github.com/vega-sec/vega/eventstore/sqlite"
)

func randomHash() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// Postgres is the PostgreSQL target: each instance is a fresh schema on the
// server at serverURL, dropped at Close.
func Postgres(serverURL string) Target {
	return Target{Name: "postgres", New: func(ctx context.Context) (*Instance, error) {
		schema := "bench_" + strings.ToLower(ulid.Make().String())
		admin, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			return nil, err
		}
		if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
			admin.Close(ctx)
			return nil, err
		}
		drop := func() {
			_, _ = admin.Exec(context.WithoutCancel(ctx), "DROP SCHEMA "+schema+" CASCADE")
			admin.Close(context.WithoutCancel(ctx))
		}
		u, _ := url.Parse(serverURL)
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		dsn := u.String()
		pool, err := postgres.NewPool(ctx, dsn, 32)
		if err != nil {
			drop()
			return nil, err
		}
		if _, err := postgres.Migrate(ctx, pool); err != nil {
			pool.Close()
			drop()
			return nil, err
		}
		if _, err := pool.Exec(ctx, `CREATE TABLE raw_events (
			position bigint GENERATED ALWAYS AS IDENTITY, transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
			event_id text NOT NULL, stream_id text NOT NULL, category text NOT NULL, version bigint NOT NULL,
			type text NOT NULL, schema_version integer NOT NULL, data jsonb NOT NULL, metadata jsonb NOT NULL,
			recorded_at timestamptz NOT NULL, prev_hash bytea NOT NULL, hash bytea NOT NULL);
			CREATE TABLE raw_keyed (LIKE raw_events INCLUDING ALL, UNIQUE (event_id), UNIQUE (stream_id, version));
			CREATE INDEX ON raw_keyed (transaction_id, position)`); err != nil {
			pool.Close()
			drop()
			return nil, err
		}
		s, err := postgres.Open(ctx, dsn, postgres.Options{MaxConns: 32})
		if err != nil {
			pool.Close()
			drop()
			return nil, err
		}
		f, err := postgres.Open(ctx, dsn, postgres.Options{MaxConns: 4})
		if err != nil {
			s.Close()
			pool.Close()
			drop()
			return nil, err
		}
		return &Instance{Store: s, Follower: f, Raw: &pgRaw{pool: pool}, Close: func() {
			f.Close()
			s.Close()
			pool.Close()
			drop()
		}}, nil
	}}
}

type pgRaw struct{ pool *pgxpool.Pool }

const metaJSON = `{"actor":"bench","correlation_id":"01JBENCH0000000000000000000"}`

func (r *pgRaw) InsertRows(ctx context.Context, n int, keyed bool) error {
	now := time.Now()
	table := "raw_events"
	if keyed {
		table = "raw_keyed"
	}
	stream := "bench-raw-" + ulid.Make().String() // fresh, so (stream_id, version) stays unique
	if n == 1 {
		_, err := r.pool.Exec(ctx, `INSERT INTO `+table+` (event_id, stream_id, category, version, type, schema_version, data, metadata, recorded_at, prev_hash, hash)
			VALUES ($1, $2, 'bench', 1, 'ScanProgressed', 1, $3, $4, $5, $6, $7)`,
			ulid.Make().String(), stream, string(sampleData), metaJSON, now, randomHash(), randomHash())
		return err
	}
	ids := make([]string, n)
	datas := make([]string, n)
	metas := make([]string, n)
	prevs := make([][]byte, n)
	hashes := make([][]byte, n)
	for i := range n {
		ids[i], datas[i], metas[i], prevs[i], hashes[i] = ulid.Make().String(), string(sampleData), metaJSON, randomHash(), randomHash()
	}
	_, err := r.pool.Exec(ctx, `INSERT INTO `+table+` (event_id, stream_id, category, version, type, schema_version, data, metadata, recorded_at, prev_hash, hash)
		SELECT id, $7, 'bench', ord, 'ScanProgressed', 1, d, m, $6, p, h
		FROM unnest($1::text[], $2::jsonb[], $3::jsonb[], $4::bytea[], $5::bytea[]) WITH ORDINALITY AS t(id, d, m, p, h, ord)`,
		ids, datas, metas, prevs, hashes, now, stream)
	return err
}

func (r *pgRaw) Analyze(ctx context.Context) error {
	_, err := r.pool.Exec(ctx, `ANALYZE events`)
	return err
}

func (r *pgRaw) ReadEvents(ctx context.Context) (int64, error) {
	rows, err := r.pool.Query(ctx, `SELECT event_id, stream_id, version, transaction_id::text, position, type, schema_version,
		data, metadata, recorded_at, prev_hash, hash FROM events ORDER BY transaction_id, position`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		_ = rows.RawValues()
		n++
	}
	return n, rows.Err()
}

// SQLite is the SQLite target: each instance is a fresh file under dir.
func SQLite(dir string) Target {
	return Target{Name: "sqlite", New: func(ctx context.Context) (*Instance, error) {
		d, err := os.MkdirTemp(dir, "bench-sqlite-")
		if err != nil {
			return nil, err
		}
		path := filepath.Join(d, "vega.db")
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			os.RemoveAll(d)
			return nil, err
		}
		// The ceiling uses its own single writer connection with the
		// store's settings.
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Set("_txlock", "immediate")
		db, err := sql.Open("sqlite", path+"?"+q.Encode())
		if err != nil {
			s.Close()
			os.RemoveAll(d)
			return nil, err
		}
		db.SetMaxOpenConns(1)
		if _, err := db.ExecContext(ctx, `CREATE TABLE raw_events (position INTEGER PRIMARY KEY AUTOINCREMENT,
			event_id TEXT NOT NULL, stream_id TEXT NOT NULL, category TEXT NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL,
			schema_version INTEGER NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at INTEGER NOT NULL,
			prev_hash BLOB NOT NULL, hash BLOB NOT NULL) STRICT;
			CREATE TABLE raw_keyed (position INTEGER PRIMARY KEY AUTOINCREMENT,
			event_id TEXT NOT NULL UNIQUE, stream_id TEXT NOT NULL, category TEXT NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL,
			schema_version INTEGER NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at INTEGER NOT NULL,
			prev_hash BLOB NOT NULL, hash BLOB NOT NULL, UNIQUE (stream_id, version)) STRICT;
			CREATE INDEX raw_keyed_category ON raw_keyed (category, position);
			CREATE INDEX raw_keyed_type ON raw_keyed (type, position)`); err != nil {
			db.Close()
			s.Close()
			os.RemoveAll(d)
			return nil, err
		}
		rd, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
		if err != nil {
			db.Close()
			s.Close()
			os.RemoveAll(d)
			return nil, err
		}
		return &Instance{Store: s, Follower: s, Raw: &sqliteRaw{w: db, r: rd}, Close: func() {
			rd.Close()
			db.Close()
			s.Close()
			os.RemoveAll(d)
		}}, nil
	}}
}

type sqliteRaw struct{ w, r *sql.DB }

func (r *sqliteRaw) InsertRows(ctx context.Context, n int, keyed bool) error {
	table := "raw_events"
	if keyed {
		table = "raw_keyed"
	}
	stream := "bench-raw-" + ulid.Make().String()
	var b strings.Builder
	b.WriteString(`INSERT INTO ` + table + ` (event_id, stream_id, category, version, type, schema_version, data, metadata, recorded_at, prev_hash, hash) VALUES `)
	args := make([]any, 0, n*6)
	now := time.Now().UnixMicro()
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?, ?, 'bench', ?, 'ScanProgressed', 1, ?, ?, ?, ?, ?)`)
		args = append(args, ulid.Make().String(), stream, i+1, string(sampleData), metaJSON, now, randomHash(), randomHash())
	}
	tx, err := r.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (r *sqliteRaw) Analyze(ctx context.Context) error {
	_, err := r.w.ExecContext(ctx, `ANALYZE events`)
	return err
}

func (r *sqliteRaw) ReadEvents(ctx context.Context) (int64, error) {
	rows, err := r.r.QueryContext(ctx, `SELECT event_id, stream_id, version, 0, position, type, schema_version,
		data, metadata, recorded_at, prev_hash, hash FROM events ORDER BY position`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	cols := make([]any, 12)
	for i := range cols {
		cols[i] = new(sql.RawBytes)
	}
	for rows.Next() {
		if err := rows.Scan(cols...); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}
