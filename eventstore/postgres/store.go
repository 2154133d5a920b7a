// Package postgres is the PostgreSQL implementation of eventstore.Store on
// pgx/v5, with its schema migrations embedded in the binary.
//
// An append is one statement (the vega_append function of migration 1): one
// round trip, no table or advisory lock, so appends to different streams run
// in parallel and conflicts on one stream come from the UNIQUE (stream_id,
// version) constraint. Readers of the global order see an event only once
// every transaction that could precede it has ended (pg_snapshot_xmin), so
// none is ever skipped. Readers are woken by LISTEN/NOTIFY, sent after commit
// and coalesced (never inside the append: a NOTIFY holds a cluster-wide lock
// until commit), with polling as the fallback.
//
// Everything lives in the schema of the connection's search_path, so one
// database can hold several installations (tests use one schema each).
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vega-sec/vega/eventstore"
)

var (
	_ eventstore.Store       = (*Store)(nil)
	_ eventstore.Checkpoints = (*Store)(nil)
	_ eventstore.Leader      = (*Store)(nil)
)

// Defaults of the Options.
const (
	DefaultPollInterval    = 500 * time.Millisecond
	DefaultMaxConns        = 16
	DefaultLeaderRetry     = time.Second
	DefaultLeaderHeartbeat = 5 * time.Second
)

// Options tune a Store. The zero value takes every default.
type Options struct {
	// Logger receives connection trouble; nil discards.
	Logger *slog.Logger
	// PollInterval bounds how long Wait sleeps when no notification comes
	// (a lost LISTEN connection, or a commit that NOTIFY did not cover).
	PollInterval time.Duration
	// MaxConns caps the pool.
	MaxConns int32
	// LeaderRetry is how often Lead retries a lock that another process holds.
	LeaderRetry time.Duration
	// LeaderHeartbeat is how often Lead checks that its lock session lives.
	LeaderHeartbeat time.Duration
	// AppendWorkers is how many statements carry appends at once; each
	// groups the appends that queued meanwhile into one transaction.
	AppendWorkers int
}

// Store is the PostgreSQL event store. It is safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	opts    Options
	channel string
	schema  string

	wake   *broadcast
	kick   chan struct{}
	queues []chan *appendReq
	closed chan struct{}

	statements, appends atomic.Int64
	cancel              context.CancelFunc
	wg                  sync.WaitGroup
}

// Open connects to the database at url (a libpq URL or DSN; search_path in it
// selects the schema), checks that its schema is at this binary's version
// (ErrSchemaBehind: run `vega migrate`; ErrSchemaTooNew: run a newer binary),
// and starts the LISTEN and NOTIFY loops. Close releases everything.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	pool, err := NewPool(ctx, url, opts.MaxConns)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return newStore(ctx, pool, opts)
}

// NewPool opens a pgx pool for the url and checks that the server answers.
func NewPool(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: ping %s@%s:%d: %w", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return pool, nil
}

func newStore(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.LeaderRetry <= 0 {
		opts.LeaderRetry = DefaultLeaderRetry
	}
	if opts.LeaderHeartbeat <= 0 {
		opts.LeaderHeartbeat = DefaultLeaderHeartbeat
	}
	if opts.AppendWorkers <= 0 {
		opts.AppendWorkers = DefaultAppendWorkers
	}
	var schema string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: current schema: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s := &Store{
		pool:    pool,
		log:     opts.Logger,
		opts:    opts,
		schema:  schema,
		channel: channelName(schema),
		wake:    newBroadcast(),
		kick:    make(chan struct{}, 1),
		closed:  make(chan struct{}),
		cancel:  cancel,
	}
	s.startWorkers(runCtx, opts.AppendWorkers)
	s.wg.Add(2)
	go s.listen(runCtx)
	go s.notify(runCtx)
	return s, nil
}

// channelName is the NOTIFY channel of one schema (identifiers are capped at
// 63 bytes).
func channelName(schema string) string {
	c := "vega_events_" + schema
	if len(c) > 63 {
		c = c[:63]
	}
	return c
}

// Pool returns the store's pool, for read models that share the database
// and write their checkpoints in the same transaction.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close stops the background loops and closes the pool.
func (s *Store) Close() error {
	select {
	case <-s.closed:
		return nil
	default:
	}
	close(s.closed)
	s.cancel()
	s.wg.Wait()
	s.pool.Close()
	return nil
}

// Append implements eventstore.Appender.
func (s *Store) Append(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion, events ...eventstore.NewEvent) (eventstore.AppendResult, error) {
	data, meta, err := eventstore.ValidateAppend(stream, expected, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	recordedAt := eventstore.RecordedTime(time.Now())
	n := len(events)
	ids := make([]string, n)
	types := make([]string, n)
	svs := make([]int32, n)
	datas := make([]string, n)
	metas := make([]string, n)
	content := make([][]byte, n)
	for i, e := range events {
		ids[i], types[i], svs[i] = e.ID, e.Type, int32(e.SchemaVersion)
		datas[i], metas[i] = string(e.Data), string(meta[i])
		content[i] = eventstore.ContentHash(stream, e.Type, e.SchemaVersion, data[i], meta[i], recordedAt)
	}
	// Retrying is safe because appends are idempotent by event ID: when a
	// connection dies after the database committed but before we heard so,
	// the retry finds the same events at the same place and answers as a
	// repeat.
	for attempt := 1; ; attempt++ {
		res, err := s.submit(ctx, &appendReq{stream: stream, expected: expected, ids: ids, types: types, svs: svs,
			datas: datas, metas: metas, content: content, recordedAt: recordedAt})
		if err != nil && conflictOrReuse(err) {
			// The fast path does not look for reused IDs: ask whether
			// this was a repeat of an earlier append before reporting a
			// conflict.
			var rerr error
			res, rerr = s.repeat(ctx, stream, expected, ids, types, svs, datas, metas)
			switch {
			case rerr != nil:
				err = rerr
			case res.LastVersion > 0:
				err = nil
			}
		}
		if err == nil {
			if res.Written || attempt > 1 {
				s.wake.fire()
				select {
				case s.kick <- struct{}{}:
				default:
				}
			}
			return res, nil
		}
		if attempt < maxAppendAttempts && ctx.Err() == nil && retryable(err) {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(attempt*attempt) * 10 * time.Millisecond):
			}
			continue
		}
		return eventstore.AppendResult{}, s.appendError(ctx, stream, expected, err)
	}
}

// maxAppendAttempts bounds the retries of an append whose connection failed.
const maxAppendAttempts = 4

// conflictOrReuse reports whether the fast path failed on the expected
// version or on an existing event ID: cases where the call may be an
// idempotent repeat.
func conflictOrReuse(err error) bool {
	var vc versionConflict
	if errors.As(err, &vc) {
		return true
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Code == "VGCON" || pe.Code == "23505"
}

// retryable reports whether err means "the connection failed", so that the
// outcome is unknown and an idempotent retry will tell.
func retryable(err error) bool {
	if errors.Is(err, errStoreClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", pe.Code == "40001", pe.Code == "40P01":
			return true
		}
		return false
	}
	// Anything else from the driver (EOF, reset, closed connection) is a
	// transport failure.
	return true
}

func (s *Store) repeat(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion,
	ids, types []string, svs []int32, datas, metas []string) (eventstore.AppendResult, error) {
	rows, err := s.pool.Query(ctx, `SELECT out_version, out_tx, out_position
		FROM vega_append_repeat($1, $2, $3, $4, $5, $6::jsonb[], $7::jsonb[])`,
		string(stream), int64(expected), ids, types, svs, datas, metas)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	return appendResult(rows, -1)
}

// appendResult reads the (version, tx, position) rows of an append; want is
// the number of rows expected, or -1 for "none or all".
func appendResult(rows pgx.Rows, want int) (eventstore.AppendResult, error) {
	defer rows.Close()
	var res eventstore.AppendResult
	n := 0
	for rows.Next() {
		var version, pos int64
		var tx uint64
		if err := rows.Scan(&version, &tx, &pos); err != nil {
			return eventstore.AppendResult{}, err
		}
		if n == 0 || version < res.FirstVersion {
			res.FirstVersion = version
		}
		if version >= res.LastVersion {
			res.LastVersion, res.Position = version, eventstore.Position{Tx: tx, Seq: pos}
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	if want >= 0 && n != want {
		return eventstore.AppendResult{}, fmt.Errorf("%d of %d events acknowledged", n, want)
	}
	return res, nil
}

// appendError turns what the database said into the store's errors; the
// caller never sees a raw driver error for a conflict.
func (s *Store) appendError(ctx context.Context, stream eventstore.StreamID, expected eventstore.ExpectedVersion, err error) error {
	var vc versionConflict
	if errors.As(err, &vc) {
		return &eventstore.ConcurrencyError{Stream: stream, Expected: expected, Actual: vc.actual}
	}
	if errors.Is(err, errStoreClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("append to %s: %w", stream, err)
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return fmt.Errorf("append to %s: %w", stream, err)
	}
	switch {
	case pe.Code == "VGCON":
		actual, _ := strconv.ParseInt(pe.Message, 10, 64)
		return &eventstore.ConcurrencyError{Stream: stream, Expected: expected, Actual: actual}
	case pe.Code == "VGIDM":
		return &eventstore.IdempotencyError{Stream: stream, EventID: pe.Message, Reason: pe.Detail}
	case pe.Code == "23505" && pe.ConstraintName == "events_stream_version_key":
		actual, verr := s.streamVersion(ctx, stream)
		if verr != nil {
			actual = -1
		}
		return &eventstore.ConcurrencyError{Stream: stream, Expected: expected, Actual: actual}
	case pe.Code == "23505" && pe.ConstraintName == "events_event_id_key":
		return &eventstore.IdempotencyError{Stream: stream, Reason: "an event id was written concurrently by another append"}
	case len(pe.Code) == 5 && pe.Code[:2] == "22":
		// Data exceptions: values PostgreSQL cannot hold (a lone surrogate
		// in a JSON string, say). Nothing was written.
		return fmt.Errorf("%w: append to %s: the database refused a value: %s", eventstore.ErrInvalid, stream, pe.Message)
	}
	return fmt.Errorf("append to %s: %w", stream, err)
}

func (s *Store) streamVersion(ctx context.Context, stream eventstore.StreamID) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1`, string(stream)).Scan(&v)
	return v, err
}

const eventColumns = `event_id, stream_id, version, transaction_id, position, type, schema_version, data, metadata, recorded_at, prev_hash, hash`

// ReadStream implements eventstore.StreamReader.
func (s *Store) ReadStream(ctx context.Context, stream eventstore.StreamID, from int64, limit int) ([]eventstore.RecordedEvent, error) {
	if limit <= 0 {
		limit = eventstore.DefaultReadLimit
	}
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events
		WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3`, string(stream), from, limit)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	evs, err := scanEvents(rows, limit)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	return evs, nil
}

// visible bounds a global read to transactions that have all ended: nothing
// can commit below pg_snapshot_xmin any more.
const visible = `transaction_id < pg_snapshot_xmin(pg_current_snapshot())`

// ReadAll implements eventstore.AllReader.
func (s *Store) ReadAll(ctx context.Context, q eventstore.Query) ([]eventstore.RecordedEvent, eventstore.Position, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = eventstore.DefaultReadLimit
	}
	filtered := len(q.Categories) > 0 || len(q.Types) > 0
	if !filtered {
		rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events
			WHERE (transaction_id, position) > ($1::xid8, $2) AND `+visible+`
			ORDER BY transaction_id, position LIMIT $3`, q.After.Tx, q.After.Seq, limit)
		if err != nil {
			return nil, q.After, fmt.Errorf("read all: %w", err)
		}
		evs, err := scanEvents(rows, limit)
		if err != nil {
			return nil, q.After, fmt.Errorf("read all: %w", err)
		}
		next := q.After
		if len(evs) > 0 {
			next = evs[len(evs)-1].Position
		}
		return evs, next, nil
	}
	// Filtered: bound the read by the head seen first, so that when fewer
	// than limit events match, the reader may resume from the head and not
	// scan the skipped events again.
	head, err := s.Head(ctx)
	if err != nil {
		return nil, q.After, err
	}
	if !q.After.Less(head) {
		return nil, q.After, nil
	}
	sql := `SELECT ` + eventColumns + ` FROM events
		WHERE (transaction_id, position) > ($1::xid8, $2) AND (transaction_id, position) <= ($3::xid8, $4)`
	args := []any{q.After.Tx, q.After.Seq, head.Tx, head.Seq}
	if len(q.Categories) > 0 {
		args = append(args, q.Categories)
		sql += ` AND category = ANY($` + strconv.Itoa(len(args)) + `)`
	}
	if len(q.Types) > 0 {
		args = append(args, q.Types)
		sql += ` AND type = ANY($` + strconv.Itoa(len(args)) + `)`
	}
	args = append(args, limit)
	sql += ` ORDER BY transaction_id, position LIMIT $` + strconv.Itoa(len(args))
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, q.After, fmt.Errorf("read all: %w", err)
	}
	evs, err := scanEvents(rows, limit)
	if err != nil {
		return nil, q.After, fmt.Errorf("read all: %w", err)
	}
	if len(evs) == limit {
		return evs, evs[len(evs)-1].Position, nil
	}
	return evs, head, nil
}

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	var p eventstore.Position
	err := s.pool.QueryRow(ctx, `SELECT transaction_id, position FROM events WHERE `+visible+`
		ORDER BY transaction_id DESC, position DESC LIMIT 1`).Scan(&p.Tx, &p.Seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Position{}, nil
	}
	if err != nil {
		return eventstore.Position{}, fmt.Errorf("read head: %w", err)
	}
	return p, nil
}

func scanEvents(rows pgx.Rows, capacity int) ([]eventstore.RecordedEvent, error) {
	defer rows.Close()
	out := make([]eventstore.RecordedEvent, 0, min(capacity, 256))
	var (
		stream     string
		data, meta []byte
	)
	for rows.Next() {
		var e eventstore.RecordedEvent
		var sv int32
		if err := rows.Scan(&e.ID, &stream, &e.Version, &e.Position.Tx, &e.Position.Seq, &e.Type, &sv, &data, &meta, &e.RecordedAt, &e.PrevHash, &e.Hash); err != nil {
			return nil, err
		}
		e.StreamID = eventstore.StreamID(stream)
		e.SchemaVersion = int(sv)
		e.Data = json.RawMessage(append([]byte(nil), data...))
		m, err := eventstore.DecodeMetadata(meta)
		if err != nil {
			return nil, fmt.Errorf("event %s metadata: %w", e.ID, err)
		}
		e.Metadata = m
		e.RecordedAt = e.RecordedAt.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
